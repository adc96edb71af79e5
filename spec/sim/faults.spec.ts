// SPDX-License-Identifier: Apache-2.0
import { expect } from 'chai';
import { SimFixture, aiBody, http, seeded } from './helpers.js';

describe('simulator: faults, call log, control endpoint', () => {
  let f: SimFixture;
  beforeEach(async () => {
    f = await new SimFixture({ templates: [{ name: 'keep_me', storage_templates: [] }] }).start();
  });
  afterEach(async () => {
    await f?.stop();
  });

  it('rate503=1 answers 503 NotConnectedError before doing anything', async () => {
    f.sim.setFaults({ rate503: 1 });
    const r = await f.call('POST', '/app_instances', aiBody('f503'));
    expect(r.status).to.equal(503);
    expect(r.body).to.include({ name: 'NotConnectedError', http: 503 });
    f.sim.setFaults({ rate503: 1, minimal503: true });
    const minimal = await f.call('POST', '/app_instances', aiBody('f503'));
    expect(minimal.status).to.equal(503);
    expect(minimal.body).to.equal(undefined);
    f.sim.setFaults({});
    expect(f.sim.appInstances()).to.have.length(0);
    expect((await f.call('POST', '/app_instances', aiBody('f503'))).status).to.equal(200);
  });

  it('initializingRate=1 answers 500 "REST server is still initializing"', async () => {
    f.sim.setFaults({ initializingRate: 1 });
    const r = await f.get('/system');
    expect(r.status).to.equal(500);
    expect(r.body.message).to.include('REST server is still initializing');
  });

  it('dropRate=1 destroys the socket without doing anything', async () => {
    f.sim.setFaults({ dropRate: 1 });
    let failed: unknown;
    await f.call('POST', '/app_instances', aiBody('fdrop')).catch((e: unknown) => (failed = e));
    expect(failed, 'the request must fail at the socket').to.be.instanceOf(Error);
    f.sim.setFaults({});
    expect(f.sim.appInstances()).to.have.length(0);
    const last = f.sim.calls().at(-1)!;
    expect(last).to.include({ status: 0, fault: 'drop', method: 'POST' });
  });

  it('dropAfterRate=1 performs the create, then drops the response', async () => {
    f.sim.setFaults({ dropAfterRate: 1 });
    let failed: unknown;
    await f.call('POST', '/app_instances', aiBody('flost')).catch((e: unknown) => (failed = e));
    expect(failed).to.be.instanceOf(Error);
    f.sim.setFaults({});
    expect(f.sim.appInstances().map((a) => a.name)).to.deep.equal(['flost']);
    expect(f.sim.calls().at(-1)).to.include({ status: 0, fault: 'dropAfter', route: '/app_instances' });
    // The retry a client makes then sees the conflict.
    expect((await f.call('POST', '/app_instances', aiBody('flost'))).status).to.equal(409);
  });

  it('adds latency to every call', async () => {
    f.sim.setFaults({ latencyMs: 120 });
    const t0 = Date.now();
    await f.get('/system');
    expect(Date.now() - t0).to.be.greaterThanOrEqual(110);
    expect(f.sim.calls().at(-1)!.ms).to.be.greaterThanOrEqual(110);
  });

  it('draws faults from the injected random source (reproducible runs)', async () => {
    const run = async (seed: number): Promise<number[]> => {
      const g = await new SimFixture({ random: seeded(seed) }).start();
      try {
        g.sim.setFaults({ rate503: 0.5 });
        const statuses: number[] = [];
        for (let i = 0; i < 20; i++) statuses.push((await g.get('/system')).status);
        return statuses;
      } finally {
        await g.stop();
      }
    };
    const a = await run(42);
    const b = await run(42);
    expect(a).to.deep.equal(b);
    expect(a).to.include(503);
    expect(a).to.include(200);
  });

  it('records every call with method, path, route, status, user, tenant and duration', async () => {
    f.sim.clearCalls();
    const created = await f.call('POST', '/app_instances', aiBody('log-1'), { tenant: '/root/t1' });
    await f.get(`/app_instances/${created.body.data.id}`, { tenant: '/root/t1' });
    await http(f.url, 'GET', '/v2.2/system');
    const calls = f.sim.calls();
    expect(calls.map((c) => [c.method, c.route, c.status])).to.deep.equal([
      ['POST', '/app_instances', 200],
      ['GET', '/app_instances/:id', 200],
      ['GET', '/system', 401],
    ]);
    expect(calls[0]).to.include({ path: '/v2.2/app_instances', user: 'admin', tenant: '/root/t1' });
    expect(calls[0]!.at).to.be.a('number');
    expect(calls[0]!.ms).to.be.a('number');
    expect(calls[2]!.user).to.equal(undefined);
    expect(calls[1]!.seq).to.be.greaterThan(calls[0]!.seq);
    calls[0]!.status = 999; // copies: the log itself is unchanged
    expect(f.sim.calls()[0]!.status).to.equal(200);
    f.sim.clearCalls();
    expect(f.sim.calls()).to.deep.equal([]);
  });

  it('serves /_sim/ state, calls, faults, expire-sessions and reset without a key', async () => {
    await f.call('POST', '/app_instances', aiBody('ctl-1'));
    await f.call('POST', '/app_instances', aiBody('ctl-2'), { tenant: '/root/t2' });
    await f.call('POST', '/initiators', { id: 'iqn.1993-08.org.debian:01:ctl', name: 'ctl_node' });
    const state = await http(f.url, 'GET', '/_sim/state');
    expect(state.status).to.equal(200);
    expect(state.body.tenants['/root'].map((a: any) => a.name)).to.deep.equal(['ctl-1']);
    expect(state.body.tenants['/root/t2'].map((a: any) => a.name)).to.deep.equal(['ctl-2']);

    const since = Date.now() + 1;
    const all = await http(f.url, 'GET', '/_sim/calls');
    expect(all.body.calls.length).to.be.greaterThanOrEqual(4);
    const later = await http(f.url, 'GET', `/_sim/calls?since=${since + 60_000}`);
    expect(later.body.calls).to.deep.equal([]);

    const faults = await http(f.url, 'PUT', '/_sim/faults', { rate503: 1 });
    expect(faults.body.faults).to.deep.equal({ rate503: 1 });
    expect((await f.get('/system')).status).to.equal(503);
    const badFaults = await http(f.url, 'PUT', '/_sim/faults', { rate503: 2 });
    expect(badFaults.status).to.equal(400);
    expect(badFaults.body.error).to.match(/^rate503:/);
    await http(f.url, 'PUT', '/_sim/faults', {});
    expect((await f.get('/system')).status).to.equal(200);

    expect((await http(f.url, 'POST', '/_sim/expire-sessions')).status).to.equal(200);
    expect((await f.get('/system')).status).to.equal(401);

    expect((await http(f.url, 'POST', '/_sim/reset')).status).to.equal(200);
    expect(f.sim.appInstances()).to.deep.equal([]);
    expect(f.sim.calls()).to.deep.equal([]);
    f.token = await f.login();
    expect((await f.get('/initiators')).body.data).to.deep.equal([]);
    // Templates (and users) survive a reset.
    expect((await f.get('/app_templates')).body.data.map((t: any) => t.name)).to.deep.equal(['keep_me']);
  });

  it('does not serve /_sim/ when control is false', async () => {
    const g = await new SimFixture({ control: false }).start();
    try {
      expect((await http(g.url, 'GET', '/_sim/state')).status).to.equal(404);
    } finally {
      await g.stop();
    }
  });

  it('reset() drops sessions, app instances and the call log', async () => {
    await f.call('POST', '/app_instances', aiBody('reset-1'));
    f.sim.reset();
    expect(f.sim.appInstances()).to.deep.equal([]);
    expect(f.sim.calls()).to.deep.equal([]);
    expect((await f.get('/system')).status).to.equal(401);
  });
});
