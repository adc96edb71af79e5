// SPDX-License-Identifier: Apache-2.0
import { expect } from 'chai';
import type { AppTemplate } from '../../lib/datera/types.js';
import { SimFixture, aiBody } from './helpers.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const TEMPLATES: AppTemplate[] = [
  {
    name: 'basic_small',
    storage_templates: [
      {
        name: 'storage-1',
        ip_pool: { path: '/access_network_ip_pools/default' },
        volume_templates: [{ name: 'volume-1', size: 16, replica_count: 2, placement_mode: 'hybrid' }],
      },
    ],
  },
  {
    name: 'two-volumes',
    snapshot_policies: [{ name: 'daily', interval: '1day', retention_count: 7 }],
    storage_templates: [
      {
        name: 'data',
        ip_pool: '/access_network_ip_pools/fast',
        volume_templates: [
          { name: 'db_vol', size: 50, performance_policy: { total_iops_max: 1000 } },
          { name: 'log_vol', size: 5 },
        ],
      },
    ],
  },
];

describe('simulator: app instances', () => {
  let f: SimFixture;
  beforeEach(async () => {
    f = await new SimFixture({ templates: TEMPLATES, defaultLimit: 5 }).start();
  });
  afterEach(async () => {
    await f?.stop();
  });

  describe('envelope, pagination, filter', () => {
    it('wraps answers in {data, path, tenant, version, request_time} with HTTP 200, also for POST', async () => {
      const r = await f.call('POST', '/app_instances', aiBody('env-1'));
      expect(r.status).to.equal(200);
      expect(r.body).to.include({ path: '/app_instances', tenant: '/root', version: 'v2.2' });
      expect(r.body.request_time).to.be.a('number');
      expect(r.body.data.name).to.equal('env-1');
      const v21 = await f.call('GET', '/system').then(() => f.get(`/app_instances/env-1`));
      expect(v21.body.path).to.equal('/app_instances/env-1');
    });

    it('pages with limit/offset and reports total_count, request_count, limit, offset', async () => {
      for (let i = 0; i < 7; i++) expect((await f.call('POST', '/app_instances', aiBody(`page-${i}`))).status).to.equal(200);
      const pages = [];
      for (const offset of [0, 3, 6]) {
        const r = await f.get(`/app_instances?limit=3&offset=${offset}`);
        expect(r.status).to.equal(200);
        expect(r.body.metadata).to.deep.equal({ total_count: 7, request_count: offset === 6 ? 1 : 3, limit: 3, offset });
        pages.push(...r.body.data.map((a: any) => a.name));
      }
      expect(pages).to.deep.equal([0, 1, 2, 3, 4, 5, 6].map((i) => `page-${i}`));
      // Without limit the default page size applies (5 here; 100 by default).
      const dflt = await f.get('/app_instances');
      expect(dflt.body.data).to.have.length(5);
      expect(dflt.body.metadata).to.include({ total_count: 7, limit: 5, offset: 0 });
      expect((await f.get('/app_instances?limit=0')).body.data).to.deep.equal([]);
      expect((await f.get('/app_instances?limit=1000')).body.data).to.have.length(7);
      // v2.1 answers also carry the `total` key the v2.1 samples show.
      const v21 = await f.call('GET', '/app_instances?limit=1').then(() =>
        fetch(`${f.url}/v2.1/app_instances?limit=1`, { headers: { 'Auth-Token': f.token } }).then((r) => r.json() as Promise<any>),
      );
      expect(v21.metadata).to.include({ total: 7, total_count: 7 });
    });

    it('refuses a limit out of 0..1000 and a bad offset with 422 naming the parameter', async () => {
      const big = await f.get('/app_instances?limit=1001');
      expect(big.status).to.equal(422);
      expect(big.body.message).to.equal('limit: 1001 is greater than the maximum of 1000');
      const neg = await f.get('/app_instances?offset=-1');
      expect(neg.status).to.equal(422);
      expect(neg.body.errors[0]).to.match(/^offset:/);
    });

    it('filters with name=<x> and match(name,<regex>)', async () => {
      for (const n of ['pvc-a1', 'pvc-a2', 'pvc-b1']) await f.call('POST', '/app_instances', aiBody(n));
      const one = await f.get('/app_instances?filter=name=pvc-a2');
      expect(one.body.data.map((a: any) => a.name)).to.deep.equal(['pvc-a2']);
      expect(one.body.metadata.total_count).to.equal(1);
      const re = await f.get(`/app_instances?filter=${encodeURIComponent('match(name,.*a.*)')}`);
      expect(re.body.data.map((a: any) => a.name)).to.deep.equal(['pvc-a1', 'pvc-a2']);
      const sorted = await f.get('/app_instances?sort=-name');
      expect(sorted.body.data.map((a: any) => a.name)).to.deep.equal(['pvc-b1', 'pvc-a2', 'pvc-a1']);
      const bad = await f.get('/app_instances?filter=and(eq(name,x))');
      expect(bad.status).to.equal(400);
      expect(bad.body.name).to.equal('InvalidRequestError');
    });
  });

  describe('create', () => {
    it('creates explicit storage instances and volumes with ids, access, ACL, auth and defaults', async () => {
      const body = aiBody('explicit-1', 12, { descr: 'for the spec' });
      (body['storage_instances'] as any)[0].volumes[0].performance_policy = { total_iops_max: 1000 };
      (body['storage_instances'] as any)[0].volumes.push({ name: 'volume-2', size: 1 });
      const r = await f.call('POST', '/app_instances', body);
      expect(r.status).to.equal(200);
      const ai = r.body.data;
      expect(ai.id).to.match(UUID);
      expect(ai).to.include({ name: 'explicit-1', path: `/app_instances/${ai.id}`, tenant: '/root', admin_state: 'online', create_mode: 'kubernetes', descr: 'for the spec' });
      expect(ai.app_template).to.deep.equal({ path: '', resolved_path: '', resolved_tenant: '' });
      const si = ai.storage_instances[0];
      expect(si.uuid).to.match(UUID);
      expect(si).to.include({ name: 'storage-1', admin_state: 'online', op_state: 'available', path: `/app_instances/${ai.id}/storage_instances/storage-1` });
      expect(si.access.iqn).to.match(/^iqn\.2013-05\.com\.daterainc:tc:01:sn:[0-9a-f]{16}$/);
      expect(si.access.ips).to.have.length(2);
      expect(si.access.ips[0]).to.match(/^172\.28\./);
      expect(si.acl_policy).to.deep.equal({ path: `${si.path}/acl_policy`, initiators: [], initiator_groups: [] });
      expect(si.ip_pool).to.deep.equal({ path: '/access_network_ip_pools/default', resolved_path: '/access_network_ip_pools/default', resolved_tenant: '/root' });
      expect(si.auth).to.deep.include({ type: 'none', initiator_pswd: '(hidden)', target_pswd: '(hidden)' });
      const [v1, v2] = si.volumes;
      expect(v1.uuid).to.match(UUID);
      expect(v1).to.include({ name: 'volume-1', size: 12, replica_count: 3, placement_mode: 'hybrid', op_state: 'available' });
      expect(v1.placement_policy.path).to.equal('/placement_policies/default');
      expect(v1.performance_policy).to.include({ total_iops_max: 1000 });
      expect(v1.snapshots).to.deep.equal([]);
      expect(v2).to.include({ name: 'volume-2', size: 1, replica_count: 3 });
      // Different storage instances get different target IQNs.
      const other = await f.call('POST', '/app_instances', aiBody('explicit-2'));
      expect(other.body.data.storage_instances[0].access.iqn).not.to.equal(si.access.iqn);
    });

    it('hides CHAP passwords on read', async () => {
      const body = aiBody('chap-1');
      (body['storage_instances'] as any)[0].auth = { type: 'chap', target_user_name: 'tuser', target_pswd: 'abcdefghijkl' };
      const r = await f.call('POST', '/app_instances', body);
      expect(r.status).to.equal(200);
      expect(r.body.data.storage_instances[0].auth).to.deep.include({ type: 'chap', target_user_name: 'tuser', target_pswd: '(hidden)' });
      expect(JSON.stringify(await f.get('/app_instances/chap-1'))).not.to.include('abcdefghijkl');
    });

    it('answers 409 ConflictError for a duplicate name', async () => {
      expect((await f.call('POST', '/app_instances', aiBody('dup-1'))).status).to.equal(200);
      const r = await f.call('POST', '/app_instances', aiBody('dup-1', 20));
      expect(r.status).to.equal(409);
      expect(r.body).to.include({ name: 'ConflictError', http: 409 });
      expect(r.body.errors).to.deep.equal([]);
      expect(f.sim.appInstances()).to.have.length(1);
    });

    it('answers 422 ValidationFailedError naming the field', async () => {
      const cases: Array<[Record<string, unknown>, string]> = [
        [aiBody('1-bad name'), 'name: "1-bad name" does not match'],
        [aiBody('size-zero', 0), 'storage_instances[0].volumes[0].size: 0 is less than the minimum of 1'],
        [
          { name: 'replicas-7', storage_instances: [{ name: 'storage-1', volumes: [{ name: 'volume-1', size: 1, replica_count: 7 }] }] },
          'storage_instances[0].volumes[0].replica_count: 7 is greater than the maximum of 5',
        ],
        [{ name: 'no-size', storage_instances: [{ name: 'storage-1', volumes: [{ name: 'volume-1' }] }] }, 'storage_instances[0].volumes[0].size: is a required property'],
        [{ storage_instances: [] }, 'name: is a required property'],
        [{ name: 'extra-key', colour: 'blue' }, 'colour: is not an allowed property'],
        [aiBody('bad-mode', 1, { create_mode: 'windows' }), 'create_mode: "windows" is not one of'],
        [{ name: 'bad-type', storage_instances: [{ name: 'storage-1', volumes: [{ name: 'volume-1', size: '10' }] }] }, `storage_instances[0].volumes[0].size: "10" is not of type 'number'`],
      ];
      for (const [body, expected] of cases) {
        const r = await f.call('POST', '/app_instances', body);
        expect(r.status, JSON.stringify(body)).to.equal(422);
        expect(r.body.name).to.equal('ValidationFailedError');
        expect(r.body.message).to.include(expected);
        expect(r.body.errors.some((e: string) => e.includes(expected)), JSON.stringify(r.body.errors)).to.equal(true);
      }
      expect(f.sim.appInstances()).to.have.length(0);
    });

    it('accepts the v2.2 fields the v2.1 schema lacks (placement_policy, service_configuration)', async () => {
      const body = aiBody('v22-1');
      (body['storage_instances'] as any)[0].service_configuration = 'iscsi';
      (body['storage_instances'] as any)[0].volumes[0].placement_policy = { path: '/placement_policies/all-flash' };
      const r = await f.call('POST', '/app_instances', body);
      expect(r.status).to.equal(200);
      expect(r.body.data.storage_instances[0].volumes[0].placement_policy.path).to.equal('/placement_policies/all-flash');
      const unknownPolicy = aiBody('v22-2');
      (unknownPolicy['storage_instances'] as any)[0].volumes[0].placement_policy = { path: '/placement_policies/nope' };
      const bad = await f.call('POST', '/app_instances', unknownPolicy);
      expect(bad.status).to.equal(422);
      expect(bad.body.errors[0]).to.match(/^storage_instances\[0\]\.volumes\[0\]\.placement_policy: placement policy/);
    });

    it('refuses an unknown ip_pool with 422 naming the field', async () => {
      const body = aiBody('pool-1');
      (body['storage_instances'] as any)[0].ip_pool = { path: '/access_network_ip_pools/nowhere' };
      const r = await f.call('POST', '/app_instances', body);
      expect(r.status).to.equal(422);
      expect(r.body.message).to.match(/^storage_instances\[0\]\.ip_pool: access network IP pool "\/access_network_ip_pools\/nowhere" does not exist/);
      const pools = await f.get('/access_network_ip_pools');
      expect(pools.body.data.map((p: any) => p.name).sort()).to.deep.equal(['default', 'fast']); // "fast" comes from a template
    });

    it('builds storage instances from an app template with template_override (sizes as strings)', async () => {
      const r = await f.call('POST', '/app_instances', {
        name: 'from-template',
        create_mode: 'kubernetes',
        app_template: { path: '/app_templates/basic_small' },
        template_override: { storage_instances: { 'storage-1': { volumes: { 'volume-1': { size: '20' } } } } },
      });
      expect(r.status, JSON.stringify(r.body)).to.equal(200);
      const ai = r.body.data;
      expect(ai.app_template).to.deep.equal({ path: '/app_templates/basic_small', resolved_path: '/app_templates/basic_small', resolved_tenant: '/root' });
      expect(ai.storage_instances).to.have.length(1);
      expect(ai.storage_instances[0].volumes[0]).to.include({ name: 'volume-1', size: 20, replica_count: 2 });
      const tpl = await f.get('/app_templates/basic_small');
      expect(tpl.body.data.app_instances).to.deep.equal([{ path: ai.path }]);

      const multi = await f.call('POST', '/app_instances', { name: 'two-vols', app_template: { path: '/app_templates/two-volumes' } });
      expect(multi.status).to.equal(200);
      const si = multi.body.data.storage_instances[0];
      expect(si.name).to.equal('data');
      expect(si.ip_pool.path).to.equal('/access_network_ip_pools/fast');
      expect(si.volumes.map((v: any) => [v.name, v.size, v.replica_count])).to.deep.equal([['db_vol', 50, 3], ['log_vol', 5, 3]]);
      expect(si.volumes[0].performance_policy).to.include({ total_iops_max: 1000 });
      expect(multi.body.data.snapshot_policies.map((p: any) => p.name)).to.deep.equal(['daily']);
    });

    it('validates template references and overrides', async () => {
      const missing = await f.call('POST', '/app_instances', { name: 'tpl-x', app_template: { path: '/app_templates/nope' } });
      expect(missing.status).to.equal(422);
      expect(missing.body.message).to.match(/^app_template\.path: app template/);
      const badSize = await f.call('POST', '/app_instances', {
        name: 'tpl-y',
        app_template: { path: '/app_templates/basic_small' },
        template_override: { storage_instances: { 'storage-1': { volumes: { 'volume-1': { size: '0' } } } } },
      });
      expect(badSize.status).to.equal(422);
      expect(badSize.body.errors).to.deep.equal(['template_override.storage_instances.storage-1.volumes.volume-1.size: 0 is less than the minimum of 1']);
      const badName = await f.call('POST', '/app_instances', {
        name: 'tpl-z',
        app_template: { path: '/app_templates/basic_small' },
        template_override: { storage_instances: { 'storage-9': { volumes: {} } } },
      });
      expect(badName.status).to.equal(422);
      expect(badName.body.errors[0]).to.match(/^template_override\.storage_instances\.storage-9:/);
      const both = await f.call('POST', '/app_instances', { ...aiBody('tpl-w'), app_template: { path: '/app_templates/basic_small' } });
      expect(both.status).to.equal(400);
      expect(both.body.name).to.equal('InvalidRequestError');
      expect(f.sim.appInstances()).to.have.length(0);
    });

    it('creates, lists and reads app templates; duplicate names are 409', async () => {
      const tpl = {
        name: 'custom_one',
        storage_templates: [{ name: 'storage-1', volume_templates: [{ name: 'volume-1', size: 3, replica_count: 1 }] }],
      };
      const r = await f.call('POST', '/app_templates', tpl);
      expect(r.status).to.equal(200);
      expect(r.body.data.path).to.equal('/app_templates/custom_one');
      expect((await f.call('POST', '/app_templates', tpl)).status).to.equal(409);
      const bad = await f.call('POST', '/app_templates', { name: 'custom_two', storage_templates: [{ name: 'storage-1', volume_templates: [{ name: 'volume-1', size: 0 }] }] });
      expect(bad.status).to.equal(422);
      expect(bad.body.errors).to.deep.equal(['storage_templates[0].volume_templates[0].size: 0 is less than the minimum of 1']);
      const list = await f.get('/app_templates');
      expect(list.body.data.map((t: any) => t.name)).to.deep.equal(['basic_small', 'two-volumes', 'custom_one']);
      expect((await f.get('/app_templates/nope')).status).to.equal(404);
      const ai = await f.call('POST', '/app_instances', { name: 'from-custom', app_template: { path: '/app_templates/custom_one' } });
      expect(ai.body.data.storage_instances[0].volumes[0]).to.include({ size: 3, replica_count: 1 });
    });

    it('clones a volume (clone_volume_src) with its size and settings', async () => {
      const src = await f.call('POST', '/app_instances', aiBody('clone-src', 33));
      const volPath = src.body.data.storage_instances[0].volumes[0].path;
      const r = await f.call('POST', '/app_instances', { name: 'clone-dst', clone_volume_src: { path: volPath } });
      expect(r.status).to.equal(200);
      expect(r.body.data.storage_instances[0].volumes[0]).to.include({ name: 'volume-1', size: 33, replica_count: 3 });
      expect(r.body.data.storage_instances[0].volumes[0].uuid).not.to.equal(src.body.data.storage_instances[0].volumes[0].uuid);
      const missing = await f.call('POST', '/app_instances', { name: 'clone-x', clone_volume_src: { path: '/app_instances/nope/storage_instances/storage-1/volumes/volume-1' } });
      expect(missing.status).to.equal(422);
    });

    it('stores AI-level snapshot_policies and takes volume snapshots (duplicate uuid: code 15)', async () => {
      const r = await f.call('POST', '/app_instances', aiBody('snap-1', 10, { snapshot_policies: [{ name: 'hourly', interval: '1hour', retention_count: 24 }] }));
      expect(r.status).to.equal(200);
      expect(r.body.data.snapshot_policies[0]).to.include({ name: 'hourly', interval: '1hour', retention_count: 24 });
      const vol = '/app_instances/snap-1/storage_instances/storage-1/volumes/volume-1';
      const uuid = '6c7b1f36-55a5-4b2e-8a34-8d1f4e2a9c01';
      const s = await f.call('POST', `${vol}/snapshots`, { uuid });
      expect(s.status).to.equal(200);
      expect(s.body.data).to.include({ uuid, op_state: 'available' });
      expect(s.body.data.utc_ts).to.match(/^\d{10,}\.\d{9}$/);
      const dup = await f.call('POST', `${vol}/snapshots`, { uuid });
      expect(dup.status).to.equal(400);
      expect(dup.body).to.include({ name: 'InvalidRequestError', code: 15 });
      const list = await f.get(`${vol}/snapshots`);
      expect(list.body.data.map((x: any) => x.uuid)).to.deep.equal([uuid]);
      const clone = await f.call('POST', '/app_instances', { name: 'snap-clone', clone_snapshot_src: { path: s.body.data.path } });
      expect(clone.status).to.equal(200);
      expect(clone.body.data.storage_instances[0].volumes[0].size).to.equal(10);
      const badInterval = await f.call('POST', '/app_instances', aiBody('snap-2', 10, { snapshot_policies: [{ name: 'x_policy', interval: '2days', retention_count: 1 }] }));
      expect(badInterval.status).to.equal(422);
      expect(badInterval.body.errors[0]).to.match(/^snapshot_policies\[0\]\.interval:/);
    });
  });

  describe('read, update, delete', () => {
    it('reads by name and by id, and 404s unknown ids and routes', async () => {
      const created = (await f.call('POST', '/app_instances', aiBody('read-1'))).body.data;
      const byName = await f.get('/app_instances/read-1');
      const byId = await f.get(`/app_instances/${created.id}`);
      expect(byName.status).to.equal(200);
      expect(byName.body.data).to.deep.equal(byId.body.data);
      expect(byId.body.data.id).to.equal(created.id);
      const si = await f.get('/app_instances/read-1/storage_instances/storage-1');
      expect(si.body.data.name).to.equal('storage-1');
      const vols = await f.get(`/app_instances/${created.id}/storage_instances/storage-1/volumes`);
      expect(vols.body.data.map((v: any) => v.name)).to.deep.equal(['volume-1']);
      for (const path of ['/app_instances/nope', '/app_instances/read-1/storage_instances/nope', '/no_such_route']) {
        const r = await f.get(path);
        expect(r.status, path).to.equal(404);
        expect(r.body).to.include({ name: 'NotFoundError', http: 404 });
      }
      const wrong = await f.call('POST', `/app_instances/${created.id}`, {});
      expect(wrong.status).to.equal(405);
    });

    it('offlines (PUT admin_state offline, force) and then deletes, returning the deleted entity', async () => {
      await f.call('POST', '/app_instances', aiBody('del-1'));
      const off = await f.call('PUT', '/app_instances/del-1', { admin_state: 'offline', force: true });
      expect(off.status).to.equal(200);
      expect(off.body.data.admin_state).to.equal('offline');
      expect(off.body.data.storage_instances[0]).to.include({ admin_state: 'offline', op_state: 'unavailable' });
      const del = await f.call('DELETE', '/app_instances/del-1');
      expect(del.status).to.equal(200);
      expect(del.body.data.name).to.equal('del-1');
      expect((await f.get('/app_instances/del-1')).status).to.equal(404);
      expect((await f.call('DELETE', '/app_instances/del-1')).status).to.equal(404);
      const on = await f.call('POST', '/app_instances', aiBody('del-2'));
      await f.call('PUT', `/app_instances/${on.body.data.id}`, { admin_state: 'offline' });
      const back = await f.call('PUT', `/app_instances/${on.body.data.id}`, { admin_state: 'online' });
      expect(back.body.data.storage_instances[0]).to.include({ admin_state: 'online', op_state: 'available' });
    });

    it('refuses to delete an online app instance unless force is given', async () => {
      await f.call('POST', '/app_instances', aiBody('online-1'));
      const r = await f.call('DELETE', '/app_instances/online-1');
      expect(r.status).to.equal(400);
      expect(r.body.name).to.equal('InvalidRequestError');
      expect(r.body.message).to.match(/online/);
      expect(f.sim.appInstances()).to.have.length(1);
      const forced = await f.call('DELETE', '/app_instances/online-1', { force: true });
      expect(forced.status).to.equal(200);
      expect(f.sim.appInstances()).to.have.length(0);
    });

    it('deletes online app instances when requireOfflineForDelete is false', async () => {
      const g = await new SimFixture({ requireOfflineForDelete: false }).start();
      try {
        await g.call('POST', '/app_instances', aiBody('online-2'));
        expect((await g.call('DELETE', '/app_instances/online-2')).status).to.equal(200);
      } finally {
        await g.stop();
      }
    });

    it('grows a volume and refuses to shrink it', async () => {
      await f.call('POST', '/app_instances', aiBody('resize-1', 10));
      const vol = '/app_instances/resize-1/storage_instances/storage-1/volumes/volume-1';
      const grow = await f.call('PUT', vol, { size: 25 });
      expect(grow.status).to.equal(200);
      expect(grow.body.data.size).to.equal(25);
      const shrink = await f.call('PUT', vol, { size: 5 });
      expect(shrink.status).to.equal(400);
      expect(shrink.body.name).to.equal('InvalidRequestError');
      const tooBig = await f.call('PUT', vol, { size: 40000 });
      expect(tooBig.status).to.equal(422);
      expect(tooBig.body.message).to.equal('size: 40000 is greater than the maximum of 32768');
      expect((await f.get(vol)).body.data.size).to.equal(25);
    });

    it('merges metadata keys on PUT and returns the whole map', async () => {
      await f.call('POST', '/app_instances', aiBody('meta-1'));
      const a = await f.call('PUT', '/app_instances/meta-1/metadata', { pvc: 'default/data-0', size: '10' });
      expect(a.status).to.equal(200);
      expect(a.body.data).to.deep.equal({ pvc: 'default/data-0', size: '10' });
      const b = await f.call('PUT', '/app_instances/meta-1/metadata', { size: '20', node: 'n1' });
      expect(b.body.data).to.deep.equal({ pvc: 'default/data-0', size: '20', node: 'n1' });
      const c = await f.call('PUT', '/app_instances/meta-1/metadata', { node: null, pvc: '' });
      expect(c.body.data).to.deep.equal({ pvc: '', size: '20' });
      expect((await f.get('/app_instances/meta-1/metadata')).body.data).to.deep.equal({ pvc: '', size: '20' });
      const bad = await f.call('PUT', '/app_instances/meta-1/metadata', { nested: { a: 1 } });
      expect(bad.status).to.equal(422);
      expect(bad.body.errors[0]).to.match(/^nested:/);
    });
  });

  describe('capacity and system', () => {
    it('refuses creates beyond capacityGiB (raw: size x replica_count) with 400 and reports bytes in /system', async () => {
      const g = await new SimFixture({ capacityGiB: 100 }).start();
      try {
        expect((await g.call('POST', '/app_instances', aiBody('cap-1', 30))).status).to.equal(200); // 90 GiB raw
        const over = await g.call('POST', '/app_instances', aiBody('cap-2', 5)); // 15 more
        expect(over.status).to.equal(400);
        expect(over.body.name).to.equal('InvalidRequestError');
        expect(over.body.message).to.match(/Insufficient capacity/);
        const grow = await g.call('PUT', '/app_instances/cap-1/storage_instances/storage-1/volumes/volume-1', { size: 40 });
        expect(grow.status).to.equal(400);
        const sys = await g.get('/system');
        expect(sys.body.data).to.include({ sw_version: '3.3.5', op_state: 'running', total_capacity: 100 * 1024 ** 3 });
        expect(sys.body.data.total_provisioned_capacity).to.equal(90 * 1024 ** 3);
        expect(sys.body.data.available_capacity).to.equal(10 * 1024 ** 3);
        expect(g.sim.appInstances()).to.have.length(1);
      } finally {
        await g.stop();
      }
    });
  });
});
