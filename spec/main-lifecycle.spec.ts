// SPDX-License-Identifier: Apache-2.0
// run() against a scripted Kubernetes API on loopback: health endpoints during a slow initial
// list, and a leader that loses its lease while draining after SIGTERM.
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { loadConfig } from '../lib/config.js';
import { run, type Running } from '../lib/main.js';
import { createLogger, nullLogger } from '../lib/observability/logger.js';
const testLogger = () => (process.env.TEST_LOG ? createLogger({ level: 'debug' }) : nullLogger());
import { DateraSimulator } from '../lib/sim/server.js';
import { newClaim, newStorageClass } from './support/builders.js';

const NS = 'datera-system';
const LEASE = '/apis/coordination.k8s.io/v1/namespaces/datera-system/leases';

/**
 * Answers list calls with fixed items (held while `holdLists` is set), keeps watches open without
 * events, plays one Lease, and records every write.
 */
class FakeKube {
  server!: Server;
  url = '';
  holdLists = false;
  readonly items: Record<string, unknown[]> = {};
  readonly writes: string[] = [];
  /** The bodies of the writes, in the same order. */
  readonly bodies: unknown[] = [];
  lease: Record<string, unknown> | undefined;
  leaseRv = 1;
  /** When set, every Lease request fails with 500 (the API server is unreachable for us). */
  leaseBroken = false;
  #held: Array<() => void> = [];
  #open = new Set<ServerResponse>();

