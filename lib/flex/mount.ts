// SPDX-License-Identifier: Apache-2.0
// Filesystems on the node: what is mounted where, detect-or-format, mount, unmount, grow.
// The rule that matters most: format only a device proven blank (blkid's low-level probe finds
// nothing and the first MiB reads back as zeros); anything else is mounted as the filesystem it
// is, or refused with what was found.
import fs from 'node:fs';
import type { FsType } from '../provision/values.js';
import { checkResult, outputSummary, type CommandResult, type HostRunner } from './host.js';
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

/** Filesystems the driver mounts as they are found. ext2/ext3 are mounted (the ext4 driver reads them), never made. */
const MOUNTABLE_FS = ['xfs', 'ext4', 'ext3', 'ext2'] as const;
export type MountableFs = (typeof MOUNTABLE_FS)[number];

/** What a device holds, as far as the driver acts on it. Anything else is a FlexError. */
export type DeviceContent = { kind: 'blank' } | { kind: 'filesystem'; fsType: MountableFs };

/** Bytes at the start of a device the driver reads itself before it calls a device blank. */
export const HEAD_BYTES = 1024 * 1024;

const refuse = (device: string, why: string) => new FlexError(`${device} ${why}; refusing to format or mount it`);
const cannotTell = (device: string, why: string) => new FlexError(`cannot tell whether ${device} is blank: ${why}; refusing to format it`);

/** `KEY=value` lines of `blkid -o export` (values are unquoted there). */
export function parseExport(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) out[line.slice(0, i).trim()] = line.slice(i + 1).trim();
  }
  return out;
}

/**
 * Reads what `blkid -p -o export <device>` (low-level probe: superblocks and partition tables,
 * every usage) said. Contract:
 * - exit 0 with TYPE xfs/ext4/ext3/ext2 and no partition table: a filesystem, mounted as it is;
 * - exit 0 with anything else (a partition table, another TYPE such as LVM2_member,
 *   crypto_LUKS or swap, or only other keys): FlexError naming what was found;
 * - exit 2 with no output: nothing found, which is only a candidate for "blank" (blkid also
 *   exits 2 when it cannot open or read the device), see probeDevice;
 * - exit 8 (more than one signature), 4 (usage error), any other exit, or exit 2 with a message:
 *   FlexError "cannot tell".
 */
export function classifyProbe(device: string, r: CommandResult): DeviceContent {
  if (r.code === 2) {
    const said = outputSummary(r);
    if (said) throw cannotTell(device, `blkid -p exited 2 with: ${said}`);
    return { kind: 'blank' };
  }
  if (r.code === 8) throw cannotTell(device, `blkid -p found more than one signature (ambivalent result; wipefs -n ${device} lists them)`);
  if (r.code !== 0) throw cannotTell(device, `blkid -p exited ${r.code}: ${outputSummary(r) || 'no output'}`);
  const found = parseExport(r.stdout);
  delete found.DEVNAME;
  if (found.PTTYPE) throw refuse(device, `holds a partition table (PTTYPE=${found.PTTYPE}${found.TYPE ? `, TYPE=${found.TYPE}` : ''})`);
  const type = found.TYPE;
  if (type && (MOUNTABLE_FS as readonly string[]).includes(type)) return { kind: 'filesystem', fsType: type as MountableFs };
  if (type) {
    throw refuse(device, `holds ${type}${found.USAGE ? ` (usage ${found.USAGE})` : ''}, not a filesystem this driver mounts (${MOUNTABLE_FS.join(', ')})`);
  }
  const keys = Object.entries(found).map(([k, v]) => `${k}=${v}`);
  if (keys.length === 0) throw cannotTell(device, 'blkid -p exited 0 but reported nothing');
  throw refuse(device, `holds a signature without a filesystem type (${keys.join(' ')})`);
}

/**
 * The first `bytes` of the device, read by the driver itself, must be readable and all zero for
 * a device to count as blank: blkid reports "nothing found" both for a device it cannot read and
 * for data in a format it does not know. A fresh Datera volume reads back as zeros.
 */
export function checkHeadIsZero(device: string, bytes = HEAD_BYTES): void {
  let fd: number;
  try {
    fd = fs.openSync(device, 'r');
  } catch (err) {
    throw cannotTell(device, `cannot open it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  try {
    const buf = Buffer.alloc(bytes);
    let filled = 0;
    while (filled < bytes) {
      let n: number;
      try {
        n = fs.readSync(fd, buf, filled, bytes - filled, filled);
      } catch (err) {
        throw cannotTell(device, `reading it at byte ${filled} failed (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
      }
      if (n === 0) break;
      filled += n;
    }
    const at = buf.subarray(0, filled).findIndex((b) => b !== 0);
    if (at >= 0) throw refuse(device, `holds data in a format blkid does not recognise (non-zero byte at offset ${at})`);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * What the device holds. "blank" only when blkid's low-level probe finds nothing and the
 * device's first HEAD_BYTES read back as zeros; every other outcome that is not a filesystem
 * the driver mounts is a FlexError that says what was found or why it cannot tell.
 */
export async function probeDevice(run: HostRunner, device: string): Promise<DeviceContent> {
  const content = classifyProbe(device, await run.run('blkid', ['-p', '-o', 'export', device]));
  if (content.kind === 'blank') checkHeadIsZero(device);
  return content;
}

/** The filesystem type on a device, or undefined when the device is proven blank (see probeDevice). */
export async function detectFs(run: HostRunner, device: string): Promise<MountableFs | undefined> {
  const content = await probeDevice(run, device);
  return content.kind === 'filesystem' ? content.fsType : undefined;
}

/**
 * Makes a filesystem; callers run it only on a device probeDevice proved blank. mkfs.xfs runs
 * without -f, so it still refuses a filesystem it recognises (a second net); mkfs.ext4 needs -F
 * to accept a whole device without asking, so for ext4 the probe is the only guard.
 */
export async function makeFs(run: HostRunner, device: string, fsType: FsType): Promise<void> {
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
