// SPDX-License-Identifier: Apache-2.0
// Memory and start-up at scale: 10,000 bound claims and their PVs (written directly, pre-bound,
// marked as provisioned by us), then the provisioner starts: RSS once caches are synced, time
// until /readyz answers 200, and Datera calls at start-up (there is nothing to do: must be 0).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { startCluster } from './cluster.js';
import { freePort, startContender, type ContenderSettings, type Running } from './contenders.js';
import { KubeError, Mirror, pool, retrying, type KubeObject } from './kube.js';
import { claim, preBoundVolume, storageClass } from './objects.js';
import { procStats, type ProcStats } from './proc.js';
import { summariseCalls, type Sim } from './sim.js';
import { waitUntil } from './burst.js';

export interface ScaleOptions {
  repoRoot: string;
  workDir: string;
  sim: Sim;
  n: number;
  concurrency: number;
  contenders: ContenderSettings[];
  /** How long each contender runs after it is ready, before the final sample. */
  settleMs: number;
  log: (msg: string) => void;
}

interface ScaleContenderResult {
  kind: string;
  describe: string;
  /** Spawn to the first 200 from /readyz (ours) or to "Started provisioner controller" (peer). */
  readyMs?: number;
  /** Ours: the "caches synced" log line's own measure of the initial lists. */
  cachesSyncedMs?: number;
  cachedClaims?: number;
  cachedVolumes?: number;
  rssAtSyncedMB: number;
  rssAfterSettleMB: number;
  peakRssMB: number;
  cpuSec: number;
  dateraCalls: number;
  dateraCallsByRoute: Record<string, number>;
  kubeApi: Record<string, number>;
  error?: string;
}

export interface ScaleResult {
  n: number;
  populateSec: number;
  allBoundSec: number;
  contenders: ScaleContenderResult[];
  error?: string;
}

const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;

export async function runScale(o: ScaleOptions): Promise<ScaleResult> {
  const dir = join(o.workDir, `scale-${o.n}`);
  const ns = 'bench-scale';
  const cls = 'bench-scale';
  const provisionerName = 'bench.datera.io/scale';
  const result: ScaleResult = { n: o.n, populateSec: 0, allBoundSec: 0, contenders: [] };
  const cluster = await startCluster(dir);
  const { kube } = cluster;
  let bound = 0;
  const boundSeen = new Set<string>();
  const all = waitUntil(() => bound >= o.n, 900_000, 500);
  const claims = new Mirror(kube, `/api/v1/namespaces/${ns}/persistentvolumeclaims`, {
    onUpsert: (c) => {
      if (c.status?.phase === 'Bound' && !boundSeen.has(c.metadata.name)) {
        boundSeen.add(c.metadata.name);
        bound++;
      }
    },
  });
  try {
    await kube.req('POST', '/api/v1/namespaces', { metadata: { name: ns } });
    await kube.req('POST', '/apis/storage.k8s.io/v1/storageclasses', storageClass(cls, provisionerName));
    await claims.start();
    const t0 = Date.now();
    const names = Array.from({ length: o.n }, (_, i) => `s-${String(i).padStart(5, '0')}`);
    let done = 0;
    await pool(names, o.concurrency, async (name) => {
      let created: KubeObject;
      try {
        created = await retrying(() => kube.req<KubeObject>('POST', `/api/v1/namespaces/${ns}/persistentvolumeclaims`, claim(name, cls)));
      } catch (err) {
        if (!(err instanceof KubeError && err.status === 409)) throw err;
        created = await kube.req<KubeObject>('GET', `/api/v1/namespaces/${ns}/persistentvolumeclaims/${name}`);
      }
      try {
        await retrying(() =>
          kube.req('POST', '/api/v1/persistentvolumes', preBoundVolume({
            claim: { namespace: ns, name, uid: created.metadata.uid! },
            className: cls,
            provisioner: provisionerName,
            simUrl: o.sim.url,
            finalizer: true, // as our provisioner writes them (reclaim policy Delete)
          })),
        );
      } catch (err) {
        if (!(err instanceof KubeError && err.status === 409)) throw err;
      }
      if (++done % 2000 === 0) o.log(`  scale: ${done}/${o.n} claims and PVs written, ${bound} bound`);
    });
    result.populateSec = round((Date.now() - t0) / 1000);
    o.log(`  scale: ${o.n} claims and PVs written in ${result.populateSec} s; waiting for the binder`);
    if (!(await all.done)) throw new Error(`only ${bound}/${o.n} claims bound after 15 minutes`);
    result.allBoundSec = round((Date.now() - t0) / 1000);
    o.log(`  scale: all ${o.n} bound after ${result.allBoundSec} s`);
    await claims.stop();
    if (process.env.BENCH_DUMP_LISTS) {
      // For bench/experiments/cache-memory.ts: the lists exactly as the informers receive them.
      for (const [what, path] of [['pvs', '/api/v1/persistentvolumes'], ['pvcs', '/api/v1/persistentvolumeclaims']] as const) {
        writeFileSync(join(process.env.BENCH_DUMP_LISTS, `${what}.json`), JSON.stringify(await kube.req('GET', path)));
      }
    }

    for (const settings of o.contenders) {
      result.contenders.push(await measureStart(o, cluster, settings, provisionerName, ns, dir));
      const r = result.contenders[result.contenders.length - 1]!;
      o.log(`  scale: ${settings.kind}: ready in ${r.readyMs} ms, RSS ${r.rssAtSyncedMB} MB at sync, ${r.rssAfterSettleMB} MB after settle (peak ${r.peakRssMB}), ${r.dateraCalls} Datera calls`);
    }
  } catch (err) {
    result.error = (err as Error).stack ?? String(err);
    o.log(`  scale: ERROR ${(err as Error).message}`);
  } finally {
    await claims.stop();
    await cluster.stop();
  }
  return result;
}

