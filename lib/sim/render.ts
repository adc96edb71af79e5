// SPDX-License-Identifier: Apache-2.0
// Records into the API's shape. Every read renders afresh, so an answer never aliases state,
// and passwords always read as "(hidden)".
import type { AppInstance, AppTemplate, SnapshotPolicy, StorageInstance, Volume } from '../datera/types.js';
import {
  type AiRec,
  type AuthRec,
  DEFAULT_IP_POOL,
  DEFAULT_PLACEMENT_MODE,
  DEFAULT_PLACEMENT_POLICY,
  DEFAULT_REPLICAS,
  HIDDEN,
  type InitiatorRec,
  type Json,
  ROOT_TENANT,
  type SiRec,
  type SnapRec,
  type TemplateRec,
  type VolRec,
  clone,
  toAuth,
} from './model.js';
import type { SimState } from './state.js';

/** A reference as the cluster answers it (path plus where it resolved). */
function resolved(path: string, tenant: string): { path: string; resolved_path: string; resolved_tenant: string } {
  return { path, resolved_path: path, resolved_tenant: tenant };
}

/** A snapshot policy under `<owner>/snapshot_policies/<name>`. */
export function renderSnapshotPolicy(owner: string, p: SnapshotPolicy): Json {
  return { ...clone(p), path: `${owner}/snapshot_policies/${p.name}` };
}

export function volumePath(ai: AiRec, si: SiRec, v: VolRec): string {
  return `/app_instances/${ai.id}/storage_instances/${si.name}/volumes/${v.name}`;
}

export function renderVol(s: SimState, ai: AiRec, si: SiRec, v: VolRec): Volume & Json {
  const path = volumePath(ai, si, v);
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
    active_storage_nodes: s.storageNodes.slice(0, v.replica_count).map((u) => ({ path: `/storage_nodes/${u}` })),
    snapshot_policies: v.snapshot_policies.map((p) => renderSnapshotPolicy(path, p)),
    snapshots: v.snapshots.map((x) => renderSnap(`${path}/snapshots`, x)),
    logical_size: v.size,
    effective_size: v.size,
    exclusive_size: 0,
    physical_size: 0,
  };
  if (v.performance_policy) out['performance_policy'] = { ...clone(v.performance_policy), path: `${path}/performance_policy` };
  if (v.storage_pool !== undefined) out['storage_pool'] = clone(v.storage_pool);
  return out as unknown as Volume & Json;
}

/** A snapshot under `base` (its owner's `/snapshots`). */
export function renderSnap(base: string, s: SnapRec): Json {
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

export function renderSi(s: SimState, ai: AiRec, si: SiRec): StorageInstance & Json {
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
    acl_policy: renderAcl(ai, si),
    ip_pool: resolved(`/access_network_ip_pools/${si.ip_pool}`, ROOT_TENANT),
    access: { path: `${path}/access`, ips: [...si.ips], iqn: si.iqn },
    auth: renderAuth(`${path}/auth`, si.auth),
    active_initiators: [...new Set(s.sessions.filter((x) => x.target === si.iqn).map((x) => x.initiator))],
    active_storage_nodes: s.storageNodes.slice(0, 3).map((u) => ({ path: `/storage_nodes/${u}` })),
    volumes: si.volumes.map((v) => renderVol(s, ai, si, v)),
  };
  if (si.service_configuration !== undefined) out['service_configuration'] = clone(si.service_configuration);
  return out as unknown as StorageInstance & Json;
}

export function renderAcl(ai: AiRec, si: SiRec): Json {
  return {
    path: `/app_instances/${ai.id}/storage_instances/${si.name}/acl_policy`,
    initiators: si.initiators.map((p) => ({ path: p })),
    initiator_groups: si.initiator_groups.map((p) => ({ path: p })),
  };
}

export function renderAuth(path: string, a: AuthRec): Json {
  return {
    path,
    type: a.type,
    initiator_user_name: a.initiator_user_name,
    initiator_pswd: HIDDEN,
    target_user_name: a.target_user_name,
    target_pswd: HIDDEN,
  };
}

export function renderAi(s: SimState, ai: AiRec): AppInstance & Json {
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
    app_template: tpl ? resolved(`/app_templates/${tpl.name}`, tpl.tenant) : { path: '', resolved_path: '', resolved_tenant: '' },
    storage_instances: ai.storage_instances.map((si) => renderSi(s, ai, si)),
    snapshots: ai.snapshots.map((x) => renderSnap(`${path}/snapshots`, x)),
    snapshot_policies: ai.snapshot_policies.map((p) => renderSnapshotPolicy(path, p)),
    restore_point: '',
    repair_priority: ai.repair_priority ?? 'medium',
  };
  if (ai.template_override !== undefined) out['template_override'] = clone(ai.template_override);
  if (ai.clone_src) out['clone_src'] = { path: ai.clone_src };
  return out as unknown as AppInstance & Json;
}

/** A template with the app instances created from it (`app_instances`, in every tenant). */
export function renderTemplate(s: SimState, t: TemplateRec): AppTemplate & Json {
  const path = `/app_templates/${t.name}`;
  const users: Json[] = [];
  for (const ten of s.tenants.values())
    for (const ai of ten.ais.values())
      if (ai.app_template?.name === t.name && ai.app_template.tenant === t.tenant) users.push({ path: `/app_instances/${ai.id}` });
  return {
    path,
    name: t.name,
    descr: t.descr,
    tenant: t.tenant,
    snapshot_policies: t.snapshot_policies.map((p) => renderSnapshotPolicy(path, p)),
    storage_templates: t.storage_templates.map((st) => {
      const stPath = `${path}/storage_templates/${st.name}`;
      return {
        path: stPath,
        name: st.name,
        ip_pool: resolved(`/access_network_ip_pools/${st.ip_pool ?? DEFAULT_IP_POOL}`, ROOT_TENANT),
        auth: renderAuth(`${stPath}/auth`, st.auth ?? toAuth(undefined)),
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

export function renderInitiator(i: InitiatorRec): Json {
  return { path: `/initiators/${i.id}`, id: i.id, name: i.name, tenant: i.tenant };
}

export function renderPool(s: SimState, name: string): Json {
  const [a, b] = s.opts.accessIps;
  return {
    path: `/access_network_ip_pools/${name}`,
    name,
    descr: s.ipPools.get(name) ?? '',
    tenant: ROOT_TENANT,
    network_paths: [
      { name: 'access-1', start_ip: a, netmask: 24, range: 16, vlan: 0, mtu: 1500, gateway: '' },
      { name: 'access-2', start_ip: b, netmask: 24, range: 16, vlan: 0, mtu: 1500, gateway: '' },
    ],
  };
}

export function renderPlacementPolicy(name: string): Json {
  return { path: `/placement_policies/${name}`, name, descr: '', tenant: ROOT_TENANT, max: [], min: [] };
}

export function renderNode(uuid: string, i: number): Json {
  return { path: `/storage_nodes/${uuid}`, uuid, name: `sim-node-${i + 1}`, op_state: 'running', health: 'ok', sw_version: '3.3.5' };
}

export function renderTenant(p: string): Json {
  return { path: `/tenants${p}`, name: p.slice(p.lastIndexOf('/') + 1), descr: '', parent_path: p === ROOT_TENANT ? '' : p.slice(0, p.lastIndexOf('/')) };
}
