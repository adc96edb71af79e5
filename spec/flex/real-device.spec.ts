// SPDX-License-Identifier: Apache-2.0
// The node driver on a REAL block device: the simulator keeps a sparse backing file per volume
// (--backing-dir), and the iscsiadm stand-in of the local cluster (spec/cluster/node/iscsiadm,
// a test double of the kernel's iSCSI initiator) attaches it as a loop device at login. Every
// other tool is the host's own: blkid, mkfs.xfs, mount, umount, xfs_growfs, losetup. The driver
// runs as kubelet runs it (spec/flex/harness.ts), in this (the host's) mount namespace, so its
// host root is a temp dir: dev/disk/by-path is private to the test, proc links to the real /proc.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { DateraClient } from '../../lib/datera/client.js';
import { DateraSimulator } from '../../lib/sim/server.js';
import { loopDevicesUnavailable } from '../support/loop-devices.js';
import { FakeHost, NODE_IQN, mountOptions, repoRoot, volumeOptions } from './harness.js';

const USER = 'admin';
const PASSWORD = 'Real_dev1ce.pw';
const IPS = ['172.28.41.9', '172.28.42.9'] as const;
const standinDir = path.join(repoRoot, 'spec/cluster/node');
const standin = path.join(standinDir, 'iscsiadm.mjs');

/** Loop devices bound to `file` (`losetup -j`), by name. */
function loopsOf(file: string): string[] {
  return execFileSync('losetup', ['-j', file], { encoding: 'utf8' })
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(':')[0]!);
}

/** The real mount table's entries whose mount point lies under `dir`. */
function mountsUnder(dir: string): { source: string; target: string; fsType: string }[] {
  return fs
    .readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' '))
    .filter((f) => f.length > 3 && (f[1] === dir || f[1]!.startsWith(`${dir}/`)))
    .map((f) => ({ source: f[0]!, target: f[1]!, fsType: f[2]! }));
}

