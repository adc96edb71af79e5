// SPDX-License-Identifier: Apache-2.0
// GET /vX/api (the whole schema per served version) and the two names of the metadata store
// (/metadata and /int_ecosystem_data), over HTTP.
import { expect } from 'chai';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { ROUTES } from '../../lib/sim/routes.js';
import { SimFixture, aiBody, http } from './helpers.js';

const DUMP_GZ = fileURLToPath(new URL('../../lib/sim/schema/api-v2.1.json.gz', import.meta.url));
const SHARED = fileURLToPath(new URL('../../../shared/datera/api-v2.1-schema.json', import.meta.url));

/** The committed cluster dump, routes only (without `version` and `request_time`). */
function dumpRoutes(): Record<string, any> {
  const all = JSON.parse(gunzipSync(readFileSync(DUMP_GZ)).toString('utf8')) as Record<string, unknown>;
  return Object.fromEntries(Object.entries(all).filter(([k]) => k.startsWith('/')));
}

const ECOSYSTEM = ['/app_instances/:id/int_ecosystem_data', '/app_instances/:ai_id/storage_instances/:si_id/int_ecosystem_data'];
const PLACEMENT = ['/placement_policies', '/placement_policies/:name'];

describe('simulator: GET /vX/api', () => {
  let f: SimFixture;
  const dump = dumpRoutes();
  before(async () => {
    f = await new SimFixture().start();
  });
  after(() => f.stop());

  const api = async (version: string): Promise<Record<string, any>> => {
    const r = await http(f.url, 'GET', `/${version}/api`, undefined, { token: f.token });
    expect(r.status).to.equal(200);
    return r.body as Record<string, any>;
  };

  (existsSync(SHARED) ? it : it.skip)('the committed dump is the shared /v2.1/api dump byte for byte (re-run extract.ts if not)', () => {
    expect(gunzipSync(readFileSync(DUMP_GZ)).equals(readFileSync(SHARED))).to.equal(true);
  });

  it('/v2.1/api answers every route of the cluster dump unchanged, plus int_ecosystem_data listed like /metadata', async () => {
    const body = await api('v2.1');
    expect(body['version']).to.equal('v2.1');
    expect(body['request_time']).to.be.a('number');
    expect(body).to.not.have.property('data');
    const routes = Object.keys(body).filter((k) => k.startsWith('/'));
    expect(routes.sort()).to.deep.equal([...Object.keys(dump), ...ECOSYSTEM].sort());
    for (const route of Object.keys(dump)) expect(body[route], route).to.deep.equal(dump[route]);
    for (const route of ECOSYSTEM) expect(body[route]).to.deep.equal(dump['/app_instances/:id/metadata']);
    // What dfs-sdk needs at login: the metric enums of /metrics/io and /metrics/hw.
    expect(body['/metrics/io/:metric'].read.urlParamSchema.metric.enum).to.include('iops_read');
    expect(body['/metrics/hw/:metric'].read.urlParamSchema.metric.enum).to.be.an('array').that.is.not.empty;
  });

  it('/v2.2/api is the v2.1 view plus /placement_policies, with the v2.2 request fields in the full bodyParamSchemas', async () => {
    const v21 = await api('v2.1');
    const body = await api('v2.2');
    expect(body['version']).to.equal('v2.2');
    const routes = Object.keys(body).filter((k) => k.startsWith('/'));
    expect(routes.sort()).to.deep.equal([...Object.keys(dump), ...ECOSYSTEM, ...PLACEMENT].sort());
    for (const route of PLACEMENT) expect(body[route].read).to.include({ op: 'read', path: route });
    const create = body['/app_instances'].create.bodyParamSchema.properties;
    // Cinder's v2.2 driver detects template_override support exactly here.
    expect(create).to.have.property('template_override');
    expect(create).to.have.property('repair_priority');
    // The whole schema, not the validation subset: documentation keys are kept.
    expect(create.name.descr).to.equal(dump['/app_instances'].create.bodyParamSchema.properties.name.descr);
    const vol = create.storage_instances.items.properties.volumes.items.properties;
    expect(vol).to.have.property('placement_policy');
    expect(body['/initiators'].create.bodyParamSchema.properties).to.have.property('force');
    // Routes without v2.2 additions are the v2.1 ones.
    expect(body['/system']).to.deep.equal(v21['/system']);
    expect(v21['/app_instances'].create.bodyParamSchema.properties).to.not.have.property('template_override');
  });

  it('lists every route the simulator serves, in both versions (v2.1 without /placement_policies)', async () => {
    for (const version of ['v2.1', 'v2.2']) {
      const keys = new Set(Object.keys(await api(version)).map((k) => k.split('(')[0]));
      const served = ROUTES.map((r) => r.route.replace(/\*$/, '')).filter((r) => version === 'v2.2' || !PLACEMENT.includes(r));
      expect(served.filter((r) => !keys.has(r)), version).to.deep.equal([]);
    }
  });

  it('needs a session key (401) and serves only GET (405)', async () => {
    expect((await http(f.url, 'GET', '/v2.2/api')).status).to.equal(401);
    const post = await http(f.url, 'POST', '/v2.2/api', {}, { token: f.token });
    expect(post.status).to.equal(405);
    expect(post.body.name).to.equal('InvalidRequestError');
  });
});

