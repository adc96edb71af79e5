// SPDX-License-Identifier: Apache-2.0
// The FlexVolume driver end to end: every call-out runs as kubelet runs it (a child process,
// argv, one JSON object on stdout) against the Datera simulator over HTTP and a fake host
// (spec/flex/fakes) that emulates open-iscsi, udev links, mkfs/blkid and /proc/mounts.
import fs from 'node:fs';
import { expect } from 'chai';
import { DateraClient } from '../../lib/datera/client.js';
import { DateraSimulator } from '../../lib/sim/server.js';
import { FakeHost, NODE_IQN, mountOptions, volumeOptions } from './harness.js';

const USER = 'admin';
const PASSWORD = 'Flex_s3cret.pw';
const IPS = ['172.28.41.9', '172.28.42.9'] as const;
const portal = (ip: string) => `${ip}:3260`;

describe('flex driver call-outs (simulator + fake host)', function () {
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
  const secret = (over: Record<string, string> = {}) => ({ username: USER, password: PASSWORD, server: url, ...over });

  beforeEach(async () => {
    pv = `pvc-0000-${++seq}`;
    await api.createAppInstance({
      name: pv,
      create_mode: 'kubernetes',
      storage_instances: [{ name: 'storage-1', volumes: [{ name: 'volume-1', size: 1, replica_count: 3 }] }],
    });
    await api.putMetadata(pv, { 'k8s-pv': pv, 'k8s-claim-namespace': 'default', 'k8s-claim-name': 'data', 'k8s-provisioner': 'datera.io/provisioner-datera' });
    host = new FakeHost({ settings: settings() });
    host.secrets.add(PASSWORD);
  });
  afterEach(() => host.cleanup());

  const aclOf = (name: string) =>
    sim.appInstances().find((a) => a.name === name)!.storage_instances[0]!.acl_policy.initiators.map((i) => i.path);
  const targetIqn = (name: string) => sim.appInstances().find((a) => a.name === name)!.storage_instances[0]!.access.iqn;

  it('init reports the capabilities, attach:false by default', async () => {
    const r = await host.ok('init');
    expect(r.capabilities).to.deep.equal({
      attach: false,
      fsGroup: true,
      requiresFSResize: true,
      selinuxRelabel: true,
      supportsMetrics: false,
    });
  });

  it('init reports attach:true when the node settings ask for attach mode', async () => {
    host.writeSettings({ ...settings(), attach: true });
    expect((await host.ok('init')).capabilities?.attach).to.equal(true);
  });

  it('an unknown call-out is Not supported (exit 0)', async () => {
    const r = await host.run('provision', '{}');
    expect(r.reply.status).to.equal('Not supported');
    expect(r.code).to.equal(0);
  });

  it('getvolumename answers the app instance name', async () => {
    expect((await host.ok('getvolumename', volumeOptions(pv, url))).volumeName).to.equal(pv);
  });

  it('a malformed options argument is a Failure naming the call-out', async () => {
    const r = await host.run('mount', host.podDir(pv), '{not json');
    expect(r.reply).to.deep.equal({ status: 'Failure', message: 'mount: the options argument is not valid JSON' });
  });

  it('attach logs in to every portal once; a second attach is a no-op; detach undoes it', async () => {
    const first = await host.ok('attach', volumeOptions(pv, url), 'node-1');
    const iqn = targetIqn(pv);
    expect(first.device).to.equal(host.path(`dev/disk/by-path/ip-${portal(IPS[0])}-iscsi-${iqn}-lun-0`));
    expect(host.iscsi('-l').map((c) => c.args[c.args.indexOf('-p') + 1])).to.deep.equal(IPS.map(portal));
    expect(aclOf(pv)).to.deep.equal([`/initiators/${NODE_IQN}`]);
    const datera = sim.calls().length;

    const second = await host.ok('attach', volumeOptions(pv, url), 'node-1');
    expect(second.device).to.equal(first.device);
    expect(host.iscsi('-l')).to.have.length(2);
    expect(sim.calls().length, 'no Datera calls for an attached volume').to.equal(datera);
    expect(aclOf(pv)).to.have.length(1);
    expect((await host.ok('isattached', volumeOptions(pv, url), 'node-1')).attached).to.equal(true);

    await host.ok('detach', pv, 'node-1');
    expect(host.sessions()).to.deep.equal([]);
    expect(host.iscsi('-u')).to.have.length(2);
    expect(host.iscsi('delete')).to.have.length(2);
    expect(aclOf(pv)).to.deep.equal([]);
    expect(fs.existsSync(host.path(`var/lib/datera/flex/${pv}.json`))).to.equal(false);
    expect((await host.ok('isattached', volumeOptions(pv, url), 'node-1')).attached).to.equal(false);
    await host.ok('detach', pv, 'node-1');
  });

  it('attach brings an offline app instance online first', async () => {
    await api.setAdminState(pv, 'offline', true);
    await host.ok('attach', volumeOptions(pv, url), 'node-1');
    expect(sim.appInstances().find((a) => a.name === pv)!.admin_state).to.equal('online');
  });

  it('attach refuses a call meant for another node', async () => {
    const r = await host.run('attach', volumeOptions(pv, url), 'node-2');
    expect(r.reply.status).to.equal('Failure');
    expect(r.reply.message).to.match(/attach for node node-2 reached node node-1/);
    expect(host.iscsi('-l')).to.have.length(0);
  });

  it('attach of an app instance Datera does not have fails with its name', async () => {
    const r = await host.run('attach', volumeOptions('pvc-missing', url), 'node-1');
    expect(r.reply.status).to.equal('Failure');
    expect(r.reply.message).to.match(/app instance pvc-missing was not found on Datera/);
  });

  it('mount formats a fresh device once, applies fsGroup, then unmount detaches', async () => {
    const dir = host.podDir(pv);
    await host.ok('mount', dir, mountOptions(pv, url, { fsGroup: 2000, secret: secret() }));
    expect(host.calls('mkfs.xfs')).to.have.length(1);
    expect(host.mounts().map((m) => [m[1], m[2], m[3]])).to.deep.equal([[dir, 'xfs', 'rw,relatime']]);
    expect(host.calls('chgrp').map((c) => c.args)).to.deep.equal([['2000', dir]]);
    expect(fs.statSync(dir).mode & 0o2000, 'setgid on the mount root').to.equal(0o2000);
    expect(aclOf(pv)).to.have.length(1);

    // kubelet retries: mounted already = Success without touching anything
    host.clearCalls();
    await host.ok('mount', dir, mountOptions(pv, url, { fsGroup: 2000, secret: secret() }));
    expect(host.calls()).to.deep.equal([]);

    await host.ok('unmount', dir);
    expect(host.mounts()).to.deep.equal([]);
    expect(host.sessions()).to.deep.equal([]);
    expect(aclOf(pv)).to.deep.equal([]);

    host.clearCalls();
    await host.ok('unmount', dir);
    expect(host.calls('umount')).to.have.length(0);
    expect(host.calls('iscsiadm').filter((c) => !c.args.includes('session'))).to.have.length(0);
  });

  it('mount of a device that already holds a filesystem never runs mkfs', async () => {
    const dir = host.podDir(pv);
    await host.ok('mount', dir, mountOptions(pv, url, { secret: secret() }));
    await host.ok('unmount', dir);
    host.clearCalls();
    await host.ok('mount', host.podDir(pv, 'pod-b'), mountOptions(pv, url, { fsGroup: 3000, secret: secret() }));
    expect(host.calls('blkid')).to.have.length(1);
    expect(host.calls('mkfs.xfs')).to.have.length(0);
    expect(host.calls('chgrp'), 'fsGroup only on a new filesystem').to.have.length(0);
  });

  it('ext4 is made with mkfs.ext4 -F', async () => {
    await host.ok('mount', host.podDir(pv), mountOptions(pv, url, { fsType: 'ext4', secret: secret() }));
    expect(host.calls('mkfs.ext4').map((c) => c.args[0])).to.deep.equal(['-F']);
    expect(host.mounts()[0]![2]).to.equal('ext4');
  });

  it('read-only mounts use -o ro; a read-only mount of an empty device is refused', async () => {
    const r = await host.run('mount', host.podDir(pv), mountOptions(pv, url, { ro: true, secret: secret() }));
    expect(r.reply.status).to.equal('Failure');
    expect(r.reply.message).to.match(/has no filesystem and is requested read-only/);
    expect(host.calls('mkfs.xfs')).to.have.length(0);
    expect(host.sessions(), 'the failed mount rolled back its attach').to.deep.equal([]);
    expect(aclOf(pv)).to.deep.equal([]);

    await host.ok('mount', host.podDir(pv), mountOptions(pv, url, { secret: secret() }));
    await host.ok('unmount', host.podDir(pv));
    await host.ok('mount', host.podDir(pv, 'pod-ro'), mountOptions(pv, url, { ro: true, secret: secret() }));
    const mountCall = host.calls('mount').at(-1)!;
    expect(mountCall.args.slice(0, 4)).to.deep.equal(['-t', 'xfs', '-o', 'ro']);
    expect(host.mounts()[0]![3]).to.equal('ro,relatime');
  });

  it('a second pod on the node gets a bind mount; the volume detaches after the last unmount', async () => {
    const a = host.podDir(pv, 'pod-a');
    const b = host.podDir(pv, 'pod-b');
    await host.ok('mount', a, mountOptions(pv, url, { secret: secret() }));
    await host.ok('mount', b, mountOptions(pv, url, { ro: true, secret: secret() }));
    expect(host.calls('mount').at(-2)!.args).to.deep.equal(['--bind', a, b]);
    expect(host.mounts().map((m) => [m[1], m[3]])).to.deep.equal([
      [a, 'rw,relatime'],
      [b, 'ro,relatime'],
    ]);
    await host.ok('unmount', a);
    expect(host.sessions(), 'still used by pod-b').to.have.length(2);
    expect(aclOf(pv)).to.have.length(1);
    await host.ok('unmount', b);
    expect(host.sessions()).to.deep.equal([]);
    expect(aclOf(pv)).to.deep.equal([]);
  });

  it('detach after a node restart still removes the ACL entry', async () => {
    await host.ok('mount', host.podDir(pv), mountOptions(pv, url, { secret: secret() }));
    host.reboot();
    await host.ok('detach', pv, 'node-1');
    expect(aclOf(pv)).to.deep.equal([]);
  });

  it('detach without the attachment record calls no Datera at all and answers Success', async () => {
    await host.ok('attach', volumeOptions(pv, url), 'node-1');
    host.reboot();
    fs.rmSync(host.path('var/lib/datera'), { recursive: true });
    host.clearCalls();
    const before = sim.calls().length;
    await host.ok('detach', pv, 'node-1');
    expect(sim.calls().length, 'Datera calls made by detach').to.equal(before);
    expect(host.log()).to.contain('no attachment record for this volume on this node');
  });

  it('detach refuses while the device is still mounted', async () => {
    const dir = host.podDir(pv);
    await host.ok('mount', dir, mountOptions(pv, url, { secret: secret() }));
    const r = await host.run('detach', pv, 'node-1');
    expect(r.reply.status).to.equal('Failure');
    expect(r.reply.message).to.equal(`${pv} is still mounted at ${dir}; unmount it before detaching`);
    expect(host.sessions()).to.have.length(2);
  });

  it('one portal down: attach still succeeds over the other', async () => {
    host.portalDown(IPS[0]);
    const r = await host.ok('attach', volumeOptions(pv, url), 'node-1');
    expect(r.device).to.contain(`ip-${portal(IPS[1])}-iscsi-`);
    expect(host.sessions().map((s) => s.portal)).to.deep.equal([portal(IPS[1])]);
    expect(host.log()).to.match(/iSCSI portal unusable/);
    // the portal comes back: the next attach logs in to it as well
    host.portalDown(IPS[0], false);
    await host.ok('detach', pv, 'node-1');
  });

  it('all portals down: Failure naming every portal, and no device', async () => {
    for (const ip of IPS) host.portalDown(ip);
    const r = await host.run('attach', volumeOptions(pv, url), 'node-1');
    expect(r.reply.status).to.equal('Failure');
    for (const ip of IPS) expect(r.reply.message).to.contain(`login to ${portal(ip)} failed (iscsiadm exit 8)`);
    expect(r.reply.message).to.match(/^iSCSI login to iqn\.2013-05\.com\.daterainc:\S+ failed on every portal/);
    expect(host.sessions()).to.deep.equal([]);
  });

  it('wrong credentials in the mount Secret: a clear Failure without the password', async () => {
    const wrong = 'Wrong_pw.123';
    host.secrets.add(wrong);
    const r = await host.run('mount', host.podDir(pv), mountOptions(pv, url, { secret: secret({ password: wrong }) }));
    expect(r.reply.status).to.equal('Failure');
    expect(r.reply.message).to.match(new RegExp(`^Datera at ${url} rejected the login of user "admin" \\(credentials from the volume Secret\\)`));
    expect(host.iscsi('-l')).to.have.length(0);
  });

  it('wrong credentials in the node settings: the Failure names the settings file', async () => {
    host.writeSettings({ ...settings(), password: 'Bad_node.pw' });
    const r = await host.run('attach', volumeOptions(pv, url), 'node-1');
    expect(r.reply.status).to.equal('Failure');
    expect(r.reply.message).to.contain(`credentials from ${host.path('etc/datera/flex.json')}`);
  });

  it('call-outs without a Secret fail clearly when the node settings are missing', async () => {
    fs.rmSync(host.path('etc/datera/flex.json'));
    const r = await host.run('attach', volumeOptions(pv, url), 'node-1');
    expect(r.reply.status).to.equal('Failure');
    expect(r.reply.message).to.match(/flex\.json not found: the datera-flex DaemonSet writes it/);
  });

  it('CHAP from the Secret is set on the node record before login and never logged', async () => {
    const chapPassword = 'chap_Secret_12';
    host.secrets.add(chapPassword);
    host.write('fake/chap.json', JSON.stringify({ user: 'chapuser', password: chapPassword }));
    await host.ok('mount', host.podDir(pv), mountOptions(pv, url, { secret: secret({ chapUser: 'chapuser', chapPassword }) }));
    const updates = host.calls('iscsiadm').filter((c) => c.args.includes('update'));
    expect(updates.map((c) => c.args[c.args.indexOf('-n') + 1])).to.deep.equal([
      'node.session.auth.authmethod',
      'node.session.auth.username',
      'node.session.auth.password',
      'node.session.auth.authmethod',
      'node.session.auth.username',
      'node.session.auth.password',
    ]);
    expect(host.sessions()).to.have.length(2);
    expect(host.log()).to.contain('[REDACTED]');
  });

  it('with multipath the device is the dm map, flushed on detach', async () => {
    host.write('fake/multipath', '');
    host.write('etc/multipath.conf', 'defaults {}\n');
    const dir = host.podDir(pv);
    await host.ok('mount', dir, mountOptions(pv, url, { secret: secret() }));
    expect(host.mounts()[0]![0]).to.equal(host.path('dev/dm-0'));
    await host.ok('unmount', dir);
    expect(host.calls('multipath').map((c) => c.args)).to.deep.equal([['-f', 'mpath0']]);
    expect(host.sessions()).to.deep.equal([]);
  });

  it('a failing mkfs is reported and the attach rolled back', async () => {
    host.failTool('mkfs.xfs', 'mkfs.xfs: pwrite failed: Input/output error');
    const r = await host.run('mount', host.podDir(pv), mountOptions(pv, url, { secret: secret() }));
    expect(r.reply).to.deep.equal({
      status: 'Failure',
      message: `mkfs.xfs ${host.path(`dev/disk/by-path/ip-${portal(IPS[0])}-iscsi-${targetIqn(pv)}-lun-0`)} failed (exit 1): mkfs.xfs: pwrite failed: Input/output error`,
    });
    expect(host.sessions()).to.deep.equal([]);
    expect(aclOf(pv)).to.deep.equal([]);
  });

  it('attach mode: attach, waitforattach, mountdevice, mount, unmount, unmountdevice, detach', async () => {
    host.writeSettings({ ...settings(), attach: true });
    const opts = volumeOptions(pv, url);
    const global = host.path(`var/lib/kubelet/plugins/kubernetes.io/flexvolume/datera/iscsi/mounts/${pv}`);
    const { device } = await host.ok('attach', opts, 'node-1');
    expect((await host.ok('waitforattach', device!, opts)).device).to.equal(device);
    expect((await host.ok('waitforattach', '', opts)).device).to.equal(device);
    await host.ok('mountdevice', global, device!, opts);
    await host.ok('mount', host.podDir(pv), mountOptions(pv, url, { secret: secret() }));
    expect(host.calls('mount').at(-1)!.args).to.deep.equal(['--bind', global, host.podDir(pv)]);
    await host.ok('unmount', host.podDir(pv));
    expect(host.sessions(), 'attach mode leaves detach to kubelet').to.have.length(2);
    await host.ok('unmountdevice', global);
    await host.ok('unmountdevice', global);
    expect(host.mounts()).to.deep.equal([]);
    await host.ok('detach', pv, 'node-1');
    expect(host.sessions()).to.deep.equal([]);
    expect(aclOf(pv)).to.deep.equal([]);
  });

  it('expandvolume grows the Datera volume; expandfs also grows the filesystem', async () => {
    const dir = host.podDir(pv);
    await host.ok('mount', dir, mountOptions(pv, url, { secret: secret() }));
    const GiB = 1024 ** 3;
    await host.ok('expandvolume', volumeOptions(pv, url), dir, String(2 * GiB), String(GiB));
    const sizeOf = () => sim.appInstances().find((a) => a.name === pv)!.storage_instances[0]!.volumes[0]!.size;
    expect(sizeOf()).to.equal(2);
    await host.ok('expandfs', volumeOptions(pv, url), '', dir, String(3 * GiB) , String(2 * GiB));
    expect(sizeOf()).to.equal(3);
    expect(host.iscsi('-R')).to.have.length(2);
    expect(host.calls('xfs_growfs').map((c) => c.args)).to.deep.equal([[dir]]);
  });
});
