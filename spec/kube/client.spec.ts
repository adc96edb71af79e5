// SPDX-License-Identifier: Apache-2.0
import { expect } from 'chai';
import nock from 'nock';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  KubeConfigError,
  RateLimiter,
  createKubeClientsFor,
  describeRequest,
  loadKubeConfig,
} from '../../lib/kube/client.js';
import { isTransient } from '../../lib/kube/errors.js';
import { FakeClock, SERVER, testKubeConfig } from './helpers.js';

describe('kube/client', () => {
  describe('RateLimiter (token bucket, fake clock)', () => {
    it('allows `burst` requests at once, then spaces them 1/qps apart', async () => {
      const clock = new FakeClock();
      const rl = new RateLimiter(5, 10, clock.now, clock.sleep);
      for (let i = 0; i < 10; i++) await rl.acquire();
      expect(clock.sleeps).to.deep.equal([]);
      await rl.acquire(); // bucket empty: waits for one token at 5/s
      expect(clock.sleeps).to.deep.equal([200]);
      await rl.acquire();
      expect(clock.sleeps).to.deep.equal([200, 200]);
    });

    it('queues concurrent waiters in arrival order (reservations)', async () => {
      const clock = new FakeClock();
      const waits: number[] = [];
      const rl = new RateLimiter(10, 1, clock.now, async (ms) => {
        waits.push(ms);
      });
      await Promise.all([rl.acquire(), rl.acquire(), rl.acquire(), rl.acquire()]);
      // first from the bucket, the others reserve the 1st, 2nd and 3rd future tokens
      expect(waits.map((w) => Math.round(w))).to.deep.equal([100, 200, 300]);
    });

    it('refills at qps up to burst while idle', async () => {
      const clock = new FakeClock();
      const rl = new RateLimiter(2, 4, clock.now, clock.sleep);
      for (let i = 0; i < 4; i++) await rl.acquire();
      expect(rl.tokens).to.equal(0);
      clock.advance(1000);
      expect(rl.tokens).to.equal(2);
      clock.advance(60_000);
      expect(rl.tokens).to.equal(4); // capped at burst
    });

    it('qps <= 0 disables limiting', async () => {
      const clock = new FakeClock();
      const rl = new RateLimiter(0, 1, clock.now, clock.sleep);
      for (let i = 0; i < 100; i++) await rl.acquire();
      expect(clock.sleeps).to.deep.equal([]);
      expect(rl.enabled).to.equal(false);
    });

    it('an aborted wait rejects and gives its reservation back', async () => {
      const clock = new FakeClock();
      const rl = new RateLimiter(1, 1, clock.now, () => new Promise<void>(() => undefined));
      await rl.acquire();
      const ac = new AbortController();
      const p = rl.acquire(ac.signal);
      expect(rl.tokens).to.equal(-1);
      ac.abort(new Error('cancelled'));
      let caught: unknown;
      await p.catch((e: unknown) => (caught = e));
      expect((caught as Error).message).to.equal('cancelled');
      expect(rl.tokens).to.equal(0);
    });
  });

  describe('describeRequest', () => {
    const cases: Array<[string, string, string, string]> = [
      ['GET', '/api/v1/namespaces/ns/persistentvolumeclaims/c1', 'get', 'persistentvolumeclaims'],
      ['GET', '/api/v1/persistentvolumeclaims?limit=500', 'list', 'persistentvolumeclaims'],
      ['GET', '/api/v1/persistentvolumes?watch=true', 'watch', 'persistentvolumes'],
      ['POST', '/api/v1/persistentvolumes', 'create', 'persistentvolumes'],
      ['PUT', '/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/x', 'update', 'leases'],
      ['PATCH', '/api/v1/namespaces/ns/persistentvolumeclaims/c1/status', 'patch', 'persistentvolumeclaims/status'],
      ['DELETE', '/api/v1/persistentvolumes/pv1', 'delete', 'persistentvolumes'],
      ['GET', '/apis/storage.k8s.io/v1/storageclasses/fast', 'get', 'storageclasses'],
      ['GET', '/api/v1/namespaces/ns', 'get', 'namespaces'],
    ];
    for (const [method, url, verb, resource] of cases) {
      it(`${method} ${url} -> ${verb} ${resource}`, () => {
        expect(describeRequest(method, `https://k8s.test${url}`)).to.deep.equal({ verb, resource });
      });
    }
  });

  describe('clients with the middleware (nock)', () => {
    beforeEach(() => nock.disableNetConnect());
    afterEach(() => {
      nock.abortPendingRequests();
      nock.cleanAll();
      nock.enableNetConnect();
    });

    it('runs the limiter and onRequest on a normal typed call and sets the User-Agent', async () => {
      const clock = new FakeClock();
      const limiter = new RateLimiter(1, 1, clock.now, clock.sleep);
      const seen: string[] = [];
      const clients = createKubeClientsFor(testKubeConfig(), {
        limiter,
        userAgent: 'datera-provisioner/test',
        onRequest: (verb, resource) => seen.push(`${verb} ${resource}`),
      });
      const scope = nock(SERVER, { reqheaders: { 'user-agent': 'datera-provisioner/test' } })
        .get('/api/v1/namespaces/ns/persistentvolumeclaims/c1')
        .reply(200, { metadata: { name: 'c1', namespace: 'ns' } })
        .get('/apis/storage.k8s.io/v1/storageclasses/fast')
        .reply(200, { metadata: { name: 'fast' }, provisioner: 'datera.io/provisioner-datera' })
        .post('/api/v1/persistentvolumes')
        .reply(201, { metadata: { name: 'pvc-1' } });
      const pvc = await clients.core.readNamespacedPersistentVolumeClaim({ name: 'c1', namespace: 'ns' });
      const sc = await clients.storage.readStorageClass({ name: 'fast' });
      await clients.core.createPersistentVolume({ body: { metadata: { name: 'pvc-1' } } });
      expect(pvc.metadata?.name).to.equal('c1');
      expect(sc.provisioner).to.equal('datera.io/provisioner-datera');
      scope.done();
      expect(seen).to.deep.equal(['get persistentvolumeclaims', 'get storageclasses', 'create persistentvolumes']);
      // 1 qps, burst 1: the 2nd and 3rd calls each waited one second on the limiter.
      expect(clock.sleeps).to.deep.equal([1000, 1000]);
    });

    it('applies the limiter to calls that carry their own options (merge patch)', async () => {
      const clock = new FakeClock();
      const limiter = new RateLimiter(1, 1, clock.now, clock.sleep);
      const seen: string[] = [];
      const { core } = createKubeClientsFor(testKubeConfig(), { limiter, onRequest: (v, r) => seen.push(`${v} ${r}`) });
      nock(SERVER, { reqheaders: { 'content-type': 'application/merge-patch+json' } })
        .patch('/api/v1/namespaces/ns/persistentvolumeclaims/c1')
        .times(2)
        .reply(200, { metadata: { name: 'c1' } });
      for (let i = 0; i < 2; i++) {
        await core.patchNamespacedPersistentVolumeClaim(
          { name: 'c1', namespace: 'ns', body: { metadata: { annotations: { a: 'b' } } } },
          setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
        );
      }
      expect(seen).to.deep.equal(['patch persistentvolumeclaims', 'patch persistentvolumeclaims']);
      expect(clock.sleeps).to.deep.equal([1000]);
    });

    it('aborts a request that exceeds requestTimeoutMs (a transient error)', async () => {
      const { core } = createKubeClientsFor(testKubeConfig(), { qps: 0, requestTimeoutMs: 50 });
      nock(SERVER).get('/api/v1/namespaces/ns/secrets/slow').delay(5_000).reply(200, {});
      let caught: unknown;
      await core.readNamespacedSecret({ name: 'slow', namespace: 'ns' }).catch((e: unknown) => (caught = e));
      expect((caught as Error)?.name).to.equal('AbortError');
      expect(isTransient(caught)).to.equal(true);
    });

    it('reports each typed call\'s answer to onResponse as status code, HTTP method and host, and a call without an answer as "<error>"', async () => {
      const answers: string[] = [];
      const clients = createKubeClientsFor(testKubeConfig(), { qps: 0, onResponse: (code, method, host) => answers.push(`${code} ${method} ${host}`) });
      nock(SERVER)
        .get('/api/v1/namespaces/ns/secrets/s')
        .reply(200, { metadata: { name: 's' } })
        .put('/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/l')
        .reply(409, { kind: 'Status', code: 409, reason: 'Conflict' })
        .get('/api/v1/namespaces/ns/secrets/down')
        .replyWithError('connect ECONNREFUSED');
      await clients.core.readNamespacedSecret({ name: 's', namespace: 'ns' });
      await clients.leaseCoordination.replaceNamespacedLease({ name: 'l', namespace: 'kube-system', body: { metadata: { name: 'l' } } }).catch(() => undefined);
      const err = await clients.core.readNamespacedSecret({ name: 'down', namespace: 'ns' }).then(() => undefined, (e: unknown) => e);
      expect(err, 'the transport error still reaches the caller').to.be.instanceOf(Error);
      expect(answers).to.deep.equal(['200 GET k8s.test', '409 PUT k8s.test', '<error> GET k8s.test']);
    });

    it('leaseCoordination bypasses the shared limiter but still reports requests', async () => {
      const clock = new FakeClock();
      const limiter = new RateLimiter(1, 1, clock.now, clock.sleep);
      const seen: string[] = [];
      const clients = createKubeClientsFor(testKubeConfig(), { limiter, onRequest: (v, r) => seen.push(`${v} ${r}`) });
      nock(SERVER)
        .get('/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/l')
        .times(3)
        .reply(200, { metadata: { name: 'l' } });
      for (let i = 0; i < 3; i++) {
        await clients.leaseCoordination.readNamespacedLease({ name: 'l', namespace: 'kube-system' });
      }
      expect(clock.sleeps).to.deep.equal([]);
      expect(seen).to.have.length(3);
      expect(clients.limiter).to.equal(limiter);
    });
  });

  describe('loadKubeConfig', () => {
    let dir: string;
    const kubeconfig = (server: string) => `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "${server}"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`;
    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), 'kube-spec-'));
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    it('prefers the explicit path over $KUBECONFIG', () => {
      const a = join(dir, 'a');
      const b = join(dir, 'b');
      writeFileSync(a, kubeconfig('https://explicit:6443'));
      writeFileSync(b, kubeconfig('https://from-env:6443'));
      const kc = loadKubeConfig({ kubeconfig: a }, { KUBECONFIG: b, HOME: dir });
      expect(kc.getCurrentCluster()?.server).to.equal('https://explicit:6443');
      expect(loadKubeConfig({}, { KUBECONFIG: b, HOME: dir }).getCurrentCluster()?.server).to.equal('https://from-env:6443');
    });

    it('uses in-cluster config when KUBERNETES_SERVICE_HOST is set and inCluster is forced', () => {
      const kc = loadKubeConfig({ inCluster: true }, { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' });
      expect(kc.getCurrentCluster()?.server).to.equal('https://10.96.0.1:443');
    });

    it('throws a clear error instead of falling back to localhost:8080', () => {
      expect(() => loadKubeConfig({}, { HOME: dir })).to.throw(KubeConfigError, /no Kubernetes configuration found/);
      expect(() => loadKubeConfig({ kubeconfig: join(dir, 'nope') }, { HOME: dir })).to.throw(KubeConfigError, /does not exist/);
      expect(() => loadKubeConfig({ inCluster: true }, {})).to.throw(KubeConfigError, /KUBERNETES_SERVICE_HOST/);
    });
  });
});

