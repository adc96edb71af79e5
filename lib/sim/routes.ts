// SPDX-License-Identifier: Apache-2.0
// The API routes the simulator serves under /v2.1 and /v2.2. Route templates are spelled as the
// cluster's /api schema keys them (`/app_instances/:id/...`), so the call log's `route` can be
// looked up in the schema, and `schema` names the operation whose bodyParamSchema validates the
// body (or, for collection reads, the query). Each route runs one operation of ops/.
import type { Json, Listing, OpContext } from './model.js';
import {
  createAiSnapshotPolicy,
  createAppInstance,
  deleteAppInstance,
  getAppInstance,
  listAiSnapshotPolicies,
  listAppInstances,
  updateAppInstance,
} from './ops/app-instances.js';
import { createInitiator, deleteInitiator, getInitiator, listInitiators, updateInitiator } from './ops/initiators.js';
import {
  getMetadata,
  getSiMetadata,
  putEcosystemData,
  putMetadata,
  putSiEcosystemData,
  putSiMetadata,
} from './ops/metadata.js';
import {
  createAiSnapshot,
  createVolumeSnapshot,
  deleteAiSnapshot,
  deleteVolumeSnapshot,
  getAiSnapshot,
  getVolumeSnapshot,
  listAiSnapshots,
  listVolumeSnapshots,
} from './ops/snapshots.js';
import {
  createStorageInstance,
  deleteStorageInstance,
  getAcl,
  getAuth,
  getStorageInstance,
  listAclInitiators,
  listStorageInstances,
  patchAclInitiators,
  putAcl,
  putAuth,
  updateStorageInstance,
} from './ops/storage-instances.js';
import {
  createTenant,
  getIpPool,
  getPlacementPolicy,
  getStorageNode,
  getTenant,
  listIpPools,
  listPlacementPolicies,
  listStorageNodes,
  listTenants,
  system,
} from './ops/system.js';
import { createTemplate, deleteTemplate, getTemplate, listTemplates } from './ops/templates.js';
import {
  createPerformancePolicy,
  createVolume,
  deletePerformancePolicy,
  deleteVolume,
  getPerformancePolicy,
  getVolume,
  listVolumes,
  updatePerformancePolicy,
  updateVolume,
} from './ops/volumes.js';
import type { SimState } from './state.js';

