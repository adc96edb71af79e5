// SPDX-License-Identifier: Apache-2.0
// Turns a results JSON into the markdown report (tables, targets met or not with the measured
// numbers, the evidence behind each miss) and an SVG bar chart. Every number comes from the JSON.
// Regenerate by hand: npx tsx bench/report.ts bench/results/<run id>.json [--latest] [--with other.json ...]
// (spec/bench/report.spec.ts checks that latest.md and latest.svg are exactly this output).
import { readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { BurstResult } from './lib/burst.js';
import type { PeerTuning } from './lib/contenders.js';
import type { FaultResult } from './lib/faults.js';
import type { ResizeResult } from './lib/resize.js';
import type { ScaleResult } from './lib/scale.js';
import type { ProfileSummary } from './profile.js';

export interface BenchResults {
  label: string;
  runId: string;
  startedAt: string;
  finishedAt: string;
  durationSec: number;
  machine: {
    nproc: number;
    cpuModel: string;
    memGiB: number;
    kernel: string;
    node: string;
    go: string;
    loadavgStart: number[];
    loadavgEnd: number[];
    kubernetes: string;
  };
  git: { commit: string; libChanges: string[]; libHash?: string };
  settings: {
    latencyMs: number;
    concurrency: number;
    kcm: { kcmQps: number; kcmBurst: number; pvSyncPeriod: string };
    apiserver: string;
    oursMode: string;
    oursNodeOptions?: string;
    /** What ours ran in dist mode (older results: dist/lib/main.js). */
    oursEntry?: string;
    contenders: Record<string, string>;
    peerTuning: PeerTuning;
    trace?: boolean;
    /** Repetitions per (N, contender) and the order they ran in. */
    repetitions?: { reps: number; order: string };
  };
  bursts: BurstResult[];
  tuning?: Array<{ tuning: PeerTuning | 'floor'; result: BurstResult }>;
  profile?: { n: number; file: string; summary: ProfileSummary; cpuSec?: BurstResult['process'] };
  scale?: ScaleResult & { cacheMemory?: Record<string, unknown> };
  faults?: FaultResult[];
  /** The resize run (ours only), one entry per repetition. */
  resize?: ResizeResult[];
}

export interface Target {
  id: string;
  target: string;
  measured: string;
  met: boolean | undefined;
}

const ORDER = ['floor', 'ideal', 'ours', 'ours-tuned', 'ours-tsx', 'peer-tuned', 'peer-default'];
const NAMES: Record<string, string> = {
  floor: 'floor (no provisioner)',
  ideal: 'ideal provisioner',
  ours: 'ours (as shipped)',
  'ours-tuned': 'ours at the tuned peer\'s QPS',
  'ours-tsx': 'ours under tsx',
  'peer-tuned': 'peer tuned',
  'peer-default': 'peer defaults (client-go QPS 5/burst 10, threadiness 4)',
};
const COLORS: Record<string, string> = {
  floor: '#9e9e9e',
  ideal: '#2e7d32',
  ours: '#1565c0',
  'ours-tuned': '#64b5f6',
  'ours-tsx': '#90caf9',
  'peer-tuned': '#ef6c00',
  'peer-default': '#c62828',
};

const f = (x: number | undefined, d = 1) => (x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(d));
const ratio = (a: number | undefined, b: number | undefined) => (a !== undefined && b !== undefined && b > 0 ? a / b : undefined);

/** Times that are absent when a run gave up: a missing one ranks above every measured one. */
const INFINITE_WHEN_MISSING = new Set(['allBoundSec', 'appInstancesGoneSec', 'pvsGoneSec']);

export function median(xs: number[]): number | undefined {
  if (!xs.length) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1]! + s[m]!) / 2;
}

/**
 * One result per (N, contender) from its repetitions: every numeric field the median of the
 * repetitions that have it (the times in INFINITE_WHEN_MISSING count as infinite where a run gave
 * up, so a median that lands on one stays absent); other fields from the first repetition;
 * `deleteComplete` only when every repetition completed; leftovers the worst repetition's.
 */
export function medianOf(runs: BurstResult[]): BurstResult {
  const merge = (vals: unknown[], key: string): unknown => {
    const present = vals.filter((v) => v !== undefined);
    if (present.length && present.every((v) => typeof v === 'number')) {
      const xs = [...(present as number[]), ...(INFINITE_WHEN_MISSING.has(key) ? Array(vals.length - present.length).fill(Infinity) : [])];
      const m = median(xs);
      return m === undefined || !Number.isFinite(m) ? undefined : Math.round(m * 1000) / 1000;
    }
    if (present.length && present.every((v) => v !== null && typeof v === 'object' && !Array.isArray(v))) {
      const keys = [...new Set(present.flatMap((v) => Object.keys(v as object)))];
      const out: Record<string, unknown> = {};
      for (const k of keys) {
        const m = merge(vals.map((v) => (v as Record<string, unknown> | undefined)?.[k]), k);
        if (m !== undefined) out[k] = m;
      }
      return out;
    }
    return present[0];
  };
  const keys = [...new Set([...runs.flatMap((r) => Object.keys(r)), ...INFINITE_WHEN_MISSING])];
  const out = {} as Record<string, unknown>;
  for (const k of keys) {
    const m = merge(runs.map((r) => (r as unknown as Record<string, unknown>)[k]), k);
    if (m !== undefined) out[k] = m;
  }
  const res = out as unknown as BurstResult;
  res.deleteComplete = runs.every((r) => r.deleteComplete);
  res.appInstancesLeft = Math.max(...runs.map((r) => r.appInstancesLeft));
  res.pvsLeft = Math.max(...runs.map((r) => r.pvsLeft));
  const errors = runs.filter((r) => r.error).map((r) => r.error!);
  if (errors.length) res.error = errors.join('\n');
  else delete res.error;
  delete res.rep;
  delete res.runDir;
  return res;
}

/** The repetitions of `kind` at `n`, in run order. */
function runsOf(bursts: BurstResult[], n: number, kind: string): BurstResult[] {
  return bursts.filter((b) => b.n === n && b.kind === kind);
}

/** The median result of each contender at `n` (see medianOf). */
function byKind(bursts: BurstResult[], n: number): Map<string, BurstResult> {
  const kinds = [...new Set(bursts.filter((b) => b.n === n).map((b) => b.kind))];
  return new Map(kinds.map((k) => [k, medianOf(runsOf(bursts, n, k))]));
}

/** "median (min–max)" of `get` over the repetitions; just the value for one repetition. */
function spreadCell<T>(runs: T[], get: (b: T) => number | undefined, d = 1): string {
  const xs = runs.map(get).filter((x): x is number => x !== undefined && Number.isFinite(x));
  if (!xs.length) return '–';
  const m = median(xs)!;
  if (runs.length === 1) return f(m, d);
  const missing = runs.length - xs.length;
  return `${f(m, d)} (${f(Math.min(...xs), d)}–${f(Math.max(...xs), d)})${missing ? ` [${missing} of ${runs.length} without a value]` : ''}`;
}

/** Seconds to all Bound: median over repetitions with min–max, or what the runs got to when they gave up. */
function boundCell(b: BurstResult | undefined, runs: BurstResult[] = b ? [b] : []): string {
  if (!b || !runs.length) return '–';
  const failed = runs.filter((x) => x.allBoundSec === undefined);
  if (failed.length === runs.length) {
    const x = failed[0]!;
    return x.error ? 'error' : `> ${f(x.bindLatencySec.max ?? 0)} (${x.bound}/${x.n})`;
  }
  if (runs.length === 1) return f(b.allBoundSec);
  const xs = runs.map((x) => x.allBoundSec).filter((x): x is number => x !== undefined);
  const med = b.allBoundSec === undefined ? `> ${f(Math.max(...xs))}` : f(b.allBoundSec);
  return `${med} (${f(Math.min(...xs))}–${f(Math.max(...xs))})${failed.length ? ` [${failed.length} of ${runs.length} did not bind all]` : ''}`;
}

