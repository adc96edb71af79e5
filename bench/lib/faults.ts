// SPDX-License-Identifier: Apache-2.0
// Fault runs: a 500-claim burst while (a) the provisioner is SIGKILLed at random points and
// restarted, 10 times; (b) the simulator answers 20 % of calls with 503 and sessions expire every
// 10 s; (c) kube-apiserver restarts mid-burst. Each ends with the safety checks (leaked and
// duplicated app instances, duplicated PVs, claims left unbound), then deletes every claim and
// checks that nothing is left behind.
import { randomBytes, randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startCluster } from './cluster.js';
import { startContender, type ContenderSettings, type Running } from './contenders.js';
import { KubeError, Mirror, pool, retrying, type KubeObject } from './kube.js';
import { claim, storageClass } from './objects.js';
import { summariseCalls, type Sim } from './sim.js';
import { waitUntil } from './burst.js';

export type FaultKind = 'kill' | 'sim-503-session' | 'apiserver-restart';

export interface FaultOptions {
  repoRoot: string;
  workDir: string;
  fault: FaultKind;
  settings: ContenderSettings;
  /** For 'sim-503-session' a simulator started with a 10 s session lifetime. */
  sim: Sim;
  n: number;
  latencyMs: number;
  concurrency: number;
  killRounds: number;
  boundTimeoutMs: number;
  log: (msg: string) => void;
}

interface SafetyCheck {
  claims: number;
  bound: number;
  unbound: number;
  appInstances: number;
  /** App instances that belong to no existing claim (name is not pvc-<uid of a claim>). */
  leaked: number;
  /** Claims with more than one app instance (by ownership metadata) or more than one PV. */
  duplicates: number;
  duplicateAppInstances: number;
  duplicatePVs: number;
  /** App instances never tagged with ownership metadata (a crash between create and tag). */
  untagged: number;
  pvs: number;
}

export interface FaultResult {
  fault: FaultKind;
  kind: string;
  describe: string;
  n: number;
  allBoundSec?: number;
  check?: SafetyCheck;
  afterDelete?: { complete: boolean; sec: number; appInstancesLeft: number; pvsLeft: number };
  /** 'kill': how long each process had been serving, and how far the burst was, at each kill. */
  kills?: Array<{ uptimeMs: number; bound: number; appInstances: number }>;
  /** 'apiserver-restart': progress when the restart began and how long it took. */
  restart?: { bound: number; appInstances: number; tookSec: number };
  dateraCalls?: ReturnType<typeof summariseCalls>;
  error?: string;
}

const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

