// SPDX-License-Identifier: Apache-2.0
import { expect } from 'chai';
import nock from 'nock';
import { CoreV1Api } from '@kubernetes/client-node';
import { EventRecorder, MAX_MESSAGE_LENGTH, type EventSubject } from '../../lib/kube/events.js';
import { SERVER, testKubeConfig } from './helpers.js';

const claim: EventSubject = {
  kind: 'PersistentVolumeClaim',
  apiVersion: 'v1',
  metadata: { name: 'data-0', namespace: 'apps', uid: 'uid-claim', resourceVersion: '42' },
};
const volume: EventSubject = { kind: 'PersistentVolume', apiVersion: 'v1', metadata: { name: 'pvc-uid-claim', uid: 'uid-pv' } };

type Body = Record<string, any>;

describe('kube/events', () => {
  const core = testKubeConfig().makeApiClient(CoreV1Api);
  let clock: number;
  let recorders: EventRecorder[];

  function recorder(extra: Partial<ConstructorParameters<typeof EventRecorder>[0]> = {}): EventRecorder {
    const r = new EventRecorder({
      core,
      component: 'datera.io/provisioner-datera_host_1234',
      reportingComponent: 'datera.io/provisioner-datera',
      reportingInstance: 'provisioner-7d9f',
      now: () => new Date(Date.UTC(2024, 4, 1, 10, 0, 0) + clock - 1_000_000),
      monotonicNow: () => clock,
      ...extra,
    });
    recorders.push(r);
    return r;
  }

  beforeEach(() => {
    nock.disableNetConnect();
    clock = 1_000_000; // lru-cache treats a start time of 0 as "no TTL"
    recorders = [];
  });

  afterEach(async () => {
    await Promise.all(recorders.map((r) => r.flush()));
    nock.cleanAll();
    nock.enableNetConnect();
  });

  it('creates a core/v1 Event with source, reporting fields and the involved object', async () => {
    const created: Body[] = [];
    const scope = nock(SERVER)
      .post('/api/v1/namespaces/apps/events', (b: Body) => (created.push(b), true))
      .reply(201, (_uri, b) => b as Body);
    const r = recorder();
    r.record(claim, 'Normal', 'Provisioning', 'External provisioner is provisioning volume for claim "apps/data-0"');
    expect(r.pending).to.equal(1); // returned before the write
    await r.flush();
    scope.done();
    const ev = created[0]!;
    expect(ev.metadata.namespace).to.equal('apps');
    expect(ev.metadata.name).to.match(/^data-0\.[0-9a-f]+$/);
    expect(ev.involvedObject).to.deep.equal({
      kind: 'PersistentVolumeClaim',
      apiVersion: 'v1',
      name: 'data-0',
      namespace: 'apps',
      uid: 'uid-claim',
      resourceVersion: '42',
    });
    expect(ev).to.include({
      type: 'Normal',
      reason: 'Provisioning',
      count: 1,
      reportingComponent: 'datera.io/provisioner-datera',
      reportingInstance: 'provisioner-7d9f',
      firstTimestamp: '2024-05-01T10:00:00.000Z',
      lastTimestamp: '2024-05-01T10:00:00.000Z',
    });
    expect(ev.source).to.deep.equal({ component: 'datera.io/provisioner-datera_host_1234' });
    expect(ev.eventTime).to.equal(undefined);
  });

  it('a repeat within the window merge-patches count and lastTimestamp instead of creating', async () => {
    let name = '';
    const patches: Body[] = [];
    nock(SERVER)
      .post('/api/v1/namespaces/apps/events', (b: Body) => ((name = b.metadata.name), true))
      .reply(201, (_uri, b) => b as Body);
    const r = recorder();
    r.record(claim, 'Warning', 'ProvisioningFailed', 'datera: 503 service unavailable');
    await r.flush();
    nock(SERVER, { reqheaders: { 'content-type': 'application/merge-patch+json' } })
      .patch(`/api/v1/namespaces/apps/events/${name}`, (b: Body) => (patches.push(b), true))
      .reply(200, {});
    clock += 30_000;
    r.record(claim, 'Warning', 'ProvisioningFailed', 'datera: 503 service unavailable');
    await r.flush();
    expect(patches).to.deep.equal([{ count: 2, lastTimestamp: '2024-05-01T10:00:30Z' }]);
  });

  it('coalesces repeats that arrive before the first write into one create', async () => {
    const created: Body[] = [];
    nock(SERVER)
      .post('/api/v1/namespaces/apps/events', (b: Body) => (created.push(b), true))
      .reply(201, {});
    const r = recorder();
    for (let i = 0; i < 3; i++) r.record(claim, 'Warning', 'ProvisioningFailed', 'same');
    await r.flush();
    expect(created.map((b) => b.count)).to.deep.equal([3]);
  });

  it('different messages are different events', async () => {
    const created: Body[] = [];
    nock(SERVER)
      .post('/api/v1/namespaces/apps/events', (b: Body) => (created.push(b), true))
      .times(2)
      .reply(201, {});
    const r = recorder();
    r.record(claim, 'Normal', 'Provisioning', 'one');
    r.record(claim, 'Normal', 'Provisioning', 'two');
    await r.flush();
    expect(created.map((b) => b.message).sort()).to.deep.equal(['one', 'two']);
  });

  it('events about a cluster-scoped PV go to namespace default', async () => {
    const created: Body[] = [];
    const scope = nock(SERVER)
      .post('/api/v1/namespaces/default/events', (b: Body) => (created.push(b), true))
      .reply(201, {});
    const r = recorder();
    r.record(volume, 'Warning', 'VolumeFailedDelete', 'app instance busy');
    await r.flush();
    scope.done();
    expect(created[0]!.metadata.namespace).to.equal('default');
    expect(created[0]!.involvedObject.namespace).to.equal(undefined);
  });

  it('truncates messages to 1024 characters', async () => {
    const created: Body[] = [];
    nock(SERVER)
      .post('/api/v1/namespaces/apps/events', (b: Body) => (created.push(b), true))
      .reply(201, {});
    const r = recorder();
    r.record(claim, 'Warning', 'ProvisioningFailed', 'x'.repeat(5000));
    await r.flush();
    expect(created[0]!.message).to.have.length(MAX_MESSAGE_LENGTH);
    expect(created[0]!.message.endsWith('...')).to.equal(true);
  });

  it('failures never throw or reject; the next occurrence retries the create', async () => {
    const created: Body[] = [];
    nock(SERVER)
      .post('/api/v1/namespaces/apps/events')
      .reply(500, { kind: 'Status', code: 500, reason: 'InternalError' })
      .post('/api/v1/namespaces/apps/events')
      .replyWithError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }))
      .post('/api/v1/namespaces/apps/events', (b: Body) => (created.push(b), true))
      .reply(201, {});
    const r = recorder();
    expect(() => r.record(claim, 'Warning', 'ProvisioningFailed', 'boom')).to.not.throw();
    await r.flush();
    expect(() => r.record(claim, 'Warning', 'ProvisioningFailed', 'boom')).to.not.throw();
    await r.flush();
    r.record(claim, 'Warning', 'ProvisioningFailed', 'boom');
    await r.flush();
    expect(created.map((b) => b.count)).to.deep.equal([3]);
    // Garbage input is swallowed too.
    expect(() => r.record(undefined as unknown as EventSubject, 'Normal', 'X', 'y')).to.not.throw();
  });

  it('an Event the server already expired (patch 404) is created again', async () => {
    let first = '';
    const created: Body[] = [];
    nock(SERVER)
      .post('/api/v1/namespaces/apps/events', (b: Body) => ((first = b.metadata.name), true))
      .reply(201, {});
    const r = recorder();
    r.record(claim, 'Normal', 'ExternalProvisioning', 'waiting');
    await r.flush();
    nock(SERVER)
      .patch(`/api/v1/namespaces/apps/events/${first}`)
      .reply(404, { kind: 'Status', code: 404, reason: 'NotFound' })
      .post('/api/v1/namespaces/apps/events', (b: Body) => (created.push(b), true))
      .reply(201, {});
    r.record(claim, 'Normal', 'ExternalProvisioning', 'waiting');
    await r.flush();
    expect(created).to.have.length(1);
    expect(created[0]!.metadata.name).to.not.equal(first);
  });

  it('after the dedupe window a repeat starts a new Event', async () => {
    const created: Body[] = [];
    nock(SERVER)
      .post('/api/v1/namespaces/apps/events', (b: Body) => (created.push(b), true))
      .times(2)
      .reply(201, {});
    const r = recorder({ dedupeTtlMs: 10 * 60_000 });
    r.record(claim, 'Normal', 'Provisioning', 'again');
    await r.flush();
    clock += 10 * 60_000 + 1;
    r.record(claim, 'Normal', 'Provisioning', 'again');
    await r.flush();
    expect(created.map((b) => b.count)).to.deep.equal([1, 1]);
    expect(created[0]!.metadata.name).to.not.equal(created[1]!.metadata.name);
  });
});