describe('flex driver on a real loop device (simulator backing file + iscsiadm stand-in)', function () {
  this.timeout(120_000);
  let tmp: string;
  let backingDir: string;
  let sim: DateraSimulator;
  let url: string;
  let api: DateraClient;
  let host: FakeHost;
  const pv = 'pvc-real-0001';
  let file: string;

  before(async function () {
    const reason = loopDevicesUnavailable(['mkfs.xfs', 'blkid', 'xfs_growfs']);
    if (reason) {
      // Skipped on purpose: without root, loop devices and mkfs.xfs there is no real device to test.
      console.log(`    (skipped: ${reason})`);
      this.skip();
    }
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'flex-real-'));
    backingDir = path.join(tmp, 'backing');
    sim = new DateraSimulator({ users: [{ name: USER, password: PASSWORD }], accessIps: [...IPS], backingDir });
    url = await sim.start();
    api = new DateraClient({ endpoint: url, username: USER, password: PASSWORD, retryBaseMs: 5 });
    // As the provisioner creates a volume: the app instance, then its ownership metadata.
    await api.createAppInstance({
      name: pv,
      create_mode: 'kubernetes',
      storage_instances: [{ name: 'storage-1', volumes: [{ name: 'volume-1', size: 1, replica_count: 3 }] }],
    });
    await api.putMetadata(pv, {
      'k8s-provisioner': 'datera.io/provisioner-datera',
      'k8s-pv': pv,
      'k8s-claim-namespace': 'default',
      'k8s-claim-name': 'data',
    });
    const vol = sim.appInstances('/root')[0]!.storage_instances[0]!.volumes[0]!;
    file = path.join(backingDir, `${vol.uuid}.img`);

    host = new FakeHost({
      settings: { server: url, username: USER, password: PASSWORD, tenant: '/root', nodeName: 'node-1' },
      env: {
        // The stand-in first, then the host's real tools; no fakes.
        PATH: [standinDir, path.dirname(process.execPath), '/usr/sbin', '/usr/bin', '/sbin', '/bin'].join(':'),
        DATERA_FLEX_DEVICE_TIMEOUT_MS: '10000',
        DATERA_ISCSI_STANDIN_NODE: process.execPath,
        DATERA_ISCSI_STANDIN_SIM: url,
        DATERA_ISCSI_STANDIN_BACKING_DIR: backingDir,
      },
    });
    host.secrets.add(PASSWORD);
    // As on the local cluster's nodes: the DaemonSet's multipath settings, no multipath-tools.
    host.write('etc/multipath/conf.d/datera.conf', 'defaults { find_multipaths yes }\n');
    // The host root's by-path dir is the test's own; the mount table is the real one.
    fs.rmSync(host.path('proc'), { recursive: true, force: true });
    fs.symlinkSync('/proc', host.path('proc'));
    // The stand-in finds its settings in the environment the driver passes on to its tools.
    host.setEnv({
      DATERA_ISCSI_STANDIN_DEVDIR: host.path('dev'),
      DATERA_ISCSI_STANDIN_STATE_DIR: host.path('var/lib/iscsi-standin'),
      DATERA_ISCSI_STANDIN_INITIATOR_FILE: host.path('etc/iscsi/initiatorname.iscsi'),
    });
  });

  after(async () => {
    if (!tmp) return;
    for (const m of mountsUnder(tmp).reverse()) spawnSync('umount', ['-l', m.target]);
    // Every loop device on the simulator's files, whatever a failed step left behind.
    spawnSync(process.execPath, [standin, '--standin-cleanup', backingDir], { stdio: 'ignore' });
    await api?.close();
    await sim?.stop();
    host?.cleanup();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  const si = () => sim.appInstances('/root').find((a) => a.name === pv)!.storage_instances[0]!;
  const mkfsRuns = () => host.log().split('\n').filter((l) => l.includes('"cmd":"mkfs.')).length;

  it('mount logs in on every portal (a loop device per portal on the backing file), formats the blank device and mounts it', async () => {
    expect(fs.statSync(file).size, 'backing file of a 1 GiB volume').to.equal(1024 ** 3);
    const dir = host.podDir(pv, 'pod-a');
    await host.ok('mount', dir, mountOptions(pv, url));

    const loops = loopsOf(file);
    expect(loops, 'one loop device per portal').to.have.length(IPS.length);
    expect(si().active_initiators).to.deep.equal([NODE_IQN]);
    const link = path.join(host.path('dev/disk/by-path'), `ip-${IPS[0]}:3260-iscsi-${si().access.iqn}-lun-0`);
    const device = fs.realpathSync(link);
    expect(loops).to.include(device);
    expect(mountsUnder(dir)).to.deep.equal([{ source: device, target: dir, fsType: 'xfs' }]);
    expect(mkfsRuns(), 'mkfs runs').to.equal(1);
    expect(host.log(), 'multipath configured, multipath-tools absent').to.contain('multipath-tools is not installed');
    expect(execFileSync('blkid', ['-p', '-o', 'value', '-s', 'TYPE', device], { encoding: 'utf8' }).trim()).to.equal('xfs');

    fs.writeFileSync(path.join(dir, 'hello.txt'), 'written through a real filesystem\n');
  });

  it('unmount unmounts, logs out of every portal (no loop device left on the file) and leaves active_initiators empty', async () => {
    const dir = host.podDir(pv, 'pod-a');
    await host.ok('unmount', dir);
    expect(mountsUnder(dir)).to.deep.equal([]);
    expect(loopsOf(file), 'losetup -j <backing file>').to.deep.equal([]);
    expect(si().active_initiators).to.deep.equal([]);
    expect(si().acl_policy.initiators, 'ACL after detach').to.deep.equal([]);
    expect(fs.readdirSync(host.path('dev/disk/by-path')), 'by-path links').to.deep.equal([]);
    // The data reached the backing file: the xfs superblock magic "XFSB" is at offset 0.
    const head = Buffer.alloc(4);
    const fd = fs.openSync(file, 'r');
    fs.readSync(fd, head, 0, 4, 0);
    fs.closeSync(fd);
    expect(head.toString('latin1')).to.equal('XFSB');
  });

  it('a second mount finds the filesystem and does not format it again: the file written before is still there', async () => {
    const dir = host.podDir(pv, 'pod-b');
    await host.ok('mount', dir, mountOptions(pv, url, { options: { 'kubernetes.io/pod.uid': 'pod-b' } }));
    expect(mkfsRuns(), 'mkfs runs in total').to.equal(1);
    expect(fs.readFileSync(path.join(dir, 'hello.txt'), 'utf8')).to.equal('written through a real filesystem\n');
    expect(mountsUnder(dir).map((m) => m.fsType)).to.deep.equal(['xfs']);
  });

  it('expandfs grows the Datera volume, the backing file and the mounted xfs (rescan = losetup -c)', async () => {
    const dir = host.podDir(pv, 'pod-b');
    const sizeOf = () => {
      const st = fs.statfsSync(dir);
      return st.blocks * st.bsize;
    };
    const before = sizeOf();
    await host.ok('expandfs', volumeOptions(pv, url), '', dir, String(2 * 1024 ** 3), String(1024 ** 3));
    expect(si().volumes[0]!.size, 'Datera volume GiB').to.equal(2);
    expect(fs.statSync(file).size, 'backing file').to.equal(2 * 1024 ** 3);
    expect(sizeOf(), 'filesystem size after growing').to.be.above(before + 900 * 1024 ** 2);
    expect(fs.readFileSync(path.join(dir, 'hello.txt'), 'utf8')).to.equal('written through a real filesystem\n');
  });

  it('the last unmount detaches again: no mount, no loop device, no session', async () => {
    const dir = host.podDir(pv, 'pod-b');
    await host.ok('unmount', dir);
    expect(mountsUnder(tmp)).to.deep.equal([]);
    expect(mountsUnder(host.root)).to.deep.equal([]);
    expect(loopsOf(file)).to.deep.equal([]);
    expect(sim.iscsiSessions()).to.deep.equal([]);
  });
});
