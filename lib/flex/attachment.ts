// SPDX-License-Identifier: Apache-2.0
// Attach and detach one Datera volume on this node: the Datera side (initiator, ACL, online,
// wait for the target) and the iSCSI side (login to every portal, find the device), and the
// reverse. Both are idempotent; kubelet retries any call-out that failed.
import fs from 'node:fs';
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { isDateraNotFound } from '../datera/errors.js';
import type { DateraApi, StorageInstance } from '../datera/types.js';
import type { FlexConfig } from './config.js';
import { readNodeSettings } from './config.js';
import { explainDateraError, nodeServerAllowed, resolveConnection, type ClientFactory, type DateraConnection } from './datera.js';
import { checkResult, commandOnPath, type HostRunner } from './host.js';
import {
  byPathLink,
  listSessions,
  login,
  logout,
  multipathHolder,
  multipathMapName,
  portalAddress,
  readInitiatorName,
  rescan,
  resolveLink,
} from './iscsi.js';
import type { Logger } from './log.js';
import { mountsOf, readMounts } from './mount.js';
import type { Chap, VolumeRef } from './options.js';
import { checkNamespace, checkOwnership } from './ownership.js';
import { FlexError } from './reply.js';
import { readRecord, removeRecord, writeRecord } from './state.js';

/** Everything a call-out needs from the outside world; tests replace the parts. */
export interface DriverContext {
  cfg: FlexConfig;
  run: HostRunner;
  log: Logger;
  clients: ClientFactory;
}

/** A label Datera accepts for an initiator object (`^[a-zA-Z_][a-zA-Z0-9_\-\s\.]{2,127}$`). */
export function initiatorLabel(host: string = os.hostname()): string {
  return `k8s_${host.replace(/[^a-zA-Z0-9_\-.]/g, '_')}`.slice(0, 128);
}

/** True when a multipath configuration for Datera exists on this node. */
function multipathConfigured(cfg: FlexConfig): boolean {
  return cfg.multipathConfFiles.some((f) => fs.existsSync(f));
}

/**
 * The device a logged-in target gives, preferring the multipath map over a single path:
 * `/dev/dm-N` when a map holds one of the paths, else the first by-path link that exists.
 */
function deviceFor(cfg: FlexConfig, iqn: string, ips: string[]): { device: string; link: string; dm?: string } | undefined {
  for (const ip of ips) {
    const link = byPathLink(cfg.devDir, portalAddress(ip), iqn);
    const sd = resolveLink(link);
    if (!sd || !fs.existsSync(sd)) continue;
    const dm = multipathHolder(cfg.sysDir, cfg.devDir, sd.split('/').pop()!);
    return { device: dm ?? link, link, dm };
  }
  return undefined;
}

/** Every node that could stand for this target: links, the sdX they resolve to, their dm maps. */
function targetDevices(cfg: FlexConfig, iqn: string, portals: string[]): { devices: string[]; maps: string[] } {
  const devices: string[] = [];
  const maps = new Set<string>();
  for (const portal of portals) {
    const link = byPathLink(cfg.devDir, portal, iqn);
    const sd = resolveLink(link);
    if (!sd) continue;
    devices.push(link, sd);
    const dm = multipathHolder(cfg.sysDir, cfg.devDir, sd.split('/').pop()!);
    if (dm) maps.add(dm);
  }
  return { devices: [...devices, ...maps], maps: [...maps] };
}

