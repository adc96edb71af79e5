// SPDX-License-Identifier: Apache-2.0
// The production client against the simulator over real HTTP: the end-to-end check that the
// client's retry, re-login and lost-response handling hold up against the cluster's behaviour.
//
// The acceptance run (500 creates, 20 % 503s, sessions expiring) scales time by default: session
// keys live 500 ms. For the literal version with 10 s sessions (it then runs for about a minute):
//   DATERA_SIM_ACCEPTANCE_TTL_MS=10000 npx mocha spec/datera/client-sim.spec.ts
import { expect } from 'chai';
import { DateraClient } from '../../lib/datera/client.js';
import { AuthError, InvalidRequestError, NotFoundError } from '../../lib/datera/errors.js';
import type { AppInstanceCreate, AppTemplate } from '../../lib/datera/types.js';
import { DateraSimulator, type SimCall, type SimOptions } from '../../lib/sim/server.js';
import { aiBody as simAiBody, seeded } from '../sim/helpers.js';

const ACCEPTANCE_TTL_MS = Number(process.env['DATERA_SIM_ACCEPTANCE_TTL_MS'] ?? 500);

const TEMPLATES: AppTemplate[] = [
  {
    name: 'kube-workload',
    storage_templates: [
      {
        name: 'storage-1',
        ip_pool: { path: '/access_network_ip_pools/default' },
        volume_templates: [{ name: 'volume-1', size: 16, replica_count: 3, performance_policy: { total_iops_max: 5000 } }],
      },
    ],
  },
];

function aiBody(name: string, size = 8): AppInstanceCreate {
  return simAiBody(name, size) as unknown as AppInstanceCreate;
}


/** Runs `task(i)` for i in [0, n) with at most `concurrency` at a time; rejects on the first failure. */
async function pool(n: number, concurrency: number, task: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(n, concurrency) }, worker));
}

const logins = (calls: SimCall[]): SimCall[] => calls.filter((c) => c.route === '/login' && c.status === 200);

