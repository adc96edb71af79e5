// SPDX-License-Identifier: Apache-2.0
// iSCSI sessions as the targets see them, fed by the out-of-process `/_sim/iscsi/*` controls
// (a fake or stand-in iscsiadm on a test node). The API shows them as each storage instance's
// `active_initiators`; offlining or deleting a storage instance ends its sessions (state.ts).
import { SimError, invalid, notFound, validationFailed } from './errors.js';
import type { AiRec, Json, SiRec } from './model.js';
import type { SimState } from './state.js';
import { show } from './validate.js';

/** One iSCSI session: an initiator logged in to a storage instance's target through one portal. */
export interface IscsiSession {
  /** Target IQN (`access.iqn` of the storage instance). */
  target: string;
  /** Initiator IQN (or EUI) of the node that logged in. */
  initiator: string;
  /** `ip:port` the node logged in through, or "" when the caller did not say. */
  portal: string;
  /** ISO time of the login. */
  since: string;
}

/** A LUN of a target whose volume has a backing file (SimOptions.backingDir). */
export interface IscsiLun {
  /** LUN number: the volume's position in its storage instance (Datera exports volume i as LUN i). */
  lun: number;
  volume: string;
  /** The volume's uuid as the API shows it. */
  uuid: string;
  size: number;
  /** Absolute path of the sparse backing file. */
  path: string;
}

const INITIATOR_ID = /^(iqn\.\d{4}-\d{2}\.\S+|eui\.[0-9A-Fa-f]{16})$/;

/** The storage instance whose target is `iqn`, in any tenant. */
function siByTarget(s: SimState, iqn: string): { ai: AiRec; si: SiRec } | undefined {
  for (const t of s.tenants.values()) {
    for (const ai of t.ais.values()) {
      const si = ai.storage_instances.find((x) => x.iqn === iqn);
      if (si) return { ai, si };
    }
  }
  return undefined;
}

/** The LUNs of a storage instance with their backing files; undefined without backing files. */
function lunsOf(s: SimState, si: SiRec): IscsiLun[] | undefined {
  const backing = s.opts.backing;
  if (!backing) return undefined;
  return si.volumes.map((v, lun) => ({ lun, volume: v.name, uuid: v.uuid, size: v.size, path: backing.pathOf(v.backingId) }));
}

/** 422 naming each bad field: target (required when `needTarget`), initiator, portal. */
function checkSessionFields(b: Json, needTarget: boolean): { target?: string; initiator: string; portal: string } {
  const errors: string[] = [];
  const target = b['target'];
  const initiator = b['initiator'];
  const portal = b['portal'] ?? '';
  if (needTarget ? typeof target !== 'string' || target === '' : target !== undefined && typeof target !== 'string') {
    errors.push('target: the target IQN (a string) is required');
  }
  if (typeof initiator !== 'string' || !INITIATOR_ID.test(initiator)) errors.push(`initiator: ${show(initiator)} is not an iqn.* or eui.* name`);
  if (typeof portal !== 'string') errors.push('portal: must be a string "ip:port"');
  if (errors.length) throw validationFailed(errors);
  return { target: target as string | undefined, initiator: initiator as string, portal: portal as string };
}

/**
 * A login as the target judges it: the storage instance must exist and be online, the portal
 * (when given) must be one of its access IPs, and the initiator must be in its ACL (403
 * PermissionDeniedError otherwise, the "authorization failure" iscsiadm reports). Logging in
 * again on the same portal is not an error (iscsiadm: session exists). With backing files,
 * the answer carries `luns`: the target's LUNs with the file behind each.
 */
export function iscsiLogin(s: SimState, b: Json): { session: IscsiSession; existed: boolean; luns?: IscsiLun[] } {
  const { target, initiator, portal } = checkSessionFields(b, true);
  const found = siByTarget(s, target!);
  if (!found) throw notFound(`Target ${target}`);
  const { ai, si } = found;
  if (si.admin_state !== 'online' || ai.admin_state !== 'online') throw invalid(`Target ${target} is offline`);
  if (portal) {
    const ip = portal.replace(/^\[/, '').replace(/\]?:\d+$/, '');
    if (!si.ips.includes(ip)) throw invalid(`Portal ${portal} does not serve target ${target} (its IPs: ${si.ips.join(', ')})`);
  }
  if (!si.initiators.includes(`/initiators/${initiator}`)) {
    throw new SimError('PermissionDeniedError', `Initiator ${initiator} is not in the ACL of ${ai.name}/${si.name}: login refused (authorization failure)`);
  }
  const luns = lunsOf(s, si);
  const same = s.sessions.find((x) => x.target === target && x.initiator === initiator && x.portal === portal);
  if (same) return { session: { ...same }, existed: true, ...(luns ? { luns } : {}) };
  const session: IscsiSession = { target: target!, initiator, portal, since: new Date().toISOString() };
  s.sessions.push(session);
  return { session: { ...session }, existed: false, ...(luns ? { luns } : {}) };
}

/** Ends the sessions of `initiator` to `target` (one portal, or all when none is given). */
export function iscsiLogout(s: SimState, b: Json): { removed: number } {
  const { target, initiator, portal } = checkSessionFields(b, true);
  const before = s.sessions.length;
  s.sessions = s.sessions.filter((x) => !(x.target === target && x.initiator === initiator && (!portal || x.portal === portal)));
  return { removed: before - s.sessions.length };
}

/**
 * Ends every session of `initiator` (to one `target` when given) without a logout: the target
 * timing out a node that stopped answering NOP-Out pings (a dead or cut-off node).
 */
export function iscsiDrop(s: SimState, b: Json): { removed: number } {
  const { target, initiator } = checkSessionFields(b, false);
  const before = s.sessions.length;
  s.sessions = s.sessions.filter((x) => !(x.initiator === initiator && (!target || x.target === target)));
  return { removed: before - s.sessions.length };
}

/** Copies of the live sessions, oldest first. */
export function iscsiSessions(s: SimState): IscsiSession[] {
  return s.sessions.map((x) => ({ ...x }));
}