/** The targets of issue 11, evaluated on the medians of the repetitions. */
export function evaluateTargets(r: BenchResults): Target[] {
  const out: Target[] = [];
  const nMax = Math.max(...r.bursts.map((b) => b.n), 0);
  const at = byKind(r.bursts, 1000).size ? byKind(r.bursts, 1000) : byKind(r.bursts, nMax);
  const nT = at.size ? [...at.values()][0]!.n : 0;
  const ours = at.get('ours');
  const pt = at.get('peer-tuned');
  const floor = at.get('floor');
  const ideal = at.get('ideal');
  const note = nT !== 1000 ? ` (N=${nT}; the target is stated for N=1000)` : '';
  if (ours?.allBoundSec !== undefined) {
    if (ideal) {
      const x = ratio(ours.allBoundSec, ideal.allBoundSec);
      out.push({ id: 'vs-ideal', target: 'N=1000: all Bound within 1.1x of the ideal provisioner', measured: `${f(ours.allBoundSec)} s vs ideal ${f(ideal.allBoundSec)} s = ${f(x, 2)}x${note}`, met: x === undefined ? undefined : x <= 1.1 });
    }
    if (floor) {
      const x = ratio(ours.allBoundSec, floor.allBoundSec);
      out.push({ id: 'vs-floor', target: 'N=1000: all Bound within 1.25x of the floor', measured: `${f(ours.allBoundSec)} s vs floor ${f(floor.allBoundSec)} s = ${f(x, 2)}x${note}`, met: x === undefined ? undefined : x <= 1.25 });
    }
    if (pt) {
      const x = ratio(pt.allBoundSec, ours.allBoundSec);
      out.push({ id: 'vs-peer-tuned', target: 'N=1000: all Bound ≥1.5x sooner than the peer tuned', measured: `${f(pt.allBoundSec)} s vs ${f(ours.allBoundSec)} s = ${f(x, 2)}x${note}`, met: x === undefined ? undefined : x >= 1.5 });
    }
  } else if (ours) {
    out.push({ id: 'vs-floor', target: 'N=1000: all Bound', measured: `ours did not bind all claims (${ours.bound}/${ours.n})`, met: false });
  }
  const perVol = (x: BurstResult | undefined, sec: number | undefined) => (x && sec !== undefined ? (1000 * sec) / x.n : undefined);
  const planeSec = (x: BurstResult | undefined) => (x?.plane ? Object.values(x.plane.provisionCpuSec).reduce((a, v) => a + v, 0) : undefined);
  if (ours?.process && pt?.process) {
    const o = perVol(ours, ours.process.provisionCpuSec)!;
    const p = perVol(pt, pt.process.provisionCpuSec)!;
    out.push({ id: 'cpu', target: 'CPU per provisioned volume, ours at or below the tuned peer\'s', measured: `${f(o, 2)} vs ${f(p, 2)} ms${note}`, met: o <= p });
    const ow = planeSec(ours);
    const pw = planeSec(pt);
    if (ow !== undefined && pw !== undefined) {
      const a = perVol(ours, ow + ours.process.provisionCpuSec)!;
      const b = perVol(pt, pw + pt.process.provisionCpuSec)!;
      out.push({ id: 'cpu-machine', target: 'CPU per provisioned volume, whole machine (contender + control plane), ours at or below the tuned peer\'s', measured: `${f(a, 2)} vs ${f(b, 2)} ms${note}`, met: a <= b });
    }
  }
  if (ours?.process) {
    out.push({ id: 'burst-rss', target: 'peak RSS during the N=1000 burst ≤100 MB', measured: `${f(ours.process.peakRssMB)} MB${note}`, met: ours.process.peakRssMB <= 100 });
  }
  const oursAt = [...new Set(r.bursts.map((b) => b.n))].sort((a, b) => a - b).map((n) => byKind(r.bursts, n).get('ours')).filter((b): b is BurstResult => !!b?.kubeApi);
  if (oursAt.length) {
    const maxW = Math.max(...oursAt.map((b) => Math.max(b.kubeApi!.provisionWritesPerVolume, b.kubeApi!.deleteWritesPerVolume)));
    const reads = oursAt.reduce((s, b) => s + b.kubeApi!.readsOutsideWatches, 0);
    out.push({
      id: 'api-writes',
      target: '≤2 Kubernetes writes per volume, provisioning and deleting, and no reads outside watches',
      measured: `${oursAt.map((b) => `N=${b.n}: ${f(b.kubeApi!.provisionWritesPerVolume, 3)} / ${f(b.kubeApi!.deleteWritesPerVolume, 3)}`).join(', ')}; ${reads} get/list after start-up`,
      met: maxW <= 2 && reads === 0,
    });
  }
  const s = r.scale?.contenders.find((c) => c.kind === 'ours');
  if (s && r.scale) {
    const N = r.scale.n.toLocaleString('en');
    out.push({ id: 'scale-rss', target: `${N} bound claims: RSS at sync ≤120 MB`, measured: `${f(s.rssAtSyncedMB)} MB once caches synced (${f(s.rssAfterSettleMB)} MB after settling, peak ${f(s.peakRssMB)} MB)`, met: s.rssAtSyncedMB <= 120 });
    out.push({ id: 'scale-ready', target: `${N} bound claims: ready within 2 s`, measured: s.readyMs === undefined ? 'never ready' : `${f(s.readyMs / 1000, 2)} s from spawn to /readyz 200 (initial lists ${s.cachesSyncedMs} ms)`, met: s.readyMs !== undefined && s.readyMs <= 2000 });
    out.push({ id: 'scale-datera', target: `${N} bound claims: 0 Datera calls at start-up`, measured: `${s.dateraCalls} calls`, met: s.dateraCalls === 0 });
  }
  const fr = (r.faults ?? []).filter((x) => x.kind === 'ours');
  if (fr.length) {
    const bad = fr.filter((x) => !x.check || x.error || x.check.leaked || x.check.duplicates || x.check.unbound);
    out.push({
      id: 'faults',
      target: 'fault runs: 0 leaked / 0 duplicated / 0 unbound',
      measured: fr.map((x) => `${x.fault}: ${x.check ? `${x.check.leaked}/${x.check.duplicates}/${x.check.unbound}` : 'error'}`).join('; '),
      met: bad.length === 0,
    });
  }
  return out;
}

