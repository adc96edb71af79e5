// SPDX-License-Identifier: Apache-2.0
import { expect } from 'chai';
import { Metrics, sourceLabel, type QueueState } from '../../lib/observability/metrics.js';
import { WorkQueue, type Outcome } from '../../lib/provision/queue.js';

describe('observability/metrics: sourceLabel', () => {
  const rows: [string | undefined, string][] = [
    [undefined, ''],
    ['', ''],
    ['PersistentVolumeClaim', 'PersistentVolumeClaim'],
    ['VolumeSnapshot', 'other'],
    ['persistentvolumeclaim', 'other'],
    ['x'.repeat(300), 'other'],
  ];
  for (const [kind, want] of rows) {
    it(`maps ${kind === undefined ? 'no data source' : JSON.stringify(kind.slice(0, 24))} to ${JSON.stringify(want)}`, () => {
      expect(sourceLabel(kind)).to.equal(want);
    });
  }
});

/** The samples of one metric at a scrape, with their full names (`_bucket`, `_sum`, `_count` for histograms). */
async function scrape(m: Metrics, name: string): Promise<Array<{ metricName: string; labels: Record<string, string | number>; value: number }>> {
  const got = await m.registry.getSingleMetric(name)!.get();
  return got.values.map((v) => ({ metricName: (v as { metricName?: string }).metricName ?? name, labels: v.labels as Record<string, string | number>, value: v.value }));
}

async function sample(m: Metrics, name: string, labels: Record<string, string>): Promise<number | undefined> {
  const rows = (await scrape(m, name)).filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x));
  if (rows.length > 1) throw new Error(`${name}: ${rows.length} samples match`);
  return rows[0]?.value;
}

