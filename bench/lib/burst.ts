// SPDX-License-Identifier: Apache-2.0
// One measured burst: N claims created at once against a fresh control plane, timed until all are
// Bound; then all deleted, timed until every app instance (and PV) is gone. Per contender it
// records API requests at the API server (audit log), Datera calls (simulator call log), CPU and
// memory of the process (/proc).
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { READ_VERBS, WRITE_VERBS, sumVerbs } from './audit.js';
import { startCluster } from './cluster.js';
import { scrapeOurs, startContender, type ContenderSettings, type Running } from './contenders.js';
import { KubeError, Mirror, pool, retrying, type Kube, type KubeObject } from './kube.js';
import { claim, preBoundVolume, storageClass } from './objects.js';
import { PLANE_COMPONENTS, StatsSampler, planeCpu, planePids, type PlaneComponent, type ProcStats } from './proc.js';
import { summariseCalls, type Sim } from './sim.js';

export interface BurstOptions {
  repoRoot: string;
  workDir: string;
  sim: Sim;
  n: number;
  settings: ContenderSettings;
  /** Repetition number (1-based) of this contender at this N: part of every name the run uses. */
  rep?: number;
  latencyMs: number;
  /** Claims (and deletes) in flight from the driver at once. */
  concurrency: number;
  /** Give up waiting for Bound / gone after this long (the result then says how far it got). */
  boundTimeoutMs: number;
  deleteTimeoutMs: number;
  /**
   * Also audit kube-controller-manager (and the driver) and break each claim's time down into
   * phases. Costs the API server extra audit work, so only for a separate tracing run.
   */
  trace?: boolean;
  log: (msg: string) => void;
}

interface PhaseStats {
  p50: number;
  p90: number;
  n: number;
}

/** Per-claim phases from the audit log (tracing runs). */
interface Trace {
  /** kube-controller-manager requests in the provisioning window, by "verb resource", and writes per claim. */
  kcm: Record<string, number>;
  kcmWritesPerClaim: number;
  /** claim created → kube-controller-manager's first write to it (the storage-provisioner annotation on the provisioner path). */
  createdToMarked?: PhaseStats;
  /** that write → the PV create (provisioner: watch delay, queue, Datera calls, limiter). */
  markedToPv?: PhaseStats;
  /** claim created → PV create request received (the floor writes it at once). */
  createdToPv: PhaseStats;
  /** PV create → the driver sees the claim Bound (binding). */
  pvToBound: PhaseStats;
}

interface PhaseCounts {
  startup: Record<string, number>;
  provision: Record<string, number>;
  delete: Record<string, number>;
}

