// SPDX-License-Identifier: Apache-2.0
// Attach and detach one Datera volume on this node: the Datera side (initiator, ACL, online,
// wait for the target) and the iSCSI side (login to every portal, find the device), and the
// reverse. Both are idempotent; kubelet retries any call-out that failed.
import fs from 'node:fs';
import os from 'node:os';
import { isNotFound } from '../datera/errors.js';
import type { DateraApi, StorageInstance } from '../datera/types.js';
import type { FlexConfig } from './config.js';
import { readNodeSettings } from './config.js';
import { explainDateraError, resolveConnection, type ClientFactory, type DateraConnection } from './datera.js';
import { checkResult, type HostRunner } from './host.js';
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
import { FlexError } from './reply.js';
import { readRecord, removeRecord, writeRecord } from './state.js';

/** Everything a call-out needs from the outside world; tests replace the parts. */
export interface DriverContext {
  cfg: FlexConfig;
  run: HostRunner;
  log: Logger;
  clients: ClientFactory;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A label Datera accepts for an initiator object (`^[a-zA-Z_][a-zA-Z0-9_\-\s\.]{2,127}$`). */
export function initiatorLabel(host: string = os.hostname()): string {
  return `k8s_${host.replace(/[^a-zA-Z0-9_\-.]/g, '_')}`.slice(0, 128);
}

/** True when multipathd is configured on this node, so a dm map is expected over the paths. */
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
    const mpDeadline = Date.now() + cfg.multipathTimeoutMs;
    while (!found.dm && Date.now() < mpDeadline) {
      await sleep(cfg.pollMs);
      found = deviceFor(cfg, iqn, ips) ?? found;
    }
    if (!found.dm) ctx.log.warn('multipath is configured but no map holds the device; using the single path', { link: found.link });
  }
  return found.device;
}

/** The node's initiator must exist in our tenant (one in a parent tenant does not count). */
async function ensureInitiator(api: DateraApi, iqn: string, tenant: string, log: Logger): Promise<void> {
  try {
    const existing = await api.getInitiator(iqn);
    if (!existing.tenant || existing.tenant === tenant) return;
    log.info('initiator belongs to another tenant; creating our own', { iqn, tenant: existing.tenant });
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  await api.createInitiator(iqn, initiatorLabel(), true);
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
}

/**
 * Makes the volume a block device on this node and returns its path. If this node already has
 * a session to the volume's target and the device is present, nothing is asked of Datera.
 */
export async function attachVolume(ctx: DriverContext, req: AttachRequest): Promise<string> {
  const { cfg, run, log } = ctx;
  const { ref, conn, chap } = req;
  const prior = readRecord(cfg.stateDir, ref.pvName);
  if (prior && prior.appInstance === ref.appInstance) {
    const live = (await listSessions(run)).filter((s) => s.iqn === prior.iqn);
    const device = deviceFor(cfg, prior.iqn, prior.ips);
    if (live.length > 0 && device) {
      log.info('already attached', { pv: ref.pvName, device: device.device, sessions: live.length });
      return device.device;
    }
  }

  const nodeIqn = readInitiatorName(cfg.initiatorNameFile);
  const api = ctx.clients(conn, log);
  let target: { iqn: string; ips: string[] };
  let step = `register initiator ${nodeIqn}`;
  try {
    await ensureInitiator(api, nodeIqn, conn.tenant, log);
    step = `add ${nodeIqn} to the ACL of ${ref.appInstance}/${ref.storageInstance}`;
    await api.addAclInitiator(ref.appInstance, ref.storageInstance, nodeIqn);
    step = `bring ${ref.appInstance} online`;
    target = await waitForTarget(ctx, api, ref);
  } catch (err) {
    if (isNotFound(err)) {
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
      log.warn('iSCSI portal unusable', { pv: ref.pvName, portal, error: (err as Error).message });
    }
  }
  if (loggedIn.length === 0) {
    throw new FlexError(`iSCSI login to ${target.iqn} failed on every portal: ${failed.join('; ')}`);
  }
  const device = await waitForDevice(ctx, target.iqn, loggedIn);
  log.info('attached', { pv: ref.pvName, device, portals: loggedIn.map(portalAddress), failedPortals: failed.length });
  return device;
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
 * Undoes attachVolume for a PV: flush the multipath map, log out of every portal of the target
 * and delete the node records, then remove this node's initiator from the ACL. Works from the
 * attachment record, or without one (after a lost /var/lib) from Datera with the node settings.
 *
 * When the device is still mounted somewhere: `ifUnused` answers 'in-use' (another pod on this
 * node still uses it), otherwise it is a Failure (detaching would pull a disk from under a
 * mounted filesystem).
 */
export async function detachVolume(ctx: DriverContext, pvName: string, opts: { ifUnused: boolean }): Promise<DetachOutcome> {
  const { cfg, run, log } = ctx;
  const rec = readRecord(cfg.stateDir, pvName);
  const settings = readNodeSettings(cfg.settingsFile);
  const appInstance = rec?.appInstance ?? pvName;
  const storageInstance = rec?.storageInstance ?? 'storage-1';
  const conn = settings
    ? resolveConnection({ settings, settingsFile: cfg.settingsFile, server: rec?.endpoint, tenant: rec?.tenant })
    : undefined;
  let api: DateraApi | undefined;

  let iqn = rec?.iqn;
  let ips = rec?.ips ?? [];
  if (!rec) {
    if (!conn) {
      throw new FlexError(`no attachment record for ${pvName} in ${cfg.stateDir} and no ${cfg.settingsFile} to ask Datera with`);
    }
    api = ctx.clients(conn, log);
    try {
      const ai = await api.getAppInstance(appInstance);
      const si = ai.storage_instances.find((s) => s.name === storageInstance);
      iqn = si?.access?.iqn || undefined;
      ips = si?.access?.ips ?? [];
    } catch (err) {
      if (!isNotFound(err)) throw explainDateraError(err, conn, `look up app instance ${appInstance}`);
      log.info('detach: volume unknown to this node and to Datera; nothing to do', { pv: pvName });
      return 'unknown-volume';
    }
  }

  if (iqn) {
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
  }

  if (!conn) {
    throw new FlexError(`logged out of ${pvName}, but cannot remove this node from its ACL: ${cfg.settingsFile} is missing`);
  }
  const nodeIqn = readInitiatorName(cfg.initiatorNameFile);
  api ??= ctx.clients(conn, log);
  try {
    await api.removeAclInitiator(appInstance, storageInstance, nodeIqn);
  } catch (err) {
    if (!isNotFound(err)) throw explainDateraError(err, conn, `remove ${nodeIqn} from the ACL of ${appInstance}/${storageInstance}`);
  }
  removeRecord(cfg.stateDir, pvName);
  log.info('detached', { pv: pvName, appInstance, iqn });
  return 'detached';
}
