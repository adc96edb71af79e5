// SPDX-License-Identifier: Apache-2.0
// Fault injection: the settings (SimOptions.faults, PUT /_sim/faults) and the draw made for each
// API call before it runs. A call is delayed, then at most one fault applies, in this order:
// dropped connection, 503, "still initializing", dropped connection after the operation.
import { setTimeout as sleep } from 'node:timers/promises';
import { SimError } from './errors.js';
import type { Answer } from './http.js';
import { show } from './validate.js';

export interface SimFaults {
  /** Added to every call. */
  latencyMs?: number;
  /** Up to this much more, uniformly. */
  latencyJitterMs?: number;
  /** 0..1: answer 503 NotConnectedError before doing anything. */
  rate503?: number;
  /** With rate503: answer 503 with an empty body, as a proxy in front of the cluster would. */
  minimal503?: boolean;
  /** 0..1: destroy the socket without answering (before doing anything). */
  dropRate?: number;
  /** 0..1: perform the operation, then destroy the socket (the "lost response" case). */
  dropAfterRate?: number;
  /** 0..1 of calls delayed by slowMs (on top of latencyMs). */
  slowRate?: number;
  slowMs?: number;
  /** 0..1: 500 "REST server is still initializing". */
  initializingRate?: number;
}

/** Thrown inside request handling to drop the connection instead of answering. */
export class Drop extends Error {
  constructor(readonly fault: string) {
    super(`injected fault: connection dropped (${fault})`);
  }
}

/** A fault answered instead of the operation. */
export class Answered extends Error {
  constructor(
    readonly fault: string,
    readonly answer: Answer,
  ) {
    super(`injected fault: ${fault}`);
  }
}

function rate(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? Math.min(1, Math.max(0, v)) : 0;
}

/** Checks a faults object (from setFaults or PUT /_sim/faults); throws with the offending field. */
export function checkFaults(f: unknown): SimFaults {
  if (f === null || typeof f !== 'object' || Array.isArray(f)) throw new Error('faults must be an object');
  const rates = ['rate503', 'dropRate', 'dropAfterRate', 'slowRate', 'initializingRate'];
  const durations = ['latencyMs', 'latencyJitterMs', 'slowMs'];
  for (const [k, v] of Object.entries(f)) {
    if (rates.includes(k)) {
      if (typeof v !== 'number' || !(v >= 0 && v <= 1)) throw new Error(`${k}: ${show(v)} must be a number from 0 to 1`);
    } else if (durations.includes(k)) {
      if (typeof v !== 'number' || !(v >= 0)) throw new Error(`${k}: ${show(v)} must be a number of milliseconds >= 0`);
    } else if (k === 'minimal503') {
      if (typeof v !== 'boolean') throw new Error(`${k}: ${show(v)} must be a boolean`);
    } else {
      throw new Error(`${k}: unknown fault`);
    }
  }
  return { ...(f as SimFaults) };
}

/**
 * Decides the fault of one call and waits out its delay (draws only for rates that are set, in
 * a fixed order, so a seeded `random` replays). Throws Drop or Answered when the call must not
 * run; otherwise says whether to drop the connection after running it.
 */
export async function injectFaults(f: SimFaults, random: () => number): Promise<{ dropAfter: boolean }> {
  const hit = (r: number | undefined): boolean => rate(r) > 0 && random() < rate(r);
  let delay = f.latencyMs ?? 0;
  if ((f.latencyJitterMs ?? 0) > 0) delay += random() * (f.latencyJitterMs ?? 0);
  if (hit(f.slowRate)) delay += f.slowMs ?? 0;
  const drop = hit(f.dropRate);
  const unavailable = !drop && hit(f.rate503);
  const initializing = !drop && !unavailable && hit(f.initializingRate);
  const dropAfter = !drop && !unavailable && !initializing && hit(f.dropAfterRate);
  if (delay > 0) await sleep(delay);
  if (drop) throw new Drop('drop');
  if (unavailable) {
    throw new Answered('503', {
      status: 503,
      body: f.minimal503 ? undefined : new SimError('NotConnectedError', 'The REST server is not connected to the cluster; retry later').body(),
      headers: { 'retry-after': '1' },
    });
  }
  if (initializing) {
    throw new Answered('initializing', {
      status: 500,
      body: new SimError('InternalError', 'REST server is still initializing').body(),
    });
  }
  return { dropAfter };
}
