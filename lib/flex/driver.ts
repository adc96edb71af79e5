// SPDX-License-Identifier: Apache-2.0
// Call-out dispatch: argv as kubelet passes it -> one Reply. Every call-out is idempotent
// because kubelet retries whatever failed, and every volume-changing call-out holds the PV's
// lock. See lib/flex/README.md for which call-outs kubelet sends in which mode.
import fs from 'node:fs';
import path from 'node:path';
import { attachedDevice, attachVolume, detachVolume, type DriverContext } from './attachment.js';
import { readNodeSettings, requireNodeSettings, type NodeSettings } from './config.js';
import { explainDateraError, resolveConnection } from './datera.js';
import { checkResult } from './host.js';
import { listSessions, multipathHolder, multipathMapName, rescan } from './iscsi.js';
import { canonical, detectFs, growFs, mountAt, mountsOf, readMounts, unmount } from './mount.js';
import {
  bytesToGiB,
  chapFrom,
  checkPvName,
  decodeSecrets,
  isPvName,
  K8S,
  loggableOptions,
  mountParams,
  parseOptions,
  volumeRef,
  type FlexOptions,
  type VolumeRef,
} from './options.js';
import { checkOwnership } from './ownership.js';
import { FlexError, failure, notSupported, success, type Reply } from './reply.js';
import { readRecord, withVolumeLock } from './state.js';
import { mountVolume } from './volume.js';

/** Call-outs this driver answers, with the arguments kubelet passes after the name. */
const CALLOUTS = {
  init: [],
  getvolumename: ['options'],
  attach: ['options', 'nodeName'],
  waitforattach: ['devicePath', 'options'],
  isattached: ['options', 'nodeName'],
  detach: ['pvName', 'nodeName'],
  mountdevice: ['deviceMountPath', 'devicePath', 'options'],
  unmountdevice: ['deviceMountPath'],
  mount: ['mountDir', 'options'],
  unmount: ['mountDir'],
  expandvolume: ['options', 'deviceMountPath', 'newSize', 'oldSize'],
  expandfs: ['options', 'devicePath', 'deviceMountPath', 'newSize', 'oldSize'],
} as const;

type Callout = keyof typeof CALLOUTS;
type Args<C extends Callout> = Record<(typeof CALLOUTS)[C][number], string>;

export type ParsedCall = { [C in Callout]: { callout: C; args: Args<C> } }[Callout] | { callout: 'unsupported'; name: string };

/**
 * Names the positional arguments. Optional trailing ones (nodeName, sizes, some device paths
 * kubelet leaves empty) may be missing; the first argument of each call-out is required.
 */
export function parseCall(argv: readonly string[]): ParsedCall {
  const [name = '', ...rest] = argv;
  if (!Object.hasOwn(CALLOUTS, name)) return { callout: 'unsupported', name };
  const callout = name as Callout;
  const names = CALLOUTS[callout] as readonly string[];
  if (names.length > 0 && (rest[0] === undefined || rest[0] === '') && names[0] !== 'devicePath') {
    throw new FlexError(`${callout}: missing argument <${names[0]}> (usage: ${callout} ${names.map((n) => `<${n}>`).join(' ')})`);
  }
  const args = Object.fromEntries(names.map((n, i) => [n, rest[i] ?? '']));
  return { callout, args } as ParsedCall;
}

function capabilities(settings: NodeSettings | undefined) {
  return {
    attach: settings?.attach === true,
    fsGroup: true,
    requiresFSResize: true,
    selinuxRelabel: true,
    supportsMetrics: false,
  };
}

/** `attach`/`detach` name a node; refuse one meant for another node when we know our name. */
function checkNode(settings: NodeSettings | undefined, nodeName: string, callout: string): void {
  if (settings?.nodeName && nodeName && settings.nodeName !== nodeName) {
    throw new FlexError(
      `${callout} for node ${nodeName} reached node ${settings.nodeName}: datera/iscsi attaches on the node itself (see README: attach mode)`,
    );
  }
}

/** Datera connection and CHAP for a call-out without a Secret: the node settings file. */
function nodeConnection(ctx: DriverContext, ref: VolumeRef) {
  const settings = requireNodeSettings(ctx.cfg.settingsFile);
  return {
    settings,
    conn: resolveConnection({ settings, settingsFile: ctx.cfg.settingsFile, server: ref.server, tenant: ref.tenant }),
    chap: chapFrom(settings),
  };
}

const lock = <T>(ctx: DriverContext, pv: string, fn: () => Promise<T>) =>
  withVolumeLock(ctx.cfg.stateDir, pv, ctx.cfg.lockTimeoutMs, ctx.cfg.pollMs, fn);

/** Attach mode leaves detach to kubelet's own detach call-out; otherwise unmount detaches. */
const attachMode = (ctx: DriverContext) => readNodeSettings(ctx.cfg.settingsFile)?.attach === true;

