// SPDX-License-Identifier: Apache-2.0
import { expect } from 'chai';
import nock from 'nock';
import { CoreV1Api, Watch, type KubeConfig, type V1PersistentVolumeClaim } from '@kubernetes/client-node';
import {
  Informer,
  InformerStoppedError,
  WatchStalledError,
  creationTime,
  toDate,
  type InformerOptions,
  type WatchLike,
} from '../../lib/kube/informer.js';
import { OpenWatch, SERVER, testKubeConfig, waitFor, watchLine } from './helpers.js';

const PATH = '/api/v1/persistentvolumeclaims';
type Pvc = V1PersistentVolumeClaim;

function pvc(name: string, rv: string, namespace = 'ns'): Pvc {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name, namespace, resourceVersion: rv, uid: `uid-${name}`, creationTimestamp: '2024-05-01T10:00:00Z' as unknown as Date },
    spec: { storageClassName: 'datera' },
  };
}

/** The real Watch, counting connections that are still open. */
class SpyWatch implements WatchLike {
  readonly inner: Watch;
  open = 0;
  readonly ended: unknown[] = [];
  constructor(kc: KubeConfig) {
    this.inner = new Watch(kc);
  }
  watch(...[path, query, cb, done]: Parameters<WatchLike['watch']>): Promise<AbortController> {
    this.open++;
    return this.inner.watch(path, query, cb, (err) => {
      this.open--;
      this.ended.push(err);
      done(err);
    });
  }
}

const status = (code: number, reason: string) => ({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code, reason, message: reason });

/** The cached objects of one namespace, in cache order (the informer keeps no namespace index). */
const inNamespace = (inf: Informer<Pvc>, namespace: string): Pvc[] => inf.list().filter((o) => o.metadata?.namespace === namespace);