describe('DateraClient against the simulator', () => {
  let sim: DateraSimulator;
  let client: DateraClient;

  async function setup(opts: SimOptions = {}, clientOpts: Partial<ConstructorParameters<typeof DateraClient>[0]> = {}): Promise<void> {
    sim = new DateraSimulator({ templates: TEMPLATES, ...opts });
    const url = await sim.start(0);
    client = new DateraClient({
      endpoint: url,
      username: 'admin',
      password: 'password',
      retryBaseMs: 2,
      retryMaxMs: 40,
      requestTimeoutMs: 10_000,
      deadlineMs: 60_000,
      ...clientOpts,
    });
  }

  afterEach(async () => {
    await client?.close();
    await sim?.stop();
  });

  it('creates, reads by name and id, offlines and deletes an app instance', async () => {
    await setup();
    const ai = await client.createAppInstance(aiBody('pvc-life-1', 12));
    expect(ai.name).to.equal('pvc-life-1');
    expect(ai.storage_instances[0]!.access.ips).to.have.length(2);
    expect((await client.getAppInstance('pvc-life-1')).id).to.equal(ai.id);
    expect((await client.getAppInstance(ai.id)).name).to.equal('pvc-life-1');

    const refused = await client.deleteAppInstance('pvc-life-1').catch((e: unknown) => e);
    expect(refused).to.be.instanceOf(InvalidRequestError);

    const off = await client.setAdminState('pvc-life-1', 'offline', true);
    expect(off.admin_state).to.equal('offline');
    await client.deleteAppInstance('pvc-life-1');
    expect(await client.getAppInstance('pvc-life-1').catch((e: unknown) => e)).to.be.instanceOf(NotFoundError);
    expect(await client.deleteAppInstance('pvc-life-1').catch((e: unknown) => e)).to.be.instanceOf(NotFoundError);
    expect(sim.appInstances()).to.deep.equal([]);
  });

  it('lists 250 app instances across pages', async () => {
    await setup();
    await pool(250, 25, (i) => client.createAppInstance(aiBody(`pvc-page-${String(i).padStart(3, '0')}`, 1)));
    const all = await client.listAppInstances();
    expect(all.data).to.have.length(250);
    expect(all.total).to.equal(250);
    expect(new Set(all.data.map((a) => a.name)).size).to.equal(250);
    const gets = sim.calls().filter((c) => c.method === 'GET' && c.route === '/app_instances');
    expect(gets.length).to.be.greaterThanOrEqual(3); // the simulator pages at <= 1000, the client at 100
    const last = await client.listAppInstances({ limit: 100, offset: 200 });
    expect(last.data).to.have.length(50);
    expect(last).to.include({ total: 250, offset: 200, limit: 100 });
    const filtered = await client.listAppInstances({ filter: 'name=pvc-page-042' });
    expect(filtered.data.map((a) => a.name)).to.deep.equal(['pvc-page-042']);
  });

  it('creates from an app template with a size override', async () => {
    await setup();
    const ai = await client.createAppInstance({
      name: 'pvc-template-1',
      create_mode: 'kubernetes',
      app_template: { path: '/app_templates/kube-workload' },
      template_override: { storage_instances: { 'storage-1': { volumes: { 'volume-1': { size: '20' } } } } },
    });
    const vol = ai.storage_instances[0]!.volumes[0]!;
    expect(vol.size).to.equal(20);
    expect(vol.replica_count).to.equal(3);
    expect(vol.performance_policy).to.include({ total_iops_max: 5000 });
    expect(ai.app_template.path).to.equal('/app_templates/kube-workload');
    expect((await client.getAppTemplate('kube-workload')).name).to.equal('kube-workload');
    expect((await client.listAppTemplates()).data.map((t) => t.name)).to.deep.equal(['kube-workload']);
  });

  it('sets a volume performance policy exactly: POST when absent, PUT with all six keys, DELETE for none', async () => {
    await setup();
    await client.createAppInstance(aiBody('pvc-qos-1', 10));
    const policy = () => sim.appInstances()[0]!.storage_instances[0]!.volumes[0]!.performance_policy;
    await client.setPerformancePolicy('pvc-qos-1', 'storage-1', 'volume-1', {}); // none to remove: done
    expect(policy()).to.equal(undefined);
    await client.setPerformancePolicy('pvc-qos-1', 'storage-1', 'volume-1', { total_iops_max: 500, read_bandwidth_max: 1024 });
    expect(policy()).to.include({ total_iops_max: 500, read_bandwidth_max: 1024, write_iops_max: 0 });
    // A key left out now is unlimited (0), not kept from before.
    await client.setPerformancePolicy('pvc-qos-1', 'storage-1', 'volume-1', { total_iops_max: 800 });
    expect(policy()).to.include({ total_iops_max: 800, read_bandwidth_max: 0 });
    await client.setPerformancePolicy('pvc-qos-1', 'storage-1', 'volume-1', {});
    expect(policy()).to.equal(undefined);
  });

  it('serves the rest of DateraApi: resize, metadata, initiators, ACL, system', async () => {
    await setup();
    await client.createAppInstance(aiBody('pvc-misc-1', 10));
    expect((await client.resizeVolume('pvc-misc-1', 'storage-1', 'volume-1', 15)).size).to.equal(15);
    await client.putMetadata('pvc-misc-1', { pvc: 'ns/data', size: '15' });
    expect(await client.putMetadata('pvc-misc-1', { node: 'n1' })).to.deep.equal({ pvc: 'ns/data', size: '15', node: 'n1' });
    expect(await client.getMetadata('pvc-misc-1')).to.deep.equal({ pvc: 'ns/data', size: '15', node: 'n1' });
    const iqn = 'iqn.1993-08.org.debian:01:worker-1';
    const ini = await client.createInitiator(iqn, 'worker-1', true);
    expect(ini.id).to.equal(iqn);
    expect((await client.createInitiator(iqn, 'worker-1', true)).id).to.equal(iqn); // 409 -> existing
    await client.addAclInitiator('pvc-misc-1', 'storage-1', iqn);
    await client.addAclInitiator('pvc-misc-1', 'storage-1', iqn); // already a member
    expect(sim.appInstances()[0]!.storage_instances[0]!.acl_policy.initiators).to.deep.equal([{ path: `/initiators/${iqn}` }]);
    await client.removeAclInitiator('pvc-misc-1', 'storage-1', iqn);
    await client.removeAclInitiator('pvc-misc-1', 'storage-1', iqn); // absent
    expect(sim.appInstances()[0]!.storage_instances[0]!.acl_policy.initiators).to.deep.equal([]);
    const sys = await client.getSystem();
    expect(sys).to.include({ sw_version: '3.3.5', op_state: 'running' });
  });

  // The 401s of one burst all meet the login still in flight here; a 401 that arrives after the
  // renewal (which must reuse the new key) is covered deterministically in session.spec.ts.
  it('a session that expires during each of two bursts of 50 concurrent creates costs one login per burst', async () => {
    await setup({ faults: { latencyMs: 30 } });
    await client.getSystem(); // first login
    sim.clearCalls();
    for (const round of [1, 2]) {
      const from = sim.calls().length;
      const burst = Array.from({ length: 50 }, (_, i) => client.createAppInstance(aiBody(`pvc-burst-${round}-${i}`, 1)));
      setTimeout(() => sim.expireSessions(), 10); // while the burst is in flight
      const created = await Promise.all(burst);
      expect(created).to.have.length(50);
      expect(logins(sim.calls()), `successful logins after burst ${round}`).to.have.length(round);
      expect(sim.calls().slice(from).filter((c) => c.status === 401).length, `the session expired during burst ${round}`).to.be.greaterThan(0);
    }
    const calls = sim.calls();
    expect(calls.filter((c) => c.status === 401).length).to.be.greaterThan(0);
    expect(calls.filter((c) => c.route === '/login').length).to.equal(2); // no failed or duplicate logins either
    expect(sim.appInstances()).to.have.length(100);
  });

  it('resolves every create under 30 % 503s and 10 % lost responses, with exactly N app instances', async () => {
    const N = 150;
    await setup({ random: seeded(7), faults: { rate503: 0.3, dropAfterRate: 0.1 } });
    await pool(N, 15, (i) => client.createAppInstance(aiBody(`pvc-fault-${i}`, 1)));
    sim.setFaults({});
    const names = sim.appInstances().map((a) => a.name);
    expect(names).to.have.length(N);
    expect(new Set(names).size).to.equal(N);
    const calls = sim.calls();
    expect(calls.filter((c) => c.fault === '503').length, 'some 503s were injected').to.be.greaterThan(0);
    expect(calls.filter((c) => c.fault === 'dropAfter').length, 'some responses were lost').to.be.greaterThan(0);
    // A lost create is resent; the resend meets 409 and the client reads the object instead.
    expect(calls.filter((c) => c.route === '/app_instances' && c.status === 409).length).to.be.greaterThan(0);
  });

  it('rejects with AuthError when the credentials are wrong', async () => {
    await setup({}, { password: 'wrong_password' });
    expect(await client.getSystem().catch((e: unknown) => e)).to.be.instanceOf(AuthError);
  });

  it(`acceptance: 500 creates with 20 % 503s and sessions expiring every ${ACCEPTANCE_TTL_MS} ms leave exactly 500 app instances`, async function () {
    const ttl = ACCEPTANCE_TTL_MS;
    const total = 500;
    const concurrency = 10;
    // Pace the run so that it spans several session lifetimes whatever the TTL is.
    const latencyMs = Math.max(1, Math.round((3.5 * ttl * concurrency) / (total * 1.25)));
    this.timeout(Math.max(60_000, ttl * 40));
    await setup({ sessionTtlMs: ttl, random: seeded(2024), faults: { rate503: 0.2, latencyMs } });

    const started = Date.now();
    await pool(total, concurrency, (i) => client.createAppInstance(aiBody(`pvc-acc-${String(i).padStart(3, '0')}`, 1)));
    const elapsed = Date.now() - started;
    sim.setFaults({});

    const names = sim.appInstances().map((a) => a.name);
    expect(names).to.have.length(total);
    expect(new Set(names).size).to.equal(total);
    for (let i = 0; i < total; i++) expect(names).to.include(`pvc-acc-${String(i).padStart(3, '0')}`);

    const calls = sim.calls();
    expect(calls.filter((c) => c.route === '/app_instances' && c.method === 'POST' && c.status === 200)).to.have.length(total);
    expect(calls.filter((c) => c.status === 409), 'no create was sent twice').to.have.length(0);
    expect(calls.filter((c) => c.fault === '503').length).to.be.greaterThan(total * 0.1);
    expect(calls.filter((c) => c.status === 401).length, 'sessions did expire during the run').to.be.greaterThan(0);

    // One re-login per expiry: a key lives ttl ms, so successful logins are at least ttl apart,
    // and there are no more of them than session lifetimes in the run.
    const ok = logins(calls);
    expect(ok.length).to.be.greaterThanOrEqual(3);
    expect(ok.length).to.be.at.most(Math.ceil(elapsed / ttl) + 1);
    for (let i = 1; i < ok.length; i++) {
      expect(ok[i]!.at - ok[i - 1]!.at, `login ${i} came too early`).to.be.greaterThanOrEqual(ttl - 5);
    }
  });
});
