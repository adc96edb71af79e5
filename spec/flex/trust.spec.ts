// SPDX-License-Identifier: Apache-2.0
// What the node driver trusts, run as kubelet runs it against the simulator and fake hosts:
// node credentials only to allowed servers (a loopback listener plays a foreign server),
// ownership metadata before any ACL change or login, one writing node per ReadWriteOnce volume
// (two fake hosts with their own initiator names against one simulator that sees their
// sessions), and ReadOnlyMany volumes mounted read-only on many nodes.
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { DateraClient } from '../../lib/datera/client.js';
import { DateraSimulator } from '../../lib/sim/server.js';
import { FakeHost, mountOptions, volumeOptions } from './harness.js';

const USER = 'admin';
const PASSWORD = 'Flex_s3cret.pw';
const IQN_A = 'iqn.1994-05.com.redhat:node-a';
const IQN_B = 'iqn.1994-05.com.redhat:node-b';

/** A loopback HTTP server that counts every request it gets (a Datera the admin never named). */
class ForeignServer {
  requests: string[] = [];
  private server = http.createServer((req, res) => {
    this.requests.push(`${req.method} ${req.url}`);
    req.resume();
    res.writeHead(500, { 'content-type': 'application/json' }).end('{}');
  });
  url = '';
  async start(): Promise<this> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }
  stop(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }
}

