// SPDX-License-Identifier: Apache-2.0
// The node's memory of what it attached, one small JSON file per PV (no secrets), and a
// per-PV lock so two call-outs for one volume (two pods, or kubelet retrying while a slow
// call runs) do not interleave a login with a logout.
//
// Why a record at all: `detach`/`unmount` get only the PV name. The record keeps what attach
// used (app instance, tenant, endpoint, target IQN and the portals it logged in to) so detach
// logs out of exactly those portals, even after the app instance was deleted or its IP pool
// changed. Without a record, detach/unmount do not call Datera at all: the PV name alone proves
// nothing about which app instance or server is ours (see detachVolume).
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { FlexError } from './reply.js';

export interface AttachmentRecord {
  pvName: string;
  appInstance: string;
  storageInstance: string;
  volume: string;
  endpoint: string;
  tenant: string;
  iqn: string;
  /** Target IPs (not portals), as Datera reports them in access.ips. */
  ips: string[];
  attachedAt: string;
  /** `k8s-claim-namespace` of the app instance, checked at attach: later mounts must match it. */
  claimNamespace?: string;
  /** The PV was ReadOnlyMany (mounted read-only, no single-writer check). */
  readOnlyMany?: boolean;
}

const recordFile = (dir: string, pv: string) => path.join(dir, `${pv}.json`);

export function readRecord(dir: string, pv: string): AttachmentRecord | undefined {
  try {
    return JSON.parse(fs.readFileSync(recordFile(dir, pv), 'utf8')) as AttachmentRecord;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    // A torn or hand-edited record is worth less than the Datera lookup that replaces it.
    return undefined;
  }
}

/** Written atomically (temp file + rename) so a crash never leaves half a record. */
export function writeRecord(dir: string, rec: AttachmentRecord): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = recordFile(dir, rec.pvName);
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(rec, null, 2)}\n`, { mode: 0o600 });
  fs.renameSync(tmp, file);
}

export function removeRecord(dir: string, pv: string): void {
  fs.rmSync(recordFile(dir, pv), { force: true });
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The live pid holding a lock; 0 while its owner is still writing it; 'gone' when the file
 * vanished meanwhile; 'stale' when its owner process no longer exists or it is older than
 * `staleMs` (a pid reused after a reboot must not keep a volume locked forever).
 */
function lockOwner(lock: string, staleMs: number): number | 'stale' | 'gone' {
  let text: string;
  let ageMs: number;
  try {
    text = fs.readFileSync(lock, 'utf8').trim();
    ageMs = Date.now() - fs.statSync(lock).mtimeMs;
  } catch {
    return 'gone';
  }
  const pid = Number(text);
  if (ageMs > staleMs) return 'stale';
  if (text === '' || !Number.isInteger(pid) || pid <= 0) return ageMs > 5_000 ? 'stale' : 0;
  return pidAlive(pid) ? pid : 'stale';
}

/** No call-out runs this long (mkfs included); an older lock belongs to a process that died. */
const LOCK_STALE_MS = 15 * 60_000;

/**
 * Runs `fn` holding `<dir>/<pv>.lock` (O_EXCL create). A lock whose owner process is gone is
 * taken over; a live owner is waited for up to `timeoutMs`, then the call fails and kubelet
 * retries it later.
 */
export async function withVolumeLock<T>(dir: string, pv: string, timeoutMs: number, pollMs: number, fn: () => Promise<T>): Promise<T> {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const lock = path.join(dir, `${pv}.lock`);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      fs.writeFileSync(lock, String(process.pid), { flag: 'wx', mode: 0o600 });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new FlexError(`cannot create ${lock}: ${(err as Error).message}`);
    }
    const owner = lockOwner(lock, LOCK_STALE_MS);
    if (owner === 'stale') fs.rmSync(lock, { force: true });
    if (owner === 'stale' || owner === 'gone') continue;
    if (Date.now() >= deadline) {
      throw new FlexError(`another datera/iscsi call-out (pid ${owner}) is still working on ${pv}; try again later`);
    }
    await sleep(Math.min(pollMs, 200));
  }
  try {
    return await fn();
  } finally {
    fs.rmSync(lock, { force: true });
  }
}
