// SPDX-License-Identifier: Apache-2.0
// From request bodies to specs, and from specs to new records.
//
// DECISION: references to missing objects in a body (IP pools, placement policies, initiators)
// are 422 ValidationFailedError naming the field. The builders collect such messages into
// `errors` instead of throwing, so that one answer lists every bad field.
import { randomBytes, randomUUID } from 'node:crypto';
import type { PlacementMode, SnapshotPolicy } from '../datera/types.js';
import {
  type AiRec,
  DEFAULT_IP_POOL,
  DEFAULT_PLACEMENT_MODE,
  DEFAULT_PLACEMENT_POLICY,
  DEFAULT_REPLICAS,
  type Json,
  type SiRec,
  type SiSpec,
  type VolRec,
  type VolSpec,
  clone,
  duplicates,
  isObject,
  refName,
  toAuth,
} from './model.js';
import type { SimState } from './state.js';
import { show } from './validate.js';

// -------------------------------------------------------------------------- reference checks

/** `"/access_network_ip_pools/x"` or `{path}` -> "x"; undefined when absent or not an existing pool. */
export function poolFromRef(s: SimState, ref: unknown, field: string, errors: string[]): string | undefined {
  if (ref === undefined) return undefined;
  const path = typeof ref === 'string' ? ref : isObject(ref) ? ref['path'] : undefined;
  if (typeof path !== 'string') return undefined; // the schema check reports the shape
  const name = refName(path, '/access_network_ip_pools/');
  if (!name || !s.ipPools.has(name)) {
    errors.push(`${field}: access network IP pool ${show(path)} does not exist`);
    return undefined;
  }
  return name;
}

export function policyFromRef(s: SimState, ref: unknown, field: string, errors: string[]): string | undefined {
  if (!isObject(ref) || typeof ref['path'] !== 'string') return undefined;
  const name = refName(ref['path'], '/placement_policies/');
  if (!name || !s.placementPolicies.has(name)) {
    errors.push(`${field}: placement policy ${show(ref['path'])} does not exist`);
    return undefined;
  }
  return name;
}

/** `[{path: "/initiators/<iqn>"}...]` -> canonical paths, without repeats; each must be visible to the tenant. */
export function initiatorPaths(s: SimState, refs: unknown, tenant: string, field: string, errors: string[]): string[] {
  if (!Array.isArray(refs)) return [];
  const out: string[] = [];
  refs.forEach((r, i) => {
    const path = isObject(r) ? r['path'] : undefined;
    if (typeof path !== 'string') return;
    const iqn = refName(path, '/initiators/');
    if (!iqn || !s.findInitiator(tenant, iqn)) {
      errors.push(`${field}[${i}].path: initiator ${show(path)} does not exist`);
      return;
    }
    const canonical = `/initiators/${iqn}`;
    if (!out.includes(canonical)) out.push(canonical);
  });
  return out;
}

/** Initiator group paths are kept as given (the simulator has no initiator groups to check them against). */
export function groupPaths(refs: unknown, field: string, errors: string[]): string[] {
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

// -------------------------------------------------------------------------- specs

export function volSpecFromBody(s: SimState, v: Json, field: string, errors: string[]): VolSpec {
  return {
    name: v['name'] as string,
    size: v['size'] as number,
    replica_count: v['replica_count'] as number | undefined,
    placement_mode: v['placement_mode'] as PlacementMode | undefined,
    placement_policy: policyFromRef(s, v['placement_policy'], `${field}.placement_policy`, errors),
    performance_policy: isObject(v['performance_policy']) ? clone(v['performance_policy']) : undefined,
    snapshot_policies: Array.isArray(v['snapshot_policies']) ? clone(v['snapshot_policies'] as SnapshotPolicy[]) : undefined,
    storage_pool: v['storage_pool'],
  };
}

export function siSpecFromBody(s: SimState, b: Json, tenant: string, field: string, errors: string[]): SiSpec {
  const vols = Array.isArray(b['volumes']) ? (b['volumes'] as Json[]) : [];
  for (const d of duplicates(vols.map((v) => v['name'] as string))) {
    errors.push(`${field}.volumes: duplicate volume name ${show(d)}`);
  }
  const acl = isObject(b['acl_policy']) ? b['acl_policy'] : {};
  return {
    name: b['name'] as string,
    admin_state: b['admin_state'] as 'online' | 'offline' | undefined,
    access_control_mode: b['access_control_mode'] as string | undefined,
    initiators: initiatorPaths(s, acl['initiators'], tenant, `${field}.acl_policy.initiators`, errors),
    initiator_groups: groupPaths(acl['initiator_groups'], `${field}.acl_policy.initiator_groups`, errors),
    ip_pool: poolFromRef(s, b['ip_pool'], `${field}.ip_pool`, errors),
    auth: isObject(b['auth']) ? toAuth(b['auth']) : undefined,
    service_configuration: b['service_configuration'],
    volumes: vols.map((v, i) => volSpecFromBody(s, v, `${field}.volumes[${i}]`, errors)),
  };
}

/** The layout of an app instance, as a clone of it (or a snapshot of it) would get it. */
export function specsFromAi(ai: AiRec): SiSpec[] {
  return ai.storage_instances.map((si) => ({
    name: si.name,
    access_control_mode: si.access_control_mode,
    ip_pool: si.ip_pool,
    auth: clone(si.auth),
    service_configuration: si.service_configuration,
    volumes: si.volumes.map((v) => specFromVol(v)),
  }));
}

export function specFromVol(v: VolRec, size = v.size): VolSpec {
  return {
    name: v.name,
    size,
    replica_count: v.replica_count,
    placement_mode: v.placement_mode,
    placement_policy: v.placement_policy,
    performance_policy: v.performance_policy ? clone(v.performance_policy) : undefined,
  };
}

/** Raw GiB the specs would take (size × replica_count, default replicas when unset). */
export function rawGiB(specs: SiSpec[]): number {
  return specs.reduce((a, s) => a + s.volumes.reduce((b, v) => b + v.size * (v.replica_count ?? DEFAULT_REPLICAS), 0), 0);
}

// -------------------------------------------------------------------------- new records

export function newVol(spec: VolSpec): VolRec {
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

/** A new storage instance with a fresh target IQN and the simulator's access IPs. */
export function newSi(s: SimState, spec: SiSpec, defaults: { access_control_mode: string }): SiRec {
  return {
    name: spec.name,
    uuid: randomUUID(),
    admin_state: spec.admin_state ?? 'online',
    access_control_mode: spec.access_control_mode ?? defaults.access_control_mode,
    initiators: spec.initiators ?? [],
    initiator_groups: spec.initiator_groups ?? [],
    ip_pool: spec.ip_pool ?? DEFAULT_IP_POOL,
    auth: spec.auth ?? toAuth(undefined),
    iqn: `${s.opts.iqnPrefix}${randomBytes(8).toString('hex')}`,
    ips: [...s.opts.accessIps],
    service_configuration: spec.service_configuration,
    volumes: spec.volumes.map((v) => newVol(v)),
    metadata: {},
  };
}
