// SPDX-License-Identifier: Apache-2.0
// Volumes of a storage instance (create, grow, delete) and their performance (QoS) policy.
import type { PerformancePolicy, PlacementMode } from '../../datera/types.js';
import { conflict, invalid, notFound, validationFailed } from '../errors.js';
import { DEFAULT_REPLICAS, type Json, Listing, type OpContext, clone } from '../model.js';
import { renderVol, volumePath } from '../render.js';
import { newVol, policyFromRef, volSpecFromBody } from '../specs.js';
import type { SimState } from '../state.js';
import { findSnap } from './snapshots.js';

export function listVolumes(s: SimState, ctx: OpContext): Listing {
  const { ai, si } = s.siCtx(ctx);
  return new Listing(si.volumes.map((v) => renderVol(s, ai, si, v)));
}

export function getVolume(s: SimState, ctx: OpContext): Json {
  const { ai, si, vol } = s.volCtx(ctx);
  return renderVol(s, ai, si, vol);
}

export function createVolume(s: SimState, ctx: OpContext): Json {
  const { ai, si } = s.siCtx(ctx);
  const name = ctx.body['name'] as string;
  if (si.volumes.some((v) => v.name === name)) throw conflict(`Volume ${name}`);
  const errors: string[] = [];
  const spec = volSpecFromBody(s, ctx.body, '', errors);
  if (errors.length) throw validationFailed(errors.map((e) => e.replace(/^\./, '')));
  s.requireCapacity(spec.size * (spec.replica_count ?? DEFAULT_REPLICAS), `volume ${name}`);
  const vol = newVol(spec);
  s.createBacking([vol], `volume ${ai.name}/${si.name}/${name}`);
  si.volumes.push(vol);
  return renderVol(s, ai, si, vol);
}

/** Resize grows only. DECISION: a smaller size is 400 InvalidRequestError. */
export function updateVolume(s: SimState, ctx: OpContext): Json {
  const { ai, si, vol } = s.volCtx(ctx);
  const b = ctx.body;
  const size = typeof b['size'] === 'number' ? b['size'] : vol.size;
  const replicas = typeof b['replica_count'] === 'number' ? b['replica_count'] : vol.replica_count;
  if (size < vol.size) throw invalid(`Volume ${vol.name} cannot shrink from ${vol.size} GiB to ${size} GiB`);
  const errors: string[] = [];
  const policy = policyFromRef(s, b['placement_policy'], 'placement_policy', errors);
  if (errors.length) throw validationFailed(errors);
  if (typeof b['restore_point'] === 'string') {
    if (ai.admin_state !== 'offline') throw invalid(`App instance ${ai.name} must be offline to restore a snapshot`);
    findSnap(vol.snapshots, b['restore_point']);
  }
  s.requireCapacity(size * replicas - vol.size * vol.replica_count, `volume ${vol.name}`);
  // The file first: when it cannot grow, the volume keeps its size.
  if (size > vol.size) s.opts.backing?.grow(vol.backingId, size, `volume ${ai.name}/${si.name}/${vol.name}`);
  vol.size = size;
  vol.replica_count = replicas;
  if (typeof b['placement_mode'] === 'string') vol.placement_mode = b['placement_mode'] as PlacementMode;
  if (policy) vol.placement_policy = policy;
  if (b['storage_pool'] !== undefined) vol.storage_pool = clone(b['storage_pool']);
  return renderVol(s, ai, si, vol);
}

export function deleteVolume(s: SimState, ctx: OpContext): Json {
  const { ai, si, vol } = s.volCtx(ctx);
  const out = renderVol(s, ai, si, vol);
  si.volumes.splice(si.volumes.indexOf(vol), 1);
  s.opts.backing?.remove(vol.backingId);
  return out;
}

// -------------------------------------------------------------------------- performance policy

export function getPerformancePolicy(s: SimState, ctx: OpContext): Json {
  const { ai, si, vol } = s.volCtx(ctx);
  if (!vol.performance_policy) throw notFound(`Performance policy of volume ${vol.name}`);
  return { ...clone(vol.performance_policy), path: `${volumePath(ai, si, vol)}/performance_policy` };
}

export function createPerformancePolicy(s: SimState, ctx: OpContext): Json {
  const { vol } = s.volCtx(ctx);
  if (vol.performance_policy) throw conflict(`Performance policy of volume ${vol.name}`);
  vol.performance_policy = clone(ctx.body) as PerformancePolicy;
  return getPerformancePolicy(s, ctx);
}

/** Given keys replace; keys left out are kept. */
export function updatePerformancePolicy(s: SimState, ctx: OpContext): Json {
  const { vol } = s.volCtx(ctx);
  if (!vol.performance_policy) throw notFound(`Performance policy of volume ${vol.name}`);
  vol.performance_policy = { ...vol.performance_policy, ...(clone(ctx.body) as PerformancePolicy) };
  return getPerformancePolicy(s, ctx);
}

export function deletePerformancePolicy(s: SimState, ctx: OpContext): Json {
  const { vol } = s.volCtx(ctx);
  const out = getPerformancePolicy(s, ctx);
  delete vol.performance_policy;
  return out;
}