function table(head: string[], rows: string[][]): string {
  return [`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

/** Markdown for a results object; `chart` is the SVG file name to embed; `supplements` are other runs shown after it. */
export function markdown(r: BenchResults, chart: string, supplements: Array<{ file: string; results: BenchResults }> = [], source?: { file: string; latest: boolean }): string {
  const ns = [...new Set(r.bursts.map((b) => b.n))].sort((a, b) => a - b);
  const kinds = ORDER.filter((k) => r.bursts.some((b) => b.kind === k));
  const L: string[] = [];
  const m = r.machine;
  L.push(`# Benchmark: our provisioner vs the Go peer (sig-storage-lib-external-provisioner v13)`);
  L.push('');
  if (source) {
    L.push(`Generated by \`npx tsx bench/report.ts bench/results/${source.file}${source.latest ? ' --latest' : ''}${supplements.map((s) => ` --with bench/results/${basename(s.file)}`).join('')}\` from [${source.file}](${source.file}) (commit ${r.git.commit.slice(0, 12)}); every number below comes from that file.`);
    L.push('');
  }
  L.push(`Run \`${r.runId}\` (${r.startedAt} → ${r.finishedAt}, ${Math.round(r.durationSec / 60)} min). Machine: ${m.nproc} CPUs (${m.cpuModel}), ${m.memGiB} GiB, Linux ${m.kernel}, Node ${m.node}, ${m.go}; load average ${m.loadavgStart.join(' / ')} at start, ${m.loadavgEnd.join(' / ')} at the end (the machine is shared). Kubernetes ${m.kubernetes}. Commit ${r.git.commit.slice(0, 12)}${r.git.libChanges.length ? ` plus ${r.git.libChanges.length} uncommitted path(s) under lib/ (the working tree is what ran)` : ''}.`);
  L.push('');
  L.push(`Settings: simulator ${r.settings.latencyMs} ms per call; ours runs ${r.settings.oursMode === 'dist' ? `${r.settings.oursEntry === 'dist/provisioner.mjs' ? 'bundled' : 'compiled'} (\`node ${r.settings.oursEntry ?? 'dist/lib/main.js'}\`${r.settings.oursNodeOptions ? ` with NODE_OPTIONS=${r.settings.oursNodeOptions} as the image sets it` : ''})` : 'under tsx'} from a copy of lib/ taken at the start${r.git.libHash ? ` (hash ${r.git.libHash})` : ''}; kube-controller-manager QPS ${r.settings.kcm.kcmQps} / burst ${r.settings.kcm.kcmBurst}, PV sync period ${r.settings.kcm.pvSyncPeriod}; ${r.settings.apiserver}; the driver keeps ${r.settings.concurrency} creates/deletes in flight. A fresh control plane per measured run.`);
  L.push('');
  for (const k of kinds) L.push(`- **${NAMES[k] ?? k}**: ${r.settings.contenders[k] ?? r.bursts.find((b) => b.kind === k)?.describe ?? ''}`);
  L.push('');

  if (ns.length) {
    const reps = Math.max(...ns.flatMap((n) => kinds.map((k) => runsOf(r.bursts, n, k).length)));
    const order = r.settings.repetitions?.order;
    L.push(reps > 1
      ? `Every cell is the **median of ${reps} repetitions**, with the range (min–max) in brackets; the contenders ran interleaved (${order ?? 'repetition 1 of every contender, then repetition 2, …'}), each run on its own fresh control plane. Every run is listed, with its work directory, under "Every run".`
      : 'One run per cell (no repetitions: a single sample on a shared machine; compare with care).');
    L.push('');
    L.push('## Time until every claim is Bound (seconds; N claims created at once)');
    L.push('');
    const ratioDefs: Array<[string, string, string]> = [
      ['ours', 'ideal', 'ours ÷ ideal'],
      ['ours', 'floor', 'ours ÷ floor'],
      ['peer-tuned', 'ours', 'peer tuned ÷ ours'],
      ['peer-default', 'ours', 'peer defaults ÷ ours'],
    ];
    const ratioCols = ratioDefs.filter(([a, b]) => kinds.includes(a) && kinds.includes(b));
    L.push(table(['N', ...kinds.map((k) => NAMES[k] ?? k), ...ratioCols.map(([, , t]) => `${t} (medians)`)], ns.map((n) => {
      const b = byKind(r.bursts, n);
      const cells = kinds.map((k) => boundCell(b.get(k), runsOf(r.bursts, n, k)));
      const rat = ratioCols.map(([a, c]) => `${f(ratio(b.get(a)?.allBoundSec, b.get(c)?.allBoundSec), 2)}x`);
      return [String(n), ...cells, ...rat];
    })));
    L.push('');
    L.push('Per-claim latency (create → Bound), p50 / p90 seconds (medians over repetitions):');
    L.push('');
    L.push(table(['N', ...kinds.map((k) => NAMES[k] ?? k)], ns.map((n) => {
      const b = byKind(r.bursts, n);
      return [String(n), ...kinds.map((k) => { const x = b.get(k); return x ? `${f(x.bindLatencySec.p50)} / ${f(x.bindLatencySec.p90)}` : '–'; })];
    })));
    L.push('');
    L.push('## After deleting every claim: seconds until all app instances are gone; until all PVs are gone');
    L.push('');
    L.push(table(['N', ...kinds.map((k) => NAMES[k] ?? k)], ns.map((n) => {
      const b = byKind(r.bursts, n);
      return [String(n), ...kinds.map((k) => {
        const x = b.get(k);
        const runs = runsOf(r.bursts, n, k);
        if (!x) return '–';
        if (!x.deleteComplete) return `incomplete in ${runs.filter((y) => !y.deleteComplete).length} of ${runs.length} (at worst ${x.appInstancesLeft} AIs, ${x.pvsLeft} PVs left)`;
        const pvs = spreadCell(runs, (y) => y.pvsGoneSec);
        return k === 'floor' || k === 'ideal' ? `–; PVs ${pvs}` : `${spreadCell(runs, (y) => y.appInstancesGoneSec)}; PVs ${pvs}`;
      })];
    })));
    L.push('');
    L.push('## Cost per volume (from the API server\'s audit log, the simulator\'s call log and /proc)');
    L.push('');
    L.push('Medians over repetitions; CPU rows with the range. "Control plane" is kube-apiserver + etcd + kube-controller-manager (`/proc/<pid>/stat` utime+stime from the first create to all Bound, ÷ N): it includes serving the driver and binding, which the floor shows alone. "Whole machine" is the contender plus the control plane (the simulator and the driver are left out: the same work for every provisioner that calls Datera).');
    L.push('');
    const rows: string[][] = [];
    const perVol = (x: BurstResult, sec: number | undefined) => (sec === undefined ? undefined : (1000 * sec) / x.n);
    const planeSum = (x: BurstResult) => (x.plane ? Object.values(x.plane.provisionCpuSec).reduce((a, v) => a + v, 0) : undefined);
    for (const n of ns) {
      const b = byKind(r.bursts, n);
      const cell = (k: string, fn: (x: BurstResult) => string) => { const x = b.get(k); return x ? fn(x) : '–'; };
      const spread = (k: string, get: (x: BurstResult) => number | undefined, d = 2) => (b.get(k) ? spreadCell(runsOf(r.bursts, n, k), get, d) : '–');
      rows.push([`N=${n}: Kubernetes writes per volume, provisioning / deleting`, ...kinds.map((k) => cell(k, (x) => x.kubeApi ? `${f(x.kubeApi.provisionWritesPerVolume, 2)} / ${f(x.kubeApi.deleteWritesPerVolume, 2)}` : '–'))]);
      rows.push([`N=${n}: get/list after start-up (start-up lists)`, ...kinds.map((k) => cell(k, (x) => x.kubeApi ? `${x.kubeApi.readsOutsideWatches} (${x.kubeApi.startupLists})` : '–'))]);
      rows.push([`N=${n}: Datera calls per volume, provisioning / deleting`, ...kinds.map((k) => cell(k, (x) => x.datera ? `${f(x.datera.provisionCallsPerVolume, 2)} / ${f(x.datera.deleteCallsPerVolume, 2)}` : '–'))]);
      rows.push([`N=${n}: CPU seconds start-up / provisioning / deleting`, ...kinds.map((k) => cell(k, (x) => x.process ? `${f(x.process.startupCpuSec, 2)} / ${f(x.process.provisionCpuSec, 2)} / ${f(x.process.deleteCpuSec, 2)}` : '–'))]);
      rows.push([`N=${n}: CPU ms per provisioned volume, contender`, ...kinds.map((k) => spread(k, (x) => perVol(x, x.process?.provisionCpuSec)))]);
      if (kinds.some((k) => b.get(k)?.plane)) {
        rows.push([`N=${n}: CPU ms per provisioned volume, kube-apiserver / etcd / kube-controller-manager`, ...kinds.map((k) => cell(k, (x) => x.plane ? `${f(perVol(x, x.plane.provisionCpuSec['kube-apiserver']), 2)} / ${f(perVol(x, x.plane.provisionCpuSec.etcd), 2)} / ${f(perVol(x, x.plane.provisionCpuSec['kube-controller-manager']), 2)}` : '–'))]);
        rows.push([`N=${n}: CPU ms per provisioned volume, control plane`, ...kinds.map((k) => spread(k, (x) => perVol(x, planeSum(x))))]);
        rows.push([`N=${n}: CPU ms per provisioned volume, whole machine (contender + control plane)`, ...kinds.map((k) => spread(k, (x) => perVol(x, planeSum(x) === undefined ? undefined : planeSum(x)! + (x.process?.provisionCpuSec ?? 0))))]);
        rows.push([`N=${n}: CPU ms per deleted volume, contender / control plane`, ...kinds.map((k) => cell(k, (x) => `${f(perVol(x, x.process?.deleteCpuSec), 2)} / ${f(perVol(x, x.plane ? Object.values(x.plane.deleteCpuSec).reduce((a, v) => a + v, 0) : undefined), 2)}`))]);
      }
      rows.push([`N=${n}: peak RSS MB`, ...kinds.map((k) => spread(k, (x) => x.process?.peakRssMB, 1))]);
      if (kinds.some((k) => b.get(k)?.events)) {
        rows.push([`N=${n}: events arrived (Event objects / occurrences), the contender's`, ...kinds.map((k) => cell(k, (x) => x.events && k !== 'floor' ? `${x.events.contenderObjects} / ${x.events.contenderOccurrences}` : '–'))]);
        rows.push([`N=${n}: event writes the API server accepted / rejected`, ...kinds.map((k) => cell(k, (x) => x.events?.writesAccepted !== undefined ? `${x.events.writesAccepted} / ${x.events.writesRejected ?? 0}` : '–'))]);
        rows.push([`N=${n}: claims without a ProvisioningSucceeded event (dropped)`, ...kinds.map((k) => cell(k, (x) => x.events && k !== 'floor' ? `${x.events.claimsWithoutSuccessEvent}${x.events.oursDropped ? `; /metrics: ${Object.entries(x.events.oursDropped).map(([m, v]) => `${m} ${v}`).join(', ')}` : ''}` : '–'))]);
      }
    }
    L.push(table(['', ...kinds.map((k) => NAMES[k] ?? k)], rows));
    L.push('');
    if (kinds.some((k) => ns.some((n) => byKind(r.bursts, n).get(k)?.events))) {
      L.push('Events: the contender\'s Event objects in the run\'s namespace after the burst (an object folds repeats into its `count`: occurrences), the event creates/patches its ServiceAccount sent that the API server accepted or rejected (audit log), and the claims left without any ProvisioningSucceeded event: a provisioner sends one per volume, so each of these is an event dropped or never sent (client-go\'s recorder drops silently under load; ours drops beyond its in-flight limit and logs it at debug).');
      L.push('');
    }
    const cross = ns.map((n) => byKind(r.bursts, n).get('ours')).filter((b): b is BurstResult => !!(b?.oursMetrics && b.kubeApi));
    if (cross.length) {
      L.push('Cross-check of ours (first repetition): its own `/metrics` (`kubernetes_api_requests_total`, typed calls, no watches) against the audit log:');
      L.push('');
      L.push(table(['N', 'request', 'audit log', '/metrics'], cross.flatMap((m) => {
        const b = runsOf(r.bursts, m.n, 'ours').find((x) => x.oursMetrics && x.kubeApi)!;
        const audit: Record<string, number> = {};
        for (const ph of Object.values(b.kubeApi!.counts) as Array<Record<string, number>>) for (const [k, v] of Object.entries(ph)) if (!k.startsWith('watch ')) audit[k] = (audit[k] ?? 0) + v;
        const keys = [...new Set([...Object.keys(audit), ...Object.keys(b.oursMetrics!.kube)])].sort();
        return keys.map((k) => [String(b.n), k, String(audit[k] ?? 0), String(b.oursMetrics!.kube[k] ?? 0)]);
      })));
      L.push('');
    }
    if (reps > 1 || r.bursts.some((b) => b.runDir)) {
      L.push('### Every run');
      L.push('');
      L.push(table(['N', 'contender', 'repetition', 'all Bound (s)', 'CPU ms/volume', 'control plane CPU ms/volume', 'work directory (bench/results/tmp/…)'], r.bursts.map((x) => [
        String(x.n), NAMES[x.kind] ?? x.kind, String(x.rep ?? 1), boundCell(x), f(perVol(x, x.process?.provisionCpuSec), 2), f(perVol(x, planeSum(x)), 2),
        x.runDir ? `\`${x.runDir.split('/bench/results/tmp/').pop()}\`` : '–',
      ])));
      L.push('');
    }
  }
  if (r.scale) {
    const s = r.scale;
    L.push(`## Start-up with ${s.n.toLocaleString('en')} bound claims and PVs`);
    L.push('');
    L.push(`Populated in ${f(s.populateSec)} s; the binder had bound them all after ${f(s.allBoundSec)} s. Each provisioner then starts alone; RSS is sampled as soon as it reports its caches synced, and again ${'5'} s later.`);
    L.push('');
    L.push(table(['', 'ready (ms)', 'initial lists (ms)', 'RSS at sync (MB)', 'RSS after 5 s (MB)', 'peak RSS (MB)', 'CPU s', 'Datera calls', 'API requests'], s.contenders.map((c) => [
      NAMES[c.kind] ?? c.kind,
      c.readyMs === undefined ? (c.error ?? 'never') : String(c.readyMs),
      c.cachesSyncedMs === undefined ? '–' : String(c.cachesSyncedMs),
      f(c.rssAtSyncedMB), f(c.rssAfterSettleMB), f(c.peakRssMB), f(c.cpuSec, 2), String(c.dateraCalls),
      Object.entries(c.kubeApi).map(([k, v]) => `${k} ${v}`).join(', '),
    ])));
    L.push('');
    L.push('"ready": ours, spawn → first 200 from `/readyz`; the peer has no readiness endpoint, so spawn → "Started provisioner controller" (after its informers synced).');
    L.push('');
  }

  if (r.faults?.length) {
    L.push('## Fault runs (500-claim burst each)');
    L.push('');
    L.push(table(['fault', 'contender', 'all Bound (s)', 'unbound', 'leaked', 'duplicates', 'untagged', 'left after delete (AIs / PVs)', 'detail'], r.faults.map((x) => [
      x.fault,
      NAMES[x.kind] ?? x.kind,
      x.allBoundSec === undefined ? 'not all' : f(x.allBoundSec),
      x.check ? String(x.check.unbound) : 'error',
      x.check ? String(x.check.leaked) : '–',
      x.check ? String(x.check.duplicates) : '–',
      x.check ? String(x.check.untagged) : '–',
      x.afterDelete ? `${x.afterDelete.appInstancesLeft} / ${x.afterDelete.pvsLeft}` : '–',
      x.error ? `error: ${x.error.split('\n')[0]}` :
        x.kills ? `${x.kills.length} kills at ${x.kills.map((k) => k.appInstances).join(', ')} app instances (${x.kills.map((k) => k.bound).join(', ')} bound); ${x.dateraCalls?.total ?? 0} Datera calls` :
        x.restart ? `restart at ${x.restart.bound} bound, took ${f(x.restart.tookSec)} s` :
        x.dateraCalls ? `${x.dateraCalls.faults} injected faults in ${x.dateraCalls.total} calls, ${x.dateraCalls.logins} logins` : '',
    ])));
    L.push('');
  }

  if (r.resize?.length) L.push(...resizeSection(r.resize, r.settings.latencyMs));

  const targets = evaluateTargets(r);
  if (targets.length) {
    L.push('## Targets');
    L.push('');
    L.push(table(['target', 'measured', 'met?'], targets.map((t) => [t.target, t.measured, t.met === undefined ? 'n/a' : t.met ? '**met**' : '**not met**'])));
    L.push('');
  }
  const why = evidence(r, targets);
  if (why.length) {
    L.push('## Evidence for the misses (measured in this run)');
    L.push('');
    L.push(...why);
    L.push('');
  }
  if (r.tuning?.length) {
    L.push('## Tuning sweep of the peer');
    L.push('');
    L.push(table(['settings', 'all Bound (s)', 'p90 (s)', 'writes/volume', 'CPU s provisioning'], r.tuning.map((t) => [
      t.tuning === 'floor' ? 'floor' : `QPS ${t.tuning.qps} / burst ${t.tuning.burst} / threadiness ${t.tuning.threads}${t.tuning.pvSaveQps ? ` / background PV save ${t.tuning.pvSaveQps}/s` : ''}`,
      boundCell(t.result), f(t.result.bindLatencySec.p90), t.result.kubeApi ? f(t.result.kubeApi.provisionWritesPerVolume, 2) : '–', t.result.process ? f(t.result.process.provisionCpuSec, 2) : '–',
    ])));
    L.push('');
  }
  for (const sup of supplements) L.push(...supplementSection(sup.file, sup.results));
  if (ns.length) {
    L.push(`![time to all Bound and to all app instances gone, per N and contender](${chart})`);
    L.push('');
  }
  return L.join('\n');
}

