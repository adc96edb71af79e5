// SPDX-License-Identifier: Apache-2.0
// "Never format data", in-process: how each blkid outcome is read (classifyProbe), the driver's
// own read of the device head, mountVolume's decisions, and the other host-tool wrappers of
// mount.ts, with a recording HostRunner instead of real tools. spec/flex/format.spec.ts runs the
// same outcomes through the real driver entry.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import type { DriverContext } from '../../lib/flex/attachment.js';
import type { CommandResult, HostRunner } from '../../lib/flex/host.js';
import {
  HEAD_BYTES,
  applyFsGroup,
  bindMount,
  canonical,
  checkHeadIsZero,
  classifyProbe,
  detectFs,
  growFs,
  makeFs,
  mountAt,
  mountDevice,
  mountsOf,
  parseExport,
  parseMounts,
  probeDevice,
  readMounts,
  unmount,
} from '../../lib/flex/mount.js';
import type { MountParams } from '../../lib/flex/options.js';
import { FlexError } from '../../lib/flex/reply.js';
import { mountVolume } from '../../lib/flex/volume.js';

const DEV = '/dev/disk/by-path/ip-172.28.41.9:3260-iscsi-iqn.2013-05.com.daterainc:tc:01:sn:1-lun-0';
const res = (code: number, stdout = '', stderr = ''): CommandResult => ({ code, stdout, stderr });

interface Call {
  cmd: string;
  args: string[];
}

/** A HostRunner that records calls and answers by tool name (default: exit 0, no output). */
function fakeRunner(answers: Record<string, CommandResult | ((args: readonly string[]) => CommandResult)> = {}) {
  const calls: Call[] = [];
  const runner: HostRunner = {
    run(cmd, args) {
      calls.push({ cmd, args: [...args] });
      const a = answers[cmd];
      return Promise.resolve(typeof a === 'function' ? a(args) : (a ?? res(0)));
    },
  };
  return { runner, calls, tools: () => calls.map((c) => c.cmd) };
}

async function rejection(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    expect(err).to.be.instanceOf(FlexError);
    return (err as Error).message;
  }
  throw new Error('expected a FlexError');
}

function thrown(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(FlexError);
    return (err as Error).message;
  }
  throw new Error('expected a FlexError');
}

let tmp: string;

/** A device file: `size` zero bytes with `junkAt` offsets set to 0x5a. */
function deviceFile(size: number, junkAt: number[] = []): string {
  const file = path.join(tmp, `dev-${size}-${junkAt.join('_')}`);
  const buf = Buffer.alloc(size);
  for (const at of junkAt) buf[at] = 0x5a;
  fs.writeFileSync(file, buf);
  return file;
}

