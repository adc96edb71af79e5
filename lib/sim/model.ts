// SPDX-License-Identifier: Apache-2.0
// The simulator's records and the small helpers every operation module shares.
//
// Records are kept in the simulator's own shape (passwords in clear, references by name) and
// are never handed out: render.ts turns them into the API's shape on every read. A spec is what
// a request, a template or a clone source asks for: the settable fields of a record, with the
// defaults (DEFAULT_*) applied when the record is made (specs.ts).
import type { PerformancePolicy, PlacementMode, SnapshotPolicy } from '../datera/types.js';

export const ROOT_TENANT = '/root';
export const DEFAULT_REPLICAS = 3;
export const DEFAULT_PLACEMENT_MODE: PlacementMode = 'hybrid';
export const DEFAULT_PLACEMENT_POLICY = 'default';
export const DEFAULT_IP_POOL = 'default';
/** What a password reads as in every answer. */
export const HIDDEN = '(hidden)';
const TENANT_PATH = /^\/root(\/[A-Za-z0-9_.-]+)*$/;

export type Json = Record<string, unknown>;

export interface AuthRec {
  type: 'none' | 'chap' | 'mchap';
  initiator_user_name: string;
  initiator_pswd: string;
  target_user_name: string;
  target_pswd: string;
}

export interface SnapRec {
  uuid: string;
  utc_ts: string;
  type: string;
  /** Volume snapshots: the size at snapshot time. */
  size?: number;
  /** App-instance snapshots: the layout at snapshot time (for clone_snapshot_src). */
  layout?: SiSpec[];
}

export interface VolRec {
  name: string;
  uuid: string;
  /** Names the volume's backing file: the uuid the simulator gave it, never one a client sent. */
  backingId: string;
  size: number;
  replica_count: number;
  placement_mode: PlacementMode;
  placement_policy: string;
  performance_policy?: PerformancePolicy;
  snapshot_policies: SnapshotPolicy[];
  snapshots: SnapRec[];
  storage_pool?: unknown;
}

export interface SiRec {
  name: string;
  uuid: string;
  admin_state: 'online' | 'offline';
  access_control_mode: string;
  /** Canonical `/initiators/<iqn>` paths. */
  initiators: string[];
  initiator_groups: string[];
  ip_pool: string;
  auth: AuthRec;
  iqn: string;
  ips: string[];
  service_configuration?: unknown;
  volumes: VolRec[];
  metadata: Json;
}

export interface AiRec {
  id: string;
  name: string;
  uuid: string;
  tenant: string;
  descr: string;
  create_mode: string;
  admin_state: 'online' | 'offline';
  app_template?: { name: string; tenant: string };
  template_override?: unknown;
  clone_src?: string;
  repair_priority?: string;
  snapshot_policies: SnapshotPolicy[];
  snapshots: SnapRec[];
  storage_instances: SiRec[];
  metadata: Json;
}

export interface InitiatorRec {
  id: string;
  name: string;
  tenant: string;
}

/** A volume as asked for: name and size, the other settable fields optional. */
export type VolSpec = Pick<VolRec, 'name' | 'size'> &
  Partial<Pick<VolRec, 'replica_count' | 'placement_mode' | 'placement_policy' | 'performance_policy' | 'snapshot_policies' | 'storage_pool'>>;

/** A storage instance as asked for. */
export type SiSpec = Pick<SiRec, 'name'> &
  Partial<Pick<SiRec, 'admin_state' | 'access_control_mode' | 'initiators' | 'initiator_groups' | 'ip_pool' | 'auth' | 'service_configuration'>> & {
    volumes: VolSpec[];
  };

/** A storage template: the part of a storage instance spec a template may set. */
type StorageTemplateRec = Pick<SiSpec, 'name' | 'ip_pool' | 'auth' | 'service_configuration'> & { volume_templates: VolSpec[] };

export interface TemplateRec {
  name: string;
  descr: string;
  tenant: string;
  snapshot_policies: SnapshotPolicy[];
  storage_templates: StorageTemplateRec[];
}

export interface TenantRec {
  path: string;
  ais: Map<string, AiRec>;
  aiIdByName: Map<string, string>;
  initiators: Map<string, InitiatorRec>;
  templates: Map<string, TemplateRec>;
}

/** A collection answer: the server applies filter, sort and paging to it. */
export class Listing {
  constructor(readonly items: Json[]) {}
}

/** One API call as an operation sees it: the caller's tenant, the route's params, the parsed body. */
export interface OpContext {
  tenant: string;
  params: Record<string, string>;
  body: Json;
  query: URLSearchParams;
}

export function clone<T>(v: T): T {
  return structuredClone(v);
}

/** The name in `<prefix><name>` (one decoded segment), or undefined when the path is not of that shape. */
export function refName(path: string, prefix: string): string | undefined {
  if (!path.startsWith(prefix)) return undefined;
  const rest = path.slice(prefix.length);
  return rest.length > 0 && !rest.includes('/') ? decodeURIComponent(rest) : undefined;
}

/** An auth record from a body or a merge; anything but chap/mchap is "none", missing strings are "". */
export function toAuth(a: Json | undefined): AuthRec {
  const s = (k: string): string => (typeof a?.[k] === 'string' ? (a[k] as string) : '');
  const type = a?.['type'];
  return {
    type: type === 'chap' || type === 'mchap' ? type : 'none',
    initiator_user_name: s('initiator_user_name'),
    initiator_pswd: s('initiator_pswd'),
    target_user_name: s('target_user_name'),
    target_pswd: s('target_pswd'),
  };
}

export function isObject(v: unknown): v is Json {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** The names given more than once. */
export function duplicates(names: string[]): string[] {
  const seen = new Set<string>();
  const dup = new Set<string>();
  for (const n of names) (seen.has(n) ? dup : seen).add(n);
  return [...dup];
}

export function validTenantPath(t: string): boolean {
  return TENANT_PATH.test(t);
}

/** `/root/a/b` -> [`/root/a/b`, `/root/a`, `/root`]: where shared objects are looked up. */
export function tenantChain(t: string): string[] {
  const chain: string[] = [];
  let cur = t;
  while (cur.length >= ROOT_TENANT.length) {
    chain.push(cur);
    if (cur === ROOT_TENANT) break;
    cur = cur.slice(0, cur.lastIndexOf('/'));
  }
  return chain;
}