export async function runFault(o: FaultOptions): Promise<FaultResult> {
  const tag = randomBytes(3).toString('hex');
  const label = `${o.fault}-${o.settings.kind}`;
  const dir = join(o.workDir, `fault-${label}-${tag}`);
  const ns = `fault-${tag}`;
  const cls = `fault-${tag}`;
  const provisionerName = `bench.datera.io/fault-${o.settings.kind}-${tag}`;
  const result: FaultResult = { fault: o.fault, kind: o.settings.kind, describe: o.settings.describe, n: o.n };
  const cluster = await startCluster(dir);
  const { kube, plane } = cluster;
  let running: Running | undefined;
  const boundAt = new Map<string, number>();
  const claims = new Mirror(kube, `/api/v1/namespaces/${ns}/persistentvolumeclaims`, {
    onUpsert: (c) => {
      if (c.status?.phase === 'Bound' && !boundAt.has(c.metadata.name)) boundAt.set(c.metadata.name, Date.now());
    },
  });
  const volumes = new Mirror(kube, '/api/v1/persistentvolumes');
  try {
    await kube.req('POST', '/api/v1/namespaces', { metadata: { name: ns } });
    await kube.req('POST', '/apis/storage.k8s.io/v1/storageclasses', storageClass(cls, provisionerName));
    await o.sim.reset();
    await o.sim.setFaults({ latencyMs: o.latencyMs });
    const id = await cluster.identity(o.settings.kind);
    let restarts = 0;
    const start = () =>
      startContender({
        repoRoot: o.repoRoot,
        settings: o.settings,
        kubeconfig: id.kubeconfig,
        simUrl: o.sim.url,
        provisionerName,
        namespace: ns,
        logFile: join(dir, `${o.settings.kind}-${restarts++}.log`),
      });
    running = await start();
    await Promise.all([claims.start(), volumes.start()]);
    if (o.fault === 'sim-503-session') await o.sim.setFaults({ latencyMs: o.latencyMs, rate503: 0.2 });

    const names = Array.from({ length: o.n }, (_, i) => `f-${String(i).padStart(4, '0')}`);
    const t0 = Date.now();
    o.log(`  fault ${label}: creating ${o.n} claims`);
    const creating = pool(names, o.concurrency, async (name) => {
      try {
        await retrying(() => kube.req('POST', `/api/v1/namespaces/${ns}/persistentvolumeclaims`, claim(name, cls)), 300_000);
      } catch (err) {
        if (!(err instanceof KubeError && err.status === 409)) throw err; // 409: an earlier attempt got through
      }
    });

    if (o.fault === 'kill') {
      // Kill points spread over the burst: each kill waits until the simulator holds a random,
      // increasing share (2-92 %) of the N app instances, plus 0-300 ms, so that every kill lands
      // mid-burst, at varied phases (between Datera create and tag, and between Datera and the PV).
      result.kills = [];
      const marks = Array.from({ length: o.killRounds }, () => Math.floor(o.n * (0.02 + Math.random() * 0.9))).sort((a, b) => a - b);
      for (const mark of marks) {
        await waitUntil(async () => (await o.sim.count()) >= mark, 60_000, 50).done;
        await new Promise((r) => setTimeout(r, randomInt(0, 300)));
        const uptimeMs = Date.now() - running.startedAt - running.readyMs;
        result.kills.push({ uptimeMs, bound: boundAt.size, appInstances: await o.sim.count() });
        await running.proc.kill('SIGKILL');
        running = await start();
      }
      o.log(`  fault ${label}: ${o.killRounds} kills at ${result.kills.map((k) => `${k.appInstances}`).join(', ')} of ${o.n} app instances (${result.kills.map((k) => k.bound).join(', ')} bound)`);
    } else if (o.fault === 'apiserver-restart') {
      await waitUntil(() => boundAt.size >= o.n / 4, 60_000, 50).done;
      const before = { bound: boundAt.size, appInstances: await o.sim.count() };
      const tr = Date.now();
      await restartApiserver(plane, kube);
      result.restart = { ...before, tookSec: round((Date.now() - tr) / 1000) };
      o.log(`  fault ${label}: kube-apiserver restarted at ${before.bound}/${o.n} bound (took ${result.restart.tookSec} s)`);
    }
    await creating;
    const ok = await waitUntil(() => boundAt.size >= o.n, o.boundTimeoutMs).done;
    if (ok) result.allBoundSec = round((Math.max(...boundAt.values()) - t0) / 1000);
    // Let in-flight work settle so that a late duplicate would show.
    await new Promise((r) => setTimeout(r, 3000));
    result.check = await safetyCheck(kube, o.sim, ns, names.length, o.concurrency);
    o.log(`  fault ${label}: ${result.check.bound}/${o.n} bound${ok ? ` in ${result.allBoundSec} s` : ' (timed out)'}; leaked ${result.check.leaked}, duplicates ${result.check.duplicates}, unbound ${result.check.unbound}`);

    const tDel = Date.now();
    await pool(names, o.concurrency, async (name) => {
      try {
        await retrying(() => kube.req('DELETE', `/api/v1/namespaces/${ns}/persistentvolumeclaims/${name}`), 300_000);
      } catch (err) {
        if (!(err instanceof KubeError && err.status === 404)) throw err;
      }
    });
    let aiLeft = -1;
    const gone = await waitUntil(async () => {
      aiLeft = await o.sim.count();
      return aiLeft === 0 && volumes.objects.size === 0;
    }, o.boundTimeoutMs).done;
    result.afterDelete = { complete: gone, sec: round((Date.now() - tDel) / 1000), appInstancesLeft: aiLeft, pvsLeft: volumes.objects.size };
    o.log(`  fault ${label}: after delete: ${aiLeft} app instances, ${volumes.objects.size} PVs left (${result.afterDelete.sec} s)`);
    result.dateraCalls = summariseCalls(await o.sim.calls(t0));
  } catch (err) {
    result.error = (err as Error).stack ?? String(err);
    o.log(`  fault ${label}: ERROR ${(err as Error).message}`);
  } finally {
    await o.sim.setFaults({ latencyMs: o.latencyMs }).catch(() => undefined);
    await claims.stop();
    await volumes.stop();
    await running?.proc.kill('SIGTERM', 10_000);
    await cluster.stop();
  }
  return result;
}