describe('kube/client connection reuse (regression: client-node 1.4 opened a new connection per call)', () => {
  it('sends sequential typed calls over one keep-alive connection', async () => {
    // nock's interceptor replaces node:http's sockets while active; this test needs the real ones.
    const wasActive = nock.isActive();
    if (wasActive) nock.restore();
    const { createServer } = await import('node:http');
    let connections = 0;
    const server = createServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } }));
    });
    server.on('connection', () => connections++);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as { port: number }).port;
    try {
      const { core } = createKubeClientsFor(testKubeConfig(`http://127.0.0.1:${port}`), { qps: 0 });
      for (let i = 0; i < 5; i++) await core.readNamespace({ name: 'default' });
      expect(connections).to.equal(1);
    } finally {
      if (wasActive && !nock.isActive()) nock.activate();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  it('shares one agent per TLS setting and leaves other agents alone', async () => {
    const https = await import('node:https');
    const { keepAliveAgent } = await import('../../lib/kube/client.js');
    const a = keepAliveAgent(new https.Agent({ ca: 'CA1', rejectUnauthorized: true }));
    const b = keepAliveAgent(new https.Agent({ ca: 'CA1', rejectUnauthorized: true }));
    const c = keepAliveAgent(new https.Agent({ ca: 'CA2', rejectUnauthorized: true }));
    expect(a).to.equal(b);
    expect(a).to.not.equal(c);
    class ProxyAgent extends https.Agent {}
    const p = new ProxyAgent();
    expect(keepAliveAgent(p)).to.equal(p);
  });
});

