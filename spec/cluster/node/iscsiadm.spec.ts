// SPDX-License-Identifier: Apache-2.0
// The local cluster's iscsiadm stand-in (spec/cluster/node/iscsiadm.mjs): iscsiadm's exit codes
// and output for what lib/flex/iscsi.ts runs, the simulator as the target, loop devices on the
// simulator's backing files, and the clean-up helper. Login/logout need root and losetup; the
// specs that attach loop devices skip (with the reason) elsewhere.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { DateraSimulator } from '../../../lib/sim/server.js';
import { parseSessions } from '../../../lib/flex/iscsi.js';
import { loopDevicesUnavailable } from '../../support/loop-devices.js';
// @ts-expect-error the stand-in is plain JavaScript without type declarations
import { linkTarget, normalizePortal, portalText } from './iscsiadm.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const wrapper = path.join(here, 'iscsiadm');
const script = path.join(here, 'iscsiadm.mjs');
const NODE_IQN = 'iqn.1993-08.org.debian:01:standin-node';
const IPS = ['172.28.41.9', '172.28.42.9'] as const;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

const loopsOf = (file: string): string[] =>
  execFileSync('losetup', ['-j', file], { encoding: 'utf8' })
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(':')[0]!);

describe('iscsiadm stand-in: names', () => {
  it('links by-path names to ../../loopN when devices live in the dev dir (as udev does), else to the absolute device', () => {
    expect(linkTarget('/dev', '/dev/disk/by-path/ip-10.0.0.1:3260-iscsi-iqn.x:y-lun-0', '/dev/loop3')).to.equal('../../loop3');
    expect(linkTarget('/tmp/root/dev', '/tmp/root/dev/disk/by-path/ip-10.0.0.1:3260-iscsi-iqn.x:y-lun-0', '/dev/loop3')).to.equal('/dev/loop3');
  });

  it('reads portals as iscsiadm does (default port 3260, IPv6 in brackets) and prints them as ip,port', () => {
    expect(['10.0.0.1', '10.0.0.1:3260', '10.0.0.1:3260,1', 'fd00::1', '[fd00::1]:3260'].map(normalizePortal)).to.deep.equal([
      '10.0.0.1:3260', '10.0.0.1:3260', '10.0.0.1:3260', '[fd00::1]:3260', '[fd00::1]:3260',
    ]);
    expect(portalText('10.0.0.1:3260')).to.equal('10.0.0.1,3260');
    expect(portalText('[fd00::1]:3260')).to.equal('fd00::1,3260');
  });
});

