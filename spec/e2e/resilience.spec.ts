// SPDX-License-Identifier: Apache-2.0
// The provisioner as a real process: killed mid-burst, and two replicas with leader election.
import { expect } from 'chai';
import { DateraSimulator } from '../../lib/sim/server.js';
import type { Plane } from '../cluster/plane.js';
import {
  SIM_USER,
  apis,
  claim,
  freshNamespace,
  sharedPlane,
  startProvisionerProcess,
  storageClass,
  suffix,
  waitFor,
  type Apis,
  type ProvisionerProcess,
} from './harness.js';

async function boundCount(a: Apis, ns: string): Promise<number> {
  const list = await a.core.listNamespacedPersistentVolumeClaim({ namespace: ns });
  return list.items.filter((c) => c.status?.phase === 'Bound').length;
}

describe('e2e: restarts and failover of the provisioner process', function () {
  this.timeout(300_000);
  let plane: Plane;
  let a: Apis;
  let sim: DateraSimulator;
  let simUrl: string;
  const procs: ProvisionerProcess[] = [];

  before(async function () {
    plane = await sharedPlane();
    a = apis(plane);
    sim = new DateraSimulator({ users: [SIM_USER] });
    simUrl = await sim.start();
  });
  afterEach(async function () {
    const all = procs.splice(0);
    await Promise.all(all.map((p) => p.kill('SIGKILL')));
    for (const p of all) expect(p.logs(), 'the Datera password never reaches the logs').to.not.include(SIM_USER.password);
  });
  after(async () => sim?.stop());

  it('SIGKILL during a burst of claims, then a restart: every claim bound, no extra app instances', async () => {
    const name = `e2e.datera.io/k-${suffix()}`;
    const cls = `kill-${suffix()}`;
    const ns = await freshNamespace(a, 'kill');
    await a.storage.createStorageClass({ body: storageClass(cls, name) });
    sim.setFaults({ latencyMs: 40, dropAfterRate: 0.05 });
    const opts = { plane, simUrl, provisionerName: name, namespace: ns, extraArgs: ['--leader-elect=false', '--workers', '4'] };
    const first = startProvisionerProcess(opts);
    procs.push(first);
    await first.waitForLog(/provisioner running/);
    const N = 40;
    await Promise.all(Array.from({ length: N }, (_, i) => a.core.createNamespacedPersistentVolumeClaim({ namespace: ns, body: claim(`burst-${i}`, { className: cls }) })));
    await waitFor('some app instances created', async () => sim.appInstances().length >= 5, 60_000, 20);
    await first.kill('SIGKILL');
    const made = sim.appInstances().length;
    expect(made, 'the kill happened mid-burst').to.be.lessThan(N);

    const second = startProvisionerProcess(opts);
    procs.push(second);
    await waitFor(`${N} claims bound`, async () => (await boundCount(a, ns)) === N, 180_000, 500);
    const claims = (await a.core.listNamespacedPersistentVolumeClaim({ namespace: ns })).items;
    const expected = new Set(claims.map((c) => `pvc-${c.metadata!.uid}`));
    const ais = sim.appInstances().map((ai) => ai.name);
    expect(ais.length, 'no extra app instances').to.equal(N);
    expect(new Set(ais)).to.deep.equal(expected);
    sim.setFaults({});
  });

  it('two replicas: one leads, the other takes over after the leader is killed', async () => {
    const name = `e2e.datera.io/l-${suffix()}`;
    const cls = `lead-${suffix()}`;
    const ns = await freshNamespace(a, 'lead');
    await a.storage.createStorageClass({ body: storageClass(cls, name) });
    const timings = ['--leader-elect=true', '--leader-elect-lease-duration', '4s', '--leader-elect-renew-deadline', '3s', '--leader-elect-retry-period', '1s'];
    const p1 = startProvisionerProcess({ plane, simUrl, provisionerName: name, namespace: ns, extraArgs: timings });
    const p2 = startProvisionerProcess({ plane, simUrl, provisionerName: name, namespace: ns, extraArgs: timings });
    procs.push(p1, p2);
    await Promise.all([p1.waitForLog(/provisioner running/), p2.waitForLog(/provisioner running/)]);
    const leader = await waitFor('a leader', async () => [p1, p2].find((p) => /became leader/.test(p.logs())), 30_000);
    const standby = leader === p1 ? p2 : p1;
    await a.core.createNamespacedPersistentVolumeClaim({ namespace: ns, body: claim('before-failover', { className: cls }) });
    await waitFor('first claim bound', async () => (await boundCount(a, ns)) === 1, 60_000);
    expect(standby.logs(), 'the standby did not provision').to.not.match(/"message":"provisioned"/);
    expect(standby.logs()).to.not.match(/became leader/);

    await leader.kill('SIGKILL');
    await a.core.createNamespacedPersistentVolumeClaim({ namespace: ns, body: claim('after-failover', { className: cls }) });
    await standby.waitForLog(/became leader/, 60_000);
    await waitFor('second claim bound by the new leader', async () => (await boundCount(a, ns)) === 2, 60_000);
    expect(standby.logs()).to.match(/"message":"provisioned"/);
    const lease = await plane.kc.makeApiClient((await import('@kubernetes/client-node')).CoordinationV1Api).readNamespacedLease({ name: name.replace(/\//g, '-'), namespace: ns });
    expect(lease.spec!.holderIdentity).to.be.a('string').and.not.equal('');
  });

  it('releases the lease on SIGTERM so a standby can lead without waiting for expiry', async () => {
    const name = `e2e.datera.io/r-${suffix()}`;
    const ns = await freshNamespace(a, 'release');
    const timings = ['--leader-elect=true', '--leader-elect-lease-duration', '60s', '--leader-elect-renew-deadline', '40s', '--leader-elect-retry-period', '1s'];
    const p1 = startProvisionerProcess({ plane, simUrl, provisionerName: name, namespace: ns, extraArgs: timings });
    procs.push(p1);
    await p1.waitForLog(/became leader/);
    const p2 = startProvisionerProcess({ plane, simUrl, provisionerName: name, namespace: ns, extraArgs: timings });
    procs.push(p2);
    await p2.waitForLog(/provisioner running/);
    await p1.kill('SIGTERM');
    expect(p1.child.exitCode).to.equal(0);
    expect(p1.logs(), 'the leader released the lease on its way out').to.match(/released the lease/);
    // With a 60 s lease, taking over within 20 s is only possible because the lease was released.
    await p2.waitForLog(/became leader/, 20_000);
  });
});
