// SPDX-License-Identifier: Apache-2.0
// Shapes of the Datera REST API (v2.2) as the provisioner, the node driver and the simulator
// use them. Field names follow the API exactly (snake_case); only what we read or write is typed.

/** `{path}` reference to another Datera object, e.g. `{path: "/app_templates/basic"}`. */
interface PathRef {
  path: string;
  resolved_path?: string;
  resolved_tenant?: string;
}

export type PlacementMode = 'hybrid' | 'single_flash' | 'all_flash';
export type AdminState = 'online' | 'offline';
export type SnapshotInterval = '1min' | '2min' | '15min' | '1hour' | '1day' | '1week' | '1month' | '1year';

/** QoS limits; IOPS are integers 0..10,000,000, bandwidth in KiB/s 0..10,240,000; 0 = unlimited. */
export interface PerformancePolicy {
  total_iops_max?: number;
  read_iops_max?: number;
  write_iops_max?: number;
  total_bandwidth_max?: number;
  read_bandwidth_max?: number;
  write_bandwidth_max?: number;
}

export interface SnapshotPolicy {
  name: string;
  interval: SnapshotInterval;
  retention_count: number;
  start_time?: string;
}

export interface VolumeSpec {
  name: string;
  /** GiB, 1..32768 */
  size: number;
  /** 1..5 */
  replica_count?: number;
  placement_mode?: PlacementMode;
  placement_policy?: PathRef;
  performance_policy?: PerformancePolicy;
  snapshot_policies?: SnapshotPolicy[];
}

interface ChapAuth {
  type: 'none' | 'chap' | 'mchap';
  initiator_user_name?: string;
  initiator_pswd?: string;
  target_user_name?: string;
  target_pswd?: string;
}

export interface StorageInstanceSpec {
  name: string;
  admin_state?: AdminState;
  ip_pool?: PathRef;
  auth?: ChapAuth;
  acl_policy?: { initiators?: PathRef[]; initiator_groups?: PathRef[] };
  volumes?: VolumeSpec[];
}

/** Body of `POST /app_instances`. Either explicit storage_instances or an app_template reference. */
export interface AppInstanceCreate {
  name: string;
  descr?: string;
  /** Who created it: 'kubernetes' from this provisioner, 'normal' by default; the API knows a few more. */
  create_mode?: string;
  access_control_mode?: 'allow_all' | 'deny_all';
  storage_instances?: StorageInstanceSpec[];
  app_template?: PathRef;
  /** `{storage_instances: {<si>: {volumes: {<vol>: {size: "20"}}}}}`; sizes as strings (v2.2). */
  template_override?: Record<string, unknown>;
  snapshot_policies?: SnapshotPolicy[];
  clone_src?: PathRef;
  clone_volume_src?: PathRef;
  clone_snapshot_src?: PathRef;
}

export interface Volume extends VolumeSpec {
  path: string;
  uuid: string;
  op_state: string;
  capacity_in_use?: number;
  snapshots?: unknown[];
}

export interface StorageInstance {
  path: string;
  name: string;
  uuid: string;
  admin_state: AdminState;
  op_state: 'available' | 'unavailable' | 'failed';
  access: { path: string; iqn: string; ips: string[] };
  acl_policy: { path?: string; initiators: PathRef[]; initiator_groups: PathRef[] };
  ip_pool: PathRef;
  auth: ChapAuth & { path?: string };
  active_initiators: string[];
  volumes: Volume[];
}

export interface AppInstance {
  path: string;
  id: string;
  name: string;
  uuid?: string;
  tenant: string;
  descr?: string;
  create_mode: string;
  admin_state: AdminState;
  health: string;
  deployment_state?: string;
  app_template: PathRef;
  storage_instances: StorageInstance[];
  snapshot_policies?: SnapshotPolicy[];
}

/** An entry of `GET /tenants`: `path` is "/tenants/root/<name>", `parent_path` the parent's tenant path ("" for /root). */
export interface Tenant {
  path: string;
  name: string;
  parent_path?: string;
}

