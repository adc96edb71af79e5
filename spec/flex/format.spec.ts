// SPDX-License-Identifier: Apache-2.0
// "Never format data" through the real driver entry (spawned as kubelet does) against the
// Datera simulator and the fake host, with the LUN's content planted before the mount: every
// blkid outcome, unreadable and unrecognised data, and filesystems that differ from the PV.
import { expect } from 'chai';
import { DateraClient } from '../../lib/datera/client.js';
import { DateraSimulator } from '../../lib/sim/server.js';
import { FakeHost, mountOptions, type PlantedLun } from './harness.js';

const USER = 'admin';
const PASSWORD = 'Flex_f0rmat.pw';
const IPS = ['172.28.41.9', '172.28.42.9'] as const;

describe('flex driver: never format data (simulator + fake host)', function () {
  this.timeout(60_000);
  let sim: DateraSimulator;
  let url: string;
  let api: DateraClient;
  let host: FakeHost;
  let seq = 0;
  let pv: string;

  before(async () => {
    sim = new DateraSimulator({ users: [{ name: USER, password: PASSWORD }], accessIps: [...IPS] });
    url = await sim.start();
    api = new DateraClient({ endpoint: url, username: USER, password: PASSWORD, retryBaseMs: 5 });
  });
  after(async () => {
    await api.close();
    await sim.stop();
  });

  const settings = () => ({ server: url, username: USER, password: PASSWORD, tenant: '/root', nodeName: 'node-1' });
  const secret = () => ({ username: USER, password: PASSWORD, server: url });

  beforeEach(async () => {
    pv = `pvc-fmt-${++seq}`;
    await api.createAppInstance({
      name: pv,
      create_mode: 'kubernetes',
      storage_instances: [{ name: 'storage-1', volumes: [{ name: 'volume-1', size: 1, replica_count: 3 }] }],
    });
    // Provisioned for this PV in the pod's namespace: the driver's ownership check passes.
    await api.putMetadata(pv, { 'k8s-pv': pv, 'k8s-claim-namespace': 'default', 'k8s-claim-name': 'data', 'k8s-provisioner': 'datera.io/provisioner-datera' });
    host = new FakeHost({ settings: settings() });
    host.secrets.add(PASSWORD);
  });
  afterEach(() => host.cleanup());

  const targetIqn = (name: string) => sim.appInstances().find((a) => a.name === name)!.storage_instances[0]!.access.iqn;
  const aclOf = (name: string) =>
    sim.appInstances().find((a) => a.name === name)!.storage_instances[0]!.acl_policy.initiators.map((i) => i.path);
  const mkfsCalls = () => [...host.calls('mkfs.xfs'), ...host.calls('mkfs.ext4')];
  const plant = (lun: PlantedLun) => host.plantLun(targetIqn(pv), lun);
  const mount = (o: { fsType?: string } = {}) => host.run('mount', host.podDir(pv), mountOptions(pv, url, { ...o, secret: secret() }));

  /** The device path the driver probes: the by-path link of the first portal. */
  const device = () => host.path(`dev/disk/by-path/ip-${IPS[0]}:3260-iscsi-${targetIqn(pv)}-lun-0`);

  const refused: { what: string; lun: PlantedLun; message: (dev: string) => string }[] = [
    {
      what: 'a partition table (GPT), which the old TYPE-only blkid query reported as empty',
      lun: { blkid: { code: 0, stdout: 'DEVNAME={dev}\nPTUUID=5d2e6a38-3c4f-4a4e-8a1b-0c1f2e3d4c5b\nPTTYPE=gpt' } },
      message: (dev) => `${dev} holds a partition table (PTTYPE=gpt); refusing to format or mount it`,
    },
    {
      what: 'an LVM physical volume',
      lun: { blkid: { code: 0, stdout: 'DEVNAME={dev}\nUUID=Hc3n4Y-0aZx\nVERSION=LVM2 001\nTYPE=LVM2_member\nUSAGE=raid' } },
      message: (dev) => `${dev} holds LVM2_member (usage raid), not a filesystem this driver mounts (xfs, ext4, ext3, ext2); refusing to format or mount it`,
    },
    {
      what: 'a LUKS container',
      lun: { blkid: { code: 0, stdout: 'DEVNAME={dev}\nUUID=2b1c\nVERSION=2\nTYPE=crypto_LUKS\nUSAGE=crypto' } },
      message: (dev) => `${dev} holds crypto_LUKS (usage crypto), not a filesystem this driver mounts (xfs, ext4, ext3, ext2); refusing to format or mount it`,
    },
    {
      what: 'a signature without a type (unknown signature)',
      lun: { blkid: { code: 0, stdout: 'DEVNAME={dev}\nUSAGE=other' } },
      message: (dev) => `${dev} holds a signature without a filesystem type (USAGE=other); refusing to format or mount it`,
    },
    {
      what: 'more than one signature (blkid exit 8, ambivalent)',
      lun: { blkid: { code: 8, stderr: '{dev}: ambivalent result (probably more filesystems on the device, use wipefs(8) to see more details)' } },
      message: (dev) =>
        `cannot tell whether ${dev} is blank: blkid -p found more than one signature (ambivalent result; wipefs -n ${dev} lists them); refusing to format it`,
    },
    {
      what: 'an I/O error blkid reports (exit 2 with a message)',
      lun: { blkid: { code: 2, stderr: 'blkid: error: {dev}: Input/output error' } },
      message: (dev) => `cannot tell whether ${dev} is blank: blkid -p exited 2 with: blkid: error: ${dev}: Input/output error; refusing to format it`,
    },
    {
      what: 'an I/O error blkid keeps quiet about (exit 2, nothing said, the device cannot be read)',
      lun: { data: 'unreadable' },
      message: (dev) => `cannot tell whether ${dev} is blank: reading it at byte 0 failed (EISDIR); refusing to format it`,
    },
    {
      what: 'data blkid does not recognise (exit 2, but the device head is not zero)',
      lun: { data: 'junk' },
      message: (dev) => `${dev} holds data in a format blkid does not recognise (non-zero byte at offset 4); refusing to format or mount it`,
    },
    {
      what: 'a blkid usage error (exit 4)',
      lun: { blkid: { code: 4, stderr: 'blkid: unknown output format' } },
      message: (dev) => `cannot tell whether ${dev} is blank: blkid -p exited 4: blkid: unknown output format; refusing to format it`,
    },
    {
      what: 'any other blkid exit code (1, nothing said)',
      lun: { blkid: { code: 1 } },
      message: (dev) => `cannot tell whether ${dev} is blank: blkid -p exited 1: no output; refusing to format it`,
    },
  ];

  for (const { what, lun, message } of refused) {
    it(`refuses a device holding ${what}: Failure saying why, no mkfs, no mount, attach rolled back`, async () => {
      plant(lun);
      const r = await mount();
      expect(r.reply).to.deep.equal({ status: 'Failure', message: message(device()) });
      expect(mkfsCalls(), 'mkfs never runs').to.deep.equal([]);
      expect(host.calls('mount'), 'nothing mounted').to.deep.equal([]);
      expect(host.sessions(), 'the failed mount rolled back its attach').to.deep.equal([]);
      expect(aclOf(pv)).to.deep.equal([]);
    });
  }

  it('probes with the low-level `blkid -p -o export` and formats a proven-blank device with plain `mkfs.xfs <device>` (no -f)', async () => {
    await host.ok('mount', host.podDir(pv), mountOptions(pv, url, { secret: secret() }));
    expect(host.calls('blkid').map((c) => c.args)).to.deep.equal([['-p', '-o', 'export', device()]]);
    expect(host.calls('mkfs.xfs').map((c) => c.args)).to.deep.equal([[device()]]);
    expect(host.mounts().map((m) => m[2])).to.deep.equal(['xfs']);
  });

  it('an xfs filesystem on a PV that says ext4 is mounted as xfs, never reformatted, and the log says so', async () => {
    plant({ fs: 'xfs' });
    const r = await mount({ fsType: 'ext4' });
    expect(r.reply.status, r.reply.message).to.equal('Success');
    expect(mkfsCalls()).to.deep.equal([]);
    expect(host.calls('mount').at(-1)!.args.slice(0, 2)).to.deep.equal(['-t', 'xfs']);
    expect(host.mounts().map((m) => m[2])).to.deep.equal(['xfs']);
    expect(host.log()).to.match(/device holds a different filesystem than the PV says; mounting it as it is, not reformatting/);
  });

  it('an ext3 filesystem on a PV that says ext4 is mounted with its own type', async () => {
    plant({ fs: 'ext3' });
    await host.ok('mount', host.podDir(pv), mountOptions(pv, url, { fsType: 'ext4', secret: secret() }));
    expect(mkfsCalls()).to.deep.equal([]);
    expect(host.calls('mount').at(-1)!.args.slice(0, 2)).to.deep.equal(['-t', 'ext3']);
  });

  it('a refused device can be mounted once an admin has wiped it (the Failure is not sticky)', async () => {
    plant({ blkid: { code: 0, stdout: 'DEVNAME={dev}\nPTTYPE=dos' } });
    expect((await mount()).reply.status).to.equal('Failure');
    plant({});
    await host.ok('mount', host.podDir(pv), mountOptions(pv, url, { secret: secret() }));
    expect(host.calls('mkfs.xfs')).to.have.length(1);
  });
});
