// SPDX-License-Identifier: Apache-2.0
// Filesystems on the node: what is mounted where, detect-or-format, mount, unmount, grow.
// The rule that matters most: never run mkfs on a device that blkid says holds a filesystem,
// and never format when blkid cannot tell.
import fs from 'node:fs';
import { checkResult, outputSummary, type HostRunner } from './host.js';
import type { FsType } from './options.js';
import { FlexError } from './reply.js';

export interface MountEntry {
  source: string;
  target: string;
  fsType: string;
  options: string[];
}

/** /proc/mounts escapes space, tab, newline and backslash as octal (`\040`). */
const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

export function parseMounts(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 4) continue;
    out.push({ source: unescape(f[0]!), target: unescape(f[1]!), fsType: f[2]!, options: f[3]!.split(',') });
  }
  return out;
}

export function readMounts(procMounts: string): MountEntry[] {
  try {
    return parseMounts(fs.readFileSync(procMounts, 'utf8'));
  } catch (err) {
    throw new FlexError(`cannot read ${procMounts}: ${(err as Error).message}`);
  }
}

/** Canonical path (symlinks resolved) or the path itself when it does not resolve. */
export function canonical(p: string): string {
  try {
    return fs.realpathSync(p);
  } catch {
    return p;
  }
}

/** The last mount at `target` (the one visible there), if any. */
export function mountAt(mounts: MountEntry[], target: string): MountEntry | undefined {
  const t = canonical(target);
  return mounts.filter((m) => m.target === target || m.target === t).at(-1);
}

/** Every mount whose source is one of `devices` (compared after resolving symlinks). */
export function mountsOf(mounts: MountEntry[], devices: string[]): MountEntry[] {
  const wanted = new Set(devices.map(canonical));
  return mounts.filter((m) => m.source.startsWith('/') && wanted.has(canonical(m.source)));
}

/**
 * The filesystem type on a device, or undefined when there is none. blkid exits 2 when it finds
 * nothing; any other failure is an error, because "cannot tell" must never lead to mkfs.
 */
export async function detectFs(run: HostRunner, device: string): Promise<string | undefined> {
  const r = await run.run('blkid', ['-o', 'value', '-s', 'TYPE', device]);
  if (r.code === 2) return undefined;
  checkResult(`blkid ${device}`, r);
  return r.stdout.trim() || undefined;
}

export async function makeFs(run: HostRunner, device: string, fsType: FsType): Promise<void> {
  // mkfs.xfs without -f refuses to overwrite a filesystem it recognises: a second safety net.
  // mkfs.ext4 needs -F to accept a whole device without asking.
  const [cmd, args] = fsType === 'xfs' ? ['mkfs.xfs', [device]] : ['mkfs.ext4', ['-F', device]];
  checkResult(`${cmd} ${device}`, await run.run(cmd, args));
}

export async function mountDevice(run: HostRunner, device: string, target: string, fsType: string, readOnly: boolean): Promise<void> {
  const args = ['-t', fsType, ...(readOnly ? ['-o', 'ro'] : []), device, target];
  const r = await run.run('mount', args);
  if (r.code !== 0) throw new FlexError(`mount ${device} on ${target} failed (exit ${r.code}): ${outputSummary(r) || 'no output'}`);
}

/** Bind-mounts an existing mount (another pod's) onto `target`, then makes it read-only if asked. */
export async function bindMount(run: HostRunner, source: string, target: string, readOnly: boolean): Promise<void> {
  checkResult(`mount --bind ${source} ${target}`, await run.run('mount', ['--bind', source, target]));
  if (readOnly) {
    const r = await run.run('mount', ['-o', 'remount,bind,ro', target]);
    if (r.code !== 0) {
      await run.run('umount', [target]);
      throw new FlexError(`cannot make ${target} read-only (exit ${r.code}): ${outputSummary(r) || 'no output'}`);
    }
  }
}

export async function unmount(run: HostRunner, target: string): Promise<void> {
  checkResult(`umount ${target}`, await run.run('umount', [target]));
}

/**
 * Gives the pod's fsGroup the root of a new filesystem: group ownership plus setgid and group
 * rwx, so files the pod creates inherit the group. kubelet applies the full ownership policy
 * afterwards (fsGroup capability); this covers the root of a freshly made filesystem.
 */
export async function applyFsGroup(run: HostRunner, target: string, gid: number): Promise<void> {
  checkResult(`chgrp ${gid} ${target}`, await run.run('chgrp', [String(gid), target]));
  const mode = fs.statSync(target).mode & 0o7777;
  fs.chmodSync(target, mode | 0o2070);
}

/** Grows the filesystem to the device size: xfs by mount point, ext4 by device. */
export async function growFs(run: HostRunner, fsType: string, device: string, mountPoint: string | undefined): Promise<void> {
  if (fsType === 'xfs') {
    if (!mountPoint) throw new FlexError(`cannot grow xfs on ${device}: it is not mounted`);
    checkResult(`xfs_growfs ${mountPoint}`, await run.run('xfs_growfs', [mountPoint]));
  } else if (fsType === 'ext4' || fsType === 'ext3') {
    checkResult(`resize2fs ${device}`, await run.run('resize2fs', [device]));
  } else {
    throw new FlexError(`cannot grow a ${fsType} filesystem`);
  }
}