export interface Initiator {
  path: string;
  id: string;
  name: string;
  tenant?: string;
}

interface VolumeTemplate {
  name: string;
  size: number;
  replica_count?: number;
  placement_mode?: PlacementMode;
  placement_policy?: PathRef;
  performance_policy?: PerformancePolicy;
}

interface StorageTemplate {
  name: string;
  ip_pool?: PathRef | string;
  volume_templates: VolumeTemplate[];
}

export interface AppTemplate {
  path?: string;
  name: string;
  descr?: string;
  storage_templates: StorageTemplate[];
  snapshot_policies?: SnapshotPolicy[];
}

export interface SystemInfo {
  name: string;
  uuid: string;
  sw_version: string;
  op_state: string;
  health: string;
  total_capacity: number;
  available_capacity: number;
  total_provisioned_capacity?: number;
}

/** One page of a collection, with the envelope's metadata. */
export interface Page<T> {
  data: T[];
  total: number;
  offset: number;
  limit: number;
}

export interface ListOptions {
  limit?: number;
  offset?: number;
  /** RQL filter, e.g. `name=pvc-123`. */
  filter?: string;
  /** Deadline/cancellation for the whole call including retries. */
  signal?: AbortSignal;
}

export interface CallOptions {
  signal?: AbortSignal;
}

/**
 * The operations the provisioner and the node driver need. `DateraClient` implements it over
 * HTTP; tests may substitute anything with the same shape. Every method either resolves or
 * rejects with a `DateraError` subclass (see errors.ts).
 */
export interface DateraApi {
  /** Idempotent: a 409 after a lost response resolves to the existing object (caller checks ownership). */
  createAppInstance(body: AppInstanceCreate, opts?: CallOptions): Promise<AppInstance>;
  getAppInstance(nameOrId: string, opts?: CallOptions): Promise<AppInstance>;
  /** One page (limit/offset) or, with no limit/offset given, every page. */
  listAppInstances(opts?: ListOptions): Promise<Page<AppInstance>>;
  setAdminState(nameOrId: string, state: AdminState, force?: boolean, opts?: CallOptions): Promise<AppInstance>;
  /** Rejects with NotFoundError when absent: callers that want "gone" semantics catch it. */
  deleteAppInstance(nameOrId: string, force?: boolean, opts?: CallOptions): Promise<void>;
  resizeVolume(ai: string, si: string, vol: string, sizeGiB: number, opts?: CallOptions): Promise<Volume>;
  /** Sets the volume's performance policy to exactly `policy` (0/absent keys unlimited; {} removes it). */
  setPerformancePolicy(ai: string, si: string, vol: string, policy: PerformancePolicy, opts?: CallOptions): Promise<void>;
  getMetadata(ai: string, opts?: CallOptions): Promise<Record<string, string>>;
  putMetadata(ai: string, md: Record<string, string>, opts?: CallOptions): Promise<Record<string, string>>;
  /** Creates the initiator (force=true overrides the tenant warning); 409 resolves to the existing one. */
  createInitiator(iqn: string, name: string, force?: boolean, opts?: CallOptions): Promise<Initiator>;
  getInitiator(iqn: string, opts?: CallOptions): Promise<Initiator>;
  /** Adds an initiator to the SI ACL; already present counts as success. */
  addAclInitiator(ai: string, si: string, iqn: string, opts?: CallOptions): Promise<void>;
  /** Removes an initiator from the SI ACL; absent counts as success. */
  removeAclInitiator(ai: string, si: string, iqn: string, opts?: CallOptions): Promise<void>;
  listAppTemplates(opts?: ListOptions): Promise<Page<AppTemplate>>;
  getAppTemplate(name: string, opts?: CallOptions): Promise<AppTemplate>;
  getSystem(opts?: CallOptions): Promise<SystemInfo>;
}