/**
 * The resize run's section: the time until every claim's controller part of the resize is done,
 * its per-claim spread, and the cost per resize (API writes by request, Datera calls by route,
 * events by reason) next to what the resizer's steps should cost (`expected`, recorded in the
 * run), CPU and memory of ours, and every sign of a failure. Cells are medians over the
 * repetitions with their range; a key a repetition lacks counts 0 there; failures show the worst
 * repetition and the read-back the worst.
 */
export function resizeSection(runs: ResizeResult[], latencyMs: number): string[] {
  const L: string[] = [];
  const first = runs[0]!;
  const n = first.n;
  const reps = runs.length;
  const to = `${first.toGiB}Gi`;
  const exp = first.expected;
  const expWrites = Object.values(exp.kubeWrites).reduce((a, v) => a + v, 0);
  const expCalls = Object.values(exp.dateraCalls).reduce((a, v) => a + v, 0);
  const iops = first.readBack?.expectedIopsMax;
  L.push(`## Resize: ${n} claims grown at once (ours only)`);
  L.push('');
  L.push(
    `${n} claims of a class with \`allowVolumeExpansion: true\` whose template sets a per-GiB IOPS limit (so every grow also recomputes the volume's performance policy${iops !== undefined ? `, to ${iops} IOPS at ${to}` : ''}) are provisioned and Bound first (not measured); then each is grown from ${first.fromGiB}Gi to ${to} by one merge patch of its request, all ${n} patches sent at once. ` +
      `Measured: from the first patch until every claim is at \`NodeResizePending\` for ${to} and its PV's capacity is ${to}, i.e. the controller's part of the resize (claim status, Datera volume and performance policy, PV). ` +
      'The file system step (kubelet calling the driver\'s `expandfs` and setting the claim\'s capacity) needs kubelets, which the benchmark plane does not have: it is out of scope here (the real-node specs cover it). ' +
      'Only ours runs: the Go peer (sig-storage-lib-external-provisioner) has no resizer, and kube-controller-manager does not expand flexVolume PVs.',
  );
  L.push('');
  const c = first.config;
  const how = c ? ` Ours's effective settings, from its start-up log: ${Object.entries(c).map(([k, v]) => `${k} ${String(v)}`).join(', ')}; the simulator answers each call after ${latencyMs} ms.` : ` The simulator answers each call after ${latencyMs} ms.`;
  L.push(`${reps > 1 ? `Every cell is the median of ${reps} repetitions with the range (min–max), each on a fresh control plane; failures are the worst repetition's.` : 'One run (no repetitions: a single sample on a shared machine).'}${how}`);
  L.push('');
  const sum = (o: Record<string, number> | undefined) => (o ? Object.values(o).reduce((a, v) => a + v, 0) : undefined);
  const perMs = (x: ResizeResult, sec: number | undefined) => (sec === undefined ? undefined : (1000 * sec) / x.n);
  const worst = (get: (x: ResizeResult) => number | undefined) => {
    const xs = runs.map(get).filter((v): v is number => v !== undefined);
    return xs.length ? String(Math.max(...xs)) : '–';
  };
  const resizedCell = runs.every((x) => x.resized === x.n && x.allResizedSec !== undefined)
    ? `${n}/${n}${reps > 1 ? ' in every repetition' : ''}`
    : runs.map((x) => `${x.resized}/${x.n}${x.error ? ` (error: ${x.error.split('\n')[0]})` : ''}`).join('; ');
  const fl = (x: ResizeResult) => x.failures;
  const rows: string[][] = [
    ['claims resized (controller part done)', resizedCell],
    [`first patch → all ${n} resized (s)`, spreadCell(runs, (x) => x.allResizedSec)],
    ['per claim, its patch → resized: p50 / p90 (s)', `${spreadCell(runs, (x) => x.latencySec?.p50, 2)} / ${spreadCell(runs, (x) => x.latencySec?.p90, 2)}`],
    ['per claim, its patch → the resizer\'s first status (`ControllerResizeInProgress`): p50 / p90 (s)', `${spreadCell(runs, (x) => x.startLatencySec?.p50, 2)} / ${spreadCell(runs, (x) => x.startLatencySec?.p90, 2)}`],
    ['per claim, from the audit log: patch → ours\'s first status patch / → its PV patch (the Datera calls) / → its second status patch, p50 (s)', `${spreadCell(runs, (x) => x.phases?.toFirstStatus.p50, 2)} / ${spreadCell(runs, (x) => x.phases?.toPvPatch.p50, 2)} / ${spreadCell(runs, (x) => x.phases?.toSecondStatus.p50, 2)}`],
    ['the same, p90 (s)', `${spreadCell(runs, (x) => x.phases?.toFirstStatus.p90, 2)} / ${spreadCell(runs, (x) => x.phases?.toPvPatch.p90, 2)} / ${spreadCell(runs, (x) => x.phases?.toSecondStatus.p90, 2)}`],
    [`resizes in flight at once, at most (between a claim's first and second status patch; ours's workers: ${c?.workers ?? '?'})`, spreadCell(runs, (x) => x.phases?.maxInFlight, 0)],
    [`ours's Datera calls during the resize as it timed them, mean ms per call (the simulator adds ${latencyMs} ms)`, spreadCell(runs, (x) => x.dateraLatency?.meanMs, 1)],
    [`the driver sent all ${n} patches in (s)`, spreadCell(runs, (x) => x.patchSec, 2)],
    [`Kubernetes API writes per resize (expected ${expWrites})`, spreadCell(runs, (x) => x.kubeApi?.writesPerResizeTotal, 2)],
    ['get/list during the resize (reads outside the watches)', spreadCell(runs, (x) => x.kubeApi?.reads, 0)],
    ['writes the API server refused (e.g. 409 on a stale resourceVersion)', spreadCell(runs, (x) => x.kubeApi?.writesRejected, 0)],
    ['work repeated: claims with more than 2 status patches / PVs patched again / app instances whose metadata was read again', `${spreadCell(runs, (x) => x.repeats?.claimsWithExtraStatusPatches, 0)} / ${spreadCell(runs, (x) => x.repeats?.pvsPatchedAgain, 0)} / ${spreadCell(runs, (x) => x.repeats?.appInstancesReadAgain, 0)}`],
    [`Datera calls per resize (expected ${expCalls})`, spreadCell(runs, (x) => x.datera?.perResizeTotal, 2)],
    ['CPU of ours during the resize: seconds; ms per resize', `${spreadCell(runs, (x) => x.process?.cpuSec, 2)}; ${spreadCell(runs, (x) => perMs(x, x.process?.cpuSec), 2)}`],
    ['CPU of the control plane (kube-apiserver + etcd + kube-controller-manager) during the resize, ms per resize', spreadCell(runs, (x) => perMs(x, sum(x.plane)), 2)],
    ['RSS of ours: when all were resized; peak since start (MB)', `${spreadCell(runs, (x) => x.process?.rssAtDoneMB)}; ${spreadCell(runs, (x) => x.process?.peakRssMB)}`],
    ['ours\'s own `controller_persistentvolumeclaim_resize_duration_seconds`, mean (s)', spreadCell(runs, (x) => (x.oursMetrics?.durationCount ? x.oursMetrics.durationSum / x.oursMetrics.durationCount : undefined), 2)],
    ['failures: Warning events of ours / claims refused (`ControllerResizeInfeasible`) / `ControllerResizeError` conditions / `resize_failed_total` (worst repetition)', `${worst((x) => fl(x)?.warningEvents)} / ${worst((x) => fl(x)?.infeasibleClaims)} / ${worst((x) => fl(x)?.errorConditions)} / ${worst((x) => fl(x)?.metricFailed)}`],
    [
      `read back from the simulator: volumes at ${to} / with total_iops_max ${iops ?? '?'} (worst repetition)`,
      runs.every((x) => x.readBack) ? `${Math.min(...runs.map((x) => x.readBack!.sizeOk))} / ${Math.min(...runs.map((x) => x.readBack!.qosOk))} of ${n}` : '–',
    ],
  ];
  L.push(table(['', reps > 1 ? 'median (min–max)' : 'measured'], rows));
  L.push('');
  const byKey = (title: string, expected: Record<string, number>, get: (x: ResizeResult) => Record<string, number> | undefined) => {
    const keys = [...new Set([...Object.keys(expected), ...runs.flatMap((x) => Object.keys(get(x) ?? {}))])];
    L.push(title);
    L.push('');
    const med = (k: string) => median(runs.map((x) => get(x)).filter((o): o is Record<string, number> => !!o).map((o) => o[k] ?? 0));
    L.push(table(['', 'expected', reps > 1 ? 'measured, median (min–max)' : 'measured'], keys.map((k) => {
      const cell = spreadCell(runs, (x) => (get(x) ? (get(x)![k] ?? 0) : undefined), 2);
      return [`\`${k}\``, String(expected[k] ?? 0), cell];
    })));
    L.push('');
    const over = keys.map((k) => [k, (med(k) ?? 0) - (expected[k] ?? 0)] as const).filter(([, d]) => Math.abs(d) >= 0.005);
    if (over.length) {
      L.push(`Differs from expected (median − expected, per resize): ${over.map(([k, d]) => `\`${k}\` ${d > 0 ? '+' : '−'}${f(Math.abs(d), 2)}`).join('; ')}.`);
      L.push('');
    }
  };
  byKey('Kubernetes API writes per resize, by request (the API server\'s audit log of ours\'s ServiceAccount, first patch → 3 s after the last claim was resized):', exp.kubeWrites, (x) => x.kubeApi?.writesPerResize);
  byKey('Datera calls per resize, by route (the simulator\'s call log, same window; the driver\'s own read-back excluded):', exp.dateraCalls, (x) => x.datera?.perResize);
  byKey('Events of ours per resize, by reason (Event objects in the run\'s namespace and their counts, after the run):', exp.events, (x) => (x.events ? Object.fromEntries(Object.entries(x.events.byReason).map(([k, v]) => [k, v / x.n])) : undefined));
  const others = runs[0]?.events?.otherComponents ?? {};
  if (Object.keys(others).length) {
    L.push(`Events of other components in the namespace (first repetition): ${Object.entries(others).map(([k, v]) => `${k} ${v}`).join(', ')}.`);
    L.push('');
  }
  if (reps > 1 || runs.some((x) => x.runDir)) {
    L.push(table(['repetition', 'resized', 'all resized (s)', 'p50 / p90 (s)', 'writes / Datera calls per resize', 'CPU ms per resize', 'work directory (bench/results/tmp/…)'], runs.map((x) => [
      String(x.rep ?? 1),
      `${x.resized}/${x.n}`,
      f(x.allResizedSec),
      x.latencySec ? `${f(x.latencySec.p50, 2)} / ${f(x.latencySec.p90, 2)}` : '–',
      `${f(x.kubeApi?.writesPerResizeTotal, 2)} / ${f(x.datera?.perResizeTotal, 2)}`,
      f(perMs(x, x.process?.cpuSec), 2),
      x.runDir ? `\`${x.runDir.split('/bench/results/tmp/').pop()}\`` : '–',
    ])));
    L.push('');
  }
  return L;
}