async function mount(ctx: DriverContext, dir: string, opts: FlexOptions): Promise<Reply> {
  const ref = volumeRef(opts, path.basename(dir));
  const params = mountParams(opts);
  const secret = decodeSecrets(opts);
  return lock(ctx, ref.pvName, async () => {
    if (mountAt(readMounts(ctx.cfg.procMounts), dir)) {
      ctx.log.info('already mounted', { pv: ref.pvName, dir });
      return success();
    }
    // kubelet sets the pod namespace; the pod author cannot. It decides which claims' volumes
    // this pod may use (see ownership.ts).
    const podNamespace = opts[K8S.podNamespace];
    if (!podNamespace) throw new FlexError(`mount: the options carry no ${K8S.podNamespace}; kubelet always sets it`);
    const settings = readNodeSettings(ctx.cfg.settingsFile);
    const conn = resolveConnection({ secret, settings, settingsFile: ctx.cfg.settingsFile, server: ref.server, tenant: ref.tenant });
    const device = await attachVolume(ctx, {
      ref,
      conn,
      chap: chapFrom(secret) ?? chapFrom(settings),
      podNamespace,
      nodeName: settings?.nodeName,
    });
    try {
      await mountVolume(ctx, device, dir, params);
    } catch (err) {
      if (settings?.attach !== true) {
        // Do not leave a session and an ACL entry behind for a mount kubelet will not unmount.
        await detachVolume(ctx, ref.pvName, { ifUnused: true }).catch((e: unknown) =>
          ctx.log.warn('rollback detach failed', { pv: ref.pvName, err: (e as Error).message }),
        );
      }
      throw err;
    }
    return success();
  });
}

async function unmountPodDir(ctx: DriverContext, dir: string): Promise<Reply> {
  const pv = path.basename(dir);
  const unmountIfMounted = async () => {
    const mounted = mountAt(readMounts(ctx.cfg.procMounts), dir) !== undefined;
    if (mounted) await unmount(ctx.run, dir);
    else ctx.log.info('not mounted', { dir });
    return mounted;
  };
  // kubelet names the directory after the PV; anything else is not a volume we could detach.
  if (!isPvName(pv)) {
    await unmountIfMounted();
    return success();
  }
  return lock(ctx, pv, async () => {
    const mounted = await unmountIfMounted();
    if (!attachMode(ctx) && (mounted || readRecord(ctx.cfg.stateDir, pv))) {
      const outcome = await detachVolume(ctx, pv, { ifUnused: true });
      ctx.log.info('unmount', { pv, detach: outcome });
    }
    return success();
  });
}

async function expandVolume(ctx: DriverContext, opts: FlexOptions, newSize: string): Promise<void> {
  const ref = volumeRef(opts);
  const gib = bytesToGiB(newSize, 'new size');
  const { conn } = nodeConnection(ctx, ref);
  const api = ctx.clients(conn, ctx.log);
  try {
    checkOwnership(await api.getMetadata(ref.appInstance), ref, undefined);
    const ai = await api.getAppInstance(ref.appInstance);
    const vol = ai.storage_instances.find((s) => s.name === ref.storageInstance)?.volumes.find((v) => v.name === ref.volume);
    if (!vol) throw new FlexError(`app instance ${ref.appInstance} has no volume ${ref.storageInstance}/${ref.volume}`);
    if (vol.size >= gib) {
      ctx.log.info('volume already large enough', { pv: ref.pvName, sizeGiB: vol.size, wantGiB: gib });
      return;
    }
    await api.resizeVolume(ref.appInstance, ref.storageInstance, ref.volume, gib);
    ctx.log.info('volume resized', { pv: ref.pvName, fromGiB: vol.size, toGiB: gib });
  } catch (err) {
    throw explainDateraError(err, conn, `resize ${ref.appInstance} to ${gib} GiB`);
  }
}

/**
 * Node side of a resize: make sure Datera has the new size (so expansion also works when no
 * driver runs on the controller), rescan the sessions and the multipath map, grow the fs.
 */
async function expandFs(ctx: DriverContext, opts: FlexOptions, devicePath: string, mountPath: string, newSize: string): Promise<void> {
  const ref = volumeRef(opts);
  await expandVolume(ctx, opts, newSize);
  const rec = readRecord(ctx.cfg.stateDir, ref.pvName);
  if (rec) {
    for (const s of (await listSessions(ctx.run)).filter((x) => x.iqn === rec.iqn)) await rescan(ctx.run, rec.iqn, s.portal);
  }
  const device = devicePath || (await attachedDevice(ctx, ref.pvName));
  if (!device) throw new FlexError(`${ref.pvName} is not attached to this node`);
  const dm = multipathHolder(ctx.cfg.sysDir, ctx.cfg.devDir, canonical(device).split('/').pop()!);
  if (dm) checkResult('multipath -r', await ctx.run.run('multipath', ['-r', multipathMapName(ctx.cfg.sysDir, dm)]));
  const mounts = readMounts(ctx.cfg.procMounts);
  const mountPoint = (mountPath && mountAt(mounts, mountPath) ? mountPath : undefined) ?? mountsOf(mounts, [device])[0]?.target;
  const fsType = await detectFs(ctx.run, device);
  if (!fsType) throw new FlexError(`${device} has no filesystem to grow`);
  await growFs(ctx.run, fsType, device, mountPoint);
}

