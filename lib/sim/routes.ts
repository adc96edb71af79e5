// SPDX-License-Identifier: Apache-2.0
// The API routes the simulator serves under /v2.1 and /v2.2. Route templates are spelled as the
// cluster's /api schema keys them (`/app_instances/:id/...`), so the call log's `route` can be
// looked up in the schema, and `schema` names the operation whose bodyParamSchema validates the
// body (or, for collection reads, the query).
import type { Listing, OpContext, SimState } from './state.js';

export type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';
type Json = Record<string, unknown>;

export interface RouteDef {
  method: Method;
  route: string;
  /** Operation in the schema subset validating the body (create/update/delete) or query (read). */
  schema?: 'read' | 'create' | 'update' | 'delete';
  run: (s: SimState, ctx: OpContext) => Json | Listing;
}

const AI = '/app_instances/:id';
const SI = `${AI}/storage_instances/:storage_instance_name`;
const VOL = `${SI}/volumes/:volume_name`;

export const ROUTES: RouteDef[] = [
  { method: 'GET', route: '/system', run: (s) => s.system() },
  { method: 'GET', route: '/storage_nodes', run: (s) => s.listStorageNodes() },
  { method: 'GET', route: '/storage_nodes/:uuid', run: (s, c) => s.getStorageNode(c) },
  { method: 'GET', route: '/tenants', run: (s) => s.listTenants() },
  { method: 'POST', route: '/tenants', schema: 'create', run: (s, c) => s.createTenant(c) },
  { method: 'GET', route: '/tenants/:tenant_path*', run: (s, c) => s.getTenant(c) },
  { method: 'GET', route: '/access_network_ip_pools', schema: 'read', run: (s) => s.listIpPools() },
  { method: 'GET', route: '/access_network_ip_pools/:pool_name', run: (s, c) => s.getIpPool(c) },
  { method: 'GET', route: '/placement_policies', run: (s) => s.listPlacementPolicies() },
  { method: 'GET', route: '/placement_policies/:name', run: (s, c) => s.getPlacementPolicy(c) },

  { method: 'GET', route: '/app_instances', schema: 'read', run: (s, c) => s.listAppInstances(c) },
  { method: 'POST', route: '/app_instances', schema: 'create', run: (s, c) => s.createAppInstance(c) },
  { method: 'GET', route: AI, run: (s, c) => s.getAppInstance(c) },
  { method: 'PUT', route: AI, schema: 'update', run: (s, c) => s.updateAppInstance(c) },
  { method: 'DELETE', route: AI, schema: 'delete', run: (s, c) => s.deleteAppInstance(c) },
  { method: 'GET', route: `${AI}/metadata`, run: (s, c) => s.getMetadata(c) },
  { method: 'PUT', route: `${AI}/metadata`, run: (s, c) => s.putMetadata(c) },
  { method: 'GET', route: `${AI}/snapshots`, schema: 'read', run: (s, c) => s.listAiSnapshots(c) },
  { method: 'POST', route: `${AI}/snapshots`, schema: 'create', run: (s, c) => s.createAiSnapshot(c) },
  { method: 'GET', route: `${AI}/snapshots/:timestamp`, run: (s, c) => s.getAiSnapshot(c) },
  { method: 'DELETE', route: `${AI}/snapshots/:timestamp`, run: (s, c) => s.deleteAiSnapshot(c) },
  { method: 'GET', route: `${AI}/snapshot_policies`, schema: 'read', run: (s, c) => s.listAiSnapshotPolicies(c) },
  { method: 'POST', route: `${AI}/snapshot_policies`, schema: 'create', run: (s, c) => s.createAiSnapshotPolicy(c) },

  { method: 'GET', route: `${AI}/storage_instances`, schema: 'read', run: (s, c) => s.listStorageInstances(c) },
  { method: 'POST', route: `${AI}/storage_instances`, schema: 'create', run: (s, c) => s.createStorageInstance(c) },
  { method: 'GET', route: SI, run: (s, c) => s.getStorageInstance(c) },
  { method: 'PUT', route: SI, schema: 'update', run: (s, c) => s.updateStorageInstance(c) },
  { method: 'DELETE', route: SI, schema: 'delete', run: (s, c) => s.deleteStorageInstance(c) },
  { method: 'GET', route: '/app_instances/:ai_id/storage_instances/:si_id/metadata', run: (s, c) => s.getSiMetadata(c) },
  { method: 'PUT', route: '/app_instances/:ai_id/storage_instances/:si_id/metadata', run: (s, c) => s.putSiMetadata(c) },
  { method: 'GET', route: `${SI}/auth`, run: (s, c) => s.getAuth(c) },
  { method: 'PUT', route: `${SI}/auth`, schema: 'update', run: (s, c) => s.putAuth(c) },
  { method: 'GET', route: `${SI}/acl_policy`, run: (s, c) => s.getAcl(c) },
  { method: 'PUT', route: `${SI}/acl_policy`, schema: 'update', run: (s, c) => s.putAcl(c) },
  { method: 'GET', route: `${SI}/acl_policy/initiators`, schema: 'read', run: (s, c) => s.listAclInitiators(c) },
  { method: 'PUT', route: `${SI}/acl_policy/initiators`, schema: 'update', run: (s, c) => s.patchAclInitiators(c) },
  { method: 'GET', route: `${SI}/volumes`, schema: 'read', run: (s, c) => s.listVolumes(c) },
  { method: 'POST', route: `${SI}/volumes`, schema: 'create', run: (s, c) => s.createVolume(c) },
  { method: 'GET', route: VOL, run: (s, c) => s.getVolume(c) },
  { method: 'PUT', route: VOL, schema: 'update', run: (s, c) => s.updateVolume(c) },
  { method: 'DELETE', route: VOL, run: (s, c) => s.deleteVolume(c) },
  { method: 'GET', route: `${VOL}/performance_policy`, run: (s, c) => s.getPerformancePolicy(c) },
  { method: 'POST', route: `${VOL}/performance_policy`, schema: 'create', run: (s, c) => s.createPerformancePolicy(c) },
  { method: 'PUT', route: `${VOL}/performance_policy`, schema: 'update', run: (s, c) => s.updatePerformancePolicy(c) },
  { method: 'DELETE', route: `${VOL}/performance_policy`, run: (s, c) => s.deletePerformancePolicy(c) },
  { method: 'GET', route: `${VOL}/snapshots`, schema: 'read', run: (s, c) => s.listVolumeSnapshots(c) },
  { method: 'POST', route: `${VOL}/snapshots`, schema: 'create', run: (s, c) => s.createVolumeSnapshot(c) },
  { method: 'GET', route: `${VOL}/snapshots/:timestamp`, run: (s, c) => s.getVolumeSnapshot(c) },
  { method: 'DELETE', route: `${VOL}/snapshots/:timestamp`, run: (s, c) => s.deleteVolumeSnapshot(c) },

  { method: 'GET', route: '/initiators', schema: 'read', run: (s, c) => s.listInitiators(c) },
  { method: 'POST', route: '/initiators', schema: 'create', run: (s, c) => s.createInitiator(c) },
  { method: 'GET', route: '/initiators/:id', run: (s, c) => s.getInitiator(c) },
  { method: 'PUT', route: '/initiators/:id', schema: 'update', run: (s, c) => s.updateInitiator(c) },
  { method: 'DELETE', route: '/initiators/:id', run: (s, c) => s.deleteInitiator(c) },

  { method: 'GET', route: '/app_templates', schema: 'read', run: (s, c) => s.listTemplates(c) },
  { method: 'POST', route: '/app_templates', schema: 'create', run: (s, c) => s.createTemplate(c) },
  { method: 'GET', route: '/app_templates/:name', run: (s, c) => s.getTemplate(c) },
  { method: 'DELETE', route: '/app_templates/:name', run: (s, c) => s.deleteTemplate(c) },
];

