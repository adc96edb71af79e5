// SPDX-License-Identifier: Apache-2.0
// The resize run: N claims of an expandable class (its template has a per-GiB IOPS limit, so a
// grow also recomputes the volume's performance policy) are provisioned and Bound first, not
// measured; then every claim is grown at once (one merge patch each) and the run measures how
// long until each claim's controller part of the resize is done: the claim at NodeResizePending
// for the new size and its PV's capacity the new size. The node part (kubelet growing the file
// system) needs kubelets, which the bench plane has none of, so it is out of scope. Only ours
// runs: the Go peer on sig-storage-lib-external-provisioner has no resizer for flexVolume PVs.
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { READ_VERBS, WRITE_VERBS, sumVerbs, type AuditRecord } from './audit.js';
import { startCluster } from './cluster.js';
import { startContender, type ContenderSettings, type Running } from './contenders.js';
import { KubeError, Mirror, pool, retrying, type Kube, type KubeObject } from './kube.js';
import { claim, storageClass } from './objects.js';
import { PLANE_COMPONENTS, StatsSampler, planeCpu, planePids, type PlaneComponent } from './proc.js';
import { summariseCalls, type Sim } from './sim.js';
import { waitUntil } from './burst.js';

/** The template the run's class names: per-GiB IOPS, so the performance policy follows the size. */
const RESIZE_TEMPLATE = { name: 'bench-pergib', iopsPerGiB: 100, replicas: 3, maxSizeGiB: 64 };
const TEMPLATES_YAML = [
  'templates:',
  `  - name: ${RESIZE_TEMPLATE.name}`,
  `    replicas: ${RESIZE_TEMPLATE.replicas}`,
  `    maxSize: ${RESIZE_TEMPLATE.maxSizeGiB}Gi`,
  `    qos: { iopsPerGiB: ${RESIZE_TEMPLATE.iopsPerGiB} }`,
  '',
].join('\n');

const FROM_GIB = 1;
const TO_GIB = 2;

/**
 * What one resize should cost, from lib/provision/resizer.ts and DateraProvisioner.expand: two claim
 * status patches (ControllerResizeInProgress, then NodeResizePending), one PV capacity patch, two
 * events (Resizing, FileSystemResizeRequired); on Datera the ownership metadata, the app instance
 * (the volume's size and policy), the volume PUT and, the per-GiB limit having changed, the policy PUT.
 * Recorded in each result so the report compares against what the run expected.
 */
export const RESIZE_EXPECTED = {
  kubeWrites: { 'patch persistentvolumeclaims/status': 2, 'patch persistentvolumes': 1, 'create events': 2 },
  dateraCalls: {
    'GET /app_instances/:id/metadata': 1,
    'GET /app_instances/:id': 1,
    'PUT /app_instances/:id/storage_instances/:storage_instance_name/volumes/:volume_name': 1,
    'PUT /app_instances/:id/storage_instances/:storage_instance_name/volumes/:volume_name/performance_policy': 1,
  },
  events: { Resizing: 1, FileSystemResizeRequired: 1 },
} as const;

export interface ResizeOptions {
  repoRoot: string;
  workDir: string;
  sim: Sim;
  n: number;
  /** Ours (the only contender with a resizer). */
  settings: ContenderSettings;
  rep?: number;
  latencyMs: number;
  /** Claim creates in flight while provisioning; the patches are all sent at once. */
  concurrency: number;
  timeoutMs: number;
  log: (msg: string) => void;
}

interface Spread {
  p50: number;
  p90: number;
  max: number;
}