export interface BurstResult {
  kind: string;
  describe: string;
  n: number;
  /** Repetition (1-based) of this contender at this N; absent in results from before repetitions. */
  rep?: number;
  /** Work directory of this run under bench/results/tmp/<run id>/ (logs, audit log, kubeconfigs). */
  runDir?: string;
  provisionerName: string;
  /** ms from spawn to "serving" (caches synced). */
  readyMs?: number;
  /** Ours: the effective settings from its start-up log (workers, client budgets). */
  config?: Record<string, unknown>;
  /** Seconds the driver took to send all N creates (shows it was not the bottleneck). */
  createSec: number;
  /** First claim create to the last claim seen Bound. Undefined when not all bound in time. */
  allBoundSec?: number;
  bound: number;
  bindLatencySec: { p50: number; p90: number; max: number };
  /** Delete of the first claim to: no app instance left / no PV left. */
  appInstancesGoneSec?: number;
  pvsGoneSec?: number;
  deleteComplete: boolean;
  appInstancesLeft: number;
  pvsLeft: number;
  kubeApi?: {
    user: string;
    counts: PhaseCounts;
    provisionWritesPerVolume: number;
    deleteWritesPerVolume: number;
    /** get/list after start-up (start-up lists of informers excluded). */
    readsOutsideWatches: number;
    startupLists: number;
    watches: number;
  };
  trace?: Trace;
  /** Ours only: its own /metrics at the end, to cross-check the audit counts. */
  oursMetrics?: { kube: Record<string, number>; datera: Record<string, number>; eventsDropped?: Record<string, number> };
  datera?: {
    provision: ReturnType<typeof summariseCalls>;
    delete: ReturnType<typeof summariseCalls>;
    provisionCallsPerVolume: number;
    deleteCallsPerVolume: number;
  };
  process?: {
    startupCpuSec: number;
    provisionCpuSec: number;
    deleteCpuSec: number;
    rssAtBoundMB: number;
    peakRssMB: number;
  };
  /**
   * CPU seconds of the control plane's components during provisioning (first create → all Bound)
   * and deleting (first delete → all gone), from /proc/<pid>/stat; for every contender, the floor
   * included, so the load a provisioner puts on the control plane is part of its cost.
   */
  plane?: { provisionCpuSec: Record<PlaneComponent, number>; deleteCpuSec: Record<PlaneComponent, number> };
  /** CPU seconds of the benchmark driver's own process in the same two windows. */
  driverCpuSec?: { provision: number; delete: number };
  /**
   * Events: what arrived in the run's namespace (Event objects and the sum of their counts, by
   * reporting component, from a list after the burst) and the contender's event writes the API
   * server received (audit log, by response code class). `claimsWithoutSuccessEvent`: claims that
   * have no ProvisioningSucceeded event at all (a dropped or never-sent event; the peer's client-go
   * recorder drops silently, so this is how its drops show).
   */
  events?: {
    objects: number;
    occurrences: number;
    byComponent: Record<string, { objects: number; occurrences: number; reasons: Record<string, number> }>;
    contenderObjects: number;
    contenderOccurrences: number;
    writesAccepted?: number;
    writesRejected?: number;
    claimsWithoutSuccessEvent: number;
    /** Ours only: any events-dropped counter its /metrics exposes (none when absent). */
    oursDropped?: Record<string, number>;
  };
  error?: string;
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

const WATCH = new Set(['watch']);
const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

/** Resolves when `cond()` holds (checked on every `kick()` and every `everyMs`) or after `ms` (false). */
export function waitUntil(cond: () => boolean | Promise<boolean>, ms: number, everyMs = 250): { done: Promise<boolean>; kick: () => void } {
  let kick: () => void = () => undefined;
  const done = new Promise<boolean>((resolve) => {
    const deadline = Date.now() + ms;
    let checking = false;
    let finished = false;
    const check = async () => {
      if (finished || checking) return;
      checking = true;
      try {
        if (await cond()) {
          finished = true;
          clearInterval(t);
          resolve(true);
        } else if (Date.now() > deadline) {
          finished = true;
          clearInterval(t);
          resolve(false);
        }
      } catch {
        /* transient: check again */
      } finally {
        checking = false;
      }
    };
    const t = setInterval(() => void check(), everyMs);
    kick = () => void check();
    void check();
  });
  return { done, kick: () => kick() };
}

function stats(xs: number[]): PhaseStats {
  const s = [...xs].sort((a, b) => a - b);
  return { p50: round(quantile(s, 0.5)), p90: round(quantile(s, 0.9)), n: s.length };
}

function traceOf(
  records: import('./audit.js').AuditRecord[],
  c: { names: string[]; createdAt: Map<string, number>; uidOf: Map<string, string>; boundAt: Map<string, number>; t0: number; tDel: number; ns: string },
): Trace {
  const isKcm = (r: { userAgent: string; user: string }) => r.user === 'admin' && r.userAgent.startsWith('kube-controller-manager');
  const kcm: Record<string, number> = {};
  const marked = new Map<string, number>();
  const pvAt = new Map<string, number>();
  for (const r of records) {
    if (r.at < c.t0 || r.at >= c.tDel) continue;
    if (isKcm(r)) {
      const k = `${r.verb} ${r.resource}`;
      kcm[k] = (kcm[k] ?? 0) + 1;
      if ((r.verb === 'update' || r.verb === 'patch') && r.resource === 'persistentvolumeclaims' && r.namespace === c.ns && !marked.has(r.name)) marked.set(r.name, r.at);
    }
    if (r.verb === 'create' && r.resource === 'persistentvolumes' && !isKcm(r) && !pvAt.has(r.name)) pvAt.set(r.name, r.at);
  }
  const createdToMarked: number[] = [];
  const markedToPv: number[] = [];
  const createdToPv: number[] = [];
  const pvToBound: number[] = [];
  for (const name of c.names) {
    const created = c.createdAt.get(name);
    const pv = pvAt.get(`pvc-${c.uidOf.get(name)}`);
    const m = marked.get(name);
    const bound = c.boundAt.get(name);
    if (created === undefined || pv === undefined) continue;
    createdToPv.push((pv - created) / 1000);
    if (m !== undefined && m < pv) {
      createdToMarked.push((m - created) / 1000);
      markedToPv.push((pv - m) / 1000);
    }
    if (bound !== undefined) pvToBound.push((bound - pv) / 1000);
  }
  const writes = Object.entries(kcm).filter(([k]) => WRITE_VERBS.has(k.split(' ')[0]!)).reduce((a, [, v]) => a + v, 0);
  return {
    kcm,
    kcmWritesPerClaim: round(writes / c.names.length, 2),
    ...(createdToMarked.length ? { createdToMarked: stats(createdToMarked), markedToPv: stats(markedToPv) } : {}),
    createdToPv: stats(createdToPv),
    pvToBound: stats(pvToBound),
  };
}

/**
 * Event objects in namespace `ns` now, by reporting component; the contender's are those whose
 * component starts with its provisioner name (the Go library and ours append an instance id).
 */
async function countEvents(kube: Kube, ns: string, provisionerName: string, uidOf: Map<string, string>): Promise<NonNullable<BurstResult['events']>> {
  const { items } = await kube.list(`/api/v1/namespaces/${ns}/events`);
  const byComponent: NonNullable<BurstResult['events']>['byComponent'] = {};
  const succeeded = new Set<string>();
  let occurrences = 0;
  let contenderObjects = 0;
  let contenderOccurrences = 0;
  for (const e of items as Array<KubeObject & { source?: { component?: string }; reportingComponent?: string; reason?: string; count?: number; series?: { count?: number }; involvedObject?: { uid?: string } }>) {
    const component = e.source?.component || e.reportingComponent || '(none)';
    const times = Math.max(1, e.count ?? 0, e.series?.count ?? 0);
    const c = (byComponent[component.startsWith(provisionerName) ? `${provisionerName} (contender)` : component] ??= { objects: 0, occurrences: 0, reasons: {} });
    c.objects++;
    c.occurrences += times;
    c.reasons[e.reason ?? ''] = (c.reasons[e.reason ?? ''] ?? 0) + times;
    occurrences += times;
    if (component.startsWith(provisionerName)) {
      contenderObjects++;
      contenderOccurrences += times;
      if (e.reason === 'ProvisioningSucceeded' && e.involvedObject?.uid) succeeded.add(e.involvedObject.uid);
    }
  }
  const claimsWithoutSuccessEvent = [...uidOf.values()].filter((uid) => !succeeded.has(uid)).length;
  return { objects: items.length, occurrences, byComponent, contenderObjects, contenderOccurrences, claimsWithoutSuccessEvent };
}

export async function runBurst(o: BurstOptions): Promise<BurstResult> {
  const tag = randomBytes(3).toString('hex');
  const label = `${o.settings.kind}-${o.n}${o.rep !== undefined ? `-r${o.rep}` : ''}`;
  const dir = join(o.workDir, `burst-${label}-${tag}`);
  const ns = `bench-${label}`;
  const cls = `bench-${label}-${tag}`;
  const provisionerName = `bench.datera.io/${label}-${tag}`;
  const isFloor = o.settings.runner === 'floor';
  /** The floor and the ideal provisioner make no Datera calls: their "gone" is the PVs. */
  const noDatera = isFloor || o.settings.runner === 'ideal';
  const result: BurstResult = {
    kind: o.settings.kind,
    describe: o.settings.describe,
    n: o.n,
    ...(o.rep !== undefined ? { rep: o.rep } : {}),
    runDir: dir,
    provisionerName,
    createSec: 0,
    bound: 0,
    bindLatencySec: { p50: 0, p90: 0, max: 0 },
    deleteComplete: false,
    appInstancesLeft: 0,
    pvsLeft: 0,
  };
  const cluster = await startCluster(dir, [], { auditAdmin: o.trace ?? false });
  const { kube } = cluster;
  const pids = planePids(cluster.plane.pid);
  const missing = PLANE_COMPONENTS.filter((c) => pids[c] === undefined);
  if (missing.length) o.log(`  ${label}: control-plane CPU not measured for ${missing.join(', ')} (no such child of the launcher ${cluster.plane.pid})`);
  let running: Running | undefined;
  let sampler: StatsSampler | undefined;
  const mirrors: Mirror[] = [];
  try {
    await kube.req('POST', '/api/v1/namespaces', { metadata: { name: ns } });
    await kube.req('POST', '/apis/storage.k8s.io/v1/storageclasses', storageClass(cls, provisionerName));
    await o.sim.reset();
    await o.sim.setFaults({ latencyMs: o.latencyMs });

    let id: { user: string; kubeconfig: string } | undefined;
    if (!isFloor) {
      id = await cluster.identity(o.settings.kind);
      running = await startContender({
        repoRoot: o.repoRoot,
        settings: o.settings,
        kubeconfig: id.kubeconfig,
        simUrl: o.sim.url,
        provisionerName,
        namespace: ns,
        logFile: join(dir, `${o.settings.kind}.log`),
      });
      result.readyMs = running.readyMs;
      if (running.config) result.config = running.config;
      sampler = new StatsSampler(running.proc.pid);
    }

    // Observers: claims (Bound times) and PVs (gone, and the floor's instant reclaim).
    const createdAt = new Map<string, number>();
    const uidOf = new Map<string, string>();
    const boundAt = new Map<string, number>();
    const allBound = waitUntil(() => boundAt.size >= o.n, o.boundTimeoutMs);
    const claims = new Mirror(kube, `/api/v1/namespaces/${ns}/persistentvolumeclaims`, {
      onUpsert: (c) => {
        if (c.status?.phase === 'Bound' && !boundAt.has(c.metadata.name)) {
          boundAt.set(c.metadata.name, Date.now());
          if (boundAt.size >= o.n) allBound.kick();
        }
      },
    });
    let deleting = false;
    const floorDeleted = new Set<string>();
    const volumes = new Mirror(kube, '/api/v1/persistentvolumes', {
      onUpsert: (pv) => {
        if (isFloor && deleting && pv.status?.phase === 'Released' && !floorDeleted.has(pv.metadata.name)) {
          floorDeleted.add(pv.metadata.name);
          void retrying(() => kube.req('DELETE', `/api/v1/persistentvolumes/${pv.metadata.name}`)).catch(() => floorDeleted.delete(pv.metadata.name));
        }
      },
    });
    mirrors.push(claims, volumes);
    await Promise.all([claims.start(), volumes.start()]);

    const startStats: ProcStats | undefined = sampler?.sample();
    const planeStart = planeCpu(pids);
    const driverStart = process.cpuUsage();
    const names = Array.from({ length: o.n }, (_, i) => `c-${String(i).padStart(5, '0')}`);
    o.log(`  ${label}: creating ${o.n} claims`);
    const t0 = Date.now();
    await pool(names, o.concurrency, async (name) => {
      let created: KubeObject;
      try {
        created = await retrying(() => kube.req<KubeObject>('POST', `/api/v1/namespaces/${ns}/persistentvolumeclaims`, claim(name, cls)));
      } catch (err) {
        if (!(err instanceof KubeError && err.status === 409)) throw err;
        created = await kube.req<KubeObject>('GET', `/api/v1/namespaces/${ns}/persistentvolumeclaims/${name}`);
      }
      createdAt.set(name, Date.now());
      uidOf.set(name, created.metadata.uid!);
      if (isFloor) {
        // The floor: a provisioner with zero cost writes the PV the moment the claim exists.
        await retrying(() =>
          kube.req('POST', '/api/v1/persistentvolumes', preBoundVolume({
            claim: { namespace: ns, name, uid: created.metadata.uid! },
            className: cls,
            provisioner: provisionerName,
            simUrl: o.sim.url,
            finalizer: false,
          })),
        );
      }
    });
    result.createSec = round((Date.now() - t0) / 1000);
    o.log(`  ${label}: claims created in ${result.createSec} s; waiting for Bound`);
    const okBound = await allBound.done;
    const boundStats = sampler?.sample();
    const planeBound = planeCpu(pids);
    const driverBound = process.cpuUsage();
    result.bound = boundAt.size;
    if (okBound) result.allBoundSec = round((Math.max(...boundAt.values()) - t0) / 1000);
    const lat = names.filter((n) => boundAt.has(n)).map((n) => (boundAt.get(n)! - createdAt.get(n)!) / 1000).sort((a, b) => a - b);
    result.bindLatencySec = { p50: round(quantile(lat, 0.5)), p90: round(quantile(lat, 0.9)), max: round(lat[lat.length - 1] ?? 0) };
    o.log(`  ${label}: ${result.bound}/${o.n} bound${okBound ? ` in ${result.allBoundSec} s` : ' (timed out)'}`);

    // Late events of the burst land in the provisioning window, not the delete window.
    await new Promise((r) => setTimeout(r, 2000));
    const simProvision = isFloor ? [] : await o.sim.calls(t0);
    result.events = await countEvents(kube, ns, provisionerName, uidOf);

    const tDel = Date.now();
    deleting = true;
    await pool(names, o.concurrency, async (name) => {
      try {
        await retrying(() => kube.req('DELETE', `/api/v1/namespaces/${ns}/persistentvolumeclaims/${name}`));
      } catch (err) {
        if (!(err instanceof KubeError && err.status === 404)) throw err;
      }
    });
    let aiGoneAt: number | undefined;
    let pvGoneAt: number | undefined;
    const gone = waitUntil(async () => {
      if (aiGoneAt === undefined && (noDatera || (await o.sim.count()) === 0)) aiGoneAt = Date.now();
      if (pvGoneAt === undefined && volumes.objects.size === 0) pvGoneAt = Date.now();
      return aiGoneAt !== undefined && pvGoneAt !== undefined;
    }, o.deleteTimeoutMs, 250);
    result.deleteComplete = await gone.done;
    const endStats = sampler?.stop();
    const planeEnd = planeCpu(pids);
    const driverEnd = process.cpuUsage();
    const diff = (a: Record<PlaneComponent, number>, b: Record<PlaneComponent, number>) =>
      Object.fromEntries(PLANE_COMPONENTS.map((c) => [c, round(b[c] - a[c])])) as Record<PlaneComponent, number>;
    result.plane = { provisionCpuSec: diff(planeStart, planeBound), deleteCpuSec: diff(planeBound, planeEnd) };
    result.driverCpuSec = {
      provision: round((driverBound.user + driverBound.system - driverStart.user - driverStart.system) / 1e6),
      delete: round((driverEnd.user + driverEnd.system - driverBound.user - driverBound.system) / 1e6),
    };
    if (aiGoneAt !== undefined && !noDatera) result.appInstancesGoneSec = round((aiGoneAt - tDel) / 1000);
    if (pvGoneAt !== undefined) result.pvsGoneSec = round((pvGoneAt - tDel) / 1000);
    result.appInstancesLeft = noDatera ? 0 : await o.sim.count();
    result.pvsLeft = volumes.objects.size;
    o.log(`  ${label}: delete ${result.deleteComplete ? `done: app instances gone in ${result.appInstancesGoneSec ?? '-'} s, PVs in ${result.pvsGoneSec} s` : `incomplete (${result.appInstancesLeft} app instances, ${result.pvsLeft} PVs left)`}`);
    await new Promise((r) => setTimeout(r, 1000)); // let the last audit lines flush

    if (o.trace) {
      cluster.audit.poll();
      result.trace = traceOf([...cluster.audit.records.values()], { names, createdAt, uidOf, boundAt, t0, tDel, ns });
    }

    if (!isFloor && id && running) {
      const counts: PhaseCounts = {
        startup: cluster.audit.count(id.user, 0, t0),
        provision: cluster.audit.count(id.user, t0, tDel),
        delete: cluster.audit.count(id.user, tDel),
      };
      const afterStart = { ...counts.provision };
      for (const [k, v] of Object.entries(counts.delete)) afterStart[k] = (afterStart[k] ?? 0) + v;
      result.kubeApi = {
        user: id.user,
        counts,
        provisionWritesPerVolume: round(sumVerbs(counts.provision, WRITE_VERBS) / o.n, 3),
        deleteWritesPerVolume: round(sumVerbs(counts.delete, WRITE_VERBS) / o.n, 3),
        readsOutsideWatches: sumVerbs(afterStart, READ_VERBS),
        startupLists: sumVerbs(counts.startup, READ_VERBS),
        watches: sumVerbs(counts.startup, WATCH) + sumVerbs(afterStart, WATCH),
      };
      if (running.httpUrl) result.oursMetrics = await scrapeOurs(running.httpUrl).catch(() => undefined);
      if (result.events) {
        const eventWrites = [...cluster.audit.records.values()].filter((r) => r.user === id!.user && r.resource === 'events' && WRITE_VERBS.has(r.verb) && r.at >= t0 && r.at < tDel);
        result.events.writesAccepted = eventWrites.filter((r) => r.code > 0 && r.code < 400).length;
        result.events.writesRejected = eventWrites.filter((r) => r.code >= 400).length;
        if (result.oursMetrics?.eventsDropped) result.events.oursDropped = result.oursMetrics.eventsDropped;
      }
      const simDelete = await o.sim.calls(tDel);
      const prov = summariseCalls(simProvision.filter((c) => c.at < tDel));
      const del = summariseCalls(simDelete);
      result.datera = {
        provision: prov,
        delete: del,
        provisionCallsPerVolume: round(prov.total / o.n, 3),
        deleteCallsPerVolume: round(del.total / o.n, 3),
      };
      if (startStats && boundStats && endStats) {
        result.process = {
          startupCpuSec: round(startStats.cpuSec),
          provisionCpuSec: round(boundStats.cpuSec - startStats.cpuSec),
          deleteCpuSec: round(endStats.cpuSec - boundStats.cpuSec),
          rssAtBoundMB: round(boundStats.rssMB, 1),
          peakRssMB: round(endStats.hwmMB, 1),
        };
      }
    }
  } catch (err) {
    result.error = (err as Error).stack ?? String(err);
    o.log(`  ${label}: ERROR ${(err as Error).message}`);
  } finally {
    sampler?.stop();
    for (const m of mirrors) await m.stop();
    await running?.proc.kill('SIGTERM', 10_000);
    await cluster.stop();
  }
  return result;
}