/** A separate, smaller run that isolates one cause (its own plane, same settings otherwise). */
function supplementSection(file: string, r: BenchResults): string[] {
  const L: string[] = [];
  const ns = [...new Set(r.bursts.map((b) => b.n))].sort((a, b) => a - b);
  const kinds = ORDER.filter((k) => r.bursts.some((b) => b.kind === k));
  L.push(`## Supplementary run \`${r.runId}\` (${basename(file)})`);
  L.push('');
  L.push(`A separate run (load average ${r.machine.loadavgStart.join(' / ')} at start) to separate the causes above; compare within it, not across runs.`);
  L.push('');
  for (const k of kinds) L.push(`- **${NAMES[k] ?? k}**: ${r.settings.contenders[k] ?? ''}`);
  L.push('');
  const rows: string[][] = [];
  for (const n of ns) {
    const b = byKind(r.bursts, n);
    const floor = b.get('floor')?.allBoundSec;
    for (const k of kinds) {
      const x = b.get(k)!;
      rows.push([
        String(n),
        NAMES[k] ?? k,
        boundCell(x),
        k === 'floor' ? '1.00x' : `${f(ratio(x.allBoundSec, floor), 2)}x`,
        `${f(x.bindLatencySec.p50)} / ${f(x.bindLatencySec.p90)}`,
        x.kubeApi ? f(x.kubeApi.provisionWritesPerVolume, 2) : '–',
        x.process ? f((1000 * x.process.provisionCpuSec) / x.n, 2) : '–',
        k === 'floor' ? `– (${f(x.pvsGoneSec)})` : `${f(x.appInstancesGoneSec)} (${f(x.pvsGoneSec)})`,
      ]);
    }
  }
  L.push(table(['N', 'contender', 'all Bound (s)', '÷ floor', 'p50 / p90 (s)', 'writes/volume', 'CPU ms/volume', 'all gone after delete (s)'], rows));
  L.push('');
  const traced = r.bursts.filter((x) => x.trace);
  if (traced.length) {
    const ph = (p?: { p50: number; p90: number }) => (p ? `${f(p.p50, 2)} / ${f(p.p90, 2)}` : '–');
    L.push('Where each claim\'s time goes (p50 / p90 seconds, from the audit log of this tracing run, which also logs kube-controller-manager):');
    L.push('');
    L.push(table(['N', 'contender', 'created → marked by the binder', 'marked → PV written', 'created → PV written', 'PV written → Bound', 'binder writes per claim'], traced.map((x) => [
      String(x.n), NAMES[x.kind] ?? x.kind, ph(x.trace!.createdToMarked), ph(x.trace!.markedToPv), ph(x.trace!.createdToPv), ph(x.trace!.pvToBound), f(x.trace!.kcmWritesPerClaim, 2),
    ])));
    L.push('');
  }
  return L;
}