export interface ResizeResult {
  kind: string;
  describe: string;
  n: number;
  rep?: number;
  runDir?: string;
  provisionerName: string;
  fromGiB: number;
  toGiB: number;
  /** The class's template, as the run wrote it into the template ConfigMap. */
  templateYaml: string;
  /** Per resize, what the resizer's steps should cost (RESIZE_EXPECTED). */
  expected: { kubeWrites: Record<string, number>; dateraCalls: Record<string, number>; events: Record<string, number> };
  readyMs?: number;
  config?: Record<string, unknown>;
  /** Set-up, not measured: first create to all Bound. */
  provisionSec?: number;
  /** Seconds the driver took to send all N patches (shows it was not the bottleneck). */
  patchSec?: number;
  /** First patch sent to the last claim seen at NodeResizePending with its PV at the new size. */
  allResizedSec?: number;
  resized: number;
  /** Per claim: its patch → both conditions seen in the driver's watches. */
  latencySec?: Spread;
  /** Per claim: its patch → the resizer's first status (ControllerResizeInProgress) seen: queueing before the work starts. */
  startLatencySec?: Spread;
  /**
   * Where each claim's time goes, from the audit log of ours (p50 / p90 seconds): the driver's
   * patch → ours's first claim status patch received (watch, queue, decision), → its PV patch
   * (the Datera calls), → its second status patch (NodeResizePending); and the most claims between
   * their first and second status patch at one time (resizes in flight).
   */
  phases?: { toFirstStatus: Spread; toPvPatch: Spread; toSecondStatus: Spread; maxInFlight: number };
  /**
   * Work done more than once: claims with more than two status patches, status patches the API
   * server refused (409 on a stale resourceVersion), PVs patched more than once, app instances
   * whose metadata was read more than once.
   */
  repeats?: { claimsWithExtraStatusPatches: number; statusPatchesRefused: number; pvsPatchedAgain: number; appInstancesReadAgain: number };
  /** The contender's requests in the resize window, by "verb resource", and writes per resize. */
  kubeApi?: {
    user: string;
    counts: Record<string, number>;
    writesPerResize: Record<string, number>;
    writesPerResizeTotal: number;
    /** get/list in the window (reads outside the watches). */
    reads: number;
    /** Writes the API server refused (status ≥ 400), e.g. 409 on a stale resourceVersion. */
    writesRejected: number;
  };
  datera?: {
    calls: ReturnType<typeof summariseCalls>;
    perResize: Record<string, number>;
    perResizeTotal: number;
  };
  /** Each app instance read back from the simulator after the run. */
  readBack?: { checked: number; sizeOk: number; qosOk: number; expectedIopsMax: number };
  /** Ours during the resize window (first patch → all resized), from /proc. */
  process?: { cpuSec: number; rssAtDoneMB: number; maxRssMB: number; peakRssMB: number };
  plane?: Record<PlaneComponent, number>;
  /**
   * The contender's events in the run's namespace after the resizes, by reason (occurrences), and
   * every sign of a failure: Warning events of ours, claims refused (ControllerResizeInfeasible) or
   * with a ControllerResizeError condition, and its own resize-failed counter.
   */
  events?: { byReason: Record<string, number>; otherComponents: Record<string, number>; warnings: number };
  failures?: { warningEvents: number; infeasibleClaims: number; errorConditions: number; metricFailed?: number };
  /** Ours's resize metrics at the end (controller_persistentvolumeclaim_resize_*). */
  oursMetrics?: { resizeTotal: number; resizeFailed: number; durationSum: number; durationCount: number };
  /**
   * Ours's Datera calls during the resize as it timed them (`datera_request_duration_seconds`,
   * scraped before the first patch and when all were resized): calls and mean ms per call, to set
   * against the simulator's fixed latency.
   */
  dateraLatency?: { calls: number; meanMs: number };
  error?: string;
}

const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

function spread(xs: number[]): Spread {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => (s.length ? s[Math.min(s.length - 1, Math.floor(p * s.length))]! : 0);
  return { p50: round(q(0.5)), p90: round(q(0.9)), max: round(s[s.length - 1] ?? 0) };
}

