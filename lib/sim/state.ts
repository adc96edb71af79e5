// SPDX-License-Identifier: Apache-2.0
// In-memory state of the simulated cluster and the operations on it.
//
// Records are kept in the simulator's own shape (passwords in clear, references by name) and
// rendered into the API's shape on every read, so a response never aliases state and never
// shows a password. Every operation is synchronous: the HTTP layer awaits only for latency
// injection and body reading, so two requests never interleave inside one operation and a
// duplicate-name check followed by an insert is atomic.
//
// Decisions where the real cluster's behaviour is unknown are marked DECISION and listed in
// lib/sim/README.md.
import { randomBytes, randomUUID } from 'node:crypto';
import type {
  AppInstance,
  AppTemplate,
  PerformancePolicy,
  PlacementMode,
  SnapshotPolicy,
  StorageInstance,
  Volume,
} from '../datera/types.js';
import type { BackingStore } from './backing.js';
import { CODE_DUPLICATE_SNAPSHOT_UUID, SimError, conflict, invalid, notFound, validationFailed } from './errors.js';
import { bodySchema } from './schemas.js';
import { type SchemaNode, show, validate } from './validate.js';

export const ROOT_TENANT = '/root';
const ZERO_UUID = '00000000-0000-0000-0000-000000000000';
const GiB = 1024 ** 3;
const DEFAULT_REPLICAS = 3;
const DEFAULT_PLACEMENT_MODE: PlacementMode = 'hybrid';
const DEFAULT_PLACEMENT_POLICY = 'default';
const DEFAULT_IP_POOL = 'default';
const HIDDEN = '(hidden)';
const TENANT_PATH = /^\/root(\/[A-Za-z0-9_.-]+)*$/;

export interface StateOptions {
  capacityGiB: number;
  requireOfflineForDelete: boolean;
  iqnPrefix: string;
  accessIps: [string, string];
  /** Keeps a sparse file per volume (see backing.ts); without it nothing is written anywhere. */
  backing?: BackingStore;
}

type Json = Record<string, unknown>;

interface AuthRec {
  type: 'none' | 'chap' | 'mchap';
  initiator_user_name: string;
  initiator_pswd: string;
  target_user_name: string;
  target_pswd: string;
}

interface SnapRec {
  uuid: string;
  utc_ts: string;
  type: string;
  /** Volume snapshots: the size at snapshot time. */
  size?: number;
  /** App-instance snapshots: the layout at snapshot time (for clone_snapshot_src). */
  layout?: SiSpec[];
}

