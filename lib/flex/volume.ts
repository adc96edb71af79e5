// SPDX-License-Identifier: Apache-2.0
// Putting an attached device where a pod (or kubelet's global mount) wants it, and taking it
// away again: detect-or-format, mount, bind-mount for a second user, unmount, grow.
import fs from 'node:fs';
import type { DriverContext } from './attachment.js';
import { applyFsGroup, bindMount, makeFs, mountDevice, mountsOf, probeDevice, readMounts } from './mount.js';
import type { MountParams } from './options.js';
import { FlexError } from './reply.js';

/**
 * Mounts `device` at `target`. When the device is already mounted elsewhere on this node (a
 * second pod, or kubelet's global mount), the existing mount is bind-mounted: mounting one
 * block device twice with different read-only flags fails in the kernel. Otherwise the device
 * is probed: a filesystem is mounted with its own type (never reformatted, even when it differs
 * from the PV's fsType), a device proven blank is formatted with the PV's fsType, and anything
 * else (partition table, other signature, unreadable, ambiguous) is a FlexError from probeDevice
 * with nothing written.
 */
export async function mountVolume(ctx: DriverContext, device: string, target: string, p: MountParams): Promise<void> {
  const { run, log } = ctx;
  fs.mkdirSync(target, { recursive: true });
  const elsewhere = mountsOf(readMounts(ctx.cfg.procMounts), [device]).filter((m) => m.target !== target);
  if (elsewhere[0]) {
    await bindMount(run, elsewhere[0].target, target, p.readOnly);
    log.info('bind-mounted from an existing mount', { device, from: elsewhere[0].target, target, readOnly: p.readOnly });
    return;
  }
  const content = await probeDevice(run, device);
  if (content.kind === 'blank') {
    if (p.readOnly) {
      throw new FlexError(`${device} has no filesystem and is requested read-only; mount it read-write once so it can be formatted`);
    }
    log.info('formatting new volume: the device is blank', { device, fsType: p.fsType });
    await makeFs(run, device, p.fsType);
    await mountDevice(run, device, target, p.fsType, p.readOnly);
    if (p.fsGroup !== undefined) await applyFsGroup(run, target, p.fsGroup);
    log.info('mounted', { device, target, fsType: p.fsType, formatted: true, readOnly: p.readOnly });
    return;
  }
  if (content.fsType !== p.fsType) {
    log.warn('device holds a different filesystem than the PV says; mounting it as it is, not reformatting', {
      device,
      found: content.fsType,
      fsType: p.fsType,
    });
  }
  await mountDevice(run, device, target, content.fsType, p.readOnly);
  log.info('mounted', { device, target, fsType: content.fsType, formatted: false, readOnly: p.readOnly });
}