/**
 * Restarts kube-apiserver in place (the launcher's SIGUSR1) and resolves once the new process
 * answers /readyz. Not Plane.restartApiserver(): its readiness poll uses fetch() without
 * accepting the plane's self-signed certificate, so it never sees the server come back.
 */
async function restartApiserver(plane: { pid: number; dir: string }, kube: import('./kube.js').Kube): Promise<void> {
  const log = join(plane.dir, 'kube-apiserver.log');
  const serving = () => (readFileSync(log, 'utf8').match(/Serving securely on/g) ?? []).length;
  const before = serving();
  process.kill(plane.pid, 'SIGUSR1');
  const up = await waitUntil(async () => {
    if (serving() <= before) return false;
    await kube.req('GET', '/readyz', undefined, undefined, 2000);
    return true;
  }, 120_000, 200).done;
  if (!up) throw new Error(`kube-apiserver did not come back within 120 s (log: ${log})`);
}

async function safetyCheck(kube: import('./kube.js').Kube, sim: Sim, ns: string, n: number, concurrency: number): Promise<SafetyCheck> {
  const claims = (await retrying(() => kube.list(`/api/v1/namespaces/${ns}/persistentvolumeclaims`))).items;
  const pvs = (await retrying(() => kube.list('/api/v1/persistentvolumes'))).items;
  const uids = new Set(claims.map((c) => c.metadata.uid!));
  const bound = claims.filter((c) => c.status?.phase === 'Bound').length;
  const pvsPerClaim = new Map<string, number>();
  for (const pv of pvs as KubeObject[]) {
    const uid = pv.spec?.claimRef?.uid as string | undefined;
    if (uid) pvsPerClaim.set(uid, (pvsPerClaim.get(uid) ?? 0) + 1);
  }
  const names = await sim.names();
  const aisPerClaim = new Map<string, number>();
  let untagged = 0;
  await pool(names, Math.min(concurrency, 16), async (name) => {
    const md = await sim.metadata(name);
    const uid = md['k8s-claim-uid'];
    if (!uid) untagged++;
    const owner = uid ?? (name.startsWith('pvc-') ? name.slice(4) : '');
    aisPerClaim.set(owner, (aisPerClaim.get(owner) ?? 0) + 1);
  });
  const leaked = names.filter((name) => !uids.has(name.replace(/^pvc-/, ''))).length;
  const duplicateAppInstances = [...aisPerClaim.values()].filter((v) => v > 1).length;
  const duplicatePVs = [...pvsPerClaim.values()].filter((v) => v > 1).length;
  return {
    claims: claims.length,
    bound,
    unbound: n - bound,
    appInstances: names.length,
    leaked,
    duplicates: duplicateAppInstances + duplicatePVs,
    duplicateAppInstances,
    duplicatePVs,
    untagged,
    pvs: pvs.length,
  };
}