describe('kube/client listRaw (plain-JSON paged lists for informers)', () => {
  it('reports each page\'s answer to onResponse (status, GET, host:port), and "<error>" when the server cannot be reached', async () => {
    const wasActive = nock.isActive();
    if (wasActive) nock.restore();
    const { createServer } = await import('node:http');
    const { listRaw } = await import('../../lib/kube/client.js');
    const server = createServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      if (req.url!.startsWith('/api/v1/forbidden')) {
        res.statusCode = 403;
        res.end(JSON.stringify({ kind: 'Status', code: 403, reason: 'Forbidden' }));
        return;
      }
      const first = !req.url!.includes('continue=');
      res.end(JSON.stringify({ kind: 'List', metadata: { resourceVersion: '5', ...(first ? { continue: '1' } : {}) }, items: [] }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const host = `127.0.0.1:${(server.address() as { port: number }).port}`;
    const answers: string[] = [];
    const onResponse = (code: string, method: string, h: string) => answers.push(`${code} ${method} ${h}`);
    try {
      await listRaw(testKubeConfig(`http://${host}`), '/api/v1/persistentvolumes', { onResponse });
      await listRaw(testKubeConfig(`http://${host}`), '/api/v1/forbidden', { onResponse }).catch(() => undefined);
      await listRaw(testKubeConfig('http://127.0.0.1:1'), '/api/v1/persistentvolumes', { onResponse }).catch(() => undefined);
      expect(answers).to.deep.equal([`200 GET ${host}`, `200 GET ${host}`, `403 GET ${host}`, '<error> GET 127.0.0.1:1']);
    } finally {
      if (wasActive && !nock.isActive()) nock.activate();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  it('follows continue tokens, passes selectors, transforms each item, counts each page, maps errors', async () => {
    const wasActive = nock.isActive();
    if (wasActive) nock.restore();
    const { createServer } = await import('node:http');
    const { listRaw } = await import('../../lib/kube/client.js');
    const { statusOf } = await import('../../lib/kube/errors.js');
    const seen: string[] = [];
    const server = createServer((req, res) => {
      const u = new URL(req.url!, 'http://x');
      seen.push(`${u.pathname}?${u.searchParams}`);
      res.setHeader('content-type', 'application/json');
      if (u.pathname.endsWith('/forbidden')) {
        res.statusCode = 403;
        res.end(JSON.stringify({ kind: 'Status', code: 403, reason: 'Forbidden', message: 'nope' }));
        return;
      }
      const page = u.searchParams.get('continue') ?? '0';
      const items = page === '0' ? [{ metadata: { name: 'a', managedFields: [1] } }, { metadata: { name: 'b' } }] : [{ metadata: { name: 'c' } }];
      res.end(JSON.stringify({ kind: 'List', metadata: { resourceVersion: page === '0' ? '5' : '6', ...(page === '0' ? { continue: '1' } : {}) }, items }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const kc = testKubeConfig(`http://127.0.0.1:${(server.address() as { port: number }).port}`);
    const counted: string[] = [];
    try {
      const r = await listRaw<{ metadata: { name: string; managedFields?: unknown } }>(
        kc,
        '/api/v1/persistentvolumes',
        { pageSize: 2, fieldSelector: 'metadata.name=x', onRequest: (v, res) => counted.push(`${v} ${res}`) },
        (o) => ({ metadata: { name: o.metadata.name.toUpperCase() } }),
      );
      expect(r.items.map((i) => i.metadata.name)).to.deep.equal(['A', 'B', 'C']);
      expect(r.items[0]!.metadata.managedFields).to.equal(undefined);
      expect(r.metadata.resourceVersion).to.equal('6');
      expect(seen).to.deep.equal([
        '/api/v1/persistentvolumes?limit=2&fieldSelector=metadata.name%3Dx',
        '/api/v1/persistentvolumes?limit=2&fieldSelector=metadata.name%3Dx&continue=1',
      ]);
      expect(counted).to.deep.equal(['list persistentvolumes', 'list persistentvolumes']);
      const err = await listRaw(kc, '/api/v1/forbidden').then(() => undefined, (e: unknown) => e);
      expect(statusOf(err)).to.include({ code: 403, reason: 'Forbidden' });
    } finally {
      if (wasActive && !nock.isActive()) nock.activate();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});