/** Waits for the device of a target after login; then briefly for multipathd when configured. */
async function waitForDevice(ctx: DriverContext, iqn: string, ips: string[]): Promise<string> {
  const { cfg } = ctx;
  const deadline = Date.now() + cfg.deviceTimeoutMs;
  let found = deviceFor(cfg, iqn, ips);
  while (!found && Date.now() < deadline) {
    await sleep(cfg.pollMs);
    found = deviceFor(cfg, iqn, ips);
  }
  if (!found) {
    const links = ips.map((ip) => byPathLink(cfg.devDir, portalAddress(ip), iqn));
    throw new FlexError(`logged in to ${iqn} but no device appeared within ${cfg.deviceTimeoutMs / 1000}s (looked for ${links.join(', ')})`);
  }
  if (!found.dm && multipathConfigured(cfg)) {
    if (!commandOnPath(cfg.commandPath, 'multipath')) {
      // The DaemonSet writes the configuration on every node; without multipath-tools no map
      // ever forms, so waiting for one would only delay every attach.
      ctx.log.info('multipath is configured but multipath-tools is not installed (no multipath on PATH); using the single path', {
        link: found.link,
      });
    } else {
      const mpDeadline = Date.now() + cfg.multipathTimeoutMs;
      while (!found.dm && Date.now() < mpDeadline) {
        await sleep(cfg.pollMs);
        found = deviceFor(cfg, iqn, ips) ?? found;
      }
      if (!found.dm) ctx.log.warn('multipath is configured but no map holds the device; using the single path', { link: found.link });
    }
  }
  return found.device;
}

/** The node's initiator must exist in our tenant (one in a parent tenant does not count). */
async function ensureInitiator(api: DateraApi, iqn: string, tenant: string, label: string, log: Logger): Promise<void> {
  try {
    const existing = await api.getInitiator(iqn);
    if (!existing.tenant || existing.tenant === tenant) return;
    log.info('initiator belongs to another tenant; creating our own', { iqn, tenant: existing.tenant });
  } catch (err) {
    if (!isDateraNotFound(err)) throw err;
  }
  await api.createInitiator(iqn, label, true);
}

/** "node node-a (initiator iqn...)" from the label the driver gives initiators (`k8s_<node>`). */
async function describeInitiator(api: DateraApi, iqn: string): Promise<string> {
  let name = '';
  try {
    name = (await api.getInitiator(iqn)).name ?? '';
  } catch {
    // unknown to this tenant: name only the IQN
  }
  return name.startsWith('k8s_') ? `node ${name.slice(4)} (initiator ${iqn})` : `initiator ${iqn}${name ? ` ("${name}")` : ''}`;
}