describe('kube/informer', () => {
  const kc = testKubeConfig();
  const core = kc.makeApiClient(CoreV1Api);
  let informers: Informer<Pvc>[];
  let lists: number;
  let watchQueries: URLSearchParams[];
  let events: string[];
  let errors: Array<{ err: unknown; phase: string }>;
  let spy: SpyWatch;

  /** Answers the next LIST with these items. */
  function replyList(items: Pvc[], rv: string): void {
    nock(SERVER)
      .get(PATH)
      .query((q) => q.watch === undefined)
      .reply(200, { apiVersion: 'v1', kind: 'PersistentVolumeClaimList', metadata: { resourceVersion: rv }, items });
  }

  /** Answers the next WATCH from `rv` with a closed body (string), an open one, or a status. */
  function replyWatch(rv: string | undefined, body: string | OpenWatch | number): void {
    const interceptor = nock(SERVER)
      .get(PATH)
      .query((q) => q.watch === 'true' && q.resourceVersion === rv);
    interceptor.reply((uri) => {
      watchQueries.push(new URL(uri, SERVER).searchParams);
      if (typeof body === 'number') return [body, status(body, body === 410 ? 'Expired' : 'InternalError')];
      if (typeof body === 'string') return [200, body];
      return [200, body.stream];
    });
  }

  function make(extra: Partial<InformerOptions<Pvc>> = {}): Informer<Pvc> {
    const inf = new Informer<Pvc>({
      name: 'pvc',
      path: PATH,
      list: async () => {
        lists++;
        return core.listPersistentVolumeClaimForAllNamespaces();
      },
      resyncPeriodMs: 0,
      backoffInitialMs: 5,
      backoffMaxMs: 40,
      random: () => 0,
      onError: (err, phase) => errors.push({ err, phase }),
      watch: spy,
      ...extra,
    });
    inf.on('add', (o) => events.push(`add ${o.metadata?.name} ${o.metadata?.resourceVersion}`));
    inf.on('update', (o, old) => events.push(`update ${o.metadata?.name} ${old?.metadata?.resourceVersion}->${o.metadata?.resourceVersion}`));
    inf.on('delete', (o) => events.push(`delete ${o.metadata?.name}`));
    informers.push(inf);
    return inf;
  }

  beforeEach(() => {
    nock.disableNetConnect();
    informers = [];
    lists = 0;
    watchQueries = [];
    events = [];
    errors = [];
    spy = new SpyWatch(kc);
  });

  afterEach(async () => {
    for (const inf of informers) inf.stop();
    await Promise.all(informers.map((i) => i.stopped()));
    nock.abortPendingRequests();
    nock.cleanAll();
    nock.enableNetConnect();
  });

  it('lists, then applies ADDED/MODIFIED/DELETED from the watch; the watch is bounded and asks for bookmarks', async () => {
    replyList([pvc('a', '5'), pvc('b', '6', 'other')], '10');
    const w = new OpenWatch();
    replyWatch('10', w);
    const inf = make({ watchTimeoutSeconds: 300 });
    await inf.start();
    expect(inf.synced).to.equal(true);
    expect(inf.lastSyncAt).to.be.greaterThan(0);
    expect(events).to.deep.equal(['add a 5', 'add b 6']);
    expect(inf.get('a', 'ns')?.metadata?.resourceVersion).to.equal('5');
    expect(inNamespace(inf, 'other').map((o) => o.metadata?.name)).to.deep.equal(['b']);

    await waitFor(() => watchQueries.length === 1, 'watch request');
    const q = watchQueries[0]!;
    expect(q.get('allowWatchBookmarks')).to.equal('true');
    expect(q.get('timeoutSeconds')).to.equal('300');
    expect(q.get('resourceVersion')).to.equal('10');

    w.send('ADDED', pvc('c', '11'));
    w.send('MODIFIED', pvc('a', '12'));
    w.send('DELETED', pvc('b', '13', 'other'));
    await waitFor(() => events.length === 5, 'three watch events');
    expect(events.slice(2)).to.deep.equal(['add c 11', 'update a 5->12', 'delete b']);
    expect(inf.list().map((o) => o.metadata?.name).sort()).to.deep.equal(['a', 'c']);
    expect(inNamespace(inf, 'other')).to.deep.equal([]);
    expect(inf.resourceVersion).to.equal('13');
  });

  it('applies the transform to listed and watched objects before they are cached', async () => {
    const fat = (name: string, rv: string): Pvc => ({ ...pvc(name, rv), metadata: { ...pvc(name, rv).metadata, managedFields: [{ manager: 'kubectl' }] } });
    replyList([fat('a', '5')], '10');
    const w = new OpenWatch();
    replyWatch('10', w);
    const inf = make({ transform: (o) => ({ ...o, metadata: { ...o.metadata, managedFields: undefined, labels: { slim: 'yes' } } }) });
    await inf.start();
    await waitFor(() => watchQueries.length === 1, 'watch request');
    w.send('ADDED', fat('b', '11'));
    await waitFor(() => events.length === 2, 'watch event');
    for (const n of ['a', 'b']) {
      expect(inf.get(n, 'ns')?.metadata?.managedFields, n).to.equal(undefined);
      expect(inf.get(n, 'ns')?.metadata?.labels, n).to.deep.equal({ slim: 'yes' });
    }
    expect(inf.resourceVersion).to.equal('11');
  });

  it('BOOKMARK advances the resourceVersion; a clean end re-watches from it without a relist', async () => {
    replyList([pvc('a', '5')], '10');
    replyWatch('10', watchLine('MODIFIED', pvc('a', '11')) + watchLine('BOOKMARK', { kind: 'PersistentVolumeClaim', metadata: { resourceVersion: '15' } }));
    const w2 = new OpenWatch();
    replyWatch('15', w2);
    const inf = make();
    await inf.start();
    await waitFor(() => watchQueries.length === 2, 'second watch');
    expect(lists).to.equal(1);
    expect(events).to.deep.equal(['add a 5', 'update a 5->11']); // bookmark delivers nothing
    w2.send('ADDED', pvc('d', '16'));
    await waitFor(() => events.length === 3, 'event on the resumed watch');
    expect(inf.get('d', 'ns')).to.not.equal(undefined);
  });

  it('a 410 ERROR event relists and diffs: update changed, add new, delete vanished', async () => {
    replyList([pvc('a', '5'), pvc('b', '6'), pvc('same', '7')], '10');
    replyWatch('10', watchLine('ERROR', status(410, 'Expired')));
    replyList([pvc('a', '12'), pvc('c', '13'), pvc('same', '7')], '20');
    const w = new OpenWatch();
    replyWatch('20', w);
    const inf = make();
    await inf.start();
    await waitFor(() => watchQueries.length === 2, 'watch after relist');
    expect(lists).to.equal(2);
    expect(events).to.deep.equal([
      'add a 5',
      'add b 6',
      'add same 7',
      'update a 5->12',
      'add c 13',
      'delete b',
    ]);
    expect(inf.get('b', 'ns')).to.equal(undefined);
    expect(errors).to.deep.equal([]); // a 410 is routine, not an error
  });

  it('an HTTP 410 on the watch relists too', async () => {
    replyList([pvc('a', '5')], '10');
    replyWatch('10', 410);
    replyList([], '30');
    const w = new OpenWatch();
    replyWatch('30', w);
    const inf = make();
    await inf.start();
    await waitFor(() => watchQueries.length === 2, 'watch after relist');
    expect(events).to.deep.equal(['add a 5', 'delete a']);
  });

  it('HTTP 500 on the watch restarts it with backoff from the same resourceVersion', async () => {
    replyList([pvc('a', '5')], '10');
    replyWatch('10', 500);
    replyWatch('10', 500);
    const w = new OpenWatch();
    replyWatch('10', w);
    const inf = make();
    await inf.start();
    await waitFor(() => watchQueries.length === 3, 'third watch');
    w.send('ADDED', pvc('b', '11'));
    await waitFor(() => events.includes('add b 11'), 'event after the restarts');
    expect(lists).to.equal(1);
    expect(errors.map((e) => e.phase)).to.deep.equal(['watch', 'watch']);
  });

  it('retries a failing list until it succeeds; start() resolves only then', async () => {
    nock(SERVER).get(PATH).query(true).reply(500, status(500, 'InternalError'));
    nock(SERVER)
      .get(PATH)
      .query(true)
      .replyWithError(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }));
    replyList([pvc('a', '5')], '10');
    replyWatch('10', new OpenWatch());
    const inf = make();
    await inf.start();
    expect(lists).to.equal(3);
    expect(events).to.deep.equal(['add a 5']);
    expect(errors.map((e) => e.phase)).to.deep.equal(['list', 'list']);
  });

  it('the watchdog restarts a watch that goes silent', async () => {
    replyList([pvc('a', '5')], '10');
    const silent = new OpenWatch();
    replyWatch('10', silent);
    // Every later watch delivers an event at once and then goes silent too (so timing under load
    // cannot make the assertions flaky: each new watch carries the event).
    nock(SERVER)
      .get(PATH)
      .query((q) => q.watch === 'true')
      .times(20)
      .reply((uri) => {
        watchQueries.push(new URL(uri, SERVER).searchParams);
        const w = new OpenWatch();
        w.send('ADDED', pvc('b', '11'));
        return [200, w.stream];
      });
    const inf = make({ stallTimeoutMs: 60 });
    await inf.start();
    await waitFor(() => events.includes('add b 11'), 'event on the restarted watch');
    expect(watchQueries.length).to.be.greaterThan(1);
    expect(errors[0]?.err).to.be.instanceOf(WatchStalledError);
    expect(errors[0]?.phase).to.equal('watch');
    expect((spy.ended[0] as Error).name).to.equal('AbortError'); // the silent connection was closed
    expect(lists).to.equal(1); // a stall resumes from the last resourceVersion, no relist
  });

  it('resync re-delivers every cached object as update(obj, obj)', async () => {
    replyList([pvc('a', '5'), pvc('b', '6')], '10');
    replyWatch('10', new OpenWatch());
    const inf = make({ resyncPeriodMs: 20 });
    const same: boolean[] = [];
    inf.on('update', (o, old) => same.push(o === old && o === inf.get(o.metadata!.name!, 'ns')));
    await inf.start();
    await waitFor(() => events.filter((e) => e === 'update a 5->5').length >= 1 && events.includes('update b 6->6'), 'resync');
    expect(same.every(Boolean)).to.equal(true);
  });

  it('stop() before the first list rejects start() and leaves no timers or sockets', async () => {
    await new Promise((r) => setImmediate(r));
    const before = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    nock(SERVER).get(PATH).query(true).delay(10_000).reply(200, { items: [] });
    const inf = make({ resyncPeriodMs: 1000 });
    const started = inf.start();
    await waitFor(() => lists === 1, 'list requested');
    inf.stop();
    let caught: unknown;
    await started.catch((e: unknown) => (caught = e));
    expect(caught).to.be.instanceOf(InformerStoppedError);
    await inf.stopped(); // does not wait for the hung list
    nock.abortPendingRequests();
    await new Promise((r) => setImmediate(r));
    const after = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    expect(after).to.be.at.most(before);
  });

  it('stop() while watching aborts the watch and clears every timer', async () => {
    replyList([pvc('a', '5')], '10');
    const w = new OpenWatch();
    replyWatch('10', w);
    await new Promise((r) => setImmediate(r)); // let mocha arm its own test timer first
    const before = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const inf = make({ resyncPeriodMs: 60_000 });
    await inf.start();
    await waitFor(() => watchQueries.length === 1, 'watch open');
    inf.stop();
    await inf.stopped();
    expect(inf.synced).to.equal(false);
    await waitFor(() => spy.open === 0, 'watch connection closed');
    const after = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    expect(after).to.be.at.most(before);
    expect(inf.get('a', 'ns')).to.not.equal(undefined); // the cache is kept
  });

  it('handles 10 000 objects without copying them', async function () {
    this.timeout(30_000);
    const items = Array.from({ length: 10_000 }, (_, i) => pvc(`c${i}`, String(i + 1), `ns${i % 50}`));
    replyList(items, '20000');
    let body = '';
    for (let i = 0; i < 10_000; i++) body += watchLine('MODIFIED', pvc(`c${i}`, String(20_001 + i), `ns${i % 50}`));
    replyWatch('20000', body);
    replyWatch('30000', new OpenWatch());
    const inf = make();
    let updates = 0;
    const added = new Map<string, Pvc>();
    inf.on('add', (o) => added.set(o.metadata!.name!, o));
    // The informer swallows handler exceptions: record here, assert below.
    const c42: { delivered?: Pvc; cachedThen?: Pvc } = {};
    inf.on('update', (o) => {
      updates++;
      if (o.metadata?.name === 'c42') {
        c42.delivered = o;
        c42.cachedThen = inf.get('c42', 'ns42');
      }
    });
    await inf.start();
    expect(inf.get('c42', 'ns42')).to.equal(added.get('c42')); // no copy between handler and cache
    await waitFor(() => updates === 10_000, 'all updates', 20_000);
    expect(c42.delivered, 'the update of c42 was delivered').to.not.equal(undefined);
    expect(c42.cachedThen, 'cached as delivered, at delivery time').to.equal(c42.delivered);
    expect(inf.size).to.equal(10_000);
    expect(inNamespace(inf, 'ns7')).to.have.length(200);
    expect(inf.resourceVersion).to.equal('30000');
  });

  it('creationTime/toDate accept the Date of a listed object and the string of a watched one', () => {
    const fromWatch = pvc('a', '1');
    const fromList = { metadata: { creationTimestamp: new Date('2024-05-01T10:00:00Z') } };
    expect(creationTime(fromWatch).toISOString()).to.equal('2024-05-01T10:00:00.000Z');
    expect(creationTime(fromList).getTime()).to.equal(creationTime(fromWatch).getTime());
    expect(creationTime({ metadata: {} }).getTime()).to.equal(0);
    expect(toDate('garbage')).to.equal(undefined);
  });
});
