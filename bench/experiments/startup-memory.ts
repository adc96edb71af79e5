// SPDX-License-Identifier: Apache-2.0
// Start-up memory of ours at N bound claims and PVs, without a control plane: a small fake API
// server answers the four paged lists (objects shaped like kube-apiserver 1.34's, managedFields
// included), the kube-system namespace read, and holds the watches open. Ours (lib/ compiled by
// tsc, as `make bench` runs it) starts against it; RSS is read from /proc when it logs "caches
// synced" and 5 s later. A quick, repeatable proxy for `bench/run.ts --only scale` (which needs
// minutes of a real plane to populate); the bench's numbers are the ones that count.
//
//   npx tsx bench/experiments/startup-memory.ts [--n 10000] [--node-args '--max-semi-space-size=1']
//       [--heap-snapshot DIR] [--repeat 1] [--src DIR]
// --src: take lib/ (and tsconfig.json, package.json) from DIR instead of this checkout, e.g. an
// older commit: `git archive <commit> lib tsconfig.json package.json | tar -x -C DIR` plus a
// node_modules symlink in DIR.
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer, type ServerResponse } from 'node:http';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { takeSnapshot } from '../lib/contenders.js';
import { NS, PROVISIONER, pv, pvc } from './scale-objects.js';

const repoRoot = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? dflt) : dflt;
};
const N = Number(arg('n', '10000'));
const nodeArgs = arg('node-args', '').split(' ').filter(Boolean);
const snapshotDir = arg('heap-snapshot', '');
const repeat = Number(arg('repeat', '1'));
const srcRoot = resolve(arg('src', repoRoot));

const lists: Record<string, () => unknown[]> = {
  '/api/v1/persistentvolumeclaims': () => Array.from({ length: N }, (_, i) => pvc(i)),
  '/api/v1/persistentvolumes': () => Array.from({ length: N }, (_, i) => pv(i)),
  '/apis/storage.k8s.io/v1/storageclasses': () => [{ metadata: { name: 'bench-scale', uid: 'sc-1', resourceVersion: '5' }, provisioner: PROVISIONER, reclaimPolicy: 'Delete', volumeBindingMode: 'Immediate' }],
  [`/api/v1/namespaces/${NS}/configmaps`]: () => [],
};
const cache = new Map<string, unknown[]>();
const requests: string[] = [];

const json = (res: ServerResponse, status: number, body: unknown) => {
  res.statusCode = status;
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify(body));
};
const api = createServer((req, res) => {
  const u = new URL(req.url!, 'http://x');
  requests.push(`${req.method} ${u.pathname}${u.searchParams.get('watch') ? ' watch' : ''}`);
  if (u.searchParams.get('watch') === 'true') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.write('\n');
    return; // held open until the process ends
  }
  if (u.pathname === '/api/v1/namespaces/kube-system') return json(res, 200, { kind: 'Namespace', metadata: { name: 'kube-system', uid: 'ks-uid' } });
  const make = lists[u.pathname];
  if (req.method !== 'GET' || !make) return json(res, 404, { kind: 'Status', code: 404, reason: 'NotFound', message: `${u.pathname} not found` });
  let items = cache.get(u.pathname);
  if (!items) cache.set(u.pathname, (items = make()));
  const limit = Number(u.searchParams.get('limit') ?? items.length) || items.length;
  const from = Number(u.searchParams.get('continue') ?? '0');
  const page = items.slice(from, from + limit);
  const next = from + limit < items.length ? String(from + limit) : undefined;
  json(res, 200, { kind: 'List', apiVersion: 'v1', metadata: { resourceVersion: '300000', ...(next ? { continue: next } : {}) }, items: page });
});
let dateraCalls = 0;
const datera = createServer((_req, res) => {
  dateraCalls++;
  res.statusCode = 503;
  res.end();
});

const listen = (s: ReturnType<typeof createServer>) => new Promise<number>((r) => s.listen(0, '127.0.0.1', () => r((s.address() as { port: number }).port)));
const rssOf = (pid: number) => {
  const st = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(st)?.[1] ?? 0);
  return { rssMB: Math.round(kb('VmRSS') / 102.4) / 10, hwmMB: Math.round(kb('VmHWM') / 102.4) / 10 };
};

async function once(entry: string, apiPort: number, dateraPort: number, dir: string) {
  const kubeconfig = join(dir, 'kubeconfig');
  writeFileSync(kubeconfig, `apiVersion: v1
kind: Config
clusters: [{ name: c, cluster: { server: "http://127.0.0.1:${apiPort}", insecure-skip-tls-verify: true } }]
users: [{ name: u, user: { token: t } }]
contexts: [{ name: c, context: { cluster: c, user: u } }]
current-context: c
`);
  requests.length = 0;
  const args = [...nodeArgs, ...(snapshotDir ? ['--heapsnapshot-signal=SIGUSR2'] : []), entry, '--provisioner-name', PROVISIONER, '--namespace', NS, '--kubeconfig', kubeconfig, '--http-address', '127.0.0.1', '--http-port', '0', '--leader-elect=false', '--credentials-dir', '/nonexistent'];
  const started = performance.now();
  const child = spawn(process.execPath, args, { cwd: snapshotDir || dir, env: { ...process.env, DAT_MGMT: `http://127.0.0.1:${dateraPort}`, DAT_USER: 'admin', DAT_PASS: 'secret_pw1', LOG_LEVEL: 'info', NODE_OPTIONS: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const synced = new Promise<{ ms: number; line: string }>((resolveSynced, reject) => {
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      const line = out.split('\n').find((l) => l.includes('"caches synced"'));
      if (line) resolveSynced({ ms: performance.now() - started, line });
    });
    child.on('exit', (code) => reject(new Error(`ours exited (${code}) before its caches synced:\n${out.slice(-2000)}`)));
  });
  const s = await synced;
  const atSync = rssOf(child.pid!);
  await new Promise((r) => setTimeout(r, 5000));
  const after = rssOf(child.pid!);
  let snapshot: string | undefined;
  if (snapshotDir) {
    const before = new Set(readdirSync(snapshotDir));
    child.kill('SIGUSR2');
    for (let i = 0; i < 600 && !snapshot; i++) {
      await new Promise((r) => setTimeout(r, 500));
      const f = readdirSync(snapshotDir).find((n) => !before.has(n) && n.endsWith('.heapsnapshot'));
      if (f) {
        const p = join(snapshotDir, f);
        const size1 = readFileSync(p).length;
        await new Promise((r) => setTimeout(r, 1000));
        if (readFileSync(p).length === size1) snapshot = p;
      }
    }
  }
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  return {
    syncedMs: Math.round(s.ms),
    rssAtSyncMB: atSync.rssMB,
    rssAfter5sMB: after.rssMB,
    peakMB: after.hwmMB,
    dateraCalls,
    kubeRequests: [...new Set(requests)].length,
    ...(snapshot ? { snapshot } : {}),
  };
}

const dir = join(repoRoot, 'bench/results/tmp/startup-memory');
mkdirSync(dir, { recursive: true });
if (snapshotDir) mkdirSync(snapshotDir, { recursive: true });
const snap = takeSnapshot(srcRoot, join(dir, 'snapshot'));
const [apiPort, dateraPort] = [await listen(api), await listen(datera)];
const runs = [];
for (let r = 0; r < repeat; r++) runs.push(await once(snap.distEntry, apiPort, dateraPort, dir));
process.stdout.write(JSON.stringify({ n: N, nodeArgs, libHash: snap.libHash, runs }, null, 2) + '\n');
api.closeAllConnections();
api.close();
datera.close();
