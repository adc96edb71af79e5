// SPDX-License-Identifier: Apache-2.0
// Backing files (SimOptions.backingDir / --backing-dir): one sparse file per volume, the size of
// the volume, grown on resize, removed with the volume; the iSCSI login answers them as LUNs.
import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UsageError, parseCli } from '../../lib/sim/cli.js';
import { DateraSimulator } from '../../lib/sim/server.js';
import { SimFixture, aiBody, http } from './helpers.js';

const GiB = 1024 ** 3;
const IQN1 = 'iqn.1993-08.org.debian:01:node1';
const AI = '/app_instances/back-1';
const SI = `${AI}/storage_instances/storage-1`;

/** The .img files in a directory, by name. */
const images = (dir: string) => fs.readdirSync(dir).filter((f) => f.endsWith('.img')).sort();

describe('simulator: backing files of volumes (--backing-dir)', () => {
  let dir: string;
  let f: SimFixture;

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sim-backing-'));
    f = await new SimFixture({ backingDir: path.join(dir, 'volumes') }).start();
  });
  afterEach(async () => {
    await f?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const volumesDir = () => path.join(dir, 'volumes');
  const fileOf = (uuid: string) => path.join(volumesDir(), `${uuid}.img`);
  const volume = async (p = `${SI}/volumes/volume-1`) => (await f.get(p)).body.data as { uuid: string; size: number };
  /** Puts IQN1 in the ACL of back-1/storage-1 and logs it in; answers the login reply. */
  const login = async () => {
    await f.call('POST', '/initiators', { id: IQN1, name: 'k8s_node1' });
    await f.call('PUT', `${SI}/acl_policy/initiators`, { op: 'add', path: `/initiators/${IQN1}` });
    const si = (await f.get(SI)).body.data;
    return http(f.url, 'POST', '/_sim/iscsi/login', { target: si.access.iqn, initiator: IQN1, portal: `${si.access.ips[0]}:3260` });
  };

  it('creates the directory, and a sparse file of the volume size named by the volume uuid, when an app instance is created', async () => {
    expect(f.sim.backingDir).to.equal(volumesDir());
    expect(fs.statSync(volumesDir()).isDirectory()).to.equal(true);
    expect((await f.call('POST', '/app_instances', aiBody('back-1', 10))).status).to.equal(200);
    const v = await volume();
    expect(images(volumesDir())).to.deep.equal([`${v.uuid}.img`]);
    const st = fs.statSync(fileOf(v.uuid));
    expect(st.size).to.equal(10 * GiB);
    expect(st.blocks * 512, 'allocated bytes of a sparse file').to.be.below(1024 * 1024);
    const head = Buffer.alloc(4096, 1);
    const fd = fs.openSync(fileOf(v.uuid), 'r');
    fs.readSync(fd, head, 0, head.length, 0);
    fs.closeSync(fd);
    expect(head.every((b) => b === 0), 'a new volume reads back as zeros').to.equal(true);
  });

  it('gives every volume of a new storage instance and a new volume its own file', async () => {
    const body = aiBody('back-1', 2);
    (body['storage_instances'] as { volumes: unknown[] }[])[0]!.volumes.push({ name: 'volume-2', size: 3 });
    await f.call('POST', '/app_instances', body);
    expect((await f.call('POST', `${AI}/storage_instances`, { name: 'storage-2', volumes: [{ name: 'vol-s2', size: 4 }] })).status).to.equal(200);
    expect((await f.call('POST', `${SI}/volumes`, { name: 'volume-3', size: 5 })).status).to.equal(200);
    const sizes: Record<string, number> = {};
    for (const p of [`${SI}/volumes/volume-1`, `${SI}/volumes/volume-2`, `${AI}/storage_instances/storage-2/volumes/vol-s2`, `${SI}/volumes/volume-3`]) {
      const v = await volume(p);
      sizes[v.size] = fs.statSync(fileOf(v.uuid)).size / GiB;
    }
    expect(sizes).to.deep.equal({ 2: 2, 3: 3, 4: 4, 5: 5 });
    expect(images(volumesDir())).to.have.length(4);
  });

  it('grows the file on resize, keeps the data, and leaves it as it is when a shrink is refused', async () => {
    await f.call('POST', '/app_instances', aiBody('back-1', 1));
    const v = await volume();
    fs.writeFileSync(fileOf(v.uuid), 'data', { flag: 'r+' });
    expect((await f.call('PUT', `${SI}/volumes/volume-1`, { size: 3 })).status).to.equal(200);
    expect(fs.statSync(fileOf(v.uuid)).size).to.equal(3 * GiB);
    const head = Buffer.alloc(4);
    const fd = fs.openSync(fileOf(v.uuid), 'r');
    fs.readSync(fd, head, 0, 4, 0);
    fs.closeSync(fd);
    expect(head.toString()).to.equal('data');
    expect((await f.call('PUT', `${SI}/volumes/volume-1`, { size: 2 })).status).to.equal(400);
    expect(fs.statSync(fileOf(v.uuid)).size).to.equal(3 * GiB);
  });

  it('removes the file with the volume, the storage instance, the app instance, and on reset', async () => {
    const body = aiBody('back-1', 1);
    (body['storage_instances'] as { volumes: unknown[] }[])[0]!.volumes.push({ name: 'volume-2', size: 1 });
    await f.call('POST', '/app_instances', body);
    await f.call('POST', `${AI}/storage_instances`, { name: 'storage-2', volumes: [{ name: 'vol-s2', size: 1 }] });
    const v2 = await volume(`${SI}/volumes/volume-2`);
    const s2 = await volume(`${AI}/storage_instances/storage-2/volumes/vol-s2`);
    expect(images(volumesDir())).to.have.length(3);

    expect((await f.call('DELETE', `${SI}/volumes/volume-2`)).status).to.equal(200);
    expect(fs.existsSync(fileOf(v2.uuid))).to.equal(false);
    expect((await f.call('DELETE', `${AI}/storage_instances/storage-2`, { force: true })).status).to.equal(200);
    expect(fs.existsSync(fileOf(s2.uuid))).to.equal(false);
    expect(images(volumesDir())).to.have.length(1);
    await f.call('PUT', AI, { admin_state: 'offline' });
    expect((await f.call('DELETE', AI)).status).to.equal(200);
    expect(images(volumesDir())).to.deep.equal([]);

    await f.call('POST', '/app_instances', aiBody('back-2', 1));
    expect(images(volumesDir())).to.have.length(1);
    expect((await http(f.url, 'POST', '/_sim/reset', {})).status).to.equal(200);
    expect(images(volumesDir())).to.deep.equal([]);
  });

  it('names the file by the uuid the simulator chose, not by a uuid the client sent', async () => {
    const sent = '0123abcd-0000-4000-8000-0000000000aa';
    expect((await f.call('POST', '/app_instances', aiBody('back-1', 1, { uuid: sent }))).status).to.equal(200);
    expect((await volume()).uuid, 'the API shows the sent uuid').to.equal(sent);
    const files = images(volumesDir());
    expect(files).to.have.length(1);
    expect(files[0]).not.to.equal(`${sent}.img`);
    expect(files[0]).to.match(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.img$/);
  });

  it('answers the login with each LUN and the path of its backing file; a repeated login answers them too', async () => {
    const body = aiBody('back-1', 2);
    (body['storage_instances'] as { volumes: unknown[] }[])[0]!.volumes.push({ name: 'volume-2', size: 1 });
    await f.call('POST', '/app_instances', body);
    const v1 = await volume();
    const v2 = await volume(`${SI}/volumes/volume-2`);
    const r = await login();
    expect(r.status).to.equal(200);
    expect(r.body.luns).to.deep.equal([
      { lun: 0, volume: 'volume-1', uuid: v1.uuid, size: 2, path: fileOf(v1.uuid) },
      { lun: 1, volume: 'volume-2', uuid: v2.uuid, size: 1, path: fileOf(v2.uuid) },
    ]);
    const si = (await f.get(SI)).body.data;
    const again = await http(f.url, 'POST', '/_sim/iscsi/login', { target: si.access.iqn, initiator: IQN1, portal: `${si.access.ips[0]}:3260` });
    expect(again.body.existed).to.equal(true);
    expect(again.body.luns.map((l: { path: string }) => l.path)).to.deep.equal([fileOf(v1.uuid), fileOf(v2.uuid)]);
  });

  it('refuses a volume whose file cannot be created (500 naming the file) and keeps no app instance', async () => {
    fs.rmSync(volumesDir(), { recursive: true });
    const r = await f.call('POST', '/app_instances', aiBody('back-1', 1));
    expect(r.status).to.equal(500);
    expect(r.body.message).to.match(/^Simulator cannot create the backing file .*volumes\/[0-9a-f-]{36}\.img of app instance back-1 \(volume volume-1\): ENOENT/);
    expect(f.sim.appInstances('/root')).to.deep.equal([]);
  });
});

