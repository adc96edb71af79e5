// SPDX-License-Identifier: Apache-2.0
import { expect } from 'chai';
import nock from 'nock';
import { CoordinationV1Api } from '@kubernetes/client-node';
import { LeaderElector, leaseNameFor, microTime, type LeaderElectorOptions, type StopReason } from '../../lib/kube/lease.js';
import { FakeClock, SERVER, testKubeConfig } from './helpers.js';

const NS = 'kube-system';
const NAME = leaseNameFor('datera.io/provisioner-datera');
const COLLECTION = `/apis/coordination.k8s.io/v1/namespaces/${NS}/leases`;
const LEASE = `${COLLECTION}/${NAME}`;
const BASE = Date.UTC(2024, 4, 1, 10, 0, 0);

type Body = Record<string, any>;
const parse = (b: unknown): Body => (typeof b === 'string' ? JSON.parse(b) : (b as Body));

function lease(holder: string | undefined, rv: string, extra: Body = {}): Body {
  return {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { name: NAME, namespace: NS, resourceVersion: rv },
    spec: {
      holderIdentity: holder,
      leaseDurationSeconds: 15,
      // Deliberately ancient: expiry must not depend on comparing clocks with the holder.
      renewTime: '2001-01-01T00:00:00.000000Z',
      acquireTime: '2001-01-01T00:00:00.000000Z',
      leaseTransitions: 3,
      ...extra,
    },
  };
}