  async start(): Promise<void> {
    this.server = createServer((req, res) => void this.#handle(req, res));
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    this.url = `http://127.0.0.1:${(this.server.address() as { port: number }).port}`;
  }
  releaseLists(): void {
    this.holdLists = false;
    for (const r of this.#held.splice(0)) r();
  }
  async stop(): Promise<void> {
    this.releaseLists();
    for (const r of this.#open) r.end();
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const u = new URL(req.url ?? '/', 'http://x');
    let body = '';
    for await (const c of req) body += String(c);
    const json = (status: number, obj: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(obj));
    };
    if (u.pathname.startsWith(LEASE)) {
      if (this.leaseBroken) return json(500, { kind: 'Status', apiVersion: 'v1', status: 'Failure', code: 500, reason: 'InternalError', message: 'etcd unavailable' });
      if (req.method === 'GET') {
        if (!this.lease) return json(404, { kind: 'Status', apiVersion: 'v1', status: 'Failure', code: 404, reason: 'NotFound', message: 'not found' });
        return json(200, this.lease);
      }
      const obj = JSON.parse(body) as { metadata: Record<string, unknown> };
      obj.metadata = { ...obj.metadata, resourceVersion: String(++this.leaseRv) };
      this.lease = obj;
      return json(req.method === 'POST' ? 201 : 200, obj);
    }
    if (req.method !== 'GET') {
      this.writes.push(`${req.method} ${u.pathname}`);
      this.bodies.push(body ? JSON.parse(body) : undefined);
      return json(201, body ? JSON.parse(body) : {});
    }
    // This cluster's identity, read once at start-up (resolveClusterId).
    if (u.pathname === '/api/v1/namespaces/kube-system') {
      return json(200, { kind: 'Namespace', apiVersion: 'v1', metadata: { name: 'kube-system', uid: '0f7c3a52-2d6e-4b8e-9f1a-6c5d4e3b2a10' } });
    }
    if (u.searchParams.get('watch') === 'true' || u.searchParams.get('watch') === '1') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.flushHeaders();
      this.#open.add(res);
      res.on('close', () => this.#open.delete(res));
      return;
    }
    if (this.holdLists) await new Promise<void>((r) => this.#held.push(r));
    return json(200, { kind: 'List', apiVersion: 'v1', metadata: { resourceVersion: '1' }, items: this.items[u.pathname] ?? [] });
  }
}

async function freePort(): Promise<number> {
  const s = createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

async function probe(url: string): Promise<{ status: number; text: string }> {
  const r = await fetch(url);
  return { status: r.status, text: await r.text() };
}

describe('main: lifecycle against a scripted API server', function () {
  this.timeout(30_000);
  let kube: FakeKube;
  let sim: DateraSimulator;
  let simUrl: string;
  let kubeconfig: string;
  let running: Running | undefined;

  beforeEach(async () => {
    kube = new FakeKube();
    await kube.start();
    sim = new DateraSimulator({ users: [{ name: 'admin', password: 'secret_pw1' }] });
    simUrl = await sim.start();
    const dir = mkdtempSync(join(tmpdir(), 'main-lifecycle-'));
    kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(
      kubeconfig,
      `apiVersion: v1\nkind: Config\nclusters:\n- name: f\n  cluster: {server: "${kube.url}", insecure-skip-tls-verify: true}\nusers:\n- name: u\n  user: {token: "t"}\ncontexts:\n- name: f\n  context: {cluster: f, user: u}\ncurrent-context: f\n`,
    );
    running = undefined;
  });
  afterEach(async () => {
    sim.setFaults({});
    await running?.stop();
    await kube.stop();
    await sim.stop();
  });

  const config = (port: number, extra: string[] = []) =>
    loadConfig({
      argv: [
        '--kubeconfig', kubeconfig, '--namespace', NS, '--identity', 'replica-a',
        '--http-address', '127.0.0.1', '--http-port', String(port), '--credentials-dir', '/nonexistent',
        ...extra,
      ],
      env: { DAT_MGMT: simUrl, DAT_USER: 'admin', DAT_PASS: 'secret_pw1' },
    });

  it('serves /healthz (200) and /readyz (503, not synced) while the initial list is slow, and /readyz 200 once synced', async () => {
    kube.holdLists = true;
    const port = await freePort();
    const started = run(config(port, ['--leader-elect=false']), testLogger());
    const base = `http://127.0.0.1:${port}`;
    try {
      let health: { status: number; text: string } | undefined;
      for (let i = 0; i < 100 && !health; i++) {
        health = await probe(`${base}/healthz`).catch(() => undefined);
        if (!health) await new Promise((r) => setTimeout(r, 50));
      }
      expect(health, '/healthz answered before the caches synced').to.deep.equal({ status: 200, text: 'ok: running\n' });
      expect(await probe(`${base}/readyz`)).to.deep.equal({ status: 503, text: 'not ok: 4 cache(s) not synced\n' });
      expect((await probe(`${base}/healthz/leader-election`)).status).to.equal(200);
    } finally {
      kube.releaseLists();
      running = await started; // stopped in afterEach, pass or fail
    }
    expect(await probe(`${base}/readyz`)).to.deep.equal({ status: 200, text: 'ok: caches synced\n' });
  });

  it('provisions a claim: its events name the source component <provisioner>_<identity>; /metrics counts the work queue and every API answer by code, method and host', async () => {
    kube.items['/api/v1/persistentvolumeclaims'] = [newClaim('c1', { className: 'gold' })];
    kube.items['/apis/storage.k8s.io/v1/storageclasses'] = [newStorageClass('gold')];
    running = await run(config(await freePort(), ['--leader-elect=false']), testLogger());
    const eventAt = () => kube.writes.findIndex((w) => w.startsWith('POST') && w.endsWith('/events'));
    for (let i = 0; i < 100 && (eventAt() < 0 || !kube.writes.includes('POST /api/v1/persistentvolumes')); i++) await new Promise((r) => setTimeout(r, 50));
    const event = kube.bodies[eventAt()] as { source?: unknown; reportingComponent?: string; reportingInstance?: string } | undefined;
    expect(event?.source).to.deep.equal({ component: 'datera.io/provisioner-datera_replica-a' });
    expect(event).to.include({ reportingComponent: 'datera.io/provisioner-datera', reportingInstance: 'replica-a' });
    await running.controller.queue.idle();
    const text = (await probe(`${running.httpUrl}/metrics`)).text;
    const value = (series: string) => Number(text.split('\n').find((l) => l.startsWith(`${series} `))?.split(' ')[1]);
    const host = new URL(kube.url).host;
    expect(value(`rest_client_requests_total{code="201",method="POST",host="${host}"}`), 'PV and event creates').to.be.at.least(2);
    expect(value(`rest_client_requests_total{code="200",method="GET",host="${host}"}`), 'lists, watches and reads').to.be.at.least(4);
    expect(value('workqueue_adds_total{name="provisioner"}')).to.be.at.least(1);
    expect(value('workqueue_depth{name="provisioner"}'), 'read at scrape time after the queue drained').to.equal(0);
    expect(value('workqueue_work_duration_seconds_count{name="provisioner"}')).to.be.at.least(1);
    expect(text).to.match(/^workqueue_longest_running_processor_seconds\{name="provisioner"\} 0$/m);
  });

  it('a leader that loses its lease while draining after SIGTERM exits at once, before its in-flight Datera call ends', async () => {
    kube.items['/api/v1/persistentvolumeclaims'] = [newClaim('c1', { className: 'gold' })];
    kube.items['/apis/storage.k8s.io/v1/storageclasses'] = [newStorageClass('gold')];
    const exits: number[] = [];
    // Every Datera call takes 3 s: the claim's provisioning is in flight when the drain starts.
    sim.setFaults({ latencyMs: 3000 });
    running = await run(
      config(await freePort(), ['--leader-elect=true', '--leader-elect-lease-duration', '1500ms', '--leader-elect-renew-deadline', '1s', '--leader-elect-retry-period', '200ms']),
      testLogger(),
      { exit: (code) => exits.push(code) },
    );
    const r = running;
    for (let i = 0; i < 100 && !r.isLeader(); i++) await new Promise((res) => setTimeout(res, 50));
    expect(r.isLeader(), 'became leader').to.equal(true);
    await new Promise((res) => setTimeout(res, 200)); // the worker is now waiting on Datera

    let drained = false;
    const draining = r.stop().then(() => (drained = true));
    kube.leaseBroken = true; // renewals fail from now on: after the 1 s renew deadline the lease is lost
    for (let i = 0; i < 100 && exits.length === 0 && !drained; i++) await new Promise((res) => setTimeout(res, 50));
    expect(exits, 'exit was requested while the drain was still waiting for the Datera call').to.deep.equal([1]);
    expect(drained).to.equal(false);
    expect(kube.writes.filter((w) => w.includes('persistentvolumes')), 'no PV written before the exit').to.deep.equal([]);
    kube.leaseBroken = false;
    await draining;
    running = undefined;
  });
});