/** Each count ÷ n (rounded to 3 places), for the keys `keep` accepts (all by default). */
export function perResize(counts: Record<string, number>, n: number, keep: (key: string) => boolean = () => true): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(counts)) if (keep(k)) out[k] = round(v / n, 3);
  return out;
}

/**
 * Per-claim phases from ours's audit records in the window (`records`: its requests only; refused
 * ones ignored) and the driver's patch times: see ResizeResult.phases. Claims missing a step are
 * left out of that step.
 */
export function resizePhases(records: AuditRecord[], patchedAt: Map<string, number>, pvOf: Map<string, string>): NonNullable<ResizeResult['phases']> {
  const status = new Map<string, number[]>();
  const pvPatch = new Map<string, number>();
  for (const r of [...records].sort((a, b) => a.at - b.at)) {
    if (r.verb !== 'patch' || r.code >= 400) continue;
    if (r.resource === 'persistentvolumeclaims/status') status.set(r.name, [...(status.get(r.name) ?? []), r.at]);
    else if (r.resource === 'persistentvolumes' && !pvPatch.has(r.name)) pvPatch.set(r.name, r.at);
  }
  const a: number[] = [];
  const b: number[] = [];
  const c: number[] = [];
  for (const [name, t0] of patchedAt) {
    const [s1, s2] = status.get(name) ?? [];
    const pv = pvPatch.get(pvOf.get(name) ?? '');
    if (s1 !== undefined) a.push((s1 - t0) / 1000);
    if (s1 !== undefined && pv !== undefined) b.push((pv - s1) / 1000);
    if (pv !== undefined && s2 !== undefined) c.push((s2 - pv) / 1000);
  }
  const spans = [...status.values()].filter((x) => x.length >= 2).map(([s1, s2]) => [s1!, s2!] as const);
  const maxInFlight = Math.max(0, ...spans.map(([at]) => spans.filter(([s1, s2]) => s1 <= at && at < s2).length));
  return { toFirstStatus: spread(a), toPvPatch: spread(b), toSecondStatus: spread(c), maxInFlight };
}

/** Work done more than once (see ResizeResult.repeats), from ours's audit records and its Datera calls. */
export function resizeRepeats(records: AuditRecord[], calls: Array<{ method: string; route: string; path: string }>): NonNullable<ResizeResult['repeats']> {
  const perClaim = new Map<string, AuditRecord[]>();
  const perPv = new Map<string, number>();
  for (const r of [...records].sort((a, b) => a.at - b.at)) {
    if (r.verb === 'patch' && r.resource === 'persistentvolumeclaims/status') perClaim.set(r.name, [...(perClaim.get(r.name) ?? []), r]);
    if (r.verb === 'patch' && r.resource === 'persistentvolumes') perPv.set(r.name, (perPv.get(r.name) ?? 0) + 1);
  }
  const extra = [...perClaim.values()].filter((x) => x.length > 2);
  const reads = new Map<string, number>();
  for (const c of calls) {
    if (c.method !== 'GET' || c.route !== '/app_instances/:id/metadata') continue;
    const ai = /\/app_instances\/([^/?]+)/.exec(c.path)?.[1] ?? c.path;
    reads.set(ai, (reads.get(ai) ?? 0) + 1);
  }
  return {
    claimsWithExtraStatusPatches: extra.length,
    statusPatchesRefused: [...perClaim.values()].flat().filter((r) => r.code >= 400).length,
    pvsPatchedAgain: [...perPv.values()].filter((v) => v > 1).length,
    appInstancesReadAgain: [...reads.values()].filter((v) => v > 1).length,
  };
}

