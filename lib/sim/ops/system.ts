// SPDX-License-Identifier: Apache-2.0
// Cluster-wide reads and tenants: /system (capacity from the volumes), access network IP pools,
// placement policies, storage nodes, and the tenant tree.
import { conflict, notFound, validationFailed } from '../errors.js';
import { type Json, Listing, type OpContext, ROOT_TENANT, validTenantPath } from '../model.js';
import { renderNode, renderPlacementPolicy, renderPool, renderTenant } from '../render.js';
import type { SimState } from '../state.js';
import { show } from '../validate.js';

const GiB = 1024 ** 3;

export function system(s: SimState): Json {
  const total = s.opts.capacityGiB * GiB;
  const used = s.usedRawGiB() * GiB;
  const available = Math.max(0, total - used);
  return {
    path: '/system',
    name: 'datera-sim',
    uuid: s.systemUuid,
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
    uptime: Date.now() - s.bootedAt,
    last_reboot_timestamp: new Date(s.bootedAt).toISOString(),
  };
}

export function listIpPools(s: SimState): Listing {
  return new Listing([...s.ipPools.keys()].map((n) => renderPool(s, n)));
}

export function getIpPool(s: SimState, ctx: OpContext): Json {
  const name = ctx.params['pool_name'] ?? '';
  if (!s.ipPools.has(name)) throw notFound(`Access network IP pool ${name}`);
  return renderPool(s, name);
}

export function listPlacementPolicies(s: SimState): Listing {
  return new Listing([...s.placementPolicies].map((n) => renderPlacementPolicy(n)));
}

export function getPlacementPolicy(s: SimState, ctx: OpContext): Json {
  const name = ctx.params['name'] ?? '';
  if (!s.placementPolicies.has(name)) throw notFound(`Placement policy ${name}`);
  return renderPlacementPolicy(name);
}

export function listStorageNodes(s: SimState): Listing {
  return new Listing(s.storageNodes.map((u, i) => renderNode(u, i)));
}

export function getStorageNode(s: SimState, ctx: OpContext): Json {
  const i = s.storageNodes.indexOf(ctx.params['uuid'] ?? '');
  if (i < 0) throw notFound(`Storage node ${ctx.params['uuid']}`);
  return renderNode(s.storageNodes[i]!, i);
}

export function listTenants(s: SimState): Listing {
  return new Listing(s.tenantPaths().map((p) => renderTenant(p)));
}

export function getTenant(s: SimState, ctx: OpContext): Json {
  const p = `/${(ctx.params['tenant_path'] ?? '').replace(/^\/+/, '')}`;
  if (!s.tenants.has(p)) throw notFound(`Tenant ${p}`);
  return renderTenant(p);
}

/** A sub-tenant of `parent_path` (default /root); the parent must exist. */
export function createTenant(s: SimState, ctx: OpContext): Json {
  const parent = typeof ctx.body['parent_path'] === 'string' ? ctx.body['parent_path'] : ROOT_TENANT;
  if (!s.tenants.has(parent)) throw validationFailed([`parent_path: tenant ${show(parent)} does not exist`]);
  const path = `${parent}/${ctx.body['name'] as string}`;
  if (!validTenantPath(path)) throw validationFailed([`name: ${show(ctx.body['name'])} does not make a valid tenant path`]);
  if (s.tenants.has(path)) throw conflict(`Tenant ${path}`);
  s.tenant(path);
  return renderTenant(path);
}