describe('iscsiadm stand-in of the local cluster nodes', function () {
  this.timeout(60_000);
  let tmp: string;
  let sim: DateraSimulator;
  let url: string;
  let env: NodeJS.ProcessEnv;
  let seq = 0;
  let target: string;
  let file: string;
  /** Puts the node in the ACL of the volume (a login is refused without). */
  let aclAdd: () => Promise<unknown>;

  const byPath = () => path.join(tmp, 'dev', 'disk', 'by-path');
  const link = (ip: string, lun = 0) => path.join(byPath(), `ip-${ip}:3260-iscsi-${target}-lun-${lun}`);

  /** Runs the wrapper as the driver does (its own PATH lookups, C locale). */
  function iscsiadm(...args: string[]): Promise<Run> {
    return new Promise((resolve) => {
      const child = spawn(wrapper, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    });
  }
  const node = (ip: string, ...rest: string[]) => iscsiadm('-m', 'node', '-T', target, '-p', `${ip}:3260`, ...rest);

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'standin-'));
    sim = new DateraSimulator({ accessIps: [...IPS], backingDir: path.join(tmp, 'backing') });
    url = await sim.start();
  });
  after(async () => {
    if (!tmp) return;
    spawnSync(process.execPath, [script, '--standin-cleanup', path.join(tmp, 'backing')], { stdio: 'ignore' });
    await sim?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  beforeEach(async () => {
    sim.reset();
    const nodeDir = path.join(tmp, `node-${++seq}`);
    fs.mkdirSync(path.join(nodeDir, 'etc'), { recursive: true });
    fs.writeFileSync(path.join(nodeDir, 'etc', 'initiatorname.iscsi'), `## DO NOT EDIT\nInitiatorName=${NODE_IQN}\n`);
    fs.rmSync(path.join(tmp, 'dev'), { recursive: true, force: true });
    env = {
      PATH: [path.dirname(process.execPath), '/usr/sbin', '/usr/bin', '/sbin', '/bin'].join(':'),
      LC_ALL: 'C',
      DATERA_ISCSI_STANDIN_SIM: url,
      DATERA_ISCSI_STANDIN_DEVDIR: path.join(tmp, 'dev'),
      DATERA_ISCSI_STANDIN_STATE_DIR: path.join(nodeDir, 'state'),
      DATERA_ISCSI_STANDIN_INITIATOR_FILE: path.join(nodeDir, 'etc', 'initiatorname.iscsi'),
      DATERA_ISCSI_STANDIN_CONFIG: path.join(nodeDir, 'none.json'),
    };
    fs.writeFileSync(env.DATERA_ISCSI_STANDIN_CONFIG!, '{}');
    const body = {
      name: 'vol-1',
      storage_instances: [{ name: 'storage-1', volumes: [{ name: 'volume-1', size: 1 }] }],
    };
    const key = (await (await fetch(`${url}/v2.2/login`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'admin', password: 'password' }) })).json()) as { key: string };
    const api = (method: string, p: string, b: unknown) =>
      fetch(`${url}/v2.2${p}`, { method, headers: { 'content-type': 'application/json', 'auth-token': key.key }, body: JSON.stringify(b) });
    await api('POST', '/app_instances', body);
    await api('POST', '/initiators', { id: NODE_IQN, name: 'k8s_node' });
    const si = sim.appInstances('/root')[0]!.storage_instances[0]!;
    target = si.access.iqn;
    file = path.join(tmp, 'backing', `${si.volumes[0]!.uuid}.img`);
    aclAdd = () => api('PUT', '/app_instances/vol-1/storage_instances/storage-1/acl_policy/initiators', { op: 'add', path: `/initiators/${NODE_IQN}` });
  });
  afterEach(() => {
    // Whatever a test left attached (sessions it did not log out).
    spawnSync(process.execPath, [script, '--standin-cleanup', path.join(tmp, 'backing')], { stdio: 'ignore' });
  });
  const active = () => sim.appInstances('/root')[0]!.storage_instances[0]!.active_initiators;

  it('-m session without sessions exits 21 with "No active sessions."', async () => {
    const r = await iscsiadm('-m', 'session');
    expect(r).to.deep.equal({ code: 21, stdout: '', stderr: 'iscsiadm: No active sessions.\n' });
  });

  it('node records: -o new prints the record, update needs one (21), delete removes it (then 21)', async () => {
    expect((await node(IPS[0], '-o', 'update', '-n', 'node.session.auth.authmethod', '-v', 'CHAP')).code).to.equal(21);
    const created = await node(IPS[0], '-o', 'new');
    expect(created.code).to.equal(0);
    expect(created.stdout).to.equal(`New iSCSI node [tcp:[hw=,ip=,net_if=,iscsi_if=default] ${IPS[0]},3260,-1 ${target}] added\n`);
    const upd = await node(IPS[0], '-o', 'update', '-n', 'node.session.auth.password', '-v', 'chap-secret-1');
    expect(upd).to.deep.equal({ code: 0, stdout: '', stderr: '' });
    const show = await node(IPS[0]);
    expect(show.stdout).to.include('node.session.auth.password = ********');
    expect(show.stdout).not.to.include('chap-secret-1');
    expect((await node(IPS[0], '-o', 'update', '-n', 'bogus', '-v', 'x')).code, 'unknown setting').to.equal(7);
    expect(await node(IPS[0], '-o', 'delete')).to.deep.equal({ code: 0, stdout: '', stderr: '' });
    expect(await node(IPS[0], '-o', 'delete')).to.deep.equal({ code: 21, stdout: '', stderr: 'iscsiadm: No records found\n' });
    expect((await node(IPS[0], '-l')).code, 'login without a record').to.equal(21);
  });

  it('a login the target refuses (node not in the ACL) exits 24 as an authorization failure and attaches nothing', async () => {
    await node(IPS[0], '-o', 'new');
    const r = await node(IPS[0], '-l');
    expect(r.code).to.equal(24);
    expect(r.stdout).to.equal(`Logging in to [iface: default, target: ${target}, portal: ${IPS[0]},3260]\n`);
    expect(r.stderr.split('\n').slice(0, 2)).to.deep.equal([
      `iscsiadm: Could not login to [iface: default, target: ${target}, portal: ${IPS[0]},3260].`,
      'iscsiadm: initiator reported error (24 - iSCSI login failed due to authorization failure)',
    ]);
    expect(active()).to.deep.equal([]);
    expect(fs.existsSync(byPath()) ? fs.readdirSync(byPath()) : []).to.deep.equal([]);
    expect((await iscsiadm('-m', 'session')).code).to.equal(21);
  });

  it('a login when the simulator cannot be reached exits 8 (connection timed out)', async () => {
    await node(IPS[0], '-o', 'new');
    env.DATERA_ISCSI_STANDIN_SIM = 'http://127.0.0.1:9';
    const r = await node(IPS[0], '-l');
    expect(r.code).to.equal(8);
    expect(r.stderr).to.include('iscsiadm: initiator reported error (8 - connection timed out)');
  });

  describe('with loop devices', function () {
    before(function () {
      const reason = loopDevicesUnavailable(['blockdev']);
      if (reason) {
        // Skipped on purpose: login attaches a loop device, which needs root and losetup.
        console.log(`      (skipped: ${reason})`);
        this.skip();
      }
    });

    it('login attaches the backing file as a loop device, links it under by-path, and the simulator shows the session', async () => {
      await aclAdd();
      await node(IPS[0], '-o', 'new');
      const r = await node(IPS[0], '-l');
      expect(r).to.deep.equal({
        code: 0,
        stdout:
          `Logging in to [iface: default, target: ${target}, portal: ${IPS[0]},3260]\n` +
          `Login to [iface: default, target: ${target}, portal: ${IPS[0]},3260] successful.\n`,
        stderr: '',
      });
      const loops = loopsOf(file);
      expect(loops).to.have.length(1);
      expect(fs.realpathSync(link(IPS[0]))).to.equal(loops[0]);
      expect(active()).to.deep.equal([NODE_IQN]);
      const list = await iscsiadm('-m', 'session');
      expect(list.code).to.equal(0);
      expect(parseSessions(list.stdout).map((s) => [s.portal, s.iqn])).to.deep.equal([[`${IPS[0]}:3260`, target]]);
      expect(list.stdout).to.match(new RegExp(`^tcp: \\[\\d+\\] ${IPS[0].replace(/\./g, '\\.')}:3260,1 ${target} \\(non-flash\\)\\n$`));
    });

    it('a second login on a live session exits 15 (already present); delete of its record exits 15', async () => {
      await aclAdd();
      await node(IPS[0], '-o', 'new');
      await node(IPS[0], '-l');
      const again = await node(IPS[0], '-l');
      expect(again).to.deep.equal({ code: 15, stdout: '', stderr: 'iscsiadm: default: 1 session requested, but 1 already present.\n' });
      expect(loopsOf(file), 'no second loop device').to.have.length(1);
      const del = await node(IPS[0], '-o', 'delete');
      expect(del.code).to.equal(15);
      expect(del.stderr).to.match(/but a session is using it\. Logout session then rerun command to remove record\.\n$/);
    });

    it('logout tells the simulator, removes the link and detaches the loop device; a second logout exits 21', async () => {
      await aclAdd();
      for (const ip of IPS) {
        await node(ip, '-o', 'new');
        await node(ip, '-l');
      }
      expect(loopsOf(file)).to.have.length(2);
      const r = await node(IPS[0], '-u');
      expect(r.code).to.equal(0);
      expect(r.stdout).to.match(new RegExp(`^Logging out of session \\[sid: \\d+, target: ${target}, portal: ${IPS[0].replace(/\./g, '\\.')},3260\\]\\nLogout of \\[sid: \\d+, target: .*\\] successful\\.\\n$`));
      expect(fs.existsSync(link(IPS[0]))).to.equal(false);
      expect(fs.existsSync(link(IPS[1]))).to.equal(true);
      expect(loopsOf(file)).to.have.length(1);
      expect(active(), 'the other portal still has a session').to.deep.equal([NODE_IQN]);
      await node(IPS[1], '-u');
      expect(loopsOf(file)).to.deep.equal([]);
      expect(active()).to.deep.equal([]);
      expect(await node(IPS[0], '-u')).to.deep.equal({ code: 21, stdout: '', stderr: 'iscsiadm: No matching sessions found\n' });
    });

    it('a logout the simulator cannot hear exits 10 and keeps the session whole for a retry', async () => {
      await aclAdd();
      await node(IPS[0], '-o', 'new');
      await node(IPS[0], '-l');
      env.DATERA_ISCSI_STANDIN_SIM = 'http://127.0.0.1:9';
      const r = await node(IPS[0], '-u');
      expect(r.code).to.equal(10);
      expect(r.stderr).to.include('iscsiadm: initiator reported error (10 - encountered iSCSI logout failure)');
      expect(loopsOf(file)).to.have.length(1);
      expect(fs.existsSync(link(IPS[0]))).to.equal(true);
      env.DATERA_ISCSI_STANDIN_SIM = url;
      expect((await node(IPS[0], '-u')).code).to.equal(0);
      expect(loopsOf(file)).to.deep.equal([]);
    });

    it('rescan picks up a grown volume (losetup -c) and restores a missing link', async () => {
      await aclAdd();
      await node(IPS[0], '-o', 'new');
      await node(IPS[0], '-l');
      const loop = loopsOf(file)[0]!;
      const bytes = () => Number(execFileSync('blockdev', ['--getsize64', loop], { encoding: 'utf8' }).trim());
      expect(bytes()).to.equal(1024 ** 3);
      fs.truncateSync(file, 2 * 1024 ** 3);
      fs.rmSync(link(IPS[0]));
      const r = await node(IPS[0], '-R');
      expect(r.code).to.equal(0);
      expect(r.stdout).to.match(/^Rescanning session \[sid: \d+, target: .*, portal: .*,3260\]\n$/);
      expect(bytes()).to.equal(2 * 1024 ** 3);
      expect(fs.realpathSync(link(IPS[0]))).to.equal(loop);
      expect((await node(IPS[1], '-R')).code, 'rescan without a session').to.equal(21);
    });

    it('a session whose loop device was detached behind its back has ended: the list drops it and the simulator hears a logout', async () => {
      await aclAdd();
      await node(IPS[0], '-o', 'new');
      await node(IPS[0], '-l');
      execFileSync('losetup', ['-d', loopsOf(file)[0]!]);
      expect((await iscsiadm('-m', 'session')).code).to.equal(21);
      expect(fs.existsSync(link(IPS[0]))).to.equal(false);
      expect(active()).to.deep.equal([]);
    });

    it('--standin-cleanup detaches every loop device on a file under the backing dir and lists them', async () => {
      await aclAdd();
      await node(IPS[0], '-o', 'new');
      await node(IPS[0], '-l');
      const [loop] = loopsOf(file);
      const r = spawnSync(process.execPath, [script, '--standin-cleanup', path.join(tmp, 'backing')], { encoding: 'utf8' });
      expect(r.status).to.equal(0);
      expect(r.stdout).to.equal(`detached ${loop} (${file})\n`);
      expect(loopsOf(file)).to.deep.equal([]);
    });

    it('login fails with 19, and leaves no session on the simulator, when the simulator keeps no backing files', async () => {
      const plain = new DateraSimulator({ accessIps: [...IPS] });
      const plainUrl = await plain.start();
      try {
        const key = ((await (await fetch(`${plainUrl}/v2.2/login`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'admin', password: 'password' }) })).json()) as { key: string }).key;
        const api = (method: string, p: string, b: unknown) =>
          fetch(`${plainUrl}/v2.2${p}`, { method, headers: { 'content-type': 'application/json', 'auth-token': key }, body: JSON.stringify(b) });
        await api('POST', '/app_instances', { name: 'vol-1', storage_instances: [{ name: 'storage-1', volumes: [{ name: 'volume-1', size: 1 }] }] });
        await api('POST', '/initiators', { id: NODE_IQN, name: 'k8s_node' });
        await api('PUT', '/app_instances/vol-1/storage_instances/storage-1/acl_policy/initiators', { op: 'add', path: `/initiators/${NODE_IQN}` });
        target = plain.appInstances('/root')[0]!.storage_instances[0]!.access.iqn;
        env.DATERA_ISCSI_STANDIN_SIM = plainUrl;
        await node(IPS[0], '-o', 'new');
        const r = await node(IPS[0], '-l');
        expect(r.code).to.equal(19);
        expect(r.stderr).to.include('start it with --backing-dir');
        expect(plain.iscsiSessions()).to.deep.equal([]);
      } finally {
        await plain.stop();
      }
    });
  });
});