async function resizeMetrics(httpUrl: string): Promise<NonNullable<ResizeResult['oursMetrics']> & { dateraSum: number; dateraCount: number }> {
  const res = await request(`${httpUrl}/metrics`);
  const text = await res.body.text();
  const out = { resizeTotal: 0, resizeFailed: 0, durationSum: 0, durationCount: 0, dateraSum: 0, dateraCount: 0 };
  for (const line of text.split('\n')) {
    const d = /^datera_request_duration_seconds_(sum|count)(\{.*\})? (\S+)$/.exec(line);
    if (d) {
      if (d[1] === 'sum') out.dateraSum += Number(d[3]);
      else out.dateraCount += Number(d[3]);
      continue;
    }
    const m = /^(controller_persistentvolumeclaim_resize_\w+?)(\{.*\})? (\S+)$/.exec(line);
    if (!m) continue;
    const v = Number(m[3]);
    if (m[1] === 'controller_persistentvolumeclaim_resize_total') out.resizeTotal += v;
    else if (m[1] === 'controller_persistentvolumeclaim_resize_failed_total') out.resizeFailed += v;
    else if (m[1] === 'controller_persistentvolumeclaim_resize_duration_seconds_sum') out.durationSum += v;
    else if (m[1] === 'controller_persistentvolumeclaim_resize_duration_seconds_count') out.durationCount += v;
  }
  return { ...out, durationSum: round(out.durationSum, 3) };
}

async function countEvents(kube: Kube, ns: string, provisionerName: string): Promise<NonNullable<ResizeResult['events']>> {
  const { items } = await kube.list(`/api/v1/namespaces/${ns}/events`);
  const byReason: Record<string, number> = {};
  const otherComponents: Record<string, number> = {};
  let warnings = 0;
  for (const e of items as Array<KubeObject & { source?: { component?: string }; reportingComponent?: string; reason?: string; type?: string; count?: number; series?: { count?: number } }>) {
    const component = e.source?.component || e.reportingComponent || '(none)';
    const times = Math.max(1, e.count ?? 0, e.series?.count ?? 0);
    if (component.startsWith(provisionerName)) {
      byReason[e.reason ?? ''] = (byReason[e.reason ?? ''] ?? 0) + times;
      if (e.type === 'Warning') warnings += times;
    } else {
      const k = `${component}: ${e.reason ?? ''}`;
      otherComponents[k] = (otherComponents[k] ?? 0) + times;
    }
  }
  return { byReason, otherComponents, warnings };
}

/** Event occurrences in `after` that `before` did not have (per reason and component; zeros left out). */
export function eventsSince(before: NonNullable<ResizeResult['events']>, after: NonNullable<ResizeResult['events']>): NonNullable<ResizeResult['events']> {
  const diff = (a: Record<string, number>, b: Record<string, number>) =>
    Object.fromEntries(Object.entries(b).map(([k, v]) => [k, v - (a[k] ?? 0)] as const).filter(([, v]) => v !== 0));
  return { byReason: diff(before.byReason, after.byReason), otherComponents: diff(before.otherComponents, after.otherComponents), warnings: after.warnings - before.warnings };
}

