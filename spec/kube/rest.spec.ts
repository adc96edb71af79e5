// SPDX-License-Identifier: Apache-2.0
// KubeRest: every Kubernetes call of the process as plain JSON over keep-alive undici connections,
// against a real local HTTP server (undici does not go through nock's interceptor).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { expect } from 'chai';
import type { V1Lease, V1MicroTime } from '@kubernetes/client-node';
import { RateLimiter } from '../../lib/kube/ratelimit.js';
import { isAlreadyExists, isKubeConflict, isGone, isKubeNotFound, isTransient, statusOf } from '../../lib/kube/errors.js';
import { KubeConfigError } from '../../lib/kube/kubeconfig.js';
import { KubeApiError, KubeRest } from '../../lib/kube/rest.js';
import { describeRequest } from '../../lib/kube/request-names.js';
import { testKubeConfig, waitFor } from './helpers.js';

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

describe('kube/rest (the one plain-JSON request path)', () => {
  let server: Server;
  let url: string;
  let seen: Seen[];
  let connections: number;
  /** The next reply: status and body; default 201 with an object echo. */
  let reply: { status: number; body: string; delayMs?: number } | undefined;
  /** Replies taken in order before `reply`. */
  let queue: Array<{ status: number; body: string; delayMs?: number }>;
  /** CONNECT requests the server saw (as a forward proxy); each tunnel leads back to the server. */
  let tunnels: string[];
  /** Answers watch requests (?watch=true) when set. */
  let onWatch: ((res: ServerResponse) => void) | undefined;
  let rest: KubeRest;

  before(async () => {
    server = createServer((req, res) => {
      if (onWatch && req.url!.includes('watch=true')) {
        seen.push({ method: req.method!, url: req.url!, headers: req.headers, body: '' });
        onWatch(res);
        return;
      }
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        seen.push({ method: req.method!, url: req.url!, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
        const queued = queue.shift();
        const r = queued ?? reply ?? { status: 200, body: JSON.stringify({ kind: 'PersistentVolume', metadata: { name: 'echo' } }) };
        if (!queued) reply = undefined;
        const send = () => {
          res.statusCode = r.status;
          res.setHeader('content-type', 'application/json');
          res.end(r.body);
        };
        if (r.delayMs) setTimeout(send, r.delayMs);
        else send();
      });
    });
    server.on('connection', () => connections++);
    server.on('connect', (req: IncomingMessage, socket: import('node:net').Socket) => {
      tunnels.push(req.url!);
      const port = (server.address() as { port: number }).port;
      const upstream = connect(port, '127.0.0.1', () => {
        socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        upstream.pipe(socket);
        socket.pipe(upstream);
      });
      upstream.on('error', () => socket.destroy());
      socket.on('error', () => upstream.destroy());
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  beforeEach(() => {
    seen = [];
    connections = 0;
    reply = undefined;
    queue = [];
    tunnels = [];
    onWatch = undefined;
  });
  afterEach(async () => {
    await rest?.close();
  });

  it('sends the PV create, JSON patch, delete with preconditions and event merge patch with their content types, the token and the User-Agent', async () => {
    rest = new KubeRest(testKubeConfig(url), { userAgent: 'datera-provisioner/test' });
    await rest.createPersistentVolume({ body: { metadata: { name: 'pvc-1' } } });
    await rest.patchPersistentVolume({ name: 'pvc-1', body: [{ op: 'remove', path: '/metadata/finalizers/0' }] });
    await rest.deletePersistentVolume({ name: 'pvc-1', body: { preconditions: { uid: 'u1' } } });
    await rest.patchNamespacedEvent({ name: 'e.1', namespace: 'ns', body: { count: 2 } });
    await rest.createNamespacedEvent({ namespace: 'ns', body: { metadata: { name: 'e.2' }, involvedObject: {} } });
    expect(seen.map((s) => `${s.method} ${s.url} ${s.headers['content-type']} ${s.body}`)).to.deep.equal([
      'POST /api/v1/persistentvolumes application/json {"metadata":{"name":"pvc-1"}}',
      'PATCH /api/v1/persistentvolumes/pvc-1 application/json-patch+json [{"op":"remove","path":"/metadata/finalizers/0"}]',
      'DELETE /api/v1/persistentvolumes/pvc-1 application/json {"preconditions":{"uid":"u1"}}',
      'PATCH /api/v1/namespaces/ns/events/e.1 application/merge-patch+json {"count":2}',
      'POST /api/v1/namespaces/ns/events application/json {"metadata":{"name":"e.2"},"involvedObject":{}}',
    ]);
    for (const s of seen) {
      expect(s.headers.authorization).to.equal('Bearer test-token');
      expect(s.headers['user-agent']).to.equal('datera-provisioner/test');
      expect(s.headers.accept).to.equal('application/json');
    }
  });

  it('resolves writes to undefined (the echo is not parsed) and reads to the parsed object', async () => {
    rest = new KubeRest(testKubeConfig(url));
    expect(await rest.createPersistentVolume({ body: { metadata: { name: 'pvc-1' } } })).to.equal(undefined);
    reply = { status: 200, body: JSON.stringify({ kind: 'PersistentVolumeClaim', metadata: { name: 'c', uid: 'u' } }) };
    expect(await rest.readNamespacedPersistentVolumeClaim({ name: 'c', namespace: 'ns' })).to.deep.equal({ kind: 'PersistentVolumeClaim', metadata: { name: 'c', uid: 'u' } });
    expect(seen[1]!.url).to.equal('/api/v1/namespaces/ns/persistentvolumeclaims/c');
  });

  it('rejects a non-2xx reply with a KubeApiError that the error helpers classify by its Status', async () => {
    rest = new KubeRest(testKubeConfig(url));
    const fail = async (status: number, reason: string, call: () => Promise<unknown>) => {
      reply = { status, body: JSON.stringify({ kind: 'Status', code: status, reason, message: `${reason} here` }) };
      return call().then(() => expect.fail('resolved'), (e: unknown) => e);
    };
    const exists = await fail(409, 'AlreadyExists', () => rest.createPersistentVolume({ body: { metadata: { name: 'x' } } }));
    expect(exists).to.be.instanceOf(KubeApiError);
    expect(isAlreadyExists(exists)).to.equal(true);
    expect(isKubeConflict(exists)).to.equal(false);
    expect(statusOf(exists)).to.deep.equal({ code: 409, reason: 'AlreadyExists', message: 'AlreadyExists here' });
    expect(isKubeNotFound(await fail(404, 'NotFound', () => rest.readPersistentVolume({ name: 'x' })))).to.equal(true);
    expect(isKubeConflict(await fail(409, 'Conflict', () => rest.deletePersistentVolume({ name: 'x' })))).to.equal(true);
    expect(isTransient(await fail(503, 'ServiceUnavailable', () => rest.patchPersistentVolume({ name: 'x', body: [] })))).to.equal(true);
    reply = { status: 500, body: 'not json' };
    const plain = await rest.deletePersistentVolume({ name: 'x' }).then(() => undefined, (e: unknown) => e);
    expect(statusOf(plain)).to.deep.equal({ code: 500, message: 'HTTP 500' });
  });

  it('sends 10 sequential calls over at most 2 keep-alive connections (undici may open a second while the first finishes a response)', async () => {
    rest = new KubeRest(testKubeConfig(url));
    for (let i = 0; i < 10; i++) await rest.createPersistentVolume({ body: { metadata: { name: `pvc-${i}` } } });
    expect(seen).to.have.length(10);
    expect(connections).to.be.within(1, 2);
  });

  it('keeps the connection after a DELETE with a body (undici would close it): 10 deletes with a uid precondition, then 10 reads, over at most 2 connections', async () => {
    rest = new KubeRest(testKubeConfig(url));
    for (let i = 0; i < 10; i++) await rest.deletePersistentVolume({ name: `pv-${i}`, body: { preconditions: { uid: `u-${i}` } } });
    for (let i = 0; i < 10; i++) await rest.readPersistentVolume({ name: `pv-${i}` });
    expect(seen.filter((r) => r.method === 'DELETE').map((r) => JSON.parse(r.body))).to.have.length(10);
    expect(seen[0]!.headers['content-length']).to.equal(String(Buffer.byteLength(seen[0]!.body)));
    expect(connections).to.be.within(1, 2);
  });

  it('waits for the rate limiter and reports each request as verb and resource; withLimiter shares the connection pool', async () => {
    const acquired: string[] = [];
    const limiter = new RateLimiter(0, 1);
    const events = new RateLimiter(0, 1);
    limiter.acquire = async () => void acquired.push('pv');
    events.acquire = async () => void acquired.push('event');
    const counted: string[] = [];
    rest = new KubeRest(testKubeConfig(url), { limiter, onRequest: (v, r) => counted.push(`${v} ${r}`) });
    const eventRest = rest.withLimiter(events);
    await rest.deletePersistentVolume({ name: 'pvc-1' });
    await eventRest.createNamespacedEvent({ namespace: 'ns', body: {} as never });
    expect(acquired).to.deep.equal(['pv', 'event']);
    expect(counted).to.deep.equal(['delete persistentvolumes', 'create events']);
    await rest.deletePersistentVolume({ name: 'pvc-2' });
    await eventRest.createNamespacedEvent({ namespace: 'ns', body: {} as never });
    expect(connections, 'one pool for both views').to.be.within(1, 2);
  });

  it('reports each answer to onResponse as status code, HTTP method and host:port, and a request without an answer as "<error>"', async () => {
    const answers: string[] = [];
    const host = new URL(url).host;
    rest = new KubeRest(testKubeConfig(url), { onResponse: (code, method, h) => answers.push(`${code} ${method} ${h}`) });
    await rest.createPersistentVolume({ body: { metadata: { name: 'pvc-1' } } });
    reply = { status: 404, body: JSON.stringify({ kind: 'Status', code: 404, reason: 'NotFound' }) };
    await rest.readPersistentVolume({ name: 'gone' }).catch(() => undefined);
    expect(answers).to.deep.equal([`200 POST ${host}`, `404 GET ${host}`]);
    const closed = new KubeRest(testKubeConfig('http://127.0.0.1:1'), { onResponse: (code, method, h) => answers.push(`${code} ${method} ${h}`) });
    const err = await closed.deletePersistentVolume({ name: 'x' }).then(() => undefined, (e: unknown) => e);
    await closed.close();
    expect(err, 'the transport error still reaches the caller').to.be.instanceOf(Error);
    expect(answers.slice(2)).to.deep.equal(['<error> DELETE 127.0.0.1:1']);
  });

  it('aborts a request whose reply headers do not come within timeoutMs, with a transient error', async () => {
    // undici's timeout timers tick about every 0.5 s: the reply comes far later than that.
    rest = new KubeRest(testKubeConfig(url), { timeoutMs: 50 });
    reply = { status: 200, body: '{}', delayMs: 4000 };
    const err = await rest.createPersistentVolume({ body: {} }).then(() => undefined, (e: unknown) => e);
    expect(err).to.be.instanceOf(Error);
    expect(isTransient(err)).to.equal(true);
  });

  describe('watch (the informer\'s WatchLike)', () => {
    const collect = () => {
      const got: string[] = [];
      const ends: unknown[] = [];
      return { got, ends, cb: (type: string, obj: unknown) => got.push(`${type} ${(obj as { metadata: { name: string } }).metadata.name}`), done: (err: unknown) => ends.push(err) };
    };

    it('sends the query with watch=true, delivers each event line (also one split across chunks), skips blank and broken lines, and calls done(null) once at the end', async () => {
      onWatch = (res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write('\n{"type":"ADDED","object":{"metadata":{"name":"a"}}}\n{"type":"MODI');
        setTimeout(() => {
          res.write('FIED","object":{"metadata":{"name":"a"}}}\nnot json\n');
          res.end('{"type":"DELETED","object":{"metadata":{"name":"a"}}}\n');
        }, 20);
      };
      rest = new KubeRest(testKubeConfig(url));
      const c = collect();
      await rest.watch('/api/v1/persistentvolumes', { resourceVersion: '7', allowWatchBookmarks: true, labelSelector: undefined }, c.cb, c.done);
      await waitFor(() => c.ends.length > 0, 'watch end');
      expect(c.got).to.deep.equal(['ADDED a', 'MODIFIED a', 'DELETED a']);
      expect(c.ends).to.deep.equal([null]);
      expect(seen[0]!.url).to.equal('/api/v1/persistentvolumes?watch=true&resourceVersion=7&allowWatchBookmarks=true');
      expect(seen[0]!.headers.authorization).to.equal('Bearer test-token');
    });

    it('reports the status line of each watch to onResponse (a GET), the refused one too', async () => {
      const answers: string[] = [];
      let status = 200;
      onWatch = (res) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(status === 200 ? '' : JSON.stringify({ kind: 'Status', code: status, reason: 'Expired' }));
      };
      rest = new KubeRest(testKubeConfig(url), { onResponse: (code, method, h) => answers.push(`${code} ${method} ${h}`) });
      const c = collect();
      await rest.watch('/api/v1/persistentvolumes', {}, c.cb, c.done);
      status = 410;
      await rest.watch('/api/v1/persistentvolumes', {}, c.cb, c.done);
      await waitFor(() => c.ends.length === 2, 'both watches ended');
      expect(answers).to.deep.equal([`200 GET ${new URL(url).host}`, `410 GET ${new URL(url).host}`]);
    });

    it('a non-200 reply calls done with an error carrying the status (410 Gone is recognised)', async () => {
      onWatch = (res) => {
        res.writeHead(410, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ kind: 'Status', code: 410, reason: 'Expired', message: 'too old resource version' }));
      };
      rest = new KubeRest(testKubeConfig(url));
      const c = collect();
      await rest.watch('/api/v1/persistentvolumes', {}, c.cb, c.done);
      expect(c.ends).to.have.length(1);
      expect(isGone(c.ends[0])).to.equal(true);
      expect(statusOf(c.ends[0])).to.deep.equal({ code: 410, reason: 'Expired', message: 'too old resource version' });
    });

    it('aborting the returned controller ends an open stream with done(null); a handler that throws ends the watch with its error', async () => {
      onWatch = (res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write('{"type":"ADDED","object":{"metadata":{"name":"a"}}}\n');
      };
      rest = new KubeRest(testKubeConfig(url));
      const c = collect();
      const ctrl = await rest.watch('/api/v1/persistentvolumes', {}, c.cb, c.done);
      await waitFor(() => c.got.length === 1, 'first event');
      ctrl.abort();
      await waitFor(() => c.ends.length > 0, 'watch end');
      expect(c.ends).to.deep.equal([null]);

      const boom = new Error('handler bug');
      const ends: unknown[] = [];
      await rest.watch('/api/v1/persistentvolumes', {}, () => { throw boom; }, (e) => ends.push(e));
      await waitFor(() => ends.length > 0, 'watch end after a throwing handler');
      expect(ends).to.deep.equal([boom]);
    });
  });

  it('sends requests for the cluster through an http proxy-url (a CONNECT tunnel) and refuses socks or malformed proxies without echoing them', async () => {
    // The local server doubles as the forward proxy: it records the CONNECT target and tunnels
    // every connection back to itself (kube.invalid does not resolve: only the proxy can reach it).
    const kc = testKubeConfig('http://kube.invalid:6443');
    kc.clusters[0] = { ...kc.clusters[0]!, proxyUrl: url };
    rest = new KubeRest(kc);
    reply = { status: 200, body: JSON.stringify({ metadata: { name: 'kube-system', uid: 'u-1' } }) };
    const ns = await rest.readNamespace({ name: 'kube-system' });
    expect(ns.metadata?.uid).to.equal('u-1');
    expect(tunnels).to.deep.equal(['kube.invalid:6443']);
    expect(seen.map((r) => `${r.method} ${r.url}`)).to.deep.equal(['GET /api/v1/namespaces/kube-system']);
    for (const proxyUrl of ['socks5://user:s3cret@proxy:1080', 'not a url :s3cret']) {
      const bad = testKubeConfig(url);
      bad.clusters[0] = { ...bad.clusters[0]!, proxyUrl };
      let err: unknown;
      try {
        new KubeRest(bad);
      } catch (e) {
        err = e;
      }
      expect(err).to.be.instanceOf(KubeConfigError);
      expect((err as Error).message).to.match(/proxy-url must be an http:\/\/ or https:\/\/ URL/);
      expect((err as Error).message).to.not.include('s3cret');
    }
  });

  it('refuses a cluster server that is not https (or http with insecure-skip-tls-verify)', () => {
    const kc = testKubeConfig('ftp://kube:21');
    expect(() => new KubeRest(kc)).to.throw(KubeConfigError, /must be https/);
  });

  it('reads a Secret and a Namespace, and reads, creates and replaces a Lease, with their paths, methods and bodies, returning the parsed objects', async () => {
    rest = new KubeRest(testKubeConfig(url));
    const lease: V1Lease = { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: 'l', namespace: 'ns', resourceVersion: '7' }, spec: { holderIdentity: 'me', renewTime: '2026-12-01T21:00:00.123456Z' as unknown as V1MicroTime } };
    const replies = [
      { kind: 'Secret', data: { password: 'cGFzcw==' } },
      { kind: 'Namespace', metadata: { uid: 'u' } },
      lease,
      { ...lease, metadata: { ...lease.metadata, resourceVersion: '8' } },
      { ...lease, metadata: { ...lease.metadata, resourceVersion: '9' } },
    ];
    const got: unknown[] = [];
    reply = { status: 200, body: JSON.stringify(replies[0]) };
    got.push(await rest.readNamespacedSecret({ name: 's', namespace: 'ns' }));
    reply = { status: 200, body: JSON.stringify(replies[1]) };
    got.push(await rest.readNamespace({ name: 'kube-system' }));
    reply = { status: 200, body: JSON.stringify(replies[2]) };
    got.push(await rest.readNamespacedLease({ name: 'l', namespace: 'ns' }));
    reply = { status: 201, body: JSON.stringify(replies[3]) };
    got.push(await rest.createNamespacedLease({ namespace: 'ns', body: lease }));
    reply = { status: 200, body: JSON.stringify(replies[4]) };
    got.push(await rest.replaceNamespacedLease({ name: 'l', namespace: 'ns', body: lease }));
    expect(got).to.deep.equal(replies);
    expect(seen.map((r) => `${r.method} ${r.url}`)).to.deep.equal([
      'GET /api/v1/namespaces/ns/secrets/s',
      'GET /api/v1/namespaces/kube-system',
      'GET /apis/coordination.k8s.io/v1/namespaces/ns/leases/l',
      'POST /apis/coordination.k8s.io/v1/namespaces/ns/leases',
      'PUT /apis/coordination.k8s.io/v1/namespaces/ns/leases/l',
    ]);
    expect(JSON.parse(seen[4]!.body)).to.deep.equal(lease);
    expect(seen[4]!.headers['content-type']).to.equal('application/json');
  });

  it('with({ limiter: undefined }) skips the shared limiter (the Lease) but still reports the request, on the same connections', async () => {
    const acquired: string[] = [];
    const limiter = new RateLimiter(0, 1);
    limiter.acquire = async () => void acquired.push('shared');
    const counted: string[] = [];
    rest = new KubeRest(testKubeConfig(url), { limiter, onRequest: (v, r) => counted.push(`${v} ${r}`) });
    const leases = rest.with({ limiter: undefined, timeoutMs: 1000 });
    reply = { status: 200, body: '{}' };
    await leases.readNamespacedLease({ name: 'l', namespace: 'ns' });
    reply = { status: 200, body: '{}' };
    await rest.readNamespace({ name: 'ns' });
    expect(acquired).to.deep.equal(['shared']);
    expect(counted).to.deep.equal(['get leases', 'get namespaces']);
    expect(connections).to.be.within(1, 2);
  });

  it('list follows continue tokens, passes selectors, transforms each item, counts and limits each page, and maps errors', async () => {
    const acquired: string[] = [];
    const limiter = new RateLimiter(0, 1);
    limiter.acquire = async () => void acquired.push('page');
    const counted: string[] = [];
    rest = new KubeRest(testKubeConfig(url), { limiter, onRequest: (v, r) => counted.push(`${v} ${r}`) });
    queue.push(
      { status: 200, body: JSON.stringify({ kind: 'List', metadata: { resourceVersion: '5', continue: '1' }, items: [{ metadata: { name: 'a', managedFields: [1] } }, { metadata: { name: 'b' } }] }) },
      { status: 200, body: JSON.stringify({ kind: 'List', metadata: { resourceVersion: '6' }, items: [{ metadata: { name: 'c' } }] }) },
    );
    const r = await rest.list<{ metadata: { name: string; managedFields?: unknown } }>(
      '/api/v1/persistentvolumes',
      { pageSize: 2, fieldSelector: 'metadata.name=x' },
      (o) => ({ metadata: { name: o.metadata.name.toUpperCase() } }),
    );
    expect(r.items.map((i) => i.metadata.name)).to.deep.equal(['A', 'B', 'C']);
    expect(r.items[0]!.metadata.managedFields).to.equal(undefined);
    expect(r.metadata.resourceVersion).to.equal('6');
    expect(seen.map((x) => x.url)).to.deep.equal([
      '/api/v1/persistentvolumes?limit=2&fieldSelector=metadata.name%3Dx',
      '/api/v1/persistentvolumes?limit=2&fieldSelector=metadata.name%3Dx&continue=1',
    ]);
    expect(counted).to.deep.equal(['list persistentvolumes', 'list persistentvolumes']);
    expect(acquired).to.deep.equal(['page', 'page']);
    reply = { status: 403, body: JSON.stringify({ kind: 'Status', code: 403, reason: 'Forbidden', message: 'nope' }) };
    const err = await rest.list('/api/v1/secrets').then(() => undefined, (e: unknown) => e);
    expect(statusOf(err)).to.include({ code: 403, reason: 'Forbidden' });
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
    for (const [method, path, verb, resource] of cases) {
      it(`${method} ${path} -> ${verb} ${resource}`, () => {
        expect(describeRequest(method, `https://k8s.test${path}`)).to.deep.equal({ verb, resource });
      });
    }
  });
});