describe('flex mount.ts and volume.ts (in-process)', () => {
  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'flex-mount-'));
  });
  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

  describe('flex mount: what blkid -p says about a device (classifyProbe)', () => {
    it('exit 2 with no output is blank (a candidate, checked further by probeDevice)', () => {
      expect(classifyProbe(DEV, res(2))).to.deep.equal({ kind: 'blank' });
    });

    it('exit 2 with a message (cannot open or read) is "cannot tell", quoting the message', () => {
      expect(thrown(() => classifyProbe(DEV, res(2, '', `blkid: error: ${DEV}: Input/output error\n`)))).to.equal(
        `cannot tell whether ${DEV} is blank: blkid -p exited 2 with: blkid: error: ${DEV}: Input/output error; refusing to format it`,
      );
    });

    for (const fsType of ['xfs', 'ext4', 'ext3', 'ext2']) {
      it(`exit 0 with TYPE=${fsType} is a filesystem to mount as it is`, () => {
        const out = `DEVNAME=${DEV}\nUUID=4a9486ac-8229-4e98-a154-79bb8e029aac\nBLOCK_SIZE=4096\nTYPE=${fsType}\nUSAGE=filesystem\n`;
        expect(classifyProbe(DEV, res(0, out))).to.deep.equal({ kind: 'filesystem', fsType });
      });
    }

    it('exit 0 with a partition table is refused, naming the table type', () => {
      expect(thrown(() => classifyProbe(DEV, res(0, `DEVNAME=${DEV}\nPTUUID=1c7e\nPTTYPE=gpt\n`)))).to.equal(
        `${DEV} holds a partition table (PTTYPE=gpt); refusing to format or mount it`,
      );
    });

    it('a partition table is refused even when a filesystem TYPE is reported with it', () => {
      expect(thrown(() => classifyProbe(DEV, res(0, `DEVNAME=${DEV}\nTYPE=xfs\nPTTYPE=dos\n`)))).to.equal(
        `${DEV} holds a partition table (PTTYPE=dos, TYPE=xfs); refusing to format or mount it`,
      );
    });

    const unsupported: [string, string, string][] = [
      ['LVM2_member', 'raid', 'LVM2_member (usage raid)'],
      ['crypto_LUKS', 'crypto', 'crypto_LUKS (usage crypto)'],
      ['swap', 'other', 'swap (usage other)'],
      ['btrfs', 'filesystem', 'btrfs (usage filesystem)'],
      ['linux_raid_member', '', 'linux_raid_member'],
    ];
    for (const [type, usage, said] of unsupported) {
      it(`exit 0 with TYPE=${type} is refused as not a filesystem the driver mounts`, () => {
        const out = `DEVNAME=${DEV}\nTYPE=${type}\n${usage ? `USAGE=${usage}\n` : ''}`;
        expect(thrown(() => classifyProbe(DEV, res(0, out)))).to.equal(
          `${DEV} holds ${said}, not a filesystem this driver mounts (xfs, ext4, ext3, ext2); refusing to format or mount it`,
        );
      });
    }

    it('exit 0 with only other keys (a signature without TYPE) is refused, listing them', () => {
      expect(thrown(() => classifyProbe(DEV, res(0, `DEVNAME=${DEV}\nUSAGE=other\nSBMAGIC=ZFS\n`)))).to.equal(
        `${DEV} holds a signature without a filesystem type (USAGE=other SBMAGIC=ZFS); refusing to format or mount it`,
      );
    });

    it('exit 0 with no keys at all is "cannot tell"', () => {
      expect(thrown(() => classifyProbe(DEV, res(0, `DEVNAME=${DEV}\n`)))).to.equal(
        `cannot tell whether ${DEV} is blank: blkid -p exited 0 but reported nothing; refusing to format it`,
      );
    });

    it('exit 8 (ambivalent: more than one signature) is "cannot tell", pointing at wipefs -n', () => {
      const stderr = `${DEV}: ambivalent result (probably more filesystems on the device, use wipefs(8) to see more details)`;
      expect(thrown(() => classifyProbe(DEV, res(8, '', stderr)))).to.equal(
        `cannot tell whether ${DEV} is blank: blkid -p found more than one signature (ambivalent result; wipefs -n ${DEV} lists them); refusing to format it`,
      );
    });

    for (const [code, stderr, said] of [
      [4, 'blkid: invalid option -- p', 'blkid: invalid option -- p'],
      [1, '', 'no output'],
      [128, 'killed by SIGKILL after 30000 ms', 'killed by SIGKILL after 30000 ms'],
    ] as const) {
      it(`exit ${code} is "cannot tell", with the exit code and what blkid said`, () => {
        expect(thrown(() => classifyProbe(DEV, res(code, '', stderr)))).to.equal(
          `cannot tell whether ${DEV} is blank: blkid -p exited ${code}: ${said}; refusing to format it`,
        );
      });
    }

    it('parseExport reads KEY=value lines, keeps "=" inside values and skips other lines', () => {
      expect(parseExport('DEVNAME=/dev/sdb\nLABEL=a=b\n\n=x\nnoise\n TYPE = xfs \n')).to.deep.equal({
        DEVNAME: '/dev/sdb',
        LABEL: 'a=b',
        TYPE: 'xfs',
      });
    });
  });

  describe('flex mount: the driver reads the device head itself (checkHeadIsZero)', () => {
    it('a device whose first MiB is zero passes, whatever follows it', () => {
      expect(() => checkHeadIsZero(deviceFile(HEAD_BYTES + 4096, [HEAD_BYTES]))).not.to.throw();
    });

    it('a device shorter than the head that reads as zeros passes (an empty file too)', () => {
      expect(() => checkHeadIsZero(deviceFile(0))).not.to.throw();
      expect(() => checkHeadIsZero(deviceFile(512))).not.to.throw();
    });

    it('a non-zero byte anywhere in the first MiB is data blkid does not recognise, with its offset', () => {
      for (const at of [0, 4097, HEAD_BYTES - 1]) {
        const dev = deviceFile(HEAD_BYTES, [at]);
        expect(thrown(() => checkHeadIsZero(dev))).to.equal(
          `${dev} holds data in a format blkid does not recognise (non-zero byte at offset ${at}); refusing to format or mount it`,
        );
      }
    });

    it('a smaller head size reads only that many bytes', () => {
      expect(() => checkHeadIsZero(deviceFile(8192, [4096]), 4096)).not.to.throw();
      expect(() => checkHeadIsZero(deviceFile(8192, [4095]), 4096)).to.throw(FlexError, /offset 4095/);
    });

    it('closes the device every time, also when it refuses (no file descriptor leak)', () => {
      const fds = () => fs.readdirSync('/proc/self/fd').length;
      const zero = deviceFile(4096);
      const junk = deviceFile(4096, [1]);
      const before = fds();
      for (let i = 0; i < 20; i++) {
        checkHeadIsZero(zero);
        expect(() => checkHeadIsZero(junk)).to.throw(FlexError);
      }
      expect(fds()).to.equal(before);
    });

    it('a device that cannot be opened is "cannot tell", with the error code', () => {
      const dev = path.join(tmp, 'missing');
      expect(thrown(() => checkHeadIsZero(dev))).to.equal(`cannot tell whether ${dev} is blank: cannot open it (ENOENT); refusing to format it`);
    });

    it('a device that cannot be read is "cannot tell", with the offset and error code', () => {
      const dev = path.join(tmp, 'unreadable');
      fs.mkdirSync(dev);
      expect(thrown(() => checkHeadIsZero(dev))).to.equal(
        `cannot tell whether ${dev} is blank: reading it at byte 0 failed (EISDIR); refusing to format it`,
      );
    });
  });

  describe('flex mount: probeDevice and detectFs', () => {
    it('runs the low-level probe `blkid -p -o export <device>` (not the cache-based TYPE query)', async () => {
      const dev = deviceFile(0);
      const { runner, calls } = fakeRunner({ blkid: res(2) });
      expect(await probeDevice(runner, dev)).to.deep.equal({ kind: 'blank' });
      expect(calls).to.deep.equal([{ cmd: 'blkid', args: ['-p', '-o', 'export', dev] }]);
    });

    it('blank only when the device head also reads as zeros', async () => {
      const dev = deviceFile(4096, [100]);
      const { runner } = fakeRunner({ blkid: res(2) });
      expect(await rejection(probeDevice(runner, dev))).to.match(/holds data in a format blkid does not recognise \(non-zero byte at offset 100\)/);
    });

    it('a filesystem is not read by the driver (a missing path does not matter once blkid named it)', async () => {
      const { runner } = fakeRunner({ blkid: res(0, 'TYPE=xfs\nUSAGE=filesystem\n') });
      expect(await probeDevice(runner, path.join(tmp, 'nowhere'))).to.deep.equal({ kind: 'filesystem', fsType: 'xfs' });
    });

    it('detectFs: the type of a filesystem, undefined for a blank device, an error otherwise', async () => {
      expect(await detectFs(fakeRunner({ blkid: res(0, 'TYPE=ext4\n') }).runner, DEV)).to.equal('ext4');
      expect(await detectFs(fakeRunner({ blkid: res(2) }).runner, deviceFile(0))).to.equal(undefined);
      expect(await rejection(detectFs(fakeRunner({ blkid: res(0, 'PTTYPE=gpt\n') }).runner, DEV))).to.match(/partition table/);
    });
  });

  describe('flex mount: makeFs', () => {
    it('xfs is made with plain `mkfs.xfs <device>`: never -f, so mkfs.xfs keeps refusing a signature it knows', async () => {
      const { runner, calls } = fakeRunner();
      await makeFs(runner, DEV, 'xfs');
      expect(calls).to.deep.equal([{ cmd: 'mkfs.xfs', args: [DEV] }]);
    });

    it('ext4 is made with `mkfs.ext4 -F <device>`', async () => {
      const { runner, calls } = fakeRunner();
      await makeFs(runner, DEV, 'ext4');
      expect(calls).to.deep.equal([{ cmd: 'mkfs.ext4', args: ['-F', DEV] }]);
    });

    it('a failing mkfs is a FlexError naming the command, exit code and output', async () => {
      const { runner } = fakeRunner({ 'mkfs.xfs': res(1, '', `mkfs.xfs: ${DEV} appears to contain an existing filesystem (xfs).`) });
      expect(await rejection(makeFs(runner, DEV, 'xfs'))).to.equal(
        `mkfs.xfs ${DEV} failed (exit 1): mkfs.xfs: ${DEV} appears to contain an existing filesystem (xfs).`,
      );
    });
  });

  describe('flex volume: mountVolume decides between bind, mount and format', () => {
    const logged: { level: string; msg: string; meta: Record<string, unknown> }[] = [];
    const log = {
      info: (msg: string, meta: Record<string, unknown>) => logged.push({ level: 'info', msg, meta }),
      warn: (msg: string, meta: Record<string, unknown>) => logged.push({ level: 'warn', msg, meta }),
    };
    let procMounts: string;
    beforeEach(() => {
      logged.length = 0;
      procMounts = path.join(tmp, 'mounts');
      fs.writeFileSync(procMounts, 'proc /proc proc rw,relatime 0 0\n');
    });
    const ctxWith = (runner: HostRunner) => ({ cfg: { procMounts }, run: runner, log }) as unknown as DriverContext;
    const params = (o: Partial<MountParams> = {}): MountParams => ({ fsType: 'xfs', readOnly: false, fsGroup: undefined, ...o });
    const fsAnswer = (type: string) => res(0, `DEVNAME=x\nTYPE=${type}\nUSAGE=filesystem\n`);

    it('a blank device is formatted with the PV fsType, mounted, and given the fsGroup', async () => {
      const dev = deviceFile(0);
      const target = path.join(tmp, 'pod', 'vol');
      const { runner, calls } = fakeRunner({ blkid: res(2) });
      await mountVolume(ctxWith(runner), dev, target, params({ fsType: 'ext4', fsGroup: 2000 }));
      expect(calls).to.deep.equal([
        { cmd: 'blkid', args: ['-p', '-o', 'export', dev] },
        { cmd: 'mkfs.ext4', args: ['-F', dev] },
        { cmd: 'mount', args: ['-t', 'ext4', dev, target] },
        { cmd: 'chgrp', args: ['2000', target] },
      ]);
      expect(fs.statSync(target).isDirectory()).to.equal(true);
      expect(logged.map((l) => [l.level, l.msg])).to.deep.equal([
        ['info', 'formatting new volume: the device is blank'],
        ['info', 'mounted'],
      ]);
      expect(logged[0]!.meta).to.deep.equal({ device: dev, fsType: 'ext4' });
      expect(logged[1]!.meta).to.deep.equal({ device: dev, target, fsType: 'ext4', formatted: true, readOnly: false });
    });

    it('a blank device without fsGroup is formatted and mounted, no chgrp', async () => {
      const dev = deviceFile(0);
      const { runner, tools } = fakeRunner({ blkid: res(2) });
      await mountVolume(ctxWith(runner), dev, path.join(tmp, 't'), params());
      expect(tools()).to.deep.equal(['blkid', 'mkfs.xfs', 'mount']);
    });

    it('a blank device requested read-only is refused before anything is written', async () => {
      const dev = deviceFile(0);
      const { runner, tools } = fakeRunner({ blkid: res(2) });
      expect(await rejection(mountVolume(ctxWith(runner), dev, path.join(tmp, 't'), params({ readOnly: true })))).to.equal(
        `${dev} has no filesystem and is requested read-only; mount it read-write once so it can be formatted`,
      );
      expect(tools()).to.deep.equal(['blkid']);
    });

    it('a filesystem of the PV type is mounted without mkfs and without chgrp, nothing warned', async () => {
      const target = path.join(tmp, 't');
      const { runner, calls } = fakeRunner({ blkid: fsAnswer('xfs') });
      await mountVolume(ctxWith(runner), DEV, target, params({ fsGroup: 2000, readOnly: true }));
      expect(calls.slice(1)).to.deep.equal([{ cmd: 'mount', args: ['-t', 'xfs', '-o', 'ro', DEV, target] }]);
      expect(logged.map((l) => [l.level, l.msg])).to.deep.equal([['info', 'mounted']]);
      expect(logged[0]!.meta).to.deep.equal({ device: DEV, target, fsType: 'xfs', formatted: false, readOnly: true });
    });

    it('a filesystem that differs from the PV fsType is never reformatted: mounted with its own type, and warned', async () => {
      const target = path.join(tmp, 't');
      const { runner, calls } = fakeRunner({ blkid: fsAnswer('xfs') });
      await mountVolume(ctxWith(runner), DEV, target, params({ fsType: 'ext4', fsGroup: 2000 }));
      expect(calls.map((c) => c.cmd)).to.deep.equal(['blkid', 'mount']);
      expect(calls[1]!.args).to.deep.equal(['-t', 'xfs', DEV, target]);
      expect(logged[0]).to.deep.equal({
        level: 'warn',
        msg: 'device holds a different filesystem than the PV says; mounting it as it is, not reformatting',
        meta: { device: DEV, found: 'xfs', fsType: 'ext4' },
      });
    });

    it('ext3 on a PV that says ext4 is mounted as ext3', async () => {
      const target = path.join(tmp, 't');
      const { runner, calls } = fakeRunner({ blkid: fsAnswer('ext3') });
      await mountVolume(ctxWith(runner), DEV, target, params({ fsType: 'ext4' }));
      expect(calls.at(-1)).to.deep.equal({ cmd: 'mount', args: ['-t', 'ext3', DEV, target] });
    });

    it('a refused probe (partition table) stops before mkfs and mount', async () => {
      const { runner, tools } = fakeRunner({ blkid: res(0, 'PTTYPE=dos\n') });
      expect(await rejection(mountVolume(ctxWith(runner), DEV, path.join(tmp, 't'), params()))).to.match(/holds a partition table/);
      expect(tools()).to.deep.equal(['blkid']);
    });

    it('a device mounted elsewhere on the node is bind-mounted (read-only if asked), without probing', async () => {
      const dev = deviceFile(0);
      const other = path.join(tmp, 'global');
      const target = path.join(tmp, 't');
      fs.appendFileSync(procMounts, `${dev} ${other} xfs rw,relatime 0 0\n`);
      const { runner, calls } = fakeRunner();
      await mountVolume(ctxWith(runner), dev, target, params({ readOnly: true }));
      expect(calls).to.deep.equal([
        { cmd: 'mount', args: ['--bind', other, target] },
        { cmd: 'mount', args: ['-o', 'remount,bind,ro', target] },
      ]);
      expect(logged).to.deep.equal([{ level: 'info', msg: 'bind-mounted from an existing mount', meta: { device: dev, from: other, target, readOnly: true } }]);
    });

    it('a mount of the device at the target itself does not count as "elsewhere"', async () => {
      const dev = deviceFile(0);
      const target = path.join(tmp, 't');
      fs.appendFileSync(procMounts, `${dev} ${target} xfs rw,relatime 0 0\n`);
      const { runner, tools } = fakeRunner({ blkid: fsAnswer('xfs') });
      await mountVolume(ctxWith(runner), dev, target, params());
      expect(tools()).to.deep.equal(['blkid', 'mount']);
    });
  });

  describe('flex mount: the other host-tool wrappers', () => {
    it('mountDevice passes -t and -o ro; a failure names device, target, exit code and output', async () => {
      const { runner, calls } = fakeRunner();
      await mountDevice(runner, DEV, '/t', 'xfs', false);
      await mountDevice(runner, DEV, '/t', 'ext4', true);
      expect(calls.map((c) => c.args)).to.deep.equal([
        ['-t', 'xfs', DEV, '/t'],
        ['-t', 'ext4', '-o', 'ro', DEV, '/t'],
      ]);
      const failing = fakeRunner({ mount: res(32, '', 'mount: /t: wrong fs type\nmore') }).runner;
      expect(await rejection(mountDevice(failing, DEV, '/t', 'xfs', false))).to.equal(`mount ${DEV} on /t failed (exit 32): mount: /t: wrong fs type`);
      const silent = fakeRunner({ mount: res(1) }).runner;
      expect(await rejection(mountDevice(silent, DEV, '/t', 'xfs', false))).to.equal(`mount ${DEV} on /t failed (exit 1): no output`);
    });

    it('bindMount: read-write is one bind; a failed read-only remount undoes the bind and says why', async () => {
      const rw = fakeRunner();
      await bindMount(rw.runner, '/a', '/b', false);
      expect(rw.calls).to.deep.equal([{ cmd: 'mount', args: ['--bind', '/a', '/b'] }]);

      const ro = fakeRunner({ mount: (args) => (args.includes('--bind') ? res(0) : res(32, '', 'mount: /b: cannot remount read-only')) });
      expect(await rejection(bindMount(ro.runner, '/a', '/b', true))).to.equal('cannot make /b read-only (exit 32): mount: /b: cannot remount read-only');
      expect(ro.calls.at(-1)).to.deep.equal({ cmd: 'umount', args: ['/b'] });

      const quiet = fakeRunner({ mount: (args) => (args.includes('--bind') ? res(0) : res(32)) });
      expect(await rejection(bindMount(quiet.runner, '/a', '/b', true))).to.equal('cannot make /b read-only (exit 32): no output');

      const noBind = fakeRunner({ mount: res(32, '', 'mount: /a: not a mount point') });
      expect(await rejection(bindMount(noBind.runner, '/a', '/b', true))).to.equal('mount --bind /a /b failed (exit 32): mount: /a: not a mount point');
      expect(noBind.calls).to.have.length(1);
    });

    it('unmount runs umount on the target and reports a failure', async () => {
      const ok = fakeRunner();
      await unmount(ok.runner, '/t');
      expect(ok.calls).to.deep.equal([{ cmd: 'umount', args: ['/t'] }]);
      expect(await rejection(unmount(fakeRunner({ umount: res(32, '', 'umount: /t: target is busy.') }).runner, '/t'))).to.equal(
        'umount /t failed (exit 32): umount: /t: target is busy.',
      );
    });

    it('applyFsGroup gives the group to the root and adds setgid and group rwx, keeping the other bits', async () => {
      const dir = path.join(tmp, 'root');
      fs.mkdirSync(dir);
      fs.chmodSync(dir, 0o701);
      const { runner, calls } = fakeRunner();
      await applyFsGroup(runner, dir, 3000);
      expect(calls).to.deep.equal([{ cmd: 'chgrp', args: ['3000', dir] }]);
      expect(fs.statSync(dir).mode & 0o7777).to.equal(0o2771);
      const failing = fakeRunner({ chgrp: res(1, '', 'chgrp: invalid group') }).runner;
      expect(await rejection(applyFsGroup(failing, dir, 3000))).to.equal(`chgrp 3000 ${dir} failed (exit 1): chgrp: invalid group`);
    });

    it('growFs: xfs_growfs on the mount point, resize2fs on the device for ext4/ext3, otherwise an error', async () => {
      const r = fakeRunner();
      await growFs(r.runner, 'xfs', DEV, '/t');
      await growFs(r.runner, 'ext4', DEV, undefined);
      await growFs(r.runner, 'ext3', DEV, '/t');
      expect(r.calls).to.deep.equal([
        { cmd: 'xfs_growfs', args: ['/t'] },
        { cmd: 'resize2fs', args: [DEV] },
        { cmd: 'resize2fs', args: [DEV] },
      ]);
      expect(await rejection(growFs(r.runner, 'xfs', DEV, undefined))).to.equal(`cannot grow xfs on ${DEV}: it is not mounted`);
      expect(await rejection(growFs(r.runner, 'ext2', DEV, '/t'))).to.equal('cannot grow a ext2 filesystem');
      expect(r.calls).to.have.length(3);
      const badExt = fakeRunner({ resize2fs: res(1, '', 'resize2fs: Bad magic number in super-block') }).runner;
      expect(await rejection(growFs(badExt, 'ext4', DEV, '/t'))).to.equal(`resize2fs ${DEV} failed (exit 1): resize2fs: Bad magic number in super-block`);
      const failing = fakeRunner({ xfs_growfs: res(1, '', 'xfs_growfs: /t is not a mounted XFS filesystem') }).runner;
      expect(await rejection(growFs(failing, 'xfs', DEV, '/t'))).to.equal('xfs_growfs /t failed (exit 1): xfs_growfs: /t is not a mounted XFS filesystem');
    });

    it('parseMounts splits on runs of blanks, ignores indentation, needs four fields and skips shorter lines', () => {
      expect(parseMounts('  /dev/sdb   /mnt/a\txfs rw,relatime 0 0\n/dev/sdc /b ext4 ro\nshort line only\n')).to.deep.equal([
        { source: '/dev/sdb', target: '/mnt/a', fsType: 'xfs', options: ['rw', 'relatime'] },
        { source: '/dev/sdc', target: '/b', fsType: 'ext4', options: ['ro'] },
      ]);
    });

    it('mountAt finds a mount recorded under the symlink itself or under the path it resolves to', () => {
      const dir = path.join(tmp, 'real');
      fs.mkdirSync(dir);
      const link = path.join(tmp, 'via-link');
      fs.symlinkSync(dir, link);
      const real = fs.realpathSync(dir);
      expect(mountAt(parseMounts(`/dev/sdb ${real} xfs rw 0 0\n`), link)?.source, 'recorded under the real path').to.equal('/dev/sdb');
      expect(mountAt(parseMounts(`/dev/sdc ${link} xfs rw 0 0\n`), link)?.source, 'recorded under the link').to.equal('/dev/sdc');
    });

    it('readMounts: a missing mounts file is a FlexError naming it', () => {
      const file = path.join(tmp, 'no-mounts');
      expect(thrown(() => readMounts(file))).to.match(new RegExp(`^cannot read ${file}: ENOENT`));
    });

    it('mountAt returns the last (visible) mount at a target; mountsOf ignores non-path sources', () => {
      const dev = deviceFile(0);
      const link = path.join(tmp, 'link');
      fs.symlinkSync(dev, link);
      fs.writeFileSync(path.join(tmp, 'm'), `${dev} /t xfs rw 0 0\n/dev/other /t ext4 ro 0 0\ntmpfs /x tmpfs rw 0 0\n`);
      const mounts = readMounts(path.join(tmp, 'm'));
      expect(mountAt(mounts, '/t')).to.deep.include({ source: '/dev/other', fsType: 'ext4' });
      expect(mountAt(mounts, '/none')).to.equal(undefined);
      expect(mountsOf(mounts, [link]).map((m) => m.source)).to.deep.equal([dev]);
      expect(mountsOf(mounts, ['tmpfs'])).to.deep.equal([]);
      expect(canonical(link)).to.equal(fs.realpathSync(dev));
      expect(canonical('/no/such/path')).to.equal('/no/such/path');
    });
  });
});
