// SPDX-License-Identifier: Apache-2.0
// Snapshots of app instances and of volumes. An app-instance snapshot keeps the layout at
// snapshot time (what clone_snapshot_src builds from); a volume snapshot keeps the size.
import { randomUUID } from 'node:crypto';
import { CODE_DUPLICATE_SNAPSHOT_UUID, SimError, notFound } from '../errors.js';
import { type Json, Listing, type OpContext, type SnapRec } from '../model.js';
import { renderSnap, volumePath } from '../render.js';
import { specsFromAi } from '../specs.js';
import type { SimState } from '../state.js';

let lastSnapNs = 0n;
/** Snapshot ids as the cluster writes them: "<seconds>.<nanoseconds>", unique and increasing. */
function snapshotTimestamp(): string {
  let ns = BigInt(Date.now()) * 1_000_000n;
  if (ns <= lastSnapNs) ns = lastSnapNs + 1n;
  lastSnapNs = ns;
  return `${ns / 1_000_000_000n}.${String(ns % 1_000_000_000n).padStart(9, '0')}`;
}

/** A uuid given twice under one owner is 400 with the cluster's code 15. */
function newSnapshot(existing: SnapRec[], body: Json): SnapRec {
  const uuid = typeof body['uuid'] === 'string' ? body['uuid'] : randomUUID();
  if (existing.some((s) => s.uuid === uuid)) {
    throw new SimError('InvalidRequestError', `Snapshot with uuid ${uuid} already exists`, { code: CODE_DUPLICATE_SNAPSHOT_UUID });
  }
  return { uuid, utc_ts: snapshotTimestamp(), type: typeof body['type'] === 'string' ? body['type'] : 'local' };
}

/** The snapshot whose timestamp or uuid is `ts`; 404 otherwise. */
export function findSnap(list: SnapRec[], ts: string): SnapRec {
  const snap = list.find((s) => s.utc_ts === ts || s.uuid === ts);
  if (!snap) throw notFound(`Snapshot ${ts}`);
  return snap;
}

// -------------------------------------------------------------------------- app instance snapshots

export function listAiSnapshots(s: SimState, ctx: OpContext): Listing {
  const { ai } = s.aiCtx(ctx);
  return new Listing(ai.snapshots.map((x) => renderSnap(`/app_instances/${ai.id}/snapshots`, x)));
}

export function createAiSnapshot(s: SimState, ctx: OpContext): Json {
  const { ai } = s.aiCtx(ctx);
  const snap = newSnapshot(ai.snapshots, ctx.body);
  snap.layout = specsFromAi(ai);
  ai.snapshots.push(snap);
  return renderSnap(`/app_instances/${ai.id}/snapshots`, snap);
}

export function getAiSnapshot(s: SimState, ctx: OpContext): Json {
  const { ai } = s.aiCtx(ctx);
  const snap = findSnap(ai.snapshots, ctx.params['timestamp'] ?? '');
  return renderSnap(`/app_instances/${ai.id}/snapshots`, snap);
}

export function deleteAiSnapshot(s: SimState, ctx: OpContext): Json {
  const { ai } = s.aiCtx(ctx);
  const snap = findSnap(ai.snapshots, ctx.params['timestamp'] ?? '');
  ai.snapshots.splice(ai.snapshots.indexOf(snap), 1);
  return renderSnap(`/app_instances/${ai.id}/snapshots`, snap);
}

// -------------------------------------------------------------------------- volume snapshots

export function listVolumeSnapshots(s: SimState, ctx: OpContext): Listing {
  const { ai, si, vol } = s.volCtx(ctx);
  const base = `${volumePath(ai, si, vol)}/snapshots`;
  return new Listing(vol.snapshots.map((x) => renderSnap(base, x)));
}

export function createVolumeSnapshot(s: SimState, ctx: OpContext): Json {
  const { ai, si, vol } = s.volCtx(ctx);
  const snap = newSnapshot(vol.snapshots, ctx.body);
  snap.size = vol.size;
  vol.snapshots.push(snap);
  return renderSnap(`${volumePath(ai, si, vol)}/snapshots`, snap);
}

export function getVolumeSnapshot(s: SimState, ctx: OpContext): Json {
  const { ai, si, vol } = s.volCtx(ctx);
  const snap = findSnap(vol.snapshots, ctx.params['timestamp'] ?? '');
  return renderSnap(`${volumePath(ai, si, vol)}/snapshots`, snap);
}

export function deleteVolumeSnapshot(s: SimState, ctx: OpContext): Json {
  const out = getVolumeSnapshot(s, ctx);
  const { vol } = s.volCtx(ctx);
  vol.snapshots.splice(vol.snapshots.indexOf(findSnap(vol.snapshots, ctx.params['timestamp'] ?? '')), 1);
  return out;
}