describe('simulator: /metadata and /int_ecosystem_data share one store', () => {
  let f: SimFixture;
  before(async () => {
    f = await new SimFixture().start();
    expect((await f.call('POST', '/app_instances', aiBody('eco-1'))).status).to.equal(200);
  });
  after(() => f.stop());

  const AI = '/app_instances/eco-1';
  const SI = `${AI}/storage_instances/storage-1`;

  it('a PUT {"data": {...}} to int_ecosystem_data merges into the map that /metadata reads, and answers the whole map', async () => {
    const put = await f.call('PUT', `${AI}/int_ecosystem_data`, { data: { pv: 'pvc-1', owner: 'sdk' } });
    expect(put.status).to.equal(200);
    expect(put.body.data).to.deep.equal({ pv: 'pvc-1', owner: 'sdk' });
    expect((await f.get(`${AI}/metadata`)).body.data).to.deep.equal({ pv: 'pvc-1', owner: 'sdk' });
  });

  it('a PUT to /metadata shows through GET int_ecosystem_data, and null removes a key through either', async () => {
    await f.call('PUT', `${AI}/metadata`, { csi: 'yes', owner: null });
    const eco = await f.get(`${AI}/int_ecosystem_data`);
    expect(eco.status).to.equal(200);
    expect(eco.body.data).to.deep.equal({ pv: 'pvc-1', csi: 'yes' });
    await f.call('PUT', `${AI}/int_ecosystem_data`, { data: { csi: null } });
    expect((await f.get(`${AI}/metadata`)).body.data).to.deep.equal({ pv: 'pvc-1' });
  });

  it('int_ecosystem_data refuses a body that is not {"data": {...}} with 422 naming the field, and changes nothing', async () => {
    const flat = await f.call('PUT', `${AI}/int_ecosystem_data`, { pv: 'other' });
    expect(flat.status).to.equal(422);
    expect(flat.body.name).to.equal('ValidationFailedError');
    expect(flat.body.errors.join(' ')).to.match(/\bdata\b/);
    expect(flat.body.errors.join(' ')).to.match(/\bpv\b/);
    const nested = await f.call('PUT', `${AI}/int_ecosystem_data`, { data: { pv: { a: 1 } } });
    expect(nested.status).to.equal(422);
    expect(nested.body.errors[0]).to.match(/^data\.pv:/);
    expect((await f.get(`${AI}/metadata`)).body.data).to.deep.equal({ pv: 'pvc-1' });
  });

  it('storage instances have both names too, on their own map', async () => {
    await f.call('PUT', `${SI}/int_ecosystem_data`, { data: { lun: '0' } });
    expect((await f.get(`${SI}/metadata`)).body.data).to.deep.equal({ lun: '0' });
    await f.call('PUT', `${SI}/metadata`, { iqn: 'x' });
    expect((await f.get(`${SI}/int_ecosystem_data`)).body.data).to.deep.equal({ lun: '0', iqn: 'x' });
    expect((await f.get(`${AI}/int_ecosystem_data`)).body.data).to.deep.equal({ pv: 'pvc-1' });
  });

  it('answers 404 NotFoundError for an unknown app instance on either name', async () => {
    for (const name of ['metadata', 'int_ecosystem_data']) {
      const r = await f.get(`/app_instances/nope/${name}`);
      expect(r.status, name).to.equal(404);
      expect(r.body.name).to.equal('NotFoundError');
    }
  });
});