async function dispatch(ctx: DriverContext, call: ParsedCall): Promise<Reply> {
  switch (call.callout) {
    case 'unsupported':
      return notSupported(call.name || '(none)');
    case 'init': {
      // init must answer even with broken settings, or kubelet never loads the driver.
      let settings: NodeSettings | undefined;
      try {
        settings = readNodeSettings(ctx.cfg.settingsFile);
      } catch (err) {
        ctx.log.warn('init: ignoring unreadable node settings', { err: (err as Error).message });
      }
      return success({ capabilities: capabilities(settings) });
    }
    case 'getvolumename':
      return success({ volumeName: volumeRef(parseOptions(call.args.options, call.callout)).appInstance });
    case 'attach': {
      const ref = volumeRef(parseOptions(call.args.options, call.callout));
      const { settings, conn, chap } = nodeConnection(ctx, ref);
      checkNode(settings, call.args.nodeName, 'attach');
      const device = await lock(ctx, ref.pvName, () => attachVolume(ctx, { ref, conn, chap, nodeName: settings.nodeName }));
      return success({ device });
    }
    case 'waitforattach': {
      const ref = volumeRef(parseOptions(call.args.options, call.callout));
      const given = call.args.devicePath;
      if (given && fs.existsSync(given)) return success({ device: given });
      const device = await attachedDevice(ctx, ref.pvName);
      if (!device) throw new FlexError(`${ref.pvName} is not attached to this node (no iSCSI session or device)`);
      return success({ device });
    }
    case 'isattached': {
      const ref = volumeRef(parseOptions(call.args.options, call.callout));
      return success({ attached: (await attachedDevice(ctx, ref.pvName)) !== undefined });
    }
    case 'detach': {
      const pv = checkPvName(call.args.pvName);
      checkNode(readNodeSettings(ctx.cfg.settingsFile), call.args.nodeName, 'detach');
      await lock(ctx, pv, () => detachVolume(ctx, pv, { ifUnused: false }));
      return success();
    }
    case 'mountdevice': {
      const { deviceMountPath: dir, devicePath } = call.args;
      const opts = parseOptions(call.args.options, call.callout);
      const ref = volumeRef(opts);
      const params = mountParams(opts);
      return lock(ctx, ref.pvName, async () => {
        if (mountAt(readMounts(ctx.cfg.procMounts), dir)) return success();
        const device = devicePath || (await attachedDevice(ctx, ref.pvName));
        if (!device) throw new FlexError(`mountdevice: ${ref.pvName} has no device on this node; attach it first`);
        await mountVolume(ctx, device, dir, params);
        return success();
      });
    }
    case 'unmountdevice': {
      const dir = call.args.deviceMountPath;
      if (mountAt(readMounts(ctx.cfg.procMounts), dir)) await unmount(ctx.run, dir);
      return success();
    }
    case 'mount': {
      const opts = parseOptions(call.args.options, call.callout);
      ctx.log.info('mount request', { dir: call.args.mountDir, options: loggableOptions(opts) });
      return mount(ctx, call.args.mountDir, opts);
    }
    case 'unmount':
      return unmountPodDir(ctx, call.args.mountDir);
    case 'expandvolume':
      await expandVolume(ctx, parseOptions(call.args.options, call.callout), call.args.newSize);
      return success();
    case 'expandfs':
      await expandFs(ctx, parseOptions(call.args.options, call.callout), call.args.devicePath, call.args.deviceMountPath, call.args.newSize);
      return success();
  }
}

/** Runs one call-out. Never throws: every error becomes a Failure reply with its message. */
export async function runCallout(ctx: DriverContext, argv: readonly string[]): Promise<Reply> {
  const started = Date.now();
  try {
    const call = parseCall(argv);
    const reply = await dispatch(ctx, call);
    ctx.log.info('call-out done', { callout: argv[0], status: reply.status, ms: Date.now() - started });
    return reply;
  } catch (err) {
    const expected = err instanceof FlexError;
    const message = expected ? err.message : `unexpected error: ${(err as Error)?.message ?? String(err)}`;
    ctx.log.error('call-out failed', {
      callout: argv[0],
      err: message,
      ms: Date.now() - started,
      ...(expected ? {} : { stack: (err as Error)?.stack }),
    });
    return failure(message);
  }
}