interface VolRec {
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

interface SiRec {
  name: string;
  uuid: string;
  admin_state: 'online' | 'offline';
  access_control_mode: string;
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

interface AiRec {
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

interface InitiatorRec {
  id: string;
  name: string;
  tenant: string;
}

/**
 * One iSCSI session as the target sees it: an initiator logged in to a storage instance's target
 * through one portal. Fed by the out-of-process `/_sim/iscsi/*` controls (a fake or stand-in
 * iscsiadm on a test node); the API shows them as the storage instance's `active_initiators`.
 */
export interface IscsiSession {
  /** Target IQN (`access.iqn` of the storage instance). */
  target: string;
  /** Initiator IQN (or EUI) of the node that logged in. */
  initiator: string;
  /** `ip:port` the node logged in through, or "" when the caller did not say. */
  portal: string;
  /** ISO time of the login. */
  since: string;
}

/** A LUN of a target whose volume has a backing file (SimOptions.backingDir). */
export interface IscsiLun {
  /** LUN number: the volume's position in its storage instance (Datera exports volume i as LUN i). */
  lun: number;
  volume: string;
  /** The volume's uuid as the API shows it. */
  uuid: string;
  size: number;
  /** Absolute path of the sparse backing file. */
  path: string;
}

const INITIATOR_ID = /^(iqn\.\d{4}-\d{2}\.\S+|eui\.[0-9A-Fa-f]{16})$/;

interface VolSpec {
  name: string;
  size: number;
  replica_count?: number;
  placement_mode?: PlacementMode;
  placement_policy?: string;
  performance_policy?: PerformancePolicy;
  snapshot_policies?: SnapshotPolicy[];
  storage_pool?: unknown;
}

interface SiSpec {
  name: string;
  admin_state?: 'online' | 'offline';
  access_control_mode?: string;
  initiators?: string[];
  initiator_groups?: string[];
  ip_pool?: string;
  auth?: AuthRec;
  service_configuration?: unknown;
  volumes: VolSpec[];
}

interface TemplateRec {
  name: string;
  descr: string;
  tenant: string;
  snapshot_policies: SnapshotPolicy[];
  storage_templates: Array<{
    name: string;
    ip_pool?: string;
    auth?: AuthRec;
    service_configuration?: unknown;
    volume_templates: VolSpec[];
  }>;
}

interface TenantRec {
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

export interface OpContext {
  tenant: string;
  params: Record<string, string>;
  body: Json;
  query: URLSearchParams;
}

// ---------------------------------------------------------------------------------------------
// helpers

function clone<T>(v: T): T {
  return structuredClone(v);
}

function refName(path: string, prefix: string): string | undefined {
  if (!path.startsWith(prefix)) return undefined;
  const rest = path.slice(prefix.length);
  return rest.length > 0 && !rest.includes('/') ? decodeURIComponent(rest) : undefined;
}

function resolved(path: string, tenant: string): { path: string; resolved_path: string; resolved_tenant: string } {
  return { path, resolved_path: path, resolved_tenant: tenant };
}

function toAuth(a: Json | undefined): AuthRec {
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

function isObject(v: unknown): v is Json {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function duplicates(names: string[]): string[] {
  const seen = new Set<string>();
  const dup = new Set<string>();
  for (const n of names) (seen.has(n) ? dup : seen).add(n);
  return [...dup];
}

let lastSnapNs = 0n;
/** Snapshot ids as the cluster writes them: "<seconds>.<nanoseconds>", unique and increasing. */
function snapshotTimestamp(): string {
  let ns = BigInt(Date.now()) * 1_000_000n;
  if (ns <= lastSnapNs) ns = lastSnapNs + 1n;
  lastSnapNs = ns;
  return `${ns / 1_000_000_000n}.${String(ns % 1_000_000_000n).padStart(9, '0')}`;
}

export function validTenantPath(t: string): boolean {
  return TENANT_PATH.test(t);
}

/** `/root/a/b` -> [`/root/a/b`, `/root/a`, `/root`]: where shared objects are looked up. */
function tenantChain(t: string): string[] {
  const chain: string[] = [];
  let cur = t;
  while (cur.length >= ROOT_TENANT.length) {
    chain.push(cur);
    if (cur === ROOT_TENANT) break;
    cur = cur.slice(0, cur.lastIndexOf('/'));
  }
  return chain;
}

const METADATA_SCHEMA: SchemaNode = {
  type: 'object',
  additionalProperties: { type: ['string', 'number', 'boolean', 'null'] },
};

// ---------------------------------------------------------------------------------------------

export class SimState {
  private tenants = new Map<string, TenantRec>();
  private readonly ipPools = new Map<string, string>([[DEFAULT_IP_POOL, 'Default access network IP pool']]);
  private readonly placementPolicies = new Set<string>([DEFAULT_PLACEMENT_POLICY, 'all-flash', 'hybrid', 'single-flash']);
  private readonly storageNodes: string[] = Array.from({ length: 5 }, () => randomUUID());
  readonly systemUuid = randomUUID();
  private readonly bootedAt = Date.now();
  /** Live iSCSI sessions, oldest first (see IscsiSession). */
  private sessions: IscsiSession[] = [];

  constructor(private readonly opts: StateOptions) {
    this.tenant(ROOT_TENANT);
  }

  // -------------------------------------------------------------------------- tenants, reset

  tenant(path: string): TenantRec {
    let t = this.tenants.get(path);
    if (!t) {
      t = { path, ais: new Map(), aiIdByName: new Map(), initiators: new Map(), templates: new Map() };
      this.tenants.set(path, t);
    }
    return t;
  }

  tenantPaths(): string[] {
    return [...this.tenants.keys()].sort();
  }

  /** Drops app instances and initiators everywhere; keeps tenants, templates, pools, policies. */
  reset(): void {
    for (const t of this.tenants.values()) {
      for (const ai of t.ais.values()) this.removeBacking(ai.storage_instances);
      t.ais.clear();
      t.aiIdByName.clear();
      t.initiators.clear();
    }
    this.sessions = [];
  }

  addIpPool(name: string): void {
    if (!this.ipPools.has(name)) this.ipPools.set(name, `Access network IP pool ${name}`);
  }

  addPlacementPolicy(name: string): void {
    this.placementPolicies.add(name);
  }

  /** Seeds a template into /root (seed file, SimOptions.templates); pools/policies it names are created. */
  seedTemplate(t: AppTemplate): void {
    const body = templateCreateBody(t);
    for (const st of body.storage_templates ?? []) {
      const pool = typeof st.ip_pool === 'string' ? st.ip_pool : st.ip_pool?.path;
      const poolName = pool ? refName(pool, '/access_network_ip_pools/') : undefined;
      if (poolName) this.addIpPool(poolName);
      for (const vt of st.volume_templates ?? []) {
        const pp = vt.placement_policy?.path ? refName(vt.placement_policy.path, '/placement_policies/') : undefined;
        if (pp) this.addPlacementPolicy(pp);
      }
    }
    const errors = validate(bodySchema('/app_templates', 'create'), body);
    if (errors.length > 0) throw new Error(`app template ${JSON.stringify(t.name)}: ${errors.join('; ')}`);
    const rec = this.templateFromBody(body as unknown as Json, ROOT_TENANT);
    this.tenant(ROOT_TENANT).templates.set(rec.name, rec);
  }

  // -------------------------------------------------------------------------- lookups

  private findAi(t: TenantRec, idOrName: string): AiRec {
    const ai = t.ais.get(idOrName) ?? t.ais.get(t.aiIdByName.get(idOrName) ?? '');
    if (!ai) throw notFound(`App instance ${idOrName}`);
    return ai;
  }

  private findSi(ai: AiRec, name: string): SiRec {
    const si = ai.storage_instances.find((s) => s.name === name || s.uuid === name);
    if (!si) throw notFound(`Storage instance ${name} of app instance ${ai.name}`);
    return si;
  }

  private findVol(si: SiRec, name: string): VolRec {
    const v = si.volumes.find((x) => x.name === name || x.uuid === name);
    if (!v) throw notFound(`Volume ${name} of storage instance ${si.name}`);
    return v;
  }

  private findTemplate(tenant: string, name: string): TemplateRec | undefined {
    for (const t of tenantChain(tenant)) {
      const tpl = this.tenants.get(t)?.templates.get(name);
      if (tpl) return tpl;
    }
    return undefined;
  }

  private findInitiator(tenant: string, iqn: string): InitiatorRec | undefined {
    for (const t of tenantChain(tenant)) {
      const i = this.tenants.get(t)?.initiators.get(iqn);
      if (i) return i;
    }
    return undefined;
  }

  private aiCtx(ctx: OpContext): { t: TenantRec; ai: AiRec } {
    const t = this.tenant(ctx.tenant);
    return { t, ai: this.findAi(t, ctx.params['id'] ?? ctx.params['ai_id'] ?? '') };
  }

  private siCtx(ctx: OpContext): { t: TenantRec; ai: AiRec; si: SiRec } {
    const { t, ai } = this.aiCtx(ctx);
    return { t, ai, si: this.findSi(ai, ctx.params['storage_instance_name'] ?? ctx.params['si_id'] ?? '') };
  }

  private volCtx(ctx: OpContext): { t: TenantRec; ai: AiRec; si: SiRec; vol: VolRec } {
    const { t, ai, si } = this.siCtx(ctx);
    return { t, ai, si, vol: this.findVol(si, ctx.params['volume_name'] ?? '') };
  }

  // -------------------------------------------------------------------------- capacity

  /** Raw GiB in use: size × replica_count over every volume of every tenant. */
  usedRawGiB(): number {
    let used = 0;
    for (const t of this.tenants.values())
      for (const ai of t.ais.values())
        for (const si of ai.storage_instances) for (const v of si.volumes) used += v.size * v.replica_count;
    return used;
  }

  /** DECISION: over capacity is 400 InvalidRequestError (final for clients, as on a full cluster). */
  private requireCapacity(extraRawGiB: number, what: string): void {
    if (extraRawGiB <= 0) return;
    const used = this.usedRawGiB();
    if (used + extraRawGiB > this.opts.capacityGiB) {
      throw invalid(
        `Insufficient capacity for ${what}: needs ${extraRawGiB} GiB raw (size x replica_count), ` +
          `${Math.max(0, this.opts.capacityGiB - used)} GiB of ${this.opts.capacityGiB} GiB available`,
      );
    }
  }

  // -------------------------------------------------------------------------- reference checks

  /** DECISION: references to missing objects in a body are 422 ValidationFailedError naming the field. */
  private poolFromRef(ref: unknown, field: string, errors: string[]): string | undefined {
    if (ref === undefined) return undefined;
    const path = typeof ref === 'string' ? ref : isObject(ref) ? ref['path'] : undefined;
    if (typeof path !== 'string') return undefined; // the schema check reports the shape
    const name = refName(path, '/access_network_ip_pools/');
    if (!name || !this.ipPools.has(name)) {
      errors.push(`${field}: access network IP pool ${show(path)} does not exist`);
      return undefined;
    }
    return name;
  }

  private policyFromRef(ref: unknown, field: string, errors: string[]): string | undefined {
    if (!isObject(ref) || typeof ref['path'] !== 'string') return undefined;
    const name = refName(ref['path'], '/placement_policies/');
    if (!name || !this.placementPolicies.has(name)) {
      errors.push(`${field}: placement policy ${show(ref['path'])} does not exist`);
      return undefined;
    }
    return name;
  }

  private initiatorPaths(refs: unknown, tenant: string, field: string, errors: string[]): string[] {
    if (!Array.isArray(refs)) return [];
    const out: string[] = [];
    refs.forEach((r, i) => {
      const path = isObject(r) ? r['path'] : undefined;
      if (typeof path !== 'string') return;
      const iqn = refName(path, '/initiators/');
      if (!iqn || !this.findInitiator(tenant, iqn)) {
        errors.push(`${field}[${i}].path: initiator ${show(path)} does not exist`);
        return;
      }
      const canonical = `/initiators/${iqn}`;
      if (!out.includes(canonical)) out.push(canonical);
    });
    return out;
  }

  private groupPaths(refs: unknown, field: string, errors: string[]): string[] {
    if (!Array.isArray(refs)) return [];
    const out: string[] = [];
    refs.forEach((r, i) => {
      const path = isObject(r) ? r['path'] : undefined;
      if (typeof path !== 'string') return;
      if (!refName(path, '/initiator_groups/')) errors.push(`${field}[${i}].path: ${show(path)} is not an initiator group path`);
      else if (!out.includes(path)) out.push(path);
    });
    return out;
  }

  // -------------------------------------------------------------------------- spec building

  private volSpecFromBody(v: Json, field: string, errors: string[]): VolSpec {
    return {
      name: v['name'] as string,
      size: v['size'] as number,
      replica_count: v['replica_count'] as number | undefined,
      placement_mode: v['placement_mode'] as PlacementMode | undefined,
      placement_policy: this.policyFromRef(v['placement_policy'], `${field}.placement_policy`, errors),
      performance_policy: isObject(v['performance_policy']) ? clone(v['performance_policy']) : undefined,
      snapshot_policies: Array.isArray(v['snapshot_policies']) ? clone(v['snapshot_policies'] as SnapshotPolicy[]) : undefined,
      storage_pool: v['storage_pool'],
    };
  }

  private siSpecFromBody(s: Json, tenant: string, field: string, errors: string[]): SiSpec {
    const vols = Array.isArray(s['volumes']) ? (s['volumes'] as Json[]) : [];
    for (const d of duplicates(vols.map((v) => v['name'] as string))) {
      errors.push(`${field}.volumes: duplicate volume name ${show(d)}`);
    }
    const acl = isObject(s['acl_policy']) ? s['acl_policy'] : {};
    return {
      name: s['name'] as string,
      admin_state: s['admin_state'] as 'online' | 'offline' | undefined,
      access_control_mode: s['access_control_mode'] as string | undefined,
      initiators: this.initiatorPaths(acl['initiators'], tenant, `${field}.acl_policy.initiators`, errors),
      initiator_groups: this.groupPaths(acl['initiator_groups'], `${field}.acl_policy.initiator_groups`, errors),
      ip_pool: this.poolFromRef(s['ip_pool'], `${field}.ip_pool`, errors),
      auth: isObject(s['auth']) ? toAuth(s['auth']) : undefined,
      service_configuration: s['service_configuration'],
      volumes: vols.map((v, i) => this.volSpecFromBody(v, `${field}.volumes[${i}]`, errors)),
    };
  }

  private specsFromTemplate(tpl: TemplateRec, override: unknown, errors: string[]): SiSpec[] {
    const specs: SiSpec[] = tpl.storage_templates.map((st) => ({
      name: st.name,
      ip_pool: st.ip_pool,
      auth: st.auth ? clone(st.auth) : undefined,
      service_configuration: st.service_configuration,
      volumes: st.volume_templates.map((vt) => clone(vt)),
    }));
    if (override !== undefined) this.applyOverride(tpl, specs, override, errors);
    return specs;
  }

  /**
   * template_override (v2.2): `{storage_instances: {<si>: {ip_pool?, volumes: {<vol>: {size: "20", ...}}}}}`.
   * Numbers may come as strings (CSI and Cinder send the size as a string). DECISION: volume keys
   * size, replica_count, placement_mode, placement_policy, performance_policy and SI key ip_pool
   * may be overridden; other keys and names the template lacks are 422.
   */
  private applyOverride(tpl: TemplateRec, specs: SiSpec[], override: unknown, errors: string[]): void {
    const base = 'template_override';
    if (!isObject(override)) {
      errors.push(`${base}: must be an object`);
      return;
    }
    for (const k of Object.keys(override)) if (k !== 'storage_instances') errors.push(`${base}.${k}: is not an allowed property`);
    const sis = override['storage_instances'];
    if (sis === undefined) return;
    if (!isObject(sis)) {
      errors.push(`${base}.storage_instances: must be an object keyed by storage instance name`);
      return;
    }
    const volSchema = bodySchema('/app_instances', 'create')?.properties?.['storage_instances']?.items?.properties?.['volumes']
      ?.items?.properties;
    for (const [siName, siOv] of Object.entries(sis)) {
      const siField = `${base}.storage_instances.${siName}`;
      const spec = specs.find((s) => s.name === siName);
      if (!spec) {
        errors.push(`${siField}: app template ${show(tpl.name)} has no storage template named ${show(siName)}`);
        continue;
      }
      if (!isObject(siOv)) {
        errors.push(`${siField}: must be an object`);
        continue;
      }
      for (const [k, val] of Object.entries(siOv)) {
        if (k === 'ip_pool') {
          const pool = this.poolFromRef(val, `${siField}.ip_pool`, errors);
          if (pool) spec.ip_pool = pool;
        } else if (k !== 'volumes') errors.push(`${siField}.${k}: is not an allowed property`);
      }
      const vols = siOv['volumes'];
      if (vols === undefined) continue;
      if (!isObject(vols)) {
        errors.push(`${siField}.volumes: must be an object keyed by volume name`);
        continue;
      }
      for (const [volName, volOv] of Object.entries(vols)) {
        const volField = `${siField}.volumes.${volName}`;
        const vol = spec.volumes.find((v) => v.name === volName);
        if (!vol) {
          errors.push(`${volField}: storage template ${show(siName)} has no volume template named ${show(volName)}`);
          continue;
        }
        if (!isObject(volOv)) {
          errors.push(`${volField}: must be an object`);
          continue;
        }
        for (const [k, raw] of Object.entries(volOv)) {
          const field = `${volField}.${k}`;
          const val = (k === 'size' || k === 'replica_count') && typeof raw === 'string' && /^\d+(\.\d+)?$/.test(raw) ? Number(raw) : raw;
          if (k === 'placement_policy') {
            const errs = validate({ type: 'object', properties: { path: { type: 'string' } }, required: ['path'] }, val, field);
            if (errs.length) errors.push(...errs);
            else {
              const p = this.policyFromRef(val, field, errors);
              if (p) vol.placement_policy = p;
            }
            continue;
          }
          if (!['size', 'replica_count', 'placement_mode', 'performance_policy'].includes(k) || !volSchema?.[k]) {
            errors.push(`${field}: is not an allowed property`);
            continue;
          }
          const errs = validate(volSchema[k], val, field);
          if (errs.length) {
            errors.push(...errs);
            continue;
          }
          if (k === 'size') vol.size = val as number;
          else if (k === 'replica_count') vol.replica_count = val as number;
          else if (k === 'placement_mode') vol.placement_mode = val as PlacementMode;
          else vol.performance_policy = clone(val as PerformancePolicy);
        }
      }
    }
  }

  private specsFromAi(ai: AiRec): SiSpec[] {
    return ai.storage_instances.map((si) => ({
      name: si.name,
      access_control_mode: si.access_control_mode,
      ip_pool: si.ip_pool,
      auth: clone(si.auth),
      service_configuration: si.service_configuration,
      volumes: si.volumes.map((v) => this.specFromVol(v)),
    }));
  }

  private specFromVol(v: VolRec, size = v.size): VolSpec {
    return {
      name: v.name,
      size,
      replica_count: v.replica_count,
      placement_mode: v.placement_mode,
      placement_policy: v.placement_policy,
      performance_policy: v.performance_policy ? clone(v.performance_policy) : undefined,
    };
  }

  /** Resolves `/app_instances/<ai>[/storage_instances/<si>/volumes/<vol>][/snapshots/<ts>]` in a tenant. */
  private resolveAppPath(
    t: TenantRec,
    path: string,
  ): { ai: AiRec; si?: SiRec; vol?: VolRec; snap?: SnapRec; kind: 'ai' | 'volume' | 'snapshot' | 'ai_snapshot' } | undefined {
    const seg = path.split('/').slice(1).map(decodeURIComponent);
    if (seg[0] !== 'app_instances' || !seg[1]) return undefined;
    const ai = t.ais.get(seg[1]) ?? t.ais.get(t.aiIdByName.get(seg[1]) ?? '');
    if (!ai) return undefined;
    if (seg.length === 2) return { ai, kind: 'ai' };
    if (seg.length === 4 && seg[2] === 'snapshots') {
      const snap = ai.snapshots.find((s) => s.utc_ts === seg[3] || s.uuid === seg[3]);
      return snap ? { ai, snap, kind: 'ai_snapshot' } : undefined;
    }
    if (seg[2] !== 'storage_instances' || seg[4] !== 'volumes' || !seg[3] || !seg[5]) return undefined;
    const si = ai.storage_instances.find((s) => s.name === seg[3]);
    const vol = si?.volumes.find((v) => v.name === seg[5]);
    if (!si || !vol) return undefined;
    if (seg.length === 6) return { ai, si, vol, kind: 'volume' };
    if (seg.length === 8 && seg[6] === 'snapshots') {
      const snap = vol.snapshots.find((s) => s.utc_ts === seg[7] || s.uuid === seg[7]);
      return snap ? { ai, si, vol, snap, kind: 'snapshot' } : undefined;
    }
    return undefined;
  }

  private rawGiB(specs: SiSpec[]): number {
    return specs.reduce((a, s) => a + s.volumes.reduce((b, v) => b + v.size * (v.replica_count ?? DEFAULT_REPLICAS), 0), 0);
  }

  private newVol(spec: VolSpec): VolRec {
    const id = randomUUID();
    return {
      name: spec.name,
      uuid: id,
      backingId: id,
      size: spec.size,
      replica_count: spec.replica_count ?? DEFAULT_REPLICAS,
      placement_mode: spec.placement_mode ?? DEFAULT_PLACEMENT_MODE,
      placement_policy: spec.placement_policy ?? DEFAULT_PLACEMENT_POLICY,
      performance_policy: spec.performance_policy,
      snapshot_policies: spec.snapshot_policies ?? [],
      snapshots: [],
      storage_pool: spec.storage_pool,
    };
  }

  private newSi(spec: SiSpec, defaults: { access_control_mode: string }): SiRec {
    return {
      name: spec.name,
      uuid: randomUUID(),
      admin_state: spec.admin_state ?? 'online',
      access_control_mode: spec.access_control_mode ?? defaults.access_control_mode,
      initiators: spec.initiators ?? [],
      initiator_groups: spec.initiator_groups ?? [],
      ip_pool: spec.ip_pool ?? DEFAULT_IP_POOL,
      auth: spec.auth ?? toAuth(undefined),
      iqn: `${this.opts.iqnPrefix}${randomBytes(8).toString('hex')}`,
      ips: [...this.opts.accessIps],
      service_configuration: spec.service_configuration,
      volumes: spec.volumes.map((v) => this.newVol(v)),
      metadata: {},
    };
  }

  // -------------------------------------------------------------------------- rendering

  private renderVol(ai: AiRec, si: SiRec, v: VolRec): Volume & Json {
    const path = `/app_instances/${ai.id}/storage_instances/${si.name}/volumes/${v.name}`;
    const out: Json = {
      path,
      name: v.name,
      uuid: v.uuid,
      size: v.size,
      replica_count: v.replica_count,
      capacity_in_use: 0,
      placement_mode: v.placement_mode,
      placement_policy: resolved(`/placement_policies/${v.placement_policy}`, ROOT_TENANT),
      op_state: 'available',
      op_status: '',
      availability_state: 'available',
      deployment_state: 'deployed',
      health: 'ok',
      causes: [],
      active_storage_nodes: this.storageNodes.slice(0, v.replica_count).map((u) => ({ path: `/storage_nodes/${u}` })),
      snapshot_policies: v.snapshot_policies.map((p) => ({ ...clone(p), path: `${path}/snapshot_policies/${p.name}` })),
      snapshots: v.snapshots.map((s) => this.renderSnap(`${path}/snapshots`, s)),
      logical_size: v.size,
      effective_size: v.size,
      exclusive_size: 0,
      physical_size: 0,
    };
    if (v.performance_policy) out['performance_policy'] = { ...clone(v.performance_policy), path: `${path}/performance_policy` };
    if (v.storage_pool !== undefined) out['storage_pool'] = clone(v.storage_pool);
    return out as unknown as Volume & Json;
  }

  private renderSnap(base: string, s: SnapRec): Json {
    return {
      path: `${base}/${s.utc_ts}`,
      uuid: s.uuid,
      timestamp: s.utc_ts,
      utc_ts: s.utc_ts,
      op_state: 'available',
      type: s.type,
      local: true,
      remote_providers: [],
    };
  }

  private renderSi(ai: AiRec, si: SiRec): StorageInstance & Json {
    const path = `/app_instances/${ai.id}/storage_instances/${si.name}`;
    const out: Json = {
      path,
      name: si.name,
      uuid: si.uuid,
      health: 'ok',
      causes: [],
      admin_state: si.admin_state,
      // DECISION: an offline SI reads op_state "unavailable"; online reads "available" at once.
      op_state: si.admin_state === 'online' ? 'available' : 'unavailable',
      deployment_state: 'deployed',
      access_control_mode: si.access_control_mode,
      acl_policy: {
        path: `${path}/acl_policy`,
        initiators: si.initiators.map((p) => ({ path: p })),
        initiator_groups: si.initiator_groups.map((p) => ({ path: p })),
      },
      ip_pool: resolved(`/access_network_ip_pools/${si.ip_pool}`, ROOT_TENANT),
      access: { path: `${path}/access`, ips: [...si.ips], iqn: si.iqn },
      auth: this.renderAuth(`${path}/auth`, si.auth),
      active_initiators: [...new Set(this.sessions.filter((x) => x.target === si.iqn).map((x) => x.initiator))],
      active_storage_nodes: this.storageNodes.slice(0, 3).map((u) => ({ path: `/storage_nodes/${u}` })),
      volumes: si.volumes.map((v) => this.renderVol(ai, si, v)),
    };
    if (si.service_configuration !== undefined) out['service_configuration'] = clone(si.service_configuration);
    return out as unknown as StorageInstance & Json;
  }

  private renderAuth(path: string, a: AuthRec): Json {
    return {
      path,
      type: a.type,
      initiator_user_name: a.initiator_user_name,
      initiator_pswd: HIDDEN,
      target_user_name: a.target_user_name,
      target_pswd: HIDDEN,
    };
  }

  private renderAi(ai: AiRec): AppInstance & Json {
    const path = `/app_instances/${ai.id}`;
    const tpl = ai.app_template;
    const out: Json = {
      path,
      tenant: ai.tenant,
      name: ai.name,
      id: ai.id,
      uuid: ai.uuid,
      descr: ai.descr,
      create_mode: ai.create_mode,
      admin_state: ai.admin_state,
      health: 'ok',
      causes: [],
      deployment_state: 'deployed',
      app_template: tpl
        ? resolved(`/app_templates/${tpl.name}`, tpl.tenant)
        : { path: '', resolved_path: '', resolved_tenant: '' },
      storage_instances: ai.storage_instances.map((si) => this.renderSi(ai, si)),
      snapshots: ai.snapshots.map((s) => this.renderSnap(`${path}/snapshots`, s)),
      snapshot_policies: ai.snapshot_policies.map((p) => ({ ...clone(p), path: `${path}/snapshot_policies/${p.name}` })),
      restore_point: '',
      repair_priority: ai.repair_priority ?? 'medium',
    };
    if (ai.template_override !== undefined) out['template_override'] = clone(ai.template_override);
    if (ai.clone_src) out['clone_src'] = { path: ai.clone_src };
    return out as unknown as AppInstance & Json;
  }

  private renderTemplate(t: TemplateRec): AppTemplate & Json {
    const path = `/app_templates/${t.name}`;
    const users: Json[] = [];
    for (const ten of this.tenants.values())
      for (const ai of ten.ais.values())
        if (ai.app_template?.name === t.name && ai.app_template.tenant === t.tenant) users.push({ path: `/app_instances/${ai.id}` });
    return {
      path,
      name: t.name,
      descr: t.descr,
      tenant: t.tenant,
      snapshot_policies: t.snapshot_policies.map((p) => ({ ...clone(p), path: `${path}/snapshot_policies/${p.name}` })),
      storage_templates: t.storage_templates.map((st) => {
        const stPath = `${path}/storage_templates/${st.name}`;
        return {
          path: stPath,
          name: st.name,
          ip_pool: resolved(`/access_network_ip_pools/${st.ip_pool ?? DEFAULT_IP_POOL}`, ROOT_TENANT),
          auth: this.renderAuth(`${stPath}/auth`, st.auth ?? toAuth(undefined)),
          volume_templates: st.volume_templates.map((vt) => {
            const vtPath = `${stPath}/volume_templates/${vt.name}`;
            const v: Json = {
              path: vtPath,
              name: vt.name,
              size: vt.size,
              replica_count: vt.replica_count ?? DEFAULT_REPLICAS,
              placement_mode: vt.placement_mode ?? DEFAULT_PLACEMENT_MODE,
              placement_policy: resolved(`/placement_policies/${vt.placement_policy ?? DEFAULT_PLACEMENT_POLICY}`, ROOT_TENANT),
              snapshot_policies: clone(vt.snapshot_policies ?? []),
            };
            if (vt.performance_policy) v['performance_policy'] = { ...clone(vt.performance_policy), path: `${vtPath}/performance_policy` };
            return v;
          }),
        };
      }),
      app_instances: users,
    } as unknown as AppTemplate & Json;
  }

  private renderInitiator(i: InitiatorRec): Json {
    return { path: `/initiators/${i.id}`, id: i.id, name: i.name, tenant: i.tenant };
  }

  /** Deep copies of the app instances of one tenant, or of every tenant. */
  appInstances(tenant?: string): AppInstance[] {
    const tenants = tenant === undefined ? [...this.tenants.values()] : [this.tenants.get(tenant)].filter((t) => t !== undefined);
    return tenants.flatMap((t) => [...t.ais.values()].map((ai) => this.renderAi(ai)));
  }

  // ============================================================================ app instances

  listAppInstances(ctx: OpContext): Listing {
    return new Listing([...this.tenant(ctx.tenant).ais.values()].map((ai) => this.renderAi(ai)));
  }

  getAppInstance(ctx: OpContext): Json {
    return this.renderAi(this.aiCtx(ctx).ai);
  }

  createAppInstance(ctx: OpContext): Json {
    const t = this.tenant(ctx.tenant);
    const b = ctx.body;
    const name = b['name'] as string;
    if (t.aiIdByName.has(name) || t.ais.has(name)) throw conflict(`App instance ${name}`);

    const sources = ['storage_instances', 'app_template', 'clone_src', 'clone_volume_src', 'clone_snapshot_src'].filter(
      (k) => b[k] !== undefined,
    );
    if (sources.length > 1) throw invalid(`Only one of ${sources.join(', ')} may be given`);
    if (b['template_override'] !== undefined && b['app_template'] === undefined) {
      throw invalid('template_override requires app_template');
    }

    const errors: string[] = [];
    let specs: SiSpec[] = [];
    let template: TemplateRec | undefined;
    let cloneSrc: string | undefined;
    let snapshotPolicies = Array.isArray(b['snapshot_policies']) ? clone(b['snapshot_policies'] as SnapshotPolicy[]) : undefined;

    if (Array.isArray(b['storage_instances'])) {
      const sis = b['storage_instances'] as Json[];
      for (const d of duplicates(sis.map((s) => s['name'] as string))) errors.push(`storage_instances: duplicate storage instance name ${show(d)}`);
      specs = sis.map((s, i) => this.siSpecFromBody(s, ctx.tenant, `storage_instances[${i}]`, errors));
    } else if (isObject(b['app_template'])) {
      const path = b['app_template']['path'] as string;
      const tplName = refName(path, '/app_templates/');
      template = tplName ? this.findTemplate(ctx.tenant, tplName) : undefined;
      if (!template) throw validationFailed([`app_template.path: app template ${show(path)} does not exist`]);
      specs = this.specsFromTemplate(template, b['template_override'], errors);
      snapshotPolicies ??= clone(template.snapshot_policies);
    } else {
      const key = sources[0];
      if (key) {
        const path = (b[key] as Json)['path'] as string;
        const src = this.resolveAppPath(t, path);
        const want = key === 'clone_src' ? ['ai'] : key === 'clone_volume_src' ? ['volume'] : ['snapshot', 'ai_snapshot'];
        if (!src || !want.includes(src.kind)) {
          throw validationFailed([`${key}.path: ${key === 'clone_src' ? 'app instance' : key === 'clone_volume_src' ? 'volume' : 'snapshot'} ${show(path)} does not exist`]);
        }
        cloneSrc = path;
        if (src.kind === 'ai') specs = this.specsFromAi(src.ai);
        else if (src.kind === 'ai_snapshot') specs = clone(src.snap?.layout ?? []);
        else if (src.si && src.vol) {
          specs = [
            {
              name: src.si.name,
              ip_pool: src.si.ip_pool,
              auth: clone(src.si.auth),
              access_control_mode: src.si.access_control_mode,
              volumes: [this.specFromVol(src.vol, src.snap?.size ?? src.vol.size)],
            },
          ];
        }
      }
    }
    if (errors.length > 0) throw validationFailed(errors);

    this.requireCapacity(this.rawGiB(specs), `app instance ${name}`);

    const ai: AiRec = {
      id: randomUUID(),
      name,
      uuid: (b['uuid'] as string | undefined) ?? ZERO_UUID,
      tenant: ctx.tenant,
      descr: (b['descr'] as string | null | undefined) ?? '',
      create_mode: (b['create_mode'] as string | undefined) ?? 'normal',
      admin_state: 'online',
      app_template: template ? { name: template.name, tenant: template.tenant } : undefined,
      template_override: b['template_override'] !== undefined ? clone(b['template_override']) : undefined,
      clone_src: cloneSrc,
      repair_priority: b['repair_priority'] as string | undefined,
      snapshot_policies: snapshotPolicies ?? [],
      snapshots: [],
      storage_instances: specs.map((s) => this.newSi(s, { access_control_mode: (b['access_control_mode'] as string) ?? 'deny_all' })),
      metadata: {},
    };
    // A uuid given on create (OpenStack) becomes the uuid of the first volume too.
    const firstVol = ai.storage_instances[0]?.volumes[0];
    if (b['uuid'] !== undefined && firstVol) firstVol.uuid = b['uuid'] as string;
    this.createBacking(ai.storage_instances.flatMap((si) => si.volumes), `app instance ${name}`);
    t.ais.set(ai.id, ai);
    t.aiIdByName.set(ai.name, ai.id);
    return this.renderAi(ai);
  }

  updateAppInstance(ctx: OpContext): Json {
    const { t, ai } = this.aiCtx(ctx);
    const b = ctx.body;
    if (b['storage_instances'] !== undefined) {
      throw invalid('Updating storage_instances through the app instance is not supported by the simulator; PUT the storage instance');
    }
    if (typeof b['name'] === 'string' && b['name'] !== ai.name) {
      if (t.aiIdByName.has(b['name']) || t.ais.has(b['name'])) throw conflict(`App instance ${b['name']}`);
    }
    if (Array.isArray(b['snapshot_policies'])) {
      const d = duplicates((b['snapshot_policies'] as Json[]).map((p) => p['name'] as string));
      if (d.length) throw validationFailed(d.map((n) => `snapshot_policies: duplicate snapshot policy name ${show(n)}`));
    }
    if (typeof b['restore_point'] === 'string') {
      if (ai.admin_state !== 'offline') throw invalid(`App instance ${ai.name} must be offline to restore a snapshot`);
      const snap = ai.snapshots.find((s) => s.utc_ts === b['restore_point']);
      if (!snap) throw notFound(`Snapshot ${b['restore_point']} of app instance ${ai.name}`);
    }
    if (typeof b['name'] === 'string' && b['name'] !== ai.name) {
      t.aiIdByName.delete(ai.name);
      ai.name = b['name'];
      t.aiIdByName.set(ai.name, ai.id);
    }
    if (b['descr'] !== undefined) ai.descr = (b['descr'] as string | null) ?? '';
    if (b['admin_state'] === 'online' || b['admin_state'] === 'offline') {
      ai.admin_state = b['admin_state'];
      for (const si of ai.storage_instances) si.admin_state = b['admin_state'];
      // DECISION: offlining a target ends its sessions (the initiators lose the disk).
      if (b['admin_state'] === 'offline') this.dropSessionsOf(ai.storage_instances);
    }
    if (Array.isArray(b['snapshot_policies'])) ai.snapshot_policies = clone(b['snapshot_policies'] as SnapshotPolicy[]);
    if (typeof b['repair_priority'] === 'string') ai.repair_priority = b['repair_priority'];
    return this.renderAi(ai);
  }

  /**
   * DECISION: with requireOfflineForDelete, an online app instance is refused with 400
   * InvalidRequestError unless the body (or query) says force: true. Snapshots do not block.
   */
  deleteAppInstance(ctx: OpContext): Json {
    const { t, ai } = this.aiCtx(ctx);
    const force = ctx.body['force'] === true || ctx.query.get('force') === 'true';
    if (this.opts.requireOfflineForDelete && ai.admin_state === 'online' && !force) {
      throw invalid(`App instance ${ai.name} is online; set admin_state offline (or pass force: true) before deleting it`);
    }
    const out = this.renderAi(ai);
    t.ais.delete(ai.id);
    t.aiIdByName.delete(ai.name);
    this.dropSessionsOf(ai.storage_instances);
    this.removeBacking(ai.storage_instances);
    return out;
  }

  getMetadata(ctx: OpContext): Json {
    return clone(this.aiCtx(ctx).ai.metadata);
  }

  /** DECISION: PUT merges keys into the map; a null value removes the key; "" is kept as "". */
  putMetadata(ctx: OpContext): Json {
    const { ai } = this.aiCtx(ctx);
    return this.mergeMetadata(ai.metadata, ctx.body);
  }

  getSiMetadata(ctx: OpContext): Json {
    return clone(this.siCtx(ctx).si.metadata);
  }

  putSiMetadata(ctx: OpContext): Json {
    return this.mergeMetadata(this.siCtx(ctx).si.metadata, ctx.body);
  }

  private mergeMetadata(target: Json, body: Json): Json {
    const errors = validate(METADATA_SCHEMA, body);
    if (errors.length) throw validationFailed(errors);
    for (const [k, v] of Object.entries(body)) {
      if (v === null) delete target[k];
      else target[k] = v;
    }
    return clone(target);
  }

  // -------------------------------------------------------------------------- AI snapshots, policies

  listAiSnapshots(ctx: OpContext): Listing {
    const { ai } = this.aiCtx(ctx);
    return new Listing(ai.snapshots.map((s) => this.renderSnap(`/app_instances/${ai.id}/snapshots`, s)));
  }

  createAiSnapshot(ctx: OpContext): Json {
    const { ai } = this.aiCtx(ctx);
    const snap = this.newSnapshot(ai.snapshots, ctx.body);
    snap.layout = this.specsFromAi(ai);
    ai.snapshots.push(snap);
    return this.renderSnap(`/app_instances/${ai.id}/snapshots`, snap);
  }

  getAiSnapshot(ctx: OpContext): Json {
    const { ai } = this.aiCtx(ctx);
    const snap = this.findSnap(ai.snapshots, ctx.params['timestamp'] ?? '');
    return this.renderSnap(`/app_instances/${ai.id}/snapshots`, snap);
  }

  deleteAiSnapshot(ctx: OpContext): Json {
    const { ai } = this.aiCtx(ctx);
    const snap = this.findSnap(ai.snapshots, ctx.params['timestamp'] ?? '');
    ai.snapshots.splice(ai.snapshots.indexOf(snap), 1);
    return this.renderSnap(`/app_instances/${ai.id}/snapshots`, snap);
  }

  private newSnapshot(existing: SnapRec[], body: Json): SnapRec {
    const uuid = typeof body['uuid'] === 'string' ? body['uuid'] : randomUUID();
    if (existing.some((s) => s.uuid === uuid)) {
      throw new SimError('InvalidRequestError', `Snapshot with uuid ${uuid} already exists`, { code: CODE_DUPLICATE_SNAPSHOT_UUID });
    }
    return { uuid, utc_ts: snapshotTimestamp(), type: typeof body['type'] === 'string' ? body['type'] : 'local' };
  }

  private findSnap(list: SnapRec[], ts: string): SnapRec {
    const snap = list.find((s) => s.utc_ts === ts || s.uuid === ts);
    if (!snap) throw notFound(`Snapshot ${ts}`);
    return snap;
  }

  listAiSnapshotPolicies(ctx: OpContext): Listing {
    const { ai } = this.aiCtx(ctx);
    return new Listing(ai.snapshot_policies.map((p) => ({ ...clone(p), path: `/app_instances/${ai.id}/snapshot_policies/${p.name}` })));
  }

  createAiSnapshotPolicy(ctx: OpContext): Json {
    const { ai } = this.aiCtx(ctx);
    const p = clone(ctx.body) as unknown as SnapshotPolicy;
    if (ai.snapshot_policies.some((x) => x.name === p.name)) throw conflict(`Snapshot policy ${p.name}`);
    ai.snapshot_policies.push(p);
    return { ...clone(p), path: `/app_instances/${ai.id}/snapshot_policies/${p.name}` };
  }

  // ============================================================================ storage instances

  listStorageInstances(ctx: OpContext): Listing {
    const { ai } = this.aiCtx(ctx);
    return new Listing(ai.storage_instances.map((si) => this.renderSi(ai, si)));
  }

  getStorageInstance(ctx: OpContext): Json {
    const { ai, si } = this.siCtx(ctx);
    return this.renderSi(ai, si);
  }

  createStorageInstance(ctx: OpContext): Json {
    const { ai } = this.aiCtx(ctx);
    const name = ctx.body['name'] as string;
    if (ai.storage_instances.some((s) => s.name === name)) throw conflict(`Storage instance ${name}`);
    const errors: string[] = [];
    const spec = this.siSpecFromBody(ctx.body, ctx.tenant, '', errors);
    if (errors.length) throw validationFailed(errors.map((e) => e.replace(/^\./, '')));
    this.requireCapacity(this.rawGiB([spec]), `storage instance ${name}`);
    const si = this.newSi(spec, { access_control_mode: 'deny_all' });
    this.createBacking(si.volumes, `storage instance ${ai.name}/${name}`);
    ai.storage_instances.push(si);
    return this.renderSi(ai, si);
  }

  updateStorageInstance(ctx: OpContext): Json {
    const { ai, si } = this.siCtx(ctx);
    const b = ctx.body;
    if (b['volumes'] !== undefined) {
      throw invalid('Updating volumes through the storage instance is not supported by the simulator; PUT the volume');
    }
    const errors: string[] = [];
    const pool = this.poolFromRef(b['ip_pool'], 'ip_pool', errors);
    let initiators: string[] | undefined;
    let groups: string[] | undefined;
    if (isObject(b['acl_policy'])) {
      const acl = b['acl_policy'];
      if (acl['initiators'] !== undefined) initiators = this.initiatorPaths(acl['initiators'], ctx.tenant, 'acl_policy.initiators', errors);
      if (acl['initiator_groups'] !== undefined) groups = this.groupPaths(acl['initiator_groups'], 'acl_policy.initiator_groups', errors);
    }
    if (errors.length) throw validationFailed(errors);
    if (b['admin_state'] === 'online' || b['admin_state'] === 'offline') si.admin_state = b['admin_state'];
    if (si.admin_state === 'offline') this.dropSessionsOf([si]);
    if (typeof b['access_control_mode'] === 'string') si.access_control_mode = b['access_control_mode'];
    if (pool) si.ip_pool = pool;
    if (isObject(b['auth'])) si.auth = this.mergeAuth(si.auth, b['auth']);
    if (initiators) si.initiators = initiators;
    if (groups) si.initiator_groups = groups;
    if (b['service_configuration'] !== undefined) si.service_configuration = clone(b['service_configuration']);
    return this.renderSi(ai, si);
  }

  deleteStorageInstance(ctx: OpContext): Json {
    const { ai, si } = this.siCtx(ctx);
    const force = ctx.body['force'] === true || ctx.query.get('force') === 'true';
    if (this.opts.requireOfflineForDelete && si.admin_state === 'online' && !force) {
      throw invalid(`Storage instance ${si.name} is online; set admin_state offline (or pass force: true) before deleting it`);
    }
    const out = this.renderSi(ai, si);
    ai.storage_instances.splice(ai.storage_instances.indexOf(si), 1);
    this.dropSessionsOf([si]);
    this.removeBacking([si]);
    return out;
  }

  getAuth(ctx: OpContext): Json {
    const { ai, si } = this.siCtx(ctx);
    return this.renderAuth(`/app_instances/${ai.id}/storage_instances/${si.name}/auth`, si.auth);
  }

  putAuth(ctx: OpContext): Json {
    const { ai, si } = this.siCtx(ctx);
    si.auth = this.mergeAuth(si.auth, ctx.body);
    return this.renderAuth(`/app_instances/${ai.id}/storage_instances/${si.name}/auth`, si.auth);
  }

  /** Given keys replace; type "none" clears the credentials. */
  private mergeAuth(cur: AuthRec, body: Json): AuthRec {
    const next = toAuth({ ...cur, ...body });
    if (next.type === 'none') return toAuth(undefined);
    return next;
  }

  // -------------------------------------------------------------------------- backing files

  /** Backing files for new volumes: all of them, or none (those made are removed) and a SimError. */
  private createBacking(vols: VolRec[], what: string): void {
    const backing = this.opts.backing;
    if (!backing) return;
    const made: VolRec[] = [];
    try {
      for (const v of vols) {
        backing.create(v.backingId, v.size, `${what} (volume ${v.name})`);
        made.push(v);
      }
    } catch (err) {
      for (const v of made) backing.remove(v.backingId);
      throw err;
    }
  }

  private removeBacking(sis: SiRec[]): void {
    const backing = this.opts.backing;
    if (!backing) return;
    for (const si of sis) for (const v of si.volumes) backing.remove(v.backingId);
  }

  /** The LUNs of a storage instance with their backing files; undefined without backing files. */
  private lunsOf(si: SiRec): IscsiLun[] | undefined {
    const backing = this.opts.backing;
    if (!backing) return undefined;
    return si.volumes.map((v, lun) => ({ lun, volume: v.name, uuid: v.uuid, size: v.size, path: backing.pathOf(v.backingId) }));
  }

  // -------------------------------------------------------------------------- iSCSI sessions

  /** The storage instance whose target is `iqn`, in any tenant. */
  private siByTarget(iqn: string): { ai: AiRec; si: SiRec } | undefined {
    for (const t of this.tenants.values()) {
      for (const ai of t.ais.values()) {
        const si = ai.storage_instances.find((x) => x.iqn === iqn);
        if (si) return { ai, si };
      }
    }
    return undefined;
  }

  private checkSessionFields(b: Json, needTarget: boolean): { target?: string; initiator: string; portal: string } {
    const errors: string[] = [];
    const target = b['target'];
    const initiator = b['initiator'];
    const portal = b['portal'] ?? '';
    if (needTarget ? typeof target !== 'string' || target === '' : target !== undefined && typeof target !== 'string') {
      errors.push('target: the target IQN (a string) is required');
    }
    if (typeof initiator !== 'string' || !INITIATOR_ID.test(initiator)) errors.push(`initiator: ${show(initiator)} is not an iqn.* or eui.* name`);
    if (typeof portal !== 'string') errors.push('portal: must be a string "ip:port"');
    if (errors.length) throw validationFailed(errors);
    return { target: target as string | undefined, initiator: initiator as string, portal: portal as string };
  }

  /**
   * A login as the target judges it: the storage instance must exist and be online, the portal
   * (when given) must be one of its access IPs, and the initiator must be in its ACL (403
   * PermissionDeniedError otherwise, the "authorization failure" iscsiadm reports). Logging in
   * again on the same portal is not an error (iscsiadm: session exists). With backing files,
   * the answer carries `luns`: the target's LUNs with the file behind each.
   */
  iscsiLogin(b: Json): { session: IscsiSession; existed: boolean; luns?: IscsiLun[] } {
    const { target, initiator, portal } = this.checkSessionFields(b, true);
    const found = this.siByTarget(target!);
    if (!found) throw notFound(`Target ${target}`);
    const { ai, si } = found;
    if (si.admin_state !== 'online' || ai.admin_state !== 'online') throw invalid(`Target ${target} is offline`);
    if (portal) {
      const ip = portal.replace(/^\[/, '').replace(/\]?:\d+$/, '');
      if (!si.ips.includes(ip)) throw invalid(`Portal ${portal} does not serve target ${target} (its IPs: ${si.ips.join(', ')})`);
    }
    if (!si.initiators.includes(`/initiators/${initiator}`)) {
      throw new SimError('PermissionDeniedError', `Initiator ${initiator} is not in the ACL of ${ai.name}/${si.name}: login refused (authorization failure)`);
    }
    const luns = this.lunsOf(si);
    const same = this.sessions.find((x) => x.target === target && x.initiator === initiator && x.portal === portal);
    if (same) return { session: { ...same }, existed: true, ...(luns ? { luns } : {}) };
    const session: IscsiSession = { target: target!, initiator, portal, since: new Date().toISOString() };
    this.sessions.push(session);
    return { session: { ...session }, existed: false, ...(luns ? { luns } : {}) };
  }

  /** Ends the sessions of `initiator` to `target` (one portal, or all when none is given). */
  iscsiLogout(b: Json): { removed: number } {
    const { target, initiator, portal } = this.checkSessionFields(b, true);
    const before = this.sessions.length;
    this.sessions = this.sessions.filter((x) => !(x.target === target && x.initiator === initiator && (!portal || x.portal === portal)));
    return { removed: before - this.sessions.length };
  }

  /**
   * Ends every session of `initiator` (to one `target` when given) without a logout: the target
   * timing out a node that stopped answering NOP-Out pings (a dead or cut-off node).
   */
  iscsiDrop(b: Json): { removed: number } {
    const { target, initiator } = this.checkSessionFields(b, false);
    const before = this.sessions.length;
    this.sessions = this.sessions.filter((x) => !(x.initiator === initiator && (!target || x.target === target)));
    return { removed: before - this.sessions.length };
  }

  iscsiSessions(): IscsiSession[] {
    return this.sessions.map((x) => ({ ...x }));
  }

  /** Sessions to targets that no longer exist end with them. */
  private dropSessionsOf(sis: SiRec[]): void {
    const gone = new Set(sis.map((x) => x.iqn));
    this.sessions = this.sessions.filter((x) => !gone.has(x.target));
  }

  // -------------------------------------------------------------------------- ACL

  private renderAcl(ai: AiRec, si: SiRec): Json {
    return {
      path: `/app_instances/${ai.id}/storage_instances/${si.name}/acl_policy`,
      initiators: si.initiators.map((p) => ({ path: p })),
      initiator_groups: si.initiator_groups.map((p) => ({ path: p })),
    };
  }

  getAcl(ctx: OpContext): Json {
    const { ai, si } = this.siCtx(ctx);
    return this.renderAcl(ai, si);
  }

  /** DECISION: PUT replaces each list that is present in the body; a list left out is kept. */
  putAcl(ctx: OpContext): Json {
    const { ai, si } = this.siCtx(ctx);
    const errors: string[] = [];
    const b = ctx.body;
    const initiators = b['initiators'] !== undefined ? this.initiatorPaths(b['initiators'], ctx.tenant, 'initiators', errors) : undefined;
    const groups = b['initiator_groups'] !== undefined ? this.groupPaths(b['initiator_groups'], 'initiator_groups', errors) : undefined;
    if (errors.length) throw validationFailed(errors);
    if (initiators) si.initiators = initiators;
    if (groups) si.initiator_groups = groups;
    return this.renderAcl(ai, si);
  }

  listAclInitiators(ctx: OpContext): Listing {
    const { si } = this.siCtx(ctx);
    return new Listing(
      si.initiators.map((p) => {
        const iqn = refName(p, '/initiators/') ?? '';
        const rec = this.findInitiator(ctx.tenant, iqn);
        return rec ? this.renderInitiator(rec) : { path: p, id: iqn, name: '', tenant: ctx.tenant };
      }),
    );
  }

  /**
   * `{op: add|remove, path}`. Add of a member already present: 409 ConflictError (as DBMP sees).
   * DECISION: remove of a path that is not a member: 404 NotFoundError. Answers the ACL policy.
   */
  patchAclInitiators(ctx: OpContext): Json {
    const { ai, si } = this.siCtx(ctx);
    const path = ctx.body['path'] as string;
    const iqn = refName(path, '/initiators/');
    const canonical = iqn ? `/initiators/${iqn}` : path;
    if (ctx.body['op'] === 'add') {
      if (!iqn || !this.findInitiator(ctx.tenant, iqn)) throw validationFailed([`path: initiator ${show(path)} does not exist`]);
      if (si.initiators.includes(canonical)) throw conflict(`Initiator ${canonical} in the ACL of ${si.name}`);
      si.initiators.push(canonical);
    } else {
      const at = si.initiators.indexOf(canonical);
      if (at < 0) throw notFound(`Initiator ${canonical} in the ACL of ${si.name}`);
      si.initiators.splice(at, 1);
    }
    return this.renderAcl(ai, si);
  }

  // -------------------------------------------------------------------------- volumes

  listVolumes(ctx: OpContext): Listing {
    const { ai, si } = this.siCtx(ctx);
    return new Listing(si.volumes.map((v) => this.renderVol(ai, si, v)));
  }

  getVolume(ctx: OpContext): Json {
    const { ai, si, vol } = this.volCtx(ctx);
    return this.renderVol(ai, si, vol);
  }

  createVolume(ctx: OpContext): Json {
    const { ai, si } = this.siCtx(ctx);
    const name = ctx.body['name'] as string;
    if (si.volumes.some((v) => v.name === name)) throw conflict(`Volume ${name}`);
    const errors: string[] = [];
    const spec = this.volSpecFromBody(ctx.body, '', errors);
    if (errors.length) throw validationFailed(errors.map((e) => e.replace(/^\./, '')));
    this.requireCapacity(spec.size * (spec.replica_count ?? DEFAULT_REPLICAS), `volume ${name}`);
    const vol = this.newVol(spec);
    this.createBacking([vol], `volume ${ai.name}/${si.name}/${name}`);
    si.volumes.push(vol);
    return this.renderVol(ai, si, vol);
  }

  /** Resize grows only. DECISION: a smaller size is 400 InvalidRequestError. */
  updateVolume(ctx: OpContext): Json {
    const { ai, si, vol } = this.volCtx(ctx);
    const b = ctx.body;
    const size = typeof b['size'] === 'number' ? b['size'] : vol.size;
    const replicas = typeof b['replica_count'] === 'number' ? b['replica_count'] : vol.replica_count;
    if (size < vol.size) throw invalid(`Volume ${vol.name} cannot shrink from ${vol.size} GiB to ${size} GiB`);
    const errors: string[] = [];
    const policy = this.policyFromRef(b['placement_policy'], 'placement_policy', errors);
    if (errors.length) throw validationFailed(errors);
    if (typeof b['restore_point'] === 'string') {
      if (ai.admin_state !== 'offline') throw invalid(`App instance ${ai.name} must be offline to restore a snapshot`);
      this.findSnap(vol.snapshots, b['restore_point']);
    }
    this.requireCapacity(size * replicas - vol.size * vol.replica_count, `volume ${vol.name}`);
    // The file first: when it cannot grow, the volume keeps its size.
    if (size > vol.size) this.opts.backing?.grow(vol.backingId, size, `volume ${ai.name}/${si.name}/${vol.name}`);
    vol.size = size;
    vol.replica_count = replicas;
    if (typeof b['placement_mode'] === 'string') vol.placement_mode = b['placement_mode'] as PlacementMode;
    if (policy) vol.placement_policy = policy;
    if (b['storage_pool'] !== undefined) vol.storage_pool = clone(b['storage_pool']);
    return this.renderVol(ai, si, vol);
  }

  deleteVolume(ctx: OpContext): Json {
    const { ai, si, vol } = this.volCtx(ctx);
    const out = this.renderVol(ai, si, vol);
    si.volumes.splice(si.volumes.indexOf(vol), 1);
    this.opts.backing?.remove(vol.backingId);
    return out;
  }

  getPerformancePolicy(ctx: OpContext): Json {
    const { ai, si, vol } = this.volCtx(ctx);
    if (!vol.performance_policy) throw notFound(`Performance policy of volume ${vol.name}`);
    return { ...clone(vol.performance_policy), path: `/app_instances/${ai.id}/storage_instances/${si.name}/volumes/${vol.name}/performance_policy` };
  }

  createPerformancePolicy(ctx: OpContext): Json {
    const { vol } = this.volCtx(ctx);
    if (vol.performance_policy) throw conflict(`Performance policy of volume ${vol.name}`);
    vol.performance_policy = clone(ctx.body) as PerformancePolicy;
    return this.getPerformancePolicy(ctx);
  }

  updatePerformancePolicy(ctx: OpContext): Json {
    const { vol } = this.volCtx(ctx);
    if (!vol.performance_policy) throw notFound(`Performance policy of volume ${vol.name}`);
    vol.performance_policy = { ...vol.performance_policy, ...(clone(ctx.body) as PerformancePolicy) };
    return this.getPerformancePolicy(ctx);
  }

  deletePerformancePolicy(ctx: OpContext): Json {
    const { vol } = this.volCtx(ctx);
    const out = this.getPerformancePolicy(ctx);
    delete vol.performance_policy;
    return out;
  }

  listVolumeSnapshots(ctx: OpContext): Listing {
    const { ai, si, vol } = this.volCtx(ctx);
    const base = `/app_instances/${ai.id}/storage_instances/${si.name}/volumes/${vol.name}/snapshots`;
    return new Listing(vol.snapshots.map((s) => this.renderSnap(base, s)));
  }

  createVolumeSnapshot(ctx: OpContext): Json {
    const { ai, si, vol } = this.volCtx(ctx);
    const snap = this.newSnapshot(vol.snapshots, ctx.body);
    snap.size = vol.size;
    vol.snapshots.push(snap);
    return this.renderSnap(`/app_instances/${ai.id}/storage_instances/${si.name}/volumes/${vol.name}/snapshots`, snap);
  }

  getVolumeSnapshot(ctx: OpContext): Json {
    const { ai, si, vol } = this.volCtx(ctx);
    const snap = this.findSnap(vol.snapshots, ctx.params['timestamp'] ?? '');
    return this.renderSnap(`/app_instances/${ai.id}/storage_instances/${si.name}/volumes/${vol.name}/snapshots`, snap);
  }

  deleteVolumeSnapshot(ctx: OpContext): Json {
    const out = this.getVolumeSnapshot(ctx);
    const { vol } = this.volCtx(ctx);
    vol.snapshots.splice(vol.snapshots.indexOf(this.findSnap(vol.snapshots, ctx.params['timestamp'] ?? '')), 1);
    return out;
  }

  // ============================================================================ initiators

  listInitiators(ctx: OpContext): Listing {
    return new Listing([...this.tenant(ctx.tenant).initiators.values()].map((i) => this.renderInitiator(i)));
  }

  /** An initiator of a parent tenant is visible (with its own `tenant`), as on the cluster. */
  getInitiator(ctx: OpContext): Json {
    const iqn = ctx.params['id'] ?? '';
    const rec = this.findInitiator(ctx.tenant, iqn);
    if (!rec) throw notFound(`Initiator ${iqn}`);
    return this.renderInitiator(rec);
  }

  /**
   * 409 when the tenant has it. When only a parent tenant has it, the cluster warns with an
   * InvalidRequestError unless force is true (DBMP, Cinder DAT-15931); the simulator does the same.
   */
  createInitiator(ctx: OpContext): Json {
    const t = this.tenant(ctx.tenant);
    const iqn = ctx.body['id'] as string;
    if (t.initiators.has(iqn)) throw conflict(`Initiator ${iqn}`);
    const inherited = this.findInitiator(ctx.tenant, iqn);
    if (inherited && ctx.body['force'] !== true) {
      throw invalid(`Initiator ${iqn} already exists in tenant ${inherited.tenant}; set force to true to override this warning`);
    }
    const rec: InitiatorRec = { id: iqn, name: ctx.body['name'] as string, tenant: ctx.tenant };
    t.initiators.set(iqn, rec);
    return this.renderInitiator(rec);
  }

  updateInitiator(ctx: OpContext): Json {
    const iqn = ctx.params['id'] ?? '';
    const rec = this.tenant(ctx.tenant).initiators.get(iqn);
    if (!rec) throw notFound(`Initiator ${iqn}`);
    if (typeof ctx.body['name'] === 'string') rec.name = ctx.body['name'];
    return this.renderInitiator(rec);
  }

  /** DECISION: an initiator still named in an ACL of its tenant cannot be deleted (400). */
  deleteInitiator(ctx: OpContext): Json {
    const t = this.tenant(ctx.tenant);
    const iqn = ctx.params['id'] ?? '';
    const rec = t.initiators.get(iqn);
    if (!rec) throw notFound(`Initiator ${iqn}`);
    for (const ai of t.ais.values())
      for (const si of ai.storage_instances)
        if (si.initiators.includes(`/initiators/${iqn}`)) {
          throw invalid(`Initiator ${iqn} is in the ACL of /app_instances/${ai.id}/storage_instances/${si.name}; remove it first`);
        }
    t.initiators.delete(iqn);
    return this.renderInitiator(rec);
  }

  // ============================================================================ templates

  private templateFromBody(b: Json, tenant: string): TemplateRec {
    const errors: string[] = [];
    const sts = Array.isArray(b['storage_templates']) ? (b['storage_templates'] as Json[]) : [];
    for (const d of duplicates(sts.map((s) => s['name'] as string))) errors.push(`storage_templates: duplicate name ${show(d)}`);
    const rec: TemplateRec = {
      name: b['name'] as string,
      descr: (b['descr'] as string | null | undefined) ?? '',
      tenant,
      snapshot_policies: Array.isArray(b['snapshot_policies']) ? clone(b['snapshot_policies'] as SnapshotPolicy[]) : [],
      storage_templates: sts.map((st, i) => {
        const vts = Array.isArray(st['volume_templates']) ? (st['volume_templates'] as Json[]) : [];
        for (const d of duplicates(vts.map((v) => v['name'] as string))) {
          errors.push(`storage_templates[${i}].volume_templates: duplicate name ${show(d)}`);
        }
        return {
          name: st['name'] as string,
          ip_pool: this.poolFromRef(st['ip_pool'], `storage_templates[${i}].ip_pool`, errors),
          auth: isObject(st['auth']) ? toAuth(st['auth']) : undefined,
          service_configuration: st['service_configuration'],
          volume_templates: vts.map((v, j) => this.volSpecFromBody(v, `storage_templates[${i}].volume_templates[${j}]`, errors)),
        };
      }),
    };
    if (errors.length) throw validationFailed(errors);
    return rec;
  }

  listTemplates(ctx: OpContext): Listing {
    // Own templates first, then those shared from parent tenants (unless shadowed).
    const seen = new Set<string>();
    const out: Json[] = [];
    for (const t of tenantChain(ctx.tenant)) {
      for (const tpl of this.tenants.get(t)?.templates.values() ?? []) {
        if (seen.has(tpl.name)) continue;
        seen.add(tpl.name);
        out.push(this.renderTemplate(tpl));
      }
    }
    return new Listing(out);
  }

  getTemplate(ctx: OpContext): Json {
    const name = ctx.params['name'] ?? '';
    const tpl = this.findTemplate(ctx.tenant, name);
    if (!tpl) throw notFound(`App template ${name}`);
    return this.renderTemplate(tpl);
  }

  createTemplate(ctx: OpContext): Json {
    const t = this.tenant(ctx.tenant);
    const name = ctx.body['name'] as string;
    if (t.templates.has(name)) throw conflict(`App template ${name}`);
    let body = ctx.body;
    if (isObject(body['copy_from'])) {
      const from = refName(String(body['copy_from']['path']), '/app_templates/');
      const src = from ? this.findTemplate(ctx.tenant, from) : undefined;
      if (!src) throw validationFailed([`copy_from.path: app template ${show(body['copy_from']['path'])} does not exist`]);
      const copied = templateCreateBody(this.renderTemplate(src));
      body = { ...copied, ...body, storage_templates: body['storage_templates'] ?? copied.storage_templates } as Json;
    }
    const rec = this.templateFromBody(body, ctx.tenant);
    t.templates.set(rec.name, rec);
    return this.renderTemplate(rec);
  }

  /** DECISION: a template some app instance was created from cannot be deleted (400). */
  deleteTemplate(ctx: OpContext): Json {
    const t = this.tenant(ctx.tenant);
    const name = ctx.params['name'] ?? '';
    const tpl = t.templates.get(name);
    if (!tpl) throw notFound(`App template ${name}`);
    const out = this.renderTemplate(tpl);
    if ((out['app_instances'] as unknown[]).length > 0) throw invalid(`App template ${name} is in use by app instances`);
    t.templates.delete(name);
    return out;
  }

  // ============================================================================ system, pools, nodes

  system(): Json {
    const total = this.opts.capacityGiB * GiB;
    const used = this.usedRawGiB() * GiB;
    const available = Math.max(0, total - used);
    return {
      path: '/system',
      name: 'datera-sim',
      uuid: this.systemUuid,
      sw_version: '3.3.5',
      build_version: 'sim-3.3.5',
      health: 'ok',
      op_state: 'running',
      total_capacity: total,
      available_capacity: available,
      total_provisioned_capacity: used,
      hybrid_total_capacity: total,
      hybrid_available_capacity: available,
      hybrid_provisioned_capacity: used,
      all_flash_total_capacity: 0,
      all_flash_available_capacity: 0,
      all_flash_provisioned_capacity: 0,
      compression_enabled: false,
      compression_ratio: 1,
      callhome_enabled: false,
      l3_enabled: false,
      timezone: 'UTC',
      uptime: Date.now() - this.bootedAt,
      last_reboot_timestamp: new Date(this.bootedAt).toISOString(),
    };
  }

  private renderPool(name: string): Json {
    const [a, b] = this.opts.accessIps;
    return {
      path: `/access_network_ip_pools/${name}`,
      name,
      descr: this.ipPools.get(name) ?? '',
      tenant: ROOT_TENANT,
      network_paths: [
        { name: 'access-1', start_ip: a, netmask: 24, range: 16, vlan: 0, mtu: 1500, gateway: '' },
        { name: 'access-2', start_ip: b, netmask: 24, range: 16, vlan: 0, mtu: 1500, gateway: '' },
      ],
    };
  }

  listIpPools(): Listing {
    return new Listing([...this.ipPools.keys()].map((n) => this.renderPool(n)));
  }

  getIpPool(ctx: OpContext): Json {
    const name = ctx.params['pool_name'] ?? '';
    if (!this.ipPools.has(name)) throw notFound(`Access network IP pool ${name}`);
    return this.renderPool(name);
  }

  listPlacementPolicies(): Listing {
    return new Listing(
      [...this.placementPolicies].map((n) => ({ path: `/placement_policies/${n}`, name: n, descr: '', tenant: ROOT_TENANT, max: [], min: [] })),
    );
  }

  getPlacementPolicy(ctx: OpContext): Json {
    const name = ctx.params['name'] ?? '';
    if (!this.placementPolicies.has(name)) throw notFound(`Placement policy ${name}`);
    return { path: `/placement_policies/${name}`, name, descr: '', tenant: ROOT_TENANT, max: [], min: [] };
  }

  listStorageNodes(): Listing {
    return new Listing(this.storageNodes.map((u, i) => this.renderNode(u, i)));
  }

  getStorageNode(ctx: OpContext): Json {
    const i = this.storageNodes.indexOf(ctx.params['uuid'] ?? '');
    if (i < 0) throw notFound(`Storage node ${ctx.params['uuid']}`);
    return this.renderNode(this.storageNodes[i]!, i);
  }

  private renderNode(uuid: string, i: number): Json {
    return { path: `/storage_nodes/${uuid}`, uuid, name: `sim-node-${i + 1}`, op_state: 'running', health: 'ok', sw_version: '3.3.5' };
  }

  listTenants(): Listing {
    return new Listing(this.tenantPaths().map((p) => this.renderTenant(p)));
  }

  getTenant(ctx: OpContext): Json {
    const p = `/${(ctx.params['tenant_path'] ?? '').replace(/^\/+/, '')}`;
    if (!this.tenants.has(p)) throw notFound(`Tenant ${p}`);
    return this.renderTenant(p);
  }

  createTenant(ctx: OpContext): Json {
    const parent = typeof ctx.body['parent_path'] === 'string' ? ctx.body['parent_path'] : ROOT_TENANT;
    if (!this.tenants.has(parent)) throw validationFailed([`parent_path: tenant ${show(parent)} does not exist`]);
    const path = `${parent}/${ctx.body['name'] as string}`;
    if (!validTenantPath(path)) throw validationFailed([`name: ${show(ctx.body['name'])} does not make a valid tenant path`]);
    if (this.tenants.has(path)) throw conflict(`Tenant ${path}`);
    this.tenant(path);
    return this.renderTenant(path);
  }

  private renderTenant(p: string): Json {
    return { path: `/tenants${p}`, name: p.slice(p.lastIndexOf('/') + 1), descr: '', parent_path: p === ROOT_TENANT ? '' : p.slice(0, p.lastIndexOf('/')) };
  }
}

/** Turns a template in read shape (or as written in a seed file) into a POST /app_templates body. */
export function templateCreateBody(t: AppTemplate | Json): {
  name: string;
  descr?: string;
  snapshot_policies?: unknown[];
  storage_templates?: Array<{
    name: string;
    ip_pool?: string | { path: string };
    auth?: Json;
    service_configuration?: unknown;
    volume_templates?: Array<Json & { placement_policy?: { path: string } }>;
  }>;
} {
  const src = t as Json;
  const strip = (o: Json, drop: string[]): Json => Object.fromEntries(Object.entries(o).filter(([k]) => !drop.includes(k)));
  const pathOnly = (v: unknown): unknown => (isObject(v) && typeof v['path'] === 'string' ? { path: v['path'] } : v);
  const out = strip(src, ['path', 'tenant', 'app_instances']);
  if (Array.isArray(out['snapshot_policies'])) out['snapshot_policies'] = (out['snapshot_policies'] as Json[]).map((p) => strip(p, ['path']));
  if (out['descr'] === '') delete out['descr'];
  if (Array.isArray(out['storage_templates'])) {
    out['storage_templates'] = (out['storage_templates'] as Json[]).map((st) => {
      const s = strip(st, ['path']);
      if (s['ip_pool'] !== undefined) s['ip_pool'] = pathOnly(s['ip_pool']);
      if (isObject(s['auth'])) {
        const a = strip(s['auth'], ['path']);
        for (const k of Object.keys(a)) if (a[k] === HIDDEN || a[k] === '') delete a[k];
        s['auth'] = a;
      }
      if (Array.isArray(s['volume_templates'])) {
        s['volume_templates'] = (s['volume_templates'] as Json[]).map((vt) => {
          const v = strip(vt, ['path']);
          if (v['placement_policy'] !== undefined) v['placement_policy'] = pathOnly(v['placement_policy']);
          if (isObject(v['performance_policy'])) v['performance_policy'] = strip(v['performance_policy'], ['path']);
          if (Array.isArray(v['snapshot_policies'])) v['snapshot_policies'] = (v['snapshot_policies'] as Json[]).map((p) => strip(p, ['path']));
          return v;
        });
      }
      return s;
    });
  }
  return out as ReturnType<typeof templateCreateBody>;
}