describe('simulator: without a backing dir', () => {
  let f: SimFixture;
  let cwdBefore: string[];
  beforeEach(async () => {
    cwdBefore = fs.readdirSync(process.cwd());
    f = await new SimFixture().start();
  });
  afterEach(async () => {
    await f?.stop();
  });

  it('writes no file for a volume and answers the login without luns', async () => {
    expect(f.sim.backingDir).to.equal(undefined);
    await f.call('POST', '/app_instances', aiBody('plain-1', 1));
    const uuid = (await f.get('/app_instances/plain-1/storage_instances/storage-1/volumes/volume-1')).body.data.uuid as string;
    for (const d of [process.cwd(), os.tmpdir()]) expect(fs.readdirSync(d).filter((n) => n.includes(uuid)), d).to.deep.equal([]);
    expect(fs.readdirSync(process.cwd())).to.deep.equal(cwdBefore);
    await f.call('POST', '/initiators', { id: IQN1, name: 'k8s_node1' });
    const si = '/app_instances/plain-1/storage_instances/storage-1';
    await f.call('PUT', `${si}/acl_policy/initiators`, { op: 'add', path: `/initiators/${IQN1}` });
    const target = (await f.get(si)).body.data.access.iqn as string;
    const r = await http(f.url, 'POST', '/_sim/iscsi/login', { target, initiator: IQN1 });
    expect(r.status).to.equal(200);
    expect(r.body).to.have.keys('session', 'existed');
  });
});

describe('simulator: --backing-dir flag', () => {
  it('a backing dir that cannot be made fails the simulator at construction, naming the directory', () => {
    expect(() => new DateraSimulator({ backingDir: '/proc/datera-sim-backing/volumes' })).to.throw(/ENOENT.*\/proc\/datera-sim-backing/);
  });

  it('sets SimOptions.backingDir, and an empty value is a usage error', () => {
    const cfg = parseCli(['--backing-dir', '/var/tmp/sim-volumes']);
    expect(cfg === 'help' ? undefined : cfg.options.backingDir).to.equal('/var/tmp/sim-volumes');
    const plain = parseCli([]);
    expect(plain === 'help' ? 'help' : plain.options.backingDir).to.equal(undefined);
    expect(() => parseCli(['--backing-dir', ''])).to.throw(UsageError, /--backing-dir/);
  });
});