const aclIqns = (si: StorageInstance): string[] =>
  (si.acl_policy?.initiators ?? []).map((r) => r.path.replace(/^\/initiators\//, '')).filter((x) => x !== '');

async function storageInstanceOf(api: DateraApi, ref: VolumeRef): Promise<StorageInstance> {
  const ai = await api.getAppInstance(ref.appInstance);
  const si = ai.storage_instances.find((s) => s.name === ref.storageInstance);
  if (!si) throw new FlexError(`app instance ${ref.appInstance} has no storage instance ${ref.storageInstance}`);
  return si;
}

/**
 * One writing node per ReadWriteOnce volume (Kubernetes runs no multi-attach check for
 * `attach: false` drivers). Refuses while another initiator has a live iSCSI session to the
 * target (Datera's `active_initiators`), naming that node. Otherwise this node takes the volume
 * over: initiators left in the ACL without a live session (a node that unmounted without
 * cleaning up, or a dead node whose sessions the target has timed out) are removed, so a
 * returning dead node cannot log back in and write under the new owner.
 */
async function claimSingleWriter(ctx: DriverContext, api: DateraApi, ref: VolumeRef, nodeIqn: string): Promise<void> {
  const si = await storageInstanceOf(api, ref);
  const others = (si.active_initiators ?? []).filter((i) => i !== nodeIqn);
  if (others.length > 0) {
    const who = await Promise.all(others.map((i) => describeInitiator(api, i)));
    throw new FlexError(
      `${ref.pvName} is ReadWriteOnce and ${who.join(', ')} still has a live iSCSI session to it; it attaches here once that node unmounts it (or, if that node died, once the target times out its sessions)`,
    );
  }
  for (const iqn of aclIqns(si).filter((i) => i !== nodeIqn)) {
    await api.removeAclInitiator(ref.appInstance, ref.storageInstance, iqn);
    ctx.log.warn('took over a ReadWriteOnce volume: removed an initiator without a live session from its ACL', {
      pv: ref.pvName,
      initiator: iqn,
    });
  }
}

/** Polls until the storage instance is available and exports its IQN and portal IPs. */
async function waitForTarget(ctx: DriverContext, api: DateraApi, ref: VolumeRef): Promise<{ iqn: string; ips: string[] }> {
  const deadline = Date.now() + ctx.cfg.onlineTimeoutMs;
  for (;;) {
    const ai = await api.getAppInstance(ref.appInstance);
    const si: StorageInstance | undefined = ai.storage_instances.find((s) => s.name === ref.storageInstance);
    if (!si) throw new FlexError(`app instance ${ref.appInstance} has no storage instance ${ref.storageInstance}`);
    if (ai.admin_state !== 'online') await api.setAdminState(ref.appInstance, 'online');
    else if (si.op_state === 'available' && si.access?.iqn && si.access.ips?.length) return { iqn: si.access.iqn, ips: [...si.access.ips] };
    if (Date.now() >= deadline) {
      throw new FlexError(
        `storage instance ${ref.appInstance}/${ref.storageInstance} is not available after ${ctx.cfg.onlineTimeoutMs / 1000}s (admin_state=${ai.admin_state}, op_state=${si.op_state}, ips=${si.access?.ips?.length ?? 0})`,
      );
    }
    await sleep(ctx.cfg.pollMs);
  }
}

export interface AttachRequest {
  ref: VolumeRef;
  conn: DateraConnection;
  chap: Chap | undefined;
  /** kubelet's `kubernetes.io/pod.namespace` on `mount`; undefined on `attach` (no pod there). */
  podNamespace?: string;
  /** This node's Kubernetes name for its initiator label (`k8s_<node>`); default the host name. */
  nodeName?: string;
}

/**
 * Makes the volume a block device on this node and returns its path. If this node already has
 * a session to the volume's target and the device is present, nothing is asked of Datera (a
 * mount's pod namespace is then checked against the claim namespace recorded at attach).
 *
 * Otherwise, before touching the ACL or logging in: the app instance's ownership metadata must
 * name this PV (and the pod's namespace on mount), and a ReadWriteOnce volume must have no live
 * session from another node. After the login, a ReadWriteOnce volume is checked once more for a
 * node that logged in concurrently; then both back off (logout, leave the ACL) and kubelet
 * retries, so two nodes never both mount it.
 */
export async function attachVolume(ctx: DriverContext, req: AttachRequest): Promise<string> {
  const { cfg, run, log } = ctx;
  const { ref, conn, chap, podNamespace } = req;
  const prior = readRecord(cfg.stateDir, ref.pvName);
  if (prior && prior.appInstance === ref.appInstance && (podNamespace === undefined || prior.claimNamespace)) {
    const live = (await listSessions(run)).filter((s) => s.iqn === prior.iqn);
    const device = deviceFor(cfg, prior.iqn, prior.ips);
    if (live.length > 0 && device) {
      if (podNamespace !== undefined) checkNamespace(`app instance ${ref.appInstance}`, prior.claimNamespace!, podNamespace);
      log.info('already attached', { pv: ref.pvName, device: device.device, sessions: live.length });
      return device.device;
    }
  }

  const nodeIqn = readInitiatorName(cfg.initiatorNameFile);
  const api = ctx.clients(conn, log);
  let target: { iqn: string; ips: string[] };
  let owner: { claimNamespace: string };
  let step = `read the ownership metadata of app instance ${ref.appInstance}`;
  try {
    owner = checkOwnership(await api.getMetadata(ref.appInstance), ref, podNamespace);
    step = `register initiator ${nodeIqn}`;
    await ensureInitiator(api, nodeIqn, conn.tenant, initiatorLabel(req.nodeName || undefined), log);
    if (!ref.readOnlyMany) {
      step = `check that no other node uses ${ref.appInstance}/${ref.storageInstance}`;
      await claimSingleWriter(ctx, api, ref, nodeIqn);
    }
    step = `add ${nodeIqn} to the ACL of ${ref.appInstance}/${ref.storageInstance}`;
    await api.addAclInitiator(ref.appInstance, ref.storageInstance, nodeIqn);
    step = `bring ${ref.appInstance} online`;
    target = await waitForTarget(ctx, api, ref);
  } catch (err) {
    if (isDateraNotFound(err)) {
      throw new FlexError(`app instance ${ref.appInstance} was not found on Datera ${conn.endpoint} (tenant ${conn.tenant}) while trying to ${step}`, { cause: err });
    }
    throw explainDateraError(err, conn, step);
  }

  // Record first: a crash between login and reply must still leave detach something to undo.
  writeRecord(cfg.stateDir, {
    pvName: ref.pvName,
    appInstance: ref.appInstance,
    storageInstance: ref.storageInstance,
    volume: ref.volume,
    endpoint: conn.endpoint,
    tenant: conn.tenant,
    iqn: target.iqn,
    ips: target.ips,
    attachedAt: new Date().toISOString(),
    claimNamespace: owner.claimNamespace,
    readOnlyMany: ref.readOnlyMany,
  });

  const sessions = (await listSessions(run)).filter((s) => s.iqn === target.iqn);
  const loggedIn: string[] = [];
  const failed: string[] = [];
  for (const ip of target.ips) {
    const portal = portalAddress(ip);
    if (sessions.some((s) => s.portal === portal)) {
      if (!resolveLink(byPathLink(cfg.devDir, portal, target.iqn))) await rescan(run, target.iqn, portal);
      loggedIn.push(ip);
      continue;
    }
    try {
      await login(run, target.iqn, portal, chap);
      loggedIn.push(ip);
    } catch (err) {
      failed.push((err as Error).message);
      log.warn('iSCSI portal unusable', { pv: ref.pvName, portal, err: (err as Error).message });
    }
  }
  if (loggedIn.length === 0) {
    throw new FlexError(`iSCSI login to ${target.iqn} failed on every portal: ${failed.join('; ')}`);
  }
  if (!ref.readOnlyMany) await checkStillSoleWriter(ctx, api, conn, ref, nodeIqn, target.iqn);
  const device = await waitForDevice(ctx, target.iqn, loggedIn);
  log.info('attached', { pv: ref.pvName, device, portals: loggedIn.map(portalAddress), failedPortals: failed.length });
  return device;
}

/**
 * After the login: if another node logged in to the ReadWriteOnce target at the same time, undo
 * ours (logout, ACL entry, record) and fail; kubelet retries and the earlier check then decides.
 */
async function checkStillSoleWriter(
  ctx: DriverContext,
  api: DateraApi,
  conn: DateraConnection,
  ref: VolumeRef,
  nodeIqn: string,
  targetIqn: string,
): Promise<void> {
  let others: string[];
  try {
    others = ((await storageInstanceOf(api, ref)).active_initiators ?? []).filter((i) => i !== nodeIqn);
  } catch (err) {
    others = [];
    ctx.log.warn('could not re-check the sessions of a ReadWriteOnce volume after login', { pv: ref.pvName, err: (err as Error).message });
  }
  if (others.length === 0) return;
  const who = await Promise.all(others.map((i) => describeInitiator(api, i)));
  const sessions = (await listSessions(ctx.run)).filter((s) => s.iqn === targetIqn);
  for (const s of sessions) await logout(ctx.run, targetIqn, s.portal, true);
  try {
    await api.removeAclInitiator(ref.appInstance, ref.storageInstance, nodeIqn);
  } catch (err) {
    ctx.log.warn('backing off: could not remove this node from the ACL', { pv: ref.pvName, err: explainDateraError(err, conn, 'remove ACL entry').message });
  }
  removeRecord(ctx.cfg.stateDir, ref.pvName);
  throw new FlexError(`${ref.pvName} is ReadWriteOnce and ${who.join(', ')} logged in to it at the same time; backed off, kubelet will retry`);
}

/** The local device of an attachment this node recorded, if its session and device exist. */
export async function attachedDevice(ctx: DriverContext, pvName: string): Promise<string | undefined> {
  const rec = readRecord(ctx.cfg.stateDir, pvName);
  if (!rec) return undefined;
  const live = (await listSessions(ctx.run)).some((s) => s.iqn === rec.iqn);
  return live ? deviceFor(ctx.cfg, rec.iqn, rec.ips)?.device : undefined;
}

export type DetachOutcome = 'detached' | 'in-use' | 'unknown-volume';

/**
 * Undoes attachVolume for a PV, from the attachment record only: flush the multipath map, log
 * out of every portal of the recorded target and delete the node records, then remove this
 * node's initiator from the ACL with the node credentials, if the recorded endpoint is on the
 * node's allow-list.
 *
 * Without a record nothing is known about which app instance or server the PV used (the PV
 * name is all kubelet passes, and any pod can name a volume after a PV), so Datera is not
 * called at all: 'unknown-volume', Success. What can be left behind then is a session and an
 * ACL entry on a volume this node attached before its record was lost; it does not block the
 * volume (a ReadWriteOnce take-over removes ACL entries without a live session) and an admin
 * can log the session out by hand (README: troubleshooting).
 *
 * When the recorded endpoint is not on the allow-list (a mount that used a Secret for another
 * Datera) or the node settings are missing, the ACL entry is left in place with a warning, for
 * the same reason: the session is gone, so the entry gives no access a take-over keeps.
 *
 * When the device is still mounted somewhere: `ifUnused` answers 'in-use' (another pod on this
 * node still uses it), otherwise it is a Failure (detaching would pull a disk from under a
 * mounted filesystem).
 */
export async function detachVolume(ctx: DriverContext, pvName: string, opts: { ifUnused: boolean }): Promise<DetachOutcome> {
  const { cfg, run, log } = ctx;
  const rec = readRecord(cfg.stateDir, pvName);
  if (!rec) {
    log.warn('detach: no attachment record for this volume on this node; nothing it can safely undo (Datera not called)', { pv: pvName });
    return 'unknown-volume';
  }
  const { appInstance, storageInstance, iqn, ips } = rec;

  const sessions = (await listSessions(run)).filter((s) => s.iqn === iqn);
  // Portals from the record plus any session to the target (the IP pool may have changed).
  const portals = [...new Set([...ips.map(portalAddress), ...sessions.map((s) => s.portal)])];
  const { devices, maps } = targetDevices(cfg, iqn, portals);
  const inUse = mountsOf(readMounts(cfg.procMounts), devices);
  if (inUse.length > 0) {
    if (opts.ifUnused) return 'in-use';
    throw new FlexError(`${pvName} is still mounted at ${inUse.map((m) => m.target).join(', ')}; unmount it before detaching`);
  }
  for (const dm of maps) {
    checkResult(`multipath -f ${dm}`, await run.run('multipath', ['-f', multipathMapName(cfg.sysDir, dm)]));
  }
  for (const portal of portals) {
    await logout(run, iqn, portal, sessions.some((s) => s.portal === portal));
  }

  const settings = readNodeSettings(cfg.settingsFile);
  if (!settings || !nodeServerAllowed(settings, cfg.settingsFile, rec.endpoint)) {
    log.warn('detach: logged out, but left this node in the ACL: the node credentials may not be sent to the recorded server', {
      pv: pvName,
      appInstance,
      endpoint: rec.endpoint,
      reason: settings ? `not on the allow-list of ${cfg.settingsFile}` : `${cfg.settingsFile} is missing`,
    });
    removeRecord(cfg.stateDir, pvName);
    return 'detached';
  }
  const conn = resolveConnection({ settings, settingsFile: cfg.settingsFile, server: rec.endpoint, tenant: rec.tenant });
  const nodeIqn = readInitiatorName(cfg.initiatorNameFile);
  const api = ctx.clients(conn, log);
  try {
    await api.removeAclInitiator(appInstance, storageInstance, nodeIqn);
  } catch (err) {
    if (!isDateraNotFound(err)) throw explainDateraError(err, conn, `remove ${nodeIqn} from the ACL of ${appInstance}/${storageInstance}`);
  }
  removeRecord(cfg.stateDir, pvName);
  log.info('detached', { pv: pvName, appInstance, iqn });
  return 'detached';
}