async function measureStart(
  o: ScaleOptions,
  cluster: Awaited<ReturnType<typeof startCluster>>,
  settings: ContenderSettings,
  provisionerName: string,
  ns: string,
  dir: string,
): Promise<ScaleContenderResult> {
  const label = settings.kind;
  const r: ScaleContenderResult = {
    kind: label,
    describe: settings.describe,
    rssAtSyncedMB: 0,
    rssAfterSettleMB: 0,
    peakRssMB: 0,
    cpuSec: 0,
    dateraCalls: 0,
    dateraCallsByRoute: {},
    kubeApi: {},
  };
  const id = await cluster.identity(`scale-${label}`);
  await o.sim.reset();
  const since = Date.now();
  const port = await freePort();
  // Ours: poll /readyz from the moment of spawn, and sample RSS as soon as caches are synced.
  let readyAt: number | undefined;
  let stopPolling = false;
  const poller =
    settings.runner === 'ours'
      ? (async () => {
          while (!stopPolling && readyAt === undefined) {
            try {
              const res = await request(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(1000) });
              await res.body.dump();
              if (res.statusCode === 200) readyAt = Date.now();
            } catch {
              /* not listening yet */
            }
            await new Promise((res) => setTimeout(res, 25));
          }
        })()
      : Promise.resolve();
  let running: Running;
  try {
    running = await startContender({
      repoRoot: o.repoRoot,
      settings,
      kubeconfig: id.kubeconfig,
      simUrl: o.sim.url,
      provisionerName,
      namespace: ns,
      logFile: join(dir, `${label}.log`),
      httpPort: port,
    });
  } catch (err) {
    stopPolling = true;
    await poller;
    r.error = (err as Error).message;
    return r;
  }
  try {
    await measureRunning(o, r, running, settings, () => readyAt, async () => {
      stopPolling = true;
      await poller;
    });
  } catch (err) {
    r.error = (err as Error).message;
  } finally {
    stopPolling = true;
    await poller;
    await running.proc.kill('SIGTERM', 10_000);
  }
  const calls = summariseCalls(await o.sim.calls(since));
  r.dateraCalls = calls.total;
  r.dateraCallsByRoute = calls.byRoute;
  await new Promise((res) => setTimeout(res, 500));
  r.kubeApi = cluster.audit.count(id.user);
  return r;
}

async function measureRunning(
  o: ScaleOptions,
  r: ScaleContenderResult,
  running: Running,
  settings: ContenderSettings,
  readyAt: () => number | undefined,
  stopPoller: () => Promise<void>,
): Promise<void> {
  const atSynced: ProcStats = procStats(running.proc.pid);
  r.rssAtSyncedMB = round(atSynced.rssMB);
  if (settings.runner === 'ours') {
    const m = await running.proc.waitFor(/^.*"message":"caches synced".*$/);
    const line = JSON.parse(m[0]) as { ms?: number; claims?: number; volumes?: number };
    r.cachesSyncedMs = line.ms;
    r.cachedClaims = line.claims;
    r.cachedVolumes = line.volumes;
    const deadline = Date.now() + 60_000;
    while (readyAt() === undefined && Date.now() < deadline) await new Promise((res) => setTimeout(res, 20));
    await stopPoller();
    const at = readyAt();
    if (at !== undefined) r.readyMs = at - running.startedAt;
  } else {
    r.readyMs = running.readyMs;
  }
  await new Promise((res) => setTimeout(res, o.settleMs));
  const after = procStats(running.proc.pid);
  r.rssAfterSettleMB = round(after.rssMB);
  r.peakRssMB = round(after.hwmMB);
  r.cpuSec = round(after.cpuSec, 2);
}