describe('kube/lease', () => {
  const api = testKubeConfig().makeApiClient(CoordinationV1Api);
  let clock: FakeClock;
  let rv: number;
  let writes: Body[];
  let stops: StopReason[];
  let starts: number;

  function elector(extra: Partial<LeaderElectorOptions> = {}): LeaderElector {
    return new LeaderElector({
      api,
      name: NAME,
      namespace: NS,
      identity: 'me',
      now: clock.now,
      sleep: clock.sleep,
      wallClock: () => new Date(BASE + clock.t),
      random: () => 0,
      onStartedLeading: () => starts++,
      onStoppedLeading: (reason) => stops.push(reason),
      ...extra,
    });
  }

  /** The server's reply to a create/replace: the body with a new resourceVersion. */
  const stored = (_uri: string, body: unknown): Body => {
    const b = parse(body);
    writes.push(b);
    return { ...b, metadata: { ...b.metadata, resourceVersion: String(++rv) } };
  };

  const notFound = { kind: 'Status', code: 404, reason: 'NotFound', message: 'leases not found' };
  const conflict = { kind: 'Status', code: 409, reason: 'Conflict', message: 'the object has been modified' };
  const exists = { kind: 'Status', code: 409, reason: 'AlreadyExists', message: 'already exists' };

  beforeEach(() => {
    nock.disableNetConnect();
    clock = new FakeClock();
    rv = 100;
    writes = [];
    stops = [];
    starts = 0;
  });

  afterEach(() => {
    nock.abortPendingRequests();
    nock.cleanAll();
    nock.enableNetConnect();
  });

  it('derives the Lease name from the provisioner name', () => {
    expect(NAME).to.equal('datera.io-provisioner-datera');
    expect(microTime(new Date(BASE))).to.equal('2024-05-01T10:00:00.000000Z');
  });

  it('creates the Lease when absent and leads', async () => {
    nock(SERVER).get(LEASE).reply(404, notFound).post(COLLECTION).reply(201, stored);
    const ac = new AbortController();
    const le = elector({ onStartedLeading: () => (starts++, ac.abort()) });
    await le.run(ac.signal);
    expect(starts).to.equal(1);
    expect(stops).to.deep.equal(['cancelled']);
    expect(le.isLeader).to.equal(false);
    const spec = writes[0]!.spec;
    expect(spec).to.include({ holderIdentity: 'me', leaseDurationSeconds: 15, leaseTransitions: 0 });
    expect(spec.renewTime).to.equal('2024-05-01T10:00:00.000000Z'); // MicroTime string, microseconds
    expect(spec.acquireTime).to.equal(spec.renewTime);
    expect(le.state()).to.include({ identity: 'me', holder: 'me', isLeader: false });
  });

  it('a 409 on create means another candidate won', async () => {
    nock(SERVER)
      .get(LEASE)
      .reply(404, notFound)
      .post(COLLECTION)
      .reply(409, exists)
      .get(LEASE)
      .reply(200, lease('other', '7'));
    const le = elector();
    expect(await le.tryAcquireOrRenew()).to.equal(false);
    expect(await le.tryAcquireOrRenew()).to.equal(false);
    expect(le.isLeader).to.equal(false);
    expect(le.holder).to.equal('other');
  });

  it('renews by replacing the Lease with its resourceVersion, keeping acquireTime', async () => {
    const ac = new AbortController();
    nock(SERVER).get(LEASE).reply(404, notFound).post(COLLECTION).reply(201, stored);
    nock(SERVER)
      .put(LEASE)
      .times(2)
      .reply(200, (uri, body) => {
        const out = stored(uri, body);
        if (writes.length === 3) ac.abort();
        return out;
      });
    const le = elector();
    await le.run(ac.signal);
    expect(writes.map((w) => w.metadata.resourceVersion)).to.deep.equal([undefined, '101', '102']);
    expect(writes.map((w) => w.spec.renewTime)).to.deep.equal([
      '2024-05-01T10:00:00.000000Z',
      '2024-05-01T10:00:02.000000Z',
      '2024-05-01T10:00:04.000000Z',
    ]);
    expect(writes.every((w) => w.spec.acquireTime === '2024-05-01T10:00:00.000000Z')).to.equal(true);
    expect(writes.every((w) => w.spec.holderIdentity === 'me' && w.spec.leaseTransitions === 0)).to.equal(true);
    expect(starts).to.equal(1);
    expect(stops).to.deep.equal(['cancelled']);
  });

  it('takes over only after the holder stayed unchanged for leaseDuration by the local clock', async () => {
    nock(SERVER).get(LEASE).times(3).reply(200, lease('other', '7')).put(LEASE).reply(200, stored);
    const le = elector();
    expect(await le.tryAcquireOrRenew()).to.equal(false); // first observation at t=0
    clock.advance(14_000);
    expect(await le.tryAcquireOrRenew()).to.equal(false); // unchanged for 14 s: still valid
    clock.advance(1_001);
    expect(await le.tryAcquireOrRenew()).to.equal(true); // unchanged for > 15 s: expired
    const w = writes[0]!;
    expect(w.metadata.resourceVersion).to.equal('7');
    expect(w.spec).to.include({ holderIdentity: 'me', leaseTransitions: 4 });
    expect(w.spec.acquireTime).to.equal(w.spec.renewTime);
    expect(le.holder).to.equal('me');
  });

  it('a holder that keeps renewing is never taken over', async () => {
    let n = 0;
    nock(SERVER)
      .get(LEASE)
      .times(10)
      .reply(200, () => lease('other', String(10 + n++)));
    const le = elector();
    for (let i = 0; i < 10; i++) {
      expect(await le.tryAcquireOrRenew()).to.equal(false);
      clock.advance(10_000);
    }
  });

  it('a released Lease (no holder) is taken at once', async () => {
    nock(SERVER).get(LEASE).reply(200, lease('', '9', { leaseDurationSeconds: 1 })).put(LEASE).reply(200, stored);
    const le = elector();
    expect(await le.tryAcquireOrRenew()).to.equal(true);
    expect(writes[0]!.spec).to.include({ holderIdentity: 'me', leaseTransitions: 4, leaseDurationSeconds: 15 });
  });

  it('a conflict on renew when another candidate now holds the Lease = lost', async () => {
    nock(SERVER).get(LEASE).reply(404, notFound).post(COLLECTION).reply(201, stored);
    nock(SERVER).put(LEASE).reply(409, conflict).get(LEASE).reply(200, lease('other', '200'));
    const le = elector();
    await le.run(new AbortController().signal); // returns by itself
    expect(starts).to.equal(1);
    expect(stops).to.deep.equal(['lost']);
    expect(le.isLeader).to.equal(false);
    expect(le.holder).to.equal('other');
  });

  it('renewal failing past renewDeadline stops leading', async () => {
    nock(SERVER).get(LEASE).reply(404, notFound).post(COLLECTION).reply(201, stored);
    let attempts = 0;
    nock(SERVER)
      .put(LEASE)
      .times(4)
      .reply(() => (attempts++, [500, { kind: 'Status', code: 500, reason: 'InternalError' }]))
      .get(LEASE)
      .times(4)
      .reply(503, 'unavailable');
    let ledAt = -1;
    const le = elector({ onStartedLeading: () => (starts++, (ledAt = clock.t)) });
    await le.run(new AbortController().signal);
    expect(stops).to.deep.equal(['lost']);
    expect(clock.t - ledAt).to.equal(10_000); // the renew deadline on the fake clock
    expect(attempts).to.equal(4); // at +2, +4, +6, +8 s
  });

  it('release() clears holderIdentity, ends run() and reports released once', async () => {
    nock(SERVER).get(LEASE).reply(404, notFound).post(COLLECTION).reply(201, stored);
    nock(SERVER).put(LEASE).times(50).reply(200, stored);
    const le = elector();
    const running = le.run(new AbortController().signal);
    while (!le.isLeader) await new Promise((r) => setImmediate(r));
    expect(await le.release()).to.equal(true);
    await running;
    const last = writes[writes.length - 1]!;
    expect(last.spec.holderIdentity).to.equal('');
    expect(last.spec.leaseDurationSeconds).to.equal(1);
    expect(last.metadata.resourceVersion).to.equal(String(rv - 1));
    expect(stops).to.deep.equal(['released']);
    expect(le.isLeader).to.equal(false);
    expect(await le.release()).to.equal(false); // nothing held any more: no request
  });

  it('releaseOnCancel releases when the run signal aborts', async () => {
    const ac = new AbortController();
    nock(SERVER).get(LEASE).reply(404, notFound).post(COLLECTION).reply(201, stored).put(LEASE).reply(200, stored);
    const le = elector({ releaseOnCancel: true, onStartedLeading: () => (starts++, ac.abort()) });
    await le.run(ac.signal);
    expect(writes.map((w) => w.spec.holderIdentity)).to.deep.equal(['me', '']);
    expect(stops).to.deep.equal(['released']);
  });

  it('a hung Lease request times out instead of stalling the campaign', async () => {
    nock(SERVER)
      .get(LEASE)
      .delay(10_000)
      .reply(200, lease('other', '5'))
      .get(LEASE)
      .reply(200, lease('', '6'))
      .put(LEASE)
      .reply(200, stored);
    const le = elector({ requestTimeoutMs: 50 });
    expect(await le.tryAcquireOrRenew()).to.equal(false); // aborted after 50 ms, not 10 s
    expect(await le.tryAcquireOrRenew()).to.equal(true);
  });

  it('rejects timings that client-go would reject', () => {
    expect(() => elector({ leaseDurationMs: 10_000, renewDeadlineMs: 10_000 })).to.throw(/leaseDuration/);
    expect(() => elector({ renewDeadlineMs: 2_000, retryPeriodMs: 2_000 })).to.throw(/renewDeadline/);
  });
});