describe('observability/metrics: workqueue metrics', () => {
  it('workqueue_depth is read from the queue at scrape time: 2 with two keys waiting, 0 once the queue drained, with no call in between', async () => {
    const m = new Metrics({ defaultMetrics: false });
    const q: WorkQueue = new WorkQueue({ workers: 2, baseMs: 5, maxMs: 40, handler: async (): Promise<Outcome> => ({ kind: 'done' }), observer: m.workQueue('claims', () => q.state()) });
    q.add('a');
    q.add('b');
    expect(await sample(m, 'workqueue_depth', { name: 'claims' })).to.equal(2);
    q.start();
    await q.idle();
    expect(await sample(m, 'workqueue_depth', { name: 'claims' })).to.equal(0);
    expect(await sample(m, 'workqueue_adds_total', { name: 'claims' })).to.equal(2);
    await q.stop();
  });

  it('every workqueue gauge follows its queue\'s state at each scrape, per queue name', async () => {
    const m = new Metrics({ defaultMetrics: false });
    const claims: QueueState = { depth: 3, delayed: 1, unfinishedSeconds: 7.5, longestRunningSeconds: 5 };
    const volumes: QueueState = { depth: 0, delayed: 0, unfinishedSeconds: 0, longestRunningSeconds: 0 };
    m.workQueue('claims', () => claims);
    m.workQueue('volumes', () => volumes);
    const gauges = {
      workqueue_depth: 'depth',
      workqueue_delayed: 'delayed',
      workqueue_unfinished_work_seconds: 'unfinishedSeconds',
      workqueue_longest_running_processor_seconds: 'longestRunningSeconds',
    } as const;
    for (const [metric, field] of Object.entries(gauges)) {
      expect(await sample(m, metric, { name: 'claims' }), metric).to.equal(claims[field]);
      expect(await sample(m, metric, { name: 'volumes' }), metric).to.equal(0);
    }
    // The work finished and the keys drained: the next scrape says so without any event.
    Object.assign(claims, { depth: 0, delayed: 0, unfinishedSeconds: 0, longestRunningSeconds: 0 });
    Object.assign(volumes, { depth: 4, longestRunningSeconds: 2 });
    for (const [metric, field] of Object.entries(gauges)) {
      expect(await sample(m, metric, { name: 'claims' }), metric).to.equal(0);
      expect(await sample(m, metric, { name: 'volumes' }), metric).to.equal(volumes[field]);
    }
  });

  it('a queue with a key in progress shows it in unfinished_work_seconds and longest_running_processor_seconds (injected clock), both 0 once it finished', async () => {
    const m = new Metrics({ defaultMetrics: false });
    let clock = 1_000;
    let release!: () => void;
    const q: WorkQueue = new WorkQueue({
      workers: 1,
      baseMs: 5,
      maxMs: 40,
      now: () => clock,
      handler: () => new Promise<Outcome>((r) => (release = () => r({ kind: 'done' }))),
      observer: m.workQueue('claims', () => q.state()),
    });
    q.start();
    q.add('a');
    clock += 4_000;
    expect(await sample(m, 'workqueue_unfinished_work_seconds', { name: 'claims' })).to.equal(4);
    expect(await sample(m, 'workqueue_longest_running_processor_seconds', { name: 'claims' })).to.equal(4);
    release();
    await q.idle();
    expect(await sample(m, 'workqueue_unfinished_work_seconds', { name: 'claims' })).to.equal(0);
    expect(await sample(m, 'workqueue_longest_running_processor_seconds', { name: 'claims' })).to.equal(0);
    expect(await sample(m, 'workqueue_work_duration_seconds', { name: 'claims', le: '+Inf' })).to.equal(1);
    await q.stop();
  });

  it('workQueue() creates every counter and histogram series at 0; the observer counts adds and retries and observes both durations under the queue name', async () => {
    const m = new Metrics({ defaultMetrics: false });
    const o = m.workQueue('volumes', () => ({ depth: 0, delayed: 0, unfinishedSeconds: 0, longestRunningSeconds: 0 }));
    for (const name of ['workqueue_adds_total', 'workqueue_retries_total']) expect(await sample(m, name, { name: 'volumes' }), name).to.equal(0);
    for (const name of ['workqueue_queue_duration_seconds', 'workqueue_work_duration_seconds']) {
      expect(await sample(m, `${name}`, { name: 'volumes', le: '+Inf' }), name).to.equal(0);
    }
    o.added();
    o.added();
    o.started(0.002);
    o.finished(3);
    o.retried();
    expect(await sample(m, 'workqueue_adds_total', { name: 'volumes' })).to.equal(2);
    expect(await sample(m, 'workqueue_retries_total', { name: 'volumes' })).to.equal(1);
    const hist = async (name: string) => (await scrape(m, name)).filter((v) => v.labels.name === 'volumes');
    const latency = await hist('workqueue_queue_duration_seconds');
    expect(latency.find((v) => v.metricName.endsWith('_sum'))?.value).to.equal(0.002);
    expect(latency.find((v) => v.metricName.endsWith('_bucket') && v.labels.le === 0.001)?.value, 'not within 1 ms').to.equal(0);
    expect(latency.find((v) => v.metricName.endsWith('_bucket') && v.labels.le === 0.01)?.value, 'within 10 ms').to.equal(1);
    const work = await hist('workqueue_work_duration_seconds');
    expect(work.find((v) => v.metricName.endsWith('_sum'))?.value).to.equal(3);
    expect(work.find((v) => v.metricName.endsWith('_count'))?.value).to.equal(1);
  });

  it('both workqueue duration histograms have client-go\'s ten buckets, from 1e-8 s by factors of 10, then +Inf', async () => {
    const m = new Metrics({ defaultMetrics: false });
    m.workQueue('claims', () => ({ depth: 0, delayed: 0, unfinishedSeconds: 0, longestRunningSeconds: 0 }));
    for (const name of ['workqueue_queue_duration_seconds', 'workqueue_work_duration_seconds']) {
      const les = (await scrape(m, name)).filter((v) => v.metricName.endsWith('_bucket')).map((v) => v.labels.le);
      expect(les, name).to.have.length(11);
      expect(les[10], name).to.equal('+Inf');
      les.slice(0, 10).forEach((le, i) => expect(le as number, `${name} bucket ${i}`).to.be.closeTo(10 ** (i - 8), 10 ** (i - 8) * 1e-9));
    }
  });
});

describe('observability/metrics: Kubernetes request hooks', () => {
  it('kubeHooks.onResponse counts rest_client_requests_total by code, method and host; onRequest counts kubernetes_api_requests_total by verb and resource', async () => {
    const m = new Metrics({ defaultMetrics: false });
    m.kubeHooks.onRequest('create', 'persistentvolumes');
    m.kubeHooks.onResponse('201', 'POST', '10.0.0.1:6443');
    m.kubeHooks.onResponse('201', 'POST', '10.0.0.1:6443');
    m.kubeHooks.onResponse('<error>', 'GET', '10.0.0.1:6443');
    expect(await scrape(m, 'rest_client_requests_total')).to.deep.equal([
      { metricName: 'rest_client_requests_total', labels: { code: '201', method: 'POST', host: '10.0.0.1:6443' }, value: 2 },
      { metricName: 'rest_client_requests_total', labels: { code: '<error>', method: 'GET', host: '10.0.0.1:6443' }, value: 1 },
    ]);
    expect(await m.value('kubernetes_api_requests_total', { verb: 'create', resource: 'persistentvolumes' })).to.equal(1);
  });
});