describe('flex driver trust: credentials, ownership, one writer, read-only (simulator + fake hosts)', function () {
  this.timeout(120_000);
  let sim: DateraSimulator;
  let url: string;
  let api: DateraClient;
  let foreign: ForeignServer;
  const hosts: FakeHost[] = [];
  let seq = 0;
  let pv: string;

  before(async () => {
    sim = new DateraSimulator({ users: [{ name: USER, password: PASSWORD }], accessIps: ['172.28.41.9', '172.28.42.9'] });
    url = await sim.start();
    api = new DateraClient({ endpoint: url, username: USER, password: PASSWORD, retryBaseMs: 5 });
    foreign = await new ForeignServer().start();
  });
  after(async () => {
    await api.close();
    await sim.stop();
    await foreign.stop();
  });

  const settings = (node: string, extra: Record<string, unknown> = {}) => ({ server: url, username: USER, password: PASSWORD, tenant: '/root', nodeName: node, ...extra });
  const secret = (over: Record<string, string> = {}) => ({ username: USER, password: PASSWORD, server: url, ...over });
  let disks: string;
  const node = (name: string, iqn: string, extra: Record<string, unknown> = {}, target: string | null = url) => {
    const h = new FakeHost({ settings: settings(name, extra), initiator: iqn, simUrl: target ?? undefined, disksFile: disks });
    h.secrets.add(PASSWORD);
    hosts.push(h);
    return h;
  };
  const aclOf = (name: string) =>
    sim.appInstances().find((a) => a.name === name)!.storage_instances[0]!.acl_policy.initiators.map((i) => i.path);
  const activeOf = (name: string) => sim.appInstances().find((a) => a.name === name)!.storage_instances[0]!.active_initiators;

  async function newVolume(md: Record<string, string> | undefined): Promise<string> {
    const name = `pvc-trust-${++seq}`;
    await api.createAppInstance({
      name,
      create_mode: 'kubernetes',
      storage_instances: [{ name: 'storage-1', volumes: [{ name: 'volume-1', size: 1, replica_count: 3 }] }],
    });
    if (md) await api.putMetadata(name, md);
    return name;
  }
  const owned = (name: string, namespace = 'default') => ({ 'k8s-pv': name, 'k8s-claim-namespace': namespace, 'k8s-claim-name': 'data' });

  beforeEach(async () => {
    pv = await newVolume(undefined);
    await api.putMetadata(pv, owned(pv));
    foreign.requests = [];
    disks = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'datera-disks-')), 'disks.json');
  });
  afterEach(() => {
    for (const h of hosts.splice(0)) h.cleanup();
    for (const iqn of [IQN_A, IQN_B]) sim.dropIscsiSessions(iqn);
    fs.rmSync(path.dirname(disks), { recursive: true, force: true });
  });

  describe('node credentials go only to allowed servers', () => {
    it('mount without a Secret naming a foreign backstoreServer: Failure naming it, zero requests to it, no login', async () => {
      const a = node('node-a', IQN_A);
      const r = await a.run('mount', a.podDir(pv), mountOptions(pv, foreign.url));
      expect(r.reply.status).to.equal('Failure');
      expect(r.reply.message).to.equal(
        `refusing to send the node's Datera credentials to ${foreign.url}: it is not the server or one of the allowedServers in ${a.path('etc/datera/flex.json')}`,
      );
      expect(foreign.requests).to.deep.equal([]);
      expect(a.iscsi('-l')).to.have.length(0);
    });

    it('attach and expandvolume (node credentials) naming a foreign server: Failure naming it, zero requests to it', async () => {
      const a = node('node-a', IQN_A);
      for (const argv of [
        ['attach', volumeOptions(pv, foreign.url), 'node-a'],
        ['expandvolume', volumeOptions(pv, foreign.url), '', String(2 * 1024 ** 3), String(1024 ** 3)],
      ]) {
        const r = await a.run(...argv);
        expect(r.reply.status, argv[0]).to.equal('Failure');
        expect(r.reply.message, argv[0]).to.contain(`refusing to send the node's Datera credentials to ${foreign.url}`);
      }
      expect(foreign.requests).to.deep.equal([]);
    });

    it('allowedServers admits a second endpoint, compared as the client connects (trailing slash, /v2.2 suffix)', async () => {
      const a = node('node-a', IQN_A, { server: 'https://datera.example:7718', allowedServers: [`${url}/`] });
      await a.ok('attach', volumeOptions(pv, `${url}/v2.2`), 'node-a');
      expect(aclOf(pv)).to.deep.equal([`/initiators/${IQN_A}`]);
    });

    it('unmount of a volume mounted with a Secret for a server not on the allow-list sends nothing there and succeeds', async () => {
      const other = new DateraSimulator({ users: [{ name: 'tenant', password: 'Tenant_pw.1' }] });
      const otherUrl = await other.start();
      try {
        const otherApi = new DateraClient({ endpoint: otherUrl, username: 'tenant', password: 'Tenant_pw.1', retryBaseMs: 5 });
        await otherApi.createAppInstance({
          name: pv,
          create_mode: 'kubernetes',
          storage_instances: [{ name: 'storage-1', volumes: [{ name: 'volume-1', size: 1, replica_count: 3 }] }],
        });
        await otherApi.putMetadata(pv, owned(pv));
        await otherApi.close();
        const a = node('node-a', IQN_A, {}, null);
        a.secrets.add('Tenant_pw.1');
        const dir = a.podDir(pv);
        await a.ok('mount', dir, mountOptions(pv, otherUrl, { secret: { username: 'tenant', password: 'Tenant_pw.1', server: otherUrl } }));
        const before = other.calls().length;
        await a.ok('unmount', dir);
        expect(other.calls().length, 'calls to the Secret-only server during unmount').to.equal(before);
        expect(a.sessions()).to.deep.equal([]);
        expect(a.log()).to.contain('left this node in the ACL');
      } finally {
        await other.stop();
      }
    });
  });

  describe('ownership metadata before any ACL change or login', () => {
    it('an inline volume named differently from the PV its options copy is refused, naming both', async () => {
      const a = node('node-a', IQN_A);
      const opts = mountOptions('inline-data', url, { options: { volumeID: pv } });
      const r = await a.run('mount', a.podDir('inline-data'), opts);
      expect(r.reply).to.deep.equal({
        status: 'Failure',
        message: `refusing to attach app instance ${pv}: its k8s-pv metadata names PersistentVolume ${pv}, not inline-data`,
      });
      expect(aclOf(pv)).to.deep.equal([]);
      expect(a.iscsi('-l')).to.have.length(0);
    });

    it('an app instance without ownership metadata is refused on mount and on attach', async () => {
      const bare = await newVolume(undefined);
      const a = node('node-a', IQN_A);
      const message = `refusing to attach app instance ${bare}: it carries no k8s-pv ownership metadata, so it was not provisioned for PersistentVolume ${bare}`;
      expect((await a.run('mount', a.podDir(bare), mountOptions(bare, url, { secret: secret() }))).reply.message).to.equal(message);
      expect((await a.run('attach', volumeOptions(bare, url), 'node-a')).reply.message).to.equal(message);
      expect(aclOf(bare)).to.deep.equal([]);
      expect(a.iscsi('-l')).to.have.length(0);
    });

    it('a pod in another namespace than the claim is refused, also when the volume is already attached on the node', async () => {
      const a = node('node-a', IQN_A);
      const message = `refusing to mount app instance ${pv} for a pod in namespace team-b: it belongs to a claim in namespace default`;
      const cold = await a.run('mount', a.podDir(pv, 'pod-x'), mountOptions(pv, url, { namespace: 'team-b', secret: secret() }));
      expect(cold.reply).to.deep.equal({ status: 'Failure', message });
      expect(aclOf(pv)).to.deep.equal([]);

      await a.ok('mount', a.podDir(pv, 'pod-a'), mountOptions(pv, url, { secret: secret() }));
      const warm = await a.run('mount', a.podDir(pv, 'pod-x'), mountOptions(pv, url, { namespace: 'team-b', secret: secret() }));
      expect(warm.reply).to.deep.equal({ status: 'Failure', message });
      expect(a.mounts().map((m) => m[1])).to.deep.equal([a.podDir(pv, 'pod-a')]);
    });

    it('a PV whose volumeID points at another PV\'s app instance is refused on attach (attach mode checks k8s-pv only)', async () => {
      const a = node('node-a', IQN_A, { attach: true });
      const r = await a.run('attach', volumeOptions('pvc-mine', url, { volumeID: pv }), 'node-a');
      expect(r.reply.message).to.equal(`refusing to attach app instance ${pv}: its k8s-pv metadata names PersistentVolume ${pv}, not pvc-mine`);
      expect(aclOf(pv)).to.deep.equal([]);
    });
  });

  describe('one writing node per ReadWriteOnce volume', () => {
    it('node B is refused naming node A while A has a session; after A unmounts, B mounts', async () => {
      const a = node('node-a', IQN_A);
      const b = node('node-b', IQN_B);
      await a.ok('mount', a.podDir(pv), mountOptions(pv, url, { secret: secret() }));
      expect(activeOf(pv)).to.deep.equal([IQN_A]);

      const refused = await b.run('mount', b.podDir(pv), mountOptions(pv, url, { secret: secret() }));
      expect(refused.reply.status).to.equal('Failure');
      expect(refused.reply.message).to.equal(
        `${pv} is ReadWriteOnce and node node-a (initiator ${IQN_A}) still has a live iSCSI session to it; it attaches here once that node unmounts it (or, if that node died, once the target times out its sessions)`,
      );
      expect(aclOf(pv)).to.deep.equal([`/initiators/${IQN_A}`]);
      expect(b.iscsi('-l')).to.have.length(0);

      await a.ok('unmount', a.podDir(pv));
      expect(activeOf(pv)).to.deep.equal([]);
      await b.ok('mount', b.podDir(pv), mountOptions(pv, url, { secret: secret() }));
      expect(activeOf(pv)).to.deep.equal([IQN_B]);
      expect(aclOf(pv)).to.deep.equal([`/initiators/${IQN_B}`]);
      expect(b.calls('mkfs.xfs'), 'A formatted it; B finds the filesystem').to.have.length(0);
    });

    it('a dead node: once the target times out its sessions, B takes over and removes A from the ACL, so A cannot log back in', async () => {
      const a = node('node-a', IQN_A);
      const b = node('node-b', IQN_B);
      await a.ok('mount', a.podDir(pv), mountOptions(pv, url, { secret: secret() }));
      // node A stops answering; the target's NOP-Out timeout ends its sessions
      const target = sim.appInstances().find((x) => x.name === pv)!.storage_instances[0]!.access.iqn;
      expect(sim.dropIscsiSessions(IQN_A, target)).to.equal(2);
      await b.ok('mount', b.podDir(pv), mountOptions(pv, url, { secret: secret() }));
      expect(aclOf(pv)).to.deep.equal([`/initiators/${IQN_B}`]);
      expect(b.log()).to.contain('removed an initiator without a live session from its ACL');

      const relogin = await fetch(`${url}/_sim/iscsi/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ target, initiator: IQN_A, portal: '172.28.41.9:3260' }),
      });
      expect(relogin.status, 'the returning node A logs in again').to.equal(403);
      expect(activeOf(pv)).to.deep.equal([IQN_B]);
    });

    it('the ReadWriteOnce accessModes option refuses a second node just like a PV without the option', async () => {
      const a = node('node-a', IQN_A);
      const b = node('node-b', IQN_B);
      const rwo = { options: { accessModes: 'ReadWriteOnce' } };
      await a.ok('mount', a.podDir(pv), mountOptions(pv, url, { secret: secret(), ...rwo }));
      const r = await b.run('mount', b.podDir(pv), mountOptions(pv, url, { secret: secret(), ...rwo }));
      expect(r.reply.message).to.match(new RegExp(`^${pv} is ReadWriteOnce and node node-a \\(initiator ${IQN_A}\\) still has a live iSCSI session`));
    });
  });

  describe('ReadOnlyMany', () => {
    it('is mounted read-only on two nodes at once although kubelet asks for rw', async () => {
      const a = node('node-a', IQN_A);
      const b = node('node-b', IQN_B);
      // the volume gets its filesystem from a first read-write user (as a clone source would have one)
      await a.ok('mount', a.podDir(pv, 'seed'), mountOptions(pv, url, { secret: secret() }));
      await a.ok('unmount', a.podDir(pv, 'seed'));

      const rox = { secret: secret(), options: { accessModes: 'ReadOnlyMany' } };
      await a.ok('mount', a.podDir(pv), mountOptions(pv, url, rox));
      await b.ok('mount', b.podDir(pv), mountOptions(pv, url, rox));
      for (const h of [a, b]) {
        expect(h.calls('mount').at(-1)!.args.slice(0, 4)).to.deep.equal(['-t', 'xfs', '-o', 'ro']);
        expect(h.mounts().map((m) => m[3])).to.deep.equal(['ro,relatime']);
      }
      expect(activeOf(pv)).to.have.members([IQN_A, IQN_B]);
      expect(aclOf(pv)).to.have.members([`/initiators/${IQN_A}`, `/initiators/${IQN_B}`]);
    });
  });
});
