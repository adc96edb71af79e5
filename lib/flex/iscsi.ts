// SPDX-License-Identifier: Apache-2.0
// open-iscsi on the node: the initiator name, sessions, login/logout per portal, and the
// block device a login produces (the by-path link, or the multipath map holding it).
import fs from 'node:fs';
import path from 'node:path';
import { checkResult, outputSummary, type HostRunner } from './host.js';
import type { Chap } from './options.js';
import { FlexError } from './reply.js';

const ISCSI_PORT = 3260;
/** Datera exports one volume per storage instance target as LUN 0. */
const LUN = 0;

/** iscsiadm exit code for "no records / no sessions found". */
const ISCSI_ERR_NO_OBJS_FOUND = 21;
/** iscsiadm exit code for "session already exists". */
const ISCSI_ERR_SESS_EXISTS = 15;

/** `ip:3260`, with brackets for IPv6, as iscsiadm's `-p` and the by-path names spell it. */
export function portalAddress(ip: string): string {
  return ip.includes(':') ? `[${ip}]:${ISCSI_PORT}` : `${ip}:${ISCSI_PORT}`;
}

/** `InitiatorName=iqn....` from open-iscsi's initiatorname.iscsi (comments ignored). */
export function parseInitiatorName(text: string): string | undefined {
  for (const line of text.split('\n')) {
    const m = /^\s*InitiatorName\s*=\s*(\S+)\s*$/.exec(line);
    if (m) return m[1];
  }
  return undefined;
}

export function readInitiatorName(file: string): string {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new FlexError(`cannot read the node's iSCSI initiator name from ${file} (is open-iscsi installed?): ${(err as Error).message}`);
  }
  const iqn = parseInitiatorName(text);
  if (!iqn) throw new FlexError(`${file} has no InitiatorName= line`);
  return iqn;
}

export interface Session {
  sid: string;
  /** `ip:3260` (brackets for IPv6), without the portal group tag. */
  portal: string;
  iqn: string;
}

/** Lines like `tcp: [3] 172.28.41.43:3260,1 iqn.2013-05.com.daterainc:tc:01:sn:9b8e... (non-flash)`. */
export function parseSessions(stdout: string): Session[] {
  const out: Session[] = [];
  for (const line of stdout.split('\n')) {
    const m = /^\s*\S+:\s+\[(\d+)\]\s+(\S+?),\d+\s+(\S+)/.exec(line);
    if (m) out.push({ sid: m[1]!, portal: m[2]!, iqn: m[3]! });
  }
  return out;
}

export async function listSessions(run: HostRunner): Promise<Session[]> {
  const r = await run.run('iscsiadm', ['-m', 'session']);
  if (r.code === ISCSI_ERR_NO_OBJS_FOUND) return [];
  checkResult('iscsiadm -m session', r);
  return parseSessions(r.stdout);
}

/** `<dev>/disk/by-path/ip-<ip>:3260-iscsi-<iqn>-lun-0`: the path udev creates for a login. */
export function byPathLink(devDir: string, portal: string, iqn: string, lun = LUN): string {
  return path.join(devDir, 'disk', 'by-path', `ip-${portal}-iscsi-${iqn}-lun-${lun}`);
}

const node = (iqn: string, portal: string) => ['-m', 'node', '-T', iqn, '-p', portal];

/**
 * Creates the node record, applies CHAP when given, and logs in. A session that exists already
 * counts as success. On a failed login the record is deleted, so a later retry starts clean.
 */
export async function login(run: HostRunner, iqn: string, portal: string, chap: Chap | undefined): Promise<void> {
  checkResult(`iscsiadm new node ${portal}`, await run.run('iscsiadm', [...node(iqn, portal), '-o', 'new']));
  if (chap) {
    const settings: [string, string][] = [
      ['node.session.auth.authmethod', 'CHAP'],
      ['node.session.auth.username', chap.user],
      ['node.session.auth.password', chap.password],
    ];
    if (chap.userIn && chap.passwordIn) {
      settings.push(['node.session.auth.username_in', chap.userIn], ['node.session.auth.password_in', chap.passwordIn]);
    }
    for (const [name, value] of settings) {
      const r = await run.run('iscsiadm', [...node(iqn, portal), '-o', 'update', '-n', name, '-v', value]);
      checkResult(`iscsiadm update ${name} for ${portal}`, r);
    }
  }
  const r = await run.run('iscsiadm', [...node(iqn, portal), '-l']);
  if (r.code === 0 || r.code === ISCSI_ERR_SESS_EXISTS) return;
  await run.run('iscsiadm', [...node(iqn, portal), '-o', 'delete']);
  throw new FlexError(`login to ${portal} failed (iscsiadm exit ${r.code}): ${outputSummary(r) || 'no output'}`);
}

/** Rescans an existing session so a LUN that disappeared (or grew) is picked up again. */
export async function rescan(run: HostRunner, iqn: string, portal: string): Promise<void> {
  await run.run('iscsiadm', [...node(iqn, portal), '-R']);
}

/** Logs out when a session exists; then removes the node record (absent is fine). */
export async function logout(run: HostRunner, iqn: string, portal: string, sessionExists: boolean): Promise<void> {
  if (sessionExists) {
    const r = await run.run('iscsiadm', [...node(iqn, portal), '-u']);
    checkResult(`iscsiadm logout from ${portal}`, r, [0, ISCSI_ERR_NO_OBJS_FOUND]);
  }
  const d = await run.run('iscsiadm', [...node(iqn, portal), '-o', 'delete']);
  checkResult(`iscsiadm delete node ${portal}`, d, [0, ISCSI_ERR_NO_OBJS_FOUND]);
}

/** The `/dev/dm-N` of the multipath map that holds `sdX`, if any (via /sys/block/dm-*\/slaves). */
export function multipathHolder(sysDir: string, devDir: string, sdName: string): string | undefined {
  const blockDir = path.join(sysDir, 'block');
  let entries: string[];
  try {
    entries = fs.readdirSync(blockDir);
  } catch {
    return undefined;
  }
  for (const dm of entries.filter((e) => e.startsWith('dm-')).sort()) {
    if (fs.existsSync(path.join(blockDir, dm, 'slaves', sdName))) return path.join(devDir, dm);
  }
  return undefined;
}

/** The map name (`/sys/block/dm-N/dm/name`) that `multipath -f` takes; falls back to the dm node. */
export function multipathMapName(sysDir: string, dmDevice: string): string {
  try {
    const name = fs.readFileSync(path.join(sysDir, 'block', path.basename(dmDevice), 'dm', 'name'), 'utf8').trim();
    if (name) return name;
  } catch {
    // no name file: use the device node
  }
  return dmDevice;
}

/** The kernel device (`/dev/sdX`) behind a by-path link, if the link resolves. */
export function resolveLink(link: string): string | undefined {
  try {
    return fs.realpathSync(link);
  } catch {
    return undefined;
  }
}