type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';

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
  { method: 'GET', route: '/system', run: system },
  { method: 'GET', route: '/storage_nodes', run: listStorageNodes },
  { method: 'GET', route: '/storage_nodes/:uuid', run: getStorageNode },
  { method: 'GET', route: '/tenants', run: listTenants },
  { method: 'POST', route: '/tenants', schema: 'create', run: createTenant },
  { method: 'GET', route: '/tenants/:tenant_path*', run: getTenant },
  { method: 'GET', route: '/access_network_ip_pools', schema: 'read', run: listIpPools },
  { method: 'GET', route: '/access_network_ip_pools/:pool_name', run: getIpPool },
  { method: 'GET', route: '/placement_policies', run: listPlacementPolicies },
  { method: 'GET', route: '/placement_policies/:name', run: getPlacementPolicy },

  { method: 'GET', route: '/app_instances', schema: 'read', run: listAppInstances },
  { method: 'POST', route: '/app_instances', schema: 'create', run: createAppInstance },
  { method: 'GET', route: AI, run: getAppInstance },
  { method: 'PUT', route: AI, schema: 'update', run: updateAppInstance },
  { method: 'DELETE', route: AI, schema: 'delete', run: deleteAppInstance },
  { method: 'GET', route: `${AI}/metadata`, run: getMetadata },
  { method: 'PUT', route: `${AI}/metadata`, run: putMetadata },
  { method: 'GET', route: `${AI}/int_ecosystem_data`, run: getMetadata },
  { method: 'PUT', route: `${AI}/int_ecosystem_data`, run: putEcosystemData },
  { method: 'GET', route: `${AI}/snapshots`, schema: 'read', run: listAiSnapshots },
  { method: 'POST', route: `${AI}/snapshots`, schema: 'create', run: createAiSnapshot },
  { method: 'GET', route: `${AI}/snapshots/:timestamp`, run: getAiSnapshot },
  { method: 'DELETE', route: `${AI}/snapshots/:timestamp`, run: deleteAiSnapshot },
  { method: 'GET', route: `${AI}/snapshot_policies`, schema: 'read', run: listAiSnapshotPolicies },
  { method: 'POST', route: `${AI}/snapshot_policies`, schema: 'create', run: createAiSnapshotPolicy },

  { method: 'GET', route: `${AI}/storage_instances`, schema: 'read', run: listStorageInstances },
  { method: 'POST', route: `${AI}/storage_instances`, schema: 'create', run: createStorageInstance },
  { method: 'GET', route: SI, run: getStorageInstance },
  { method: 'PUT', route: SI, schema: 'update', run: updateStorageInstance },
  { method: 'DELETE', route: SI, schema: 'delete', run: deleteStorageInstance },
  { method: 'GET', route: '/app_instances/:ai_id/storage_instances/:si_id/metadata', run: getSiMetadata },
  { method: 'PUT', route: '/app_instances/:ai_id/storage_instances/:si_id/metadata', run: putSiMetadata },
  { method: 'GET', route: '/app_instances/:ai_id/storage_instances/:si_id/int_ecosystem_data', run: getSiMetadata },
  { method: 'PUT', route: '/app_instances/:ai_id/storage_instances/:si_id/int_ecosystem_data', run: putSiEcosystemData },
  { method: 'GET', route: `${SI}/auth`, run: getAuth },
  { method: 'PUT', route: `${SI}/auth`, schema: 'update', run: putAuth },
  { method: 'GET', route: `${SI}/acl_policy`, run: getAcl },
  { method: 'PUT', route: `${SI}/acl_policy`, schema: 'update', run: putAcl },
  { method: 'GET', route: `${SI}/acl_policy/initiators`, schema: 'read', run: listAclInitiators },
  { method: 'PUT', route: `${SI}/acl_policy/initiators`, schema: 'update', run: patchAclInitiators },
  { method: 'GET', route: `${SI}/volumes`, schema: 'read', run: listVolumes },
  { method: 'POST', route: `${SI}/volumes`, schema: 'create', run: createVolume },
  { method: 'GET', route: VOL, run: getVolume },
  { method: 'PUT', route: VOL, schema: 'update', run: updateVolume },
  { method: 'DELETE', route: VOL, run: deleteVolume },
  { method: 'GET', route: `${VOL}/performance_policy`, run: getPerformancePolicy },
  { method: 'POST', route: `${VOL}/performance_policy`, schema: 'create', run: createPerformancePolicy },
  { method: 'PUT', route: `${VOL}/performance_policy`, schema: 'update', run: updatePerformancePolicy },
  { method: 'DELETE', route: `${VOL}/performance_policy`, run: deletePerformancePolicy },
  { method: 'GET', route: `${VOL}/snapshots`, schema: 'read', run: listVolumeSnapshots },
  { method: 'POST', route: `${VOL}/snapshots`, schema: 'create', run: createVolumeSnapshot },
  { method: 'GET', route: `${VOL}/snapshots/:timestamp`, run: getVolumeSnapshot },
  { method: 'DELETE', route: `${VOL}/snapshots/:timestamp`, run: deleteVolumeSnapshot },

  { method: 'GET', route: '/initiators', schema: 'read', run: listInitiators },
  { method: 'POST', route: '/initiators', schema: 'create', run: createInitiator },
  { method: 'GET', route: '/initiators/:id', run: getInitiator },
  { method: 'PUT', route: '/initiators/:id', schema: 'update', run: updateInitiator },
  { method: 'DELETE', route: '/initiators/:id', run: deleteInitiator },

  { method: 'GET', route: '/app_templates', schema: 'read', run: listTemplates },
  { method: 'POST', route: '/app_templates', schema: 'create', run: createTemplate },
  { method: 'GET', route: '/app_templates/:name', run: getTemplate },
  { method: 'DELETE', route: '/app_templates/:name', run: deleteTemplate },
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