export async function runResize(o: ResizeOptions): Promise<ResizeResult> {
  const tag = randomBytes(3).toString('hex');
  const label = `${o.settings.kind}-${o.n}${o.rep !== undefined ? `-r${o.rep}` : ''}`;
  const dir = join(o.workDir, `resize-${label}-${tag}`);
  const ns = `resize-${label}`;
  const cls = `resize-${label}-${tag}`;
  const provisionerName = `bench.datera.io/resize-${label}-${tag}`;
  const result: ResizeResult = {
    kind: o.settings.kind,
    describe: o.settings.describe,
    n: o.n,
    ...(o.rep !== undefined ? { rep: o.rep } : {}),
    runDir: dir,
    provisionerName,
    fromGiB: FROM_GIB,
    toGiB: TO_GIB,
    templateYaml: TEMPLATES_YAML,
    expected: RESIZE_EXPECTED,
    resized: 0,
  };
  const cluster = await startCluster(dir);
  const { kube } = cluster;
  const pids = planePids(cluster.plane.pid);
  let running: Running | undefined;
  let sampler: StatsSampler | undefined;
  const mirrors: Mirror[] = [];
  try {
    await kube.req('POST', '/api/v1/namespaces', { metadata: { name: ns } });
    // Ours reads its templates from the ConfigMap datera-templates in its --namespace.
    await kube.req('POST', `/api/v1/namespaces/${ns}/configmaps`, { metadata: { name: 'datera-templates' }, data: { 'templates.yaml': TEMPLATES_YAML } });
    await kube.req('POST', '/apis/storage.k8s.io/v1/storageclasses', { ...storageClass(cls, provisionerName), parameters: { template: RESIZE_TEMPLATE.name }, allowVolumeExpansion: true });
    await o.sim.reset();
    await o.sim.setFaults({ latencyMs: o.latencyMs });
    const id = await cluster.identity(`resize-${o.settings.kind}`);
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

    const toSize = `${TO_GIB}Gi`;
    const boundAt = new Map<string, number>();
    const pvOf = new Map<string, string>();
    const claimOfPv = new Map<string, string>();
    const patchedAt = new Map<string, number>();
    const startedAt = new Map<string, number>();
    const pendingAt = new Map<string, number>();
    const pvGrownAt = new Map<string, number>();
    const doneAt = new Map<string, number>();
    const allBound = waitUntil(() => boundAt.size >= o.n, o.timeoutMs);
    const allResized = waitUntil(() => doneAt.size >= o.n, o.timeoutMs);
    const maybeDone = (name: string) => {
      const a = pendingAt.get(name);
      const b = pvOf.has(name) ? pvGrownAt.get(pvOf.get(name)!) : undefined;
      if (a !== undefined && b !== undefined && !doneAt.has(name)) {
        doneAt.set(name, Math.max(a, b));
        if (doneAt.size >= o.n) allResized.kick();
      }
    };
    const claims = new Mirror(kube, `/api/v1/namespaces/${ns}/persistentvolumeclaims`, {
      onUpsert: (c) => {
        const name = c.metadata.name;
        if (c.spec?.volumeName && !pvOf.has(name)) {
          pvOf.set(name, c.spec.volumeName);
          claimOfPv.set(c.spec.volumeName, name);
        }
        if (c.status?.phase === 'Bound' && !boundAt.has(name)) {
          boundAt.set(name, Date.now());
          if (boundAt.size >= o.n) allBound.kick();
        }
        if (!patchedAt.has(name)) return;
        const st = c.status?.allocatedResourceStatuses?.storage;
        const at = c.status?.allocatedResources?.storage;
        if (at === toSize && (st === 'ControllerResizeInProgress' || st === 'NodeResizePending') && !startedAt.has(name)) startedAt.set(name, Date.now());
        if (at === toSize && st === 'NodeResizePending' && !pendingAt.has(name)) {
          pendingAt.set(name, Date.now());
          maybeDone(name);
        }
      },
    });
    const volumes = new Mirror(kube, '/api/v1/persistentvolumes', {
      onUpsert: (pv) => {
        const name = pv.metadata.name;
        if (pv.spec?.capacity?.storage === toSize && !pvGrownAt.has(name)) {
          pvGrownAt.set(name, Date.now());
          const c = claimOfPv.get(name);
          if (c) maybeDone(c);
        }
      },
    });
    mirrors.push(claims, volumes);
    await Promise.all([claims.start(), volumes.start()]);

    // Set-up (not measured): N claims provisioned and Bound.
    const names = Array.from({ length: o.n }, (_, i) => `r-${String(i).padStart(5, '0')}`);
    o.log(`  resize ${label}: provisioning ${o.n} claims of ${FROM_GIB}Gi (set-up)`);
    const tp = Date.now();
    await pool(names, o.concurrency, async (name) => {
      try {
        const c = claim(name, cls);
        c.spec.resources.requests.storage = `${FROM_GIB}Gi`;
        await retrying(() => kube.req('POST', `/api/v1/namespaces/${ns}/persistentvolumeclaims`, c));
      } catch (err) {
        if (!(err instanceof KubeError && err.status === 409)) throw err;
      }
    });
    if (!(await allBound.done)) throw new Error(`set-up: only ${boundAt.size}/${o.n} claims Bound within ${o.timeoutMs / 1000} s`);
    result.provisionSec = round((Date.now() - tp) / 1000);
    // Late provisioning events and calls land before the window; every claim shows its capacity.
    await new Promise((r) => setTimeout(r, 3000));
    const unready = names.filter((n) => claims.objects.get(n)?.status?.capacity?.storage !== `${FROM_GIB}Gi`);
    if (unready.length) throw new Error(`set-up: ${unready.length} Bound claims without status.capacity ${FROM_GIB}Gi (e.g. ${unready[0]})`);
    o.log(`  resize ${label}: ${o.n} Bound in ${result.provisionSec} s; growing all to ${toSize} at once`);

    // Events of the set-up (ProvisioningSucceeded, the binder's) are subtracted from the count after.
    const eventsBefore = await countEvents(kube, ns, provisionerName);
    const metricsBefore = running.httpUrl ? await resizeMetrics(running.httpUrl).catch(() => undefined) : undefined;
    const startStats = sampler.sample();
    const planeStart = planeCpu(pids);
    const t0 = Date.now();
    // All N patches at once: one request each, all in flight together.
    await Promise.all(
      names.map(async (name) => {
        patchedAt.set(name, Date.now()); // before the request: its watch events always find it
        await retrying(() =>
          kube.req('PATCH', `/api/v1/namespaces/${ns}/persistentvolumeclaims/${name}`, { spec: { resources: { requests: { storage: toSize } } } }, 'application/merge-patch+json'),
        );
      }),
    );
    result.patchSec = round((Date.now() - t0) / 1000);
    const ok = await allResized.done;
    const doneStats = sampler.sample();
    const planeDone = planeCpu(pids);
    const metricsDone = running.httpUrl ? await resizeMetrics(running.httpUrl).catch(() => undefined) : undefined;
    if (metricsBefore && metricsDone && metricsDone.dateraCount > metricsBefore.dateraCount) {
      const calls = metricsDone.dateraCount - metricsBefore.dateraCount;
      result.dateraLatency = { calls, meanMs: round((1000 * (metricsDone.dateraSum - metricsBefore.dateraSum)) / calls, 1) };
    }
    result.resized = doneAt.size;
    if (ok) result.allResizedSec = round((Math.max(...doneAt.values()) - t0) / 1000);
    result.latencySec = spread(names.filter((n) => doneAt.has(n)).map((n) => (doneAt.get(n)! - patchedAt.get(n)!) / 1000));
    result.startLatencySec = spread(names.filter((n) => startedAt.has(n)).map((n) => (startedAt.get(n)! - patchedAt.get(n)!) / 1000));
    o.log(`  resize ${label}: ${result.resized}/${o.n} resized${ok ? ` in ${result.allResizedSec} s` : ' (timed out)'}; per claim p50 ${result.latencySec.p50} s, p90 ${result.latencySec.p90} s`);
    result.process = { cpuSec: round(doneStats.cpuSec - startStats.cpuSec), rssAtDoneMB: round(doneStats.rssMB, 1), maxRssMB: round(sampler.maxRssMB, 1), peakRssMB: round(doneStats.hwmMB, 1) };
    result.plane = Object.fromEntries(PLANE_COMPONENTS.map((c) => [c, round(planeDone[c] - planeStart[c])])) as Record<PlaneComponent, number>;

    // Late events and any repeated work (a second sync of the same key) land in the window too.
    await new Promise((r) => setTimeout(r, 3000));
    const tEnd = Date.now();
    await new Promise((r) => setTimeout(r, 1000)); // let the last audit lines flush
    const counts = cluster.audit.count(id.user, t0, tEnd);
    const records = [...cluster.audit.records.values()].filter((r) => r.user === id.user && r.at >= t0 && r.at < tEnd && WRITE_VERBS.has(r.verb));
    const writesPerResize = perResize(counts, o.n, (k) => WRITE_VERBS.has(k.split(' ')[0]!));
    result.kubeApi = {
      user: id.user,
      counts,
      writesPerResize,
      writesPerResizeTotal: round(sumVerbs(counts, WRITE_VERBS) / o.n, 3),
      reads: sumVerbs(counts, READ_VERBS),
      writesRejected: records.filter((r) => r.code >= 400).length,
    };
    const windowCalls = (await o.sim.calls(t0)).filter((c) => c.at < tEnd); // the read-back comes later
    writeFileSync(join(dir, 'datera-calls.json'), JSON.stringify(windowCalls)); // evidence: each call's time and path
    const calls = summariseCalls(windowCalls);
    const mine = [...cluster.audit.records.values()].filter((r) => r.user === id.user && r.at >= t0 && r.at < tEnd);
    result.phases = resizePhases(mine, patchedAt, pvOf);
    result.repeats = resizeRepeats(mine, windowCalls);
    result.datera = { calls, perResize: perResize(calls.byRoute, o.n), perResizeTotal: round(calls.total / o.n, 3) };
    result.events = eventsSince(eventsBefore, await countEvents(kube, ns, provisionerName));
    const claimList = [...claims.objects.values()];
    result.failures = {
      warningEvents: result.events.warnings,
      infeasibleClaims: claimList.filter((c) => c.status?.allocatedResourceStatuses?.storage === 'ControllerResizeInfeasible').length,
      errorConditions: claimList.filter((c) => (c.status?.conditions ?? []).some((x: { type?: string }) => x.type === 'ControllerResizeError')).length,
    };
    if (running.httpUrl) {
      const m = await resizeMetrics(running.httpUrl).catch(() => undefined);
      if (m) {
        result.oursMetrics = { resizeTotal: m.resizeTotal, resizeFailed: m.resizeFailed, durationSum: m.durationSum, durationCount: m.durationCount };
        result.failures.metricFailed = m.resizeFailed;
      }
    }
    // Read every app instance back: the size and the recomputed performance policy.
    const expectedIopsMax = RESIZE_TEMPLATE.iopsPerGiB * TO_GIB;
    const rb = { checked: 0, sizeOk: 0, qosOk: 0, expectedIopsMax };
    await pool(names, 16, async (name) => {
      const pv = volumes.objects.get(pvOf.get(name) ?? '');
      const ai = pv?.spec?.flexVolume?.options?.volumeID as string | undefined;
      if (!ai) return;
      const inst = await o.sim.appInstance(ai);
      const vol = inst.storage_instances?.[0]?.volumes?.[0];
      rb.checked++;
      if (vol?.size === TO_GIB) rb.sizeOk++;
      if (vol?.performance_policy?.total_iops_max === expectedIopsMax) rb.qosOk++;
    });
    result.readBack = rb;
    const f = result.failures;
    o.log(`  resize ${label}: ${result.kubeApi.writesPerResizeTotal} API writes and ${result.datera.perResizeTotal} Datera calls per resize; read back ${rb.sizeOk}/${rb.checked} at ${toSize}, ${rb.qosOk} with ${expectedIopsMax} IOPS; failures: ${f.warningEvents} warning events, ${f.infeasibleClaims} refused, ${f.errorConditions} error conditions`);
  } catch (err) {
    result.error = (err as Error).stack ?? String(err);
    o.log(`  resize ${label}: ERROR ${(err as Error).message}`);
  } finally {
    sampler?.stop();
    for (const m of mirrors) await m.stop();
    await running?.proc.kill('SIGTERM', 10_000);
    await cluster.stop();
  }
  return result;
}
