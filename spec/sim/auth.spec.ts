// SPDX-License-Identifier: Apache-2.0
import { expect } from 'chai';
import { INVALID_SESSION_MESSAGE } from '../../lib/sim/errors.js';
import { SimFixture, aiBody, http, sleep } from './helpers.js';

describe('simulator: login, sessions, tenants', () => {
  let f: SimFixture;
  afterEach(async () => {
    await f?.stop();
  });

  it('answers GET /api_versions without a key', async () => {
    f = await new SimFixture().start();
    const r = await http(f.url, 'GET', '/api_versions');
    expect(r.status).to.equal(200);
    expect(r.body).to.deep.equal({ api_versions: ['v2.1', 'v2.2'] });
  });

  it('logs in with a JSON body and returns a top-level key, version and request_time', async () => {
    f = await new SimFixture().start();
    const r = await http(f.url, 'PUT', '/v2.2/login', { name: 'admin', password: 'password' });
    expect(r.status).to.equal(200);
    expect(r.body).to.have.all.keys('key', 'version', 'request_time');
    expect(r.body.key).to.be.a('string').and.not.empty;
    expect(r.body.version).to.equal('v2.2');
    expect(r.body).not.to.have.property('data');
  });

  it('logs in with a form-urlencoded body (as the Go SDK sends it), also on /v2.1', async () => {
    f = await new SimFixture({ users: [{ name: 'admin', password: 'password' }, { name: 'ops_user', password: 'Secret_1' }] }).start();
    const r = await http(f.url, 'PUT', '/v2.1/login', { name: 'ops_user', password: 'Secret_1' }, { form: true });
    expect(r.status).to.equal(200);
    expect(r.body.version).to.equal('v2.1');
    const sys = await http(f.url, 'GET', '/v2.1/system', undefined, { token: r.body.key });
    expect(sys.status).to.equal(200);
    expect(sys.body.version).to.equal('v2.1');
  });

  it('refuses bad credentials with 401 AuthFailedError and a missing password with 422', async () => {
    f = await new SimFixture().start();
    const bad = await http(f.url, 'PUT', '/v2.2/login', { name: 'admin', password: 'wrong_one' });
    expect(bad.status).to.equal(401);
    expect(bad.body).to.include({ name: 'AuthFailedError', http: 401 });
    const missing = await http(f.url, 'PUT', '/v2.2/login', { name: 'admin' });
    expect(missing.status).to.equal(422);
    expect(missing.body.name).to.equal('ValidationFailedError');
    expect(missing.body.errors).to.deep.equal(['password: is a required property']);
  });

  it('answers 401 with the real message when Auth-Token is missing or unknown', async () => {
    f = await new SimFixture().start();
    for (const token of [undefined, 'not-a-session']) {
      const r = await http(f.url, 'GET', '/v2.2/app_instances', undefined, { token });
      expect(r.status).to.equal(401);
      expect(r.body).to.deep.include({ name: 'AuthFailedError', http: 401, message: INVALID_SESSION_MESSAGE, errors: [] });
      expect(r.body.code).to.be.a('number');
    }
    expect(INVALID_SESSION_MESSAGE).to.equal('The key provided with the request does not correspond to a valid session.');
  });

  it('expires session keys after sessionTtlMs (counted from login)', async () => {
    f = await new SimFixture({ sessionTtlMs: 300 }).start();
    expect((await f.get('/system')).status).to.equal(200);
    await sleep(350);
    const r = await f.get('/system');
    expect(r.status).to.equal(401);
    expect(r.body.message).to.equal(INVALID_SESSION_MESSAGE);
    f.token = await f.login();
    expect((await f.get('/system')).status).to.equal(200);
  });

  it('expireSessions() invalidates every current key, and a new login works', async () => {
    f = await new SimFixture().start();
    const second = await f.login();
    f.sim.expireSessions();
    expect((await f.get('/system')).status).to.equal(401);
    expect((await f.get('/system', { token: second })).status).to.equal(401);
    f.token = await f.login();
    expect((await f.get('/system')).status).to.equal(200);
  });

  it('PUT /logout ends the session', async () => {
    f = await new SimFixture().start();
    expect((await f.call('PUT', '/logout')).status).to.equal(200);
    expect((await f.get('/system')).status).to.equal(401);
  });

  it('keeps state per tenant (header `tenant`, default /root)', async () => {
    f = await new SimFixture().start();
    expect((await f.call('POST', '/app_instances', aiBody('shared-name'))).status).to.equal(200);
    // The same name in another tenant is not a conflict, and each tenant sees only its own.
    const other = await f.call('POST', '/app_instances', aiBody('shared-name', 20), { tenant: '/root/team-a' });
    expect(other.status).to.equal(200);
    expect(other.body.tenant).to.equal('/root/team-a');
    expect(other.body.data.tenant).to.equal('/root/team-a');
    const rootList = await f.get('/app_instances');
    const teamList = await f.get('/app_instances', { tenant: '/root/team-a' });
    expect(rootList.body.tenant).to.equal('/root');
    expect(rootList.body.data.map((a: any) => a.storage_instances[0].volumes[0].size)).to.deep.equal([10]);
    expect(teamList.body.data.map((a: any) => a.storage_instances[0].volumes[0].size)).to.deep.equal([20]);
    expect((await f.get(`/app_instances/${other.body.data.id}`)).status).to.equal(404);
    expect(f.sim.appInstances('/root')).to.have.length(1);
    expect(f.sim.appInstances('/root/team-a')).to.have.length(1);
    expect(f.sim.appInstances()).to.have.length(2);
  });

  it('binds a user with a tenant to that tenant and its sub-tenants', async () => {
    f = new SimFixture({ users: [{ name: 'admin', password: 'password' }, { name: 'team_a', password: 'pw_team_a', tenant: '/root/team-a' }] });
    await f.start();
    const key = await f.login('team_a', 'pw_team_a');
    const own = await f.get('/app_instances', { token: key });
    expect(own.body.tenant).to.equal('/root/team-a');
    const denied = await f.get('/app_instances', { token: key, tenant: '/root' });
    expect(denied.status).to.equal(403);
    expect(denied.body.name).to.equal('PermissionDeniedError');
    expect((await f.get('/app_instances', { token: key, tenant: '/root/team-a/dev' })).status).to.equal(200);
  });

  it('rejects a malformed tenant header with 400', async () => {
    f = await new SimFixture().start();
    const r = await f.get('/app_instances', { tenant: '/other/x' });
    expect(r.status).to.equal(400);
    expect(r.body.name).to.equal('InvalidRequestError');
  });
});