/** Measured facts behind each missed target, with the numbers of this run. */
function evidence(r: BenchResults, targets: Target[]): string[] {
  const out: string[] = [];
  const missed = new Set(targets.filter((t) => t.met === false).map((t) => t.id));
  const nMax = Math.max(...r.bursts.map((b) => b.n), 0);
  const b = byKind(r.bursts, nMax);
  const ours = b.get('ours');
  const pt = b.get('peer-tuned');
  const floor = b.get('floor');
  const tuned = b.get('ours-tuned');
  const cpuMs = (x?: BurstResult) => (x?.process ? (1000 * x.process.provisionCpuSec) / x.n : undefined);
  if ((missed.has('vs-peer-tuned') || missed.has('vs-floor') || missed.has('vs-ideal')) && ours) {
    const c = ours.config ?? {};
    const qps = Number(c.kubeApiQps ?? NaN);
    const burst = Number(c.kubeApiBurst ?? NaN);
    const separateEvents = c.eventQps !== undefined;
    const writes = ours.kubeApi?.provisionWritesPerVolume ?? 2;
    const pvWrites = separateEvents ? 1 : writes;
    const limiterSec = Math.max(0, (pvWrites * nMax - burst) / qps);
    if (Number.isFinite(limiterSec)) {
      out.push(`- **Client budget (N=${nMax})**: ours ran with PV writes at QPS ${qps} / burst ${burst}${separateEvents ? ` and events on their own budget (QPS ${String(c.eventQps)} / burst ${String(c.eventBurst)})` : ', events in the same budget'}; ${f(pvWrites, 2)} limited write(s) per volume on the PV path means at least ${f(limiterSec, 1)} s of limiter time for ${nMax} volumes; it took ${f(ours.allBoundSec)} s.${tuned ? ` With the tuned peer's limits (QPS 1000 / burst 2000) ours took ${f(tuned.allBoundSec)} s in the same run${tuned.allBoundSec !== undefined && ours.allBoundSec !== undefined ? (tuned.allBoundSec < ours.allBoundSec * 0.9 ? ', so the shipped budget is part of the gap' : ', so the client budget is not what holds it back') : ''}.` : ''}`);
    }
    out.push(`- **CPU (N=${nMax})**: ${r.machine.nproc} cores run kube-apiserver, etcd, kube-controller-manager, the simulator, the driver and the provisioner; what a provisioner burns is taken from the binder. Ours used ${f(cpuMs(ours), 2)} CPU ms per provisioned volume${pt?.process ? `, the Go peer ${f(cpuMs(pt), 2)}` : ''}${tuned?.process ? `, ours at QPS 1000 ${f(cpuMs(tuned), 2)}` : ''}. Binding alone (the floor) took ${f(floor?.allBoundSec)} s; per claim, create → Bound p50 was ${f(floor?.bindLatencySec.p50)} s for the floor, ${f(ours.bindLatencySec.p50)} s for ours${pt ? `, ${f(pt.bindLatencySec.p50)} s for the tuned peer` : ''}. Unlike the floor, a provisioner also waits for kube-controller-manager to mark the claim (\`volume.kubernetes.io/storage-provisioner\`, one more binder write and event per claim) and for two Datera calls of ${r.settings.latencyMs} ms each before it writes the PV.`);
  }
  if (r.profile) {
    const s = r.profile.summary;
    const busy = s.totalMs - s.idleMs;
    const pct = (ms: number) => `${((100 * ms) / busy).toFixed(0)} %`;
    const tls = s.byFunction.filter(([fn]) => /SecureContext|TLSSocket|_tls_|onConnectSecure|internalConnect|configSecureContext/.test(fn)).reduce((a, [, ms]) => a + ms, 0);
    out.push(`- **CPU profile of ours** (a separate N=${r.profile.n} run under \`node --cpu-prof\`, ${busy} ms busy; \`npx tsx bench/profile.ts\` on ${basename(r.profile.file)}): inclusive time by module ${s.inclusiveByModule.filter(([m]) => !['(native/vm)', 'node:internal', '(program)'].includes(m)).slice(0, 8).map(([m, ms]) => `${m} ${pct(ms)}`).join(', ')}; garbage collection ${pct(s.gcMs)}; TLS connection set-up among the top functions ${pct(tls)}. Top self time: ${s.byFunction.slice(0, 8).map(([fn, ms]) => `${fn} ${ms} ms`).join('; ')}.`);
  }
  if ((missed.has('scale-rss') || missed.has('scale-ready')) && r.scale) {
    const cm = r.scale.cacheMemory as
      | { importClientNode?: { heapMB: number; rssMB: number; baselineRssMB?: number }; plainJson?: { heapMB: number }; jsonWithoutManagedFields?: { heapMB: number }; clientNodeModels?: { heapMB: number }; managedFieldsBytesPerPv?: number; bytesPerPv?: number }
      | undefined;
    const peer = r.scale.contenders.find((c) => c.kind === 'peer-default');
    const tsx = r.scale.contenders.find((c) => c.kind === 'ours-tsx');
    const s = r.scale.contenders.find((c) => c.kind === 'ours');
    const parts: string[] = [];
    if (s) parts.push(`ours held ${f(s.rssAfterSettleMB)} MB RSS with ${s.cachedClaims ?? '?'} claims and ${s.cachedVolumes ?? '?'} PVs cached`);
    if (cm?.importClientNode) parts.push(`a bare \`node\` process is ${f(cm.importClientNode.baselineRssMB)} MB RSS and importing @kubernetes/client-node adds ${f(cm.importClientNode.rssMB)} MB RSS (${f(cm.importClientNode.heapMB)} MB of it heap: the package's generated model modules)`);
    if (cm?.plainJson) parts.push(`the ${r.scale.n.toLocaleString('en')} PVs and ${r.scale.n.toLocaleString('en')} PVCs retain ${f(cm.plainJson.heapMB)} MB of heap as plain JSON, ${f(cm.jsonWithoutManagedFields?.heapMB)} MB without metadata.managedFields (${cm.managedFieldsBytesPerPv} of ${cm.bytesPerPv} bytes of a PV), ${f(cm.clientNodeModels?.heapMB)} MB as client-node model objects`);
    if (peer) parts.push(`the Go peer held the same objects in ${f(peer.rssAfterSettleMB)} MB RSS`);
    if (tsx) parts.push(`under tsx ours needed ${f(tsx.rssAfterSettleMB)} MB and ${tsx.readyMs} ms to be ready`);
    out.push(`- **Memory at ${r.scale.n.toLocaleString('en')} claims**: ${parts.join('; ')}.`);
  }
  return out;
}

/** A log-scale grouped bar chart: seconds to all Bound and to all app instances gone, per N. */
export function svg(r: BenchResults): string {
  const ns = [...new Set(r.bursts.map((b) => b.n))].sort((a, b) => a - b);
  const kinds = ORDER.filter((k) => r.bursts.some((b) => b.kind === k));
  const panels = [
    { title: 'All claims Bound (s)', value: (x: BurstResult) => x.allBoundSec },
    { title: 'All app instances gone after delete (s)', value: (x: BurstResult) => (x.kind === 'floor' || x.kind === 'ideal' ? x.pvsGoneSec : x.appInstancesGoneSec) },
  ];
  const W = 960;
  const H = 380;
  const pw = 420;
  const top = 50;
  const ph = 250;
  const maxV = Math.max(10, ...ns.flatMap((n) => [...byKind(r.bursts, n).values()].flatMap((b) => panels.map((p) => p.value(b) ?? 0))));
  const decades = Math.ceil(Math.log10(maxV));
  const y = (v: number) => top + ph - (Math.log10(Math.max(0.1, v) * 10) / (decades + 1)) * ph; // 0.1 s .. 10^decades
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`);
  parts.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  const reps = Math.max(1, ...ns.flatMap((n) => kinds.map((k) => runsOf(r.bursts, n, k).length)));
  parts.push(`<text x="${W / 2}" y="18" text-anchor="middle" font-size="14" font-weight="bold">${esc(`Datera provisioner benchmark ${r.startedAt.slice(0, 10)} (${r.settings.latencyMs} ms simulator latency, log scale${reps > 1 ? `, medians of ${reps} runs` : ''})`)}</text>`);
  panels.forEach((p, pi) => {
    const x0 = 60 + pi * (pw + 40);
    parts.push(`<text x="${x0 + pw / 2}" y="${top - 12}" text-anchor="middle" font-size="12">${esc(p.title)}</text>`);
    for (let d = -1; d <= decades; d++) {
      const v = 10 ** d;
      const yy = y(v);
      parts.push(`<line x1="${x0}" x2="${x0 + pw}" y1="${yy}" y2="${yy}" stroke="#e0e0e0"/>`);
      parts.push(`<text x="${x0 - 6}" y="${yy + 4}" text-anchor="end" fill="#555">${v >= 1 ? v : v.toFixed(1)}</text>`);
    }
    parts.push(`<line x1="${x0}" x2="${x0}" y1="${top}" y2="${top + ph}" stroke="#333"/>`);
    const gw = pw / ns.length;
    const bw = Math.min(28, (gw - 16) / kinds.length);
    ns.forEach((n, ni) => {
      const gx = x0 + ni * gw + (gw - bw * kinds.length) / 2;
      parts.push(`<text x="${x0 + ni * gw + gw / 2}" y="${top + ph + 16}" text-anchor="middle">N=${n}</text>`);
      kinds.forEach((k, ki) => {
        const run = byKind(r.bursts, n).get(k); // the median of the repetitions
        const v = run ? p.value(run) : undefined;
        const bx = gx + ki * bw;
        if (v === undefined) {
          if (run) parts.push(`<text x="${bx + bw / 2}" y="${top + ph - 4}" text-anchor="middle" fill="${COLORS[k]}">×</text>`);
          return;
        }
        const yy = y(v);
        parts.push(`<rect x="${bx + 1}" y="${yy}" width="${bw - 2}" height="${top + ph - yy}" fill="${COLORS[k] ?? '#444'}"><title>${esc(`${NAMES[k] ?? k}, N=${n}: ${v.toFixed(1)} s`)}</title></rect>`);
        parts.push(`<text x="${bx + bw / 2}" y="${yy - 3}" text-anchor="middle" font-size="9">${v < 10 ? v.toFixed(1) : v.toFixed(0)}</text>`);
      });
    });
  });
  kinds.forEach((k, ki) => {
    const lx = 60 + ki * 150;
    parts.push(`<rect x="${lx}" y="${H - 28}" width="12" height="12" fill="${COLORS[k] ?? '#444'}"/>`);
    parts.push(`<text x="${lx + 16}" y="${H - 18}">${esc(NAMES[k] ?? k)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}

/** The part of markdown() that bench/README.md carries: headline tables and targets. */
export function readmeSection(r: BenchResults): string {
  const md = markdown(r, 'results/latest.svg');
  const keep = ['## Time until every claim is Bound', '## After deleting every claim', '## Targets'];
  const sections = md.split(/\n(?=## )/);
  const out = [`From \`${r.runId}\` (${r.machine.nproc} CPUs, load average ${r.machine.loadavgStart.join(' / ')} at start); all tables, costs per volume, start-up at scale, fault runs and the evidence for each miss: [results/latest.md](results/latest.md).`, ''];
  for (const sec of sections) if (keep.some((k) => sec.startsWith(k))) out.push(sec.replace(/^## /, '### ').trimEnd(), '');
  out.push('![time to all Bound and to all app instances gone](results/latest.svg)');
  return out.join('\n');
}

/** Replaces the text between the results markers of bench/README.md. */
export function updateReadme(readme: string, r: BenchResults): boolean {
  let text: string;
  try {
    text = readFileSync(readme, 'utf8');
  } catch {
    return false;
  }
  const start = '<!-- results:start -->';
  const end = '<!-- results:end -->';
  const i = text.indexOf(start);
  const j = text.indexOf(end);
  if (i < 0 || j < i) return false;
  writeFileSync(readme, `${text.slice(0, i + start.length)}\n${readmeSection(r)}\n${text.slice(j)}`);
  return true;
}

/**
 * Writes <base>.md and <base>.svg, or latest.md/latest.svg (and the README table) with `latest`;
 * returns the paths. `source` is the results JSON's file name in `dir`, named in the report.
 */
export function writeReports(r: BenchResults, dir: string, o: { latest: boolean; base: string; source?: string; supplements?: Array<{ file: string; results: BenchResults }> }): string[] {
  const paths: string[] = [];
  const names = o.latest ? ['latest'] : [o.base];
  for (const name of names) {
    const chart = `${name}.svg`;
    writeFileSync(join(dir, `${name}.md`), markdown(r, chart, o.supplements, o.source ? { file: o.source, latest: o.latest } : undefined) + '\n');
    paths.push(join(dir, `${name}.md`));
    if (r.bursts.length) {
      writeFileSync(join(dir, chart), svg(r));
      paths.push(join(dir, chart));
    }
  }
  if (o.latest && updateReadme(join(dir, '..', 'README.md'), r)) paths.push(join(dir, '..', 'README.md'));
  return paths;
}

if (process.argv[1]?.endsWith('report.ts')) {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write('usage: npx tsx bench/report.ts bench/results/<run id>.json [--latest] [--with supplementary.json ...]\n');
    process.exit(2);
  }
  const r = JSON.parse(readFileSync(file, 'utf8')) as BenchResults;
  const supplements = process.argv.flatMap((a, i) => (a === '--with' && process.argv[i + 1] ? [process.argv[i + 1]!] : []))
    .map((p) => ({ file: p, results: JSON.parse(readFileSync(p, 'utf8')) as BenchResults }));
  const paths = writeReports(r, dirname(file), { latest: process.argv.includes('--latest'), base: basename(file, '.json'), source: basename(file), supplements });
  process.stdout.write(paths.join('\n') + '\n');
}
