// SPDX-License-Identifier: Apache-2.0
// Whether this machine can give a spec real block devices: loop devices attached by util-linux's
// losetup (root, /dev/loop-control), plus the filesystem tools a spec names.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';

const SBIN_PATH = '/usr/sbin:/usr/bin:/sbin:/bin';

/** Why loop devices (and `tools`) cannot be used here, or undefined when they can. */
export function loopDevicesUnavailable(tools: string[] = []): string | undefined {
  if (process.getuid?.() !== 0) return 'not root: attaching loop devices and mounting need root';
  for (const tool of ['losetup', ...tools]) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`], { env: { PATH: SBIN_PATH } }).status !== 0) return `${tool} is missing`;
  }
  if (!fs.existsSync('/dev/loop-control')) return 'this kernel has no loop devices (/dev/loop-control)';
  // `losetup -f` asks the kernel for a free device: it fails without the capability to use them.
  const free = spawnSync('losetup', ['-f'], { env: { PATH: SBIN_PATH }, encoding: 'utf8' });
  if (free.status !== 0) return `losetup -f failed: ${(free.stderr || '').trim() || `exit ${free.status}`}`;
  return undefined;
}