interface Compiled {
  def: RouteDef;
  segments: string[];
}

const COMPILED: Compiled[] = ROUTES.map((def) => ({ def, segments: def.route.split('/').slice(1) }));

export interface RouteMatch {
  /** The route with the method, when the method is served there. */
  def?: RouteDef;
  /** The route template the path matched (for the call log), whatever the method. */
  route: string;
  params: Record<string, string>;
  /** Methods served on this path (for 405 answers). */
  allowed: Method[];
}

function matchSegments(pattern: string[], parts: string[]): Record<string, string> | undefined {
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i]!;
    if (p.endsWith('*') && p.startsWith(':')) {
      if (i >= parts.length) return undefined;
      params[p.slice(1, -1)] = parts.slice(i).join('/');
      return params;
    }
    const part = parts[i];
    if (part === undefined || part === '') return undefined;
    if (p.startsWith(':')) params[p.slice(1)] = part;
    else if (p !== part) return undefined;
  }
  return pattern.length === parts.length ? params : undefined;
}

/** Finds the route of an API path (without the version prefix); undefined when none matches. */
export function matchRoute(method: string, path: string): RouteMatch | undefined {
  let parts: string[];
  try {
    parts = path.split('/').slice(1).map(decodeURIComponent);
  } catch {
    return undefined;
  }
  if (parts.length > 0 && parts[parts.length - 1] === '') parts.pop(); // tolerate a trailing slash
  let found: RouteMatch | undefined;
  for (const c of COMPILED) {
    const params = matchSegments(c.segments, parts);
    if (!params) continue;
    found ??= { route: c.def.route, params, allowed: [] };
    if (c.def.route !== found.route) continue;
    found.allowed.push(c.def.method);
    if (c.def.method === method) {
      found.def = c.def;
      found.params = params;
    }
  }
  return found;
}
