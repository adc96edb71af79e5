// SPDX-License-Identifier: Apache-2.0
// `make bench` (BENCH_ARGS=...): our provisioner against the Go peer on
// sig-storage-lib-external-provisioner, on the same control plane and the same simulated Datera,
// in one run. See bench/README.md for what each number means.
//
//   --n 100,500,1000            burst sizes (claims created at once)
//   --reps R                    runs of every contender at every N (default 5 for a full run, else 1);
//                               interleaved: repetition 1 of every contender, then repetition 2, ...
//   --contenders LIST           default floor,ideal,ours,ours-tuned,peer-tuned,peer-default
//   --skip-peer                 drop peer-default and peer-tuned (bursts and faults)
//   --extra LIST                contenders run at the largest N only (default none): ours-tuned, ours-tsx, ...
//   --only LIST                 phases: bursts,scale,faults,profile,resize (default all five); tune
//   --label NAME                results file bench/results/<start time>-<label>.json (default full|partial)
//   --latency-ms 20             simulator latency per call
//   --concurrency 32            claim creates/deletes in flight from the driver
//   --scale-n 10000             claims and PVs for the start-up/memory run
//   --fault-n 500 --kill-rounds 10 --no-fault-peer
//   --resize-n 100              claims grown at once in the resize run (ours only), --reps times
//   --ours-mode dist|compiled|tsx  how ours runs (default dist: the bundle, as shipped)
//   --peer-tuned Q:B:T[:S]      tuned peer: QPS, burst, threadiness, background PV-save QPS
//   --tune-n 1000               burst size of the tuning sweep (--only tune)
//   --trace                     also audit kube-controller-manager and split each claim's time into
//                               phases (adds audit load: for separate, supplementary runs)
//   --latest / --no-latest      rewrite bench/results/latest.{md,svg} (default: only for a full run)
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync, appendFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { repoRoot } from '../spec/cluster/plane.js';
import { runBurst, type BurstResult } from './lib/burst.js';
import { REP_ORDER, interleaved } from './lib/schedule.js';
import { KCM_SETTINGS } from './lib/cluster.js';
import {
  floorSettings,
  idealSettings,
  oursSettings,
  oursTunedSettings,
  peerBinary,
  peerDefaultSettings,
  peerTunedSettings,
  type ContenderSettings,
  type OursMode,
  type PeerTuning,
  takeSnapshot,
} from './lib/contenders.js';
import { runFault, type FaultKind, type FaultResult } from './lib/faults.js';
import { runResize } from './lib/resize.js';
import { runScale, type ScaleResult } from './lib/scale.js';
import { Sim } from './lib/sim.js';
import { summarise } from './profile.js';
import { writeReports, type BenchResults } from './report.js';

/**
 * The best peer settings found by `--only tune` at N=1000 (bench/results/2026-11-27-peer-tuning.md):
 * every setting with a high client QPS landed within about 1 s of the others (the machine's CPU,
 * not the client, is the limit); this one was fastest.
 */
export const DEFAULT_PEER_TUNING: PeerTuning = { qps: 1000, burst: 2000, threads: 128 };

const TUNING_SWEEP: PeerTuning[] = [
  { qps: 100, burst: 200, threads: 32 },
  { qps: 1000, burst: 2000, threads: 16 },
  { qps: 1000, burst: 2000, threads: 64 },
  { qps: 1000, burst: 2000, threads: 128 },
  { qps: -1, burst: 2000, threads: 64 },
  { qps: 1000, burst: 2000, threads: 64, pvSaveQps: 1000 },
];

function list(v: string | undefined, dflt: string[]): string[] {
  return v === undefined ? dflt : v.split(',').map((s) => s.trim()).filter(Boolean);
}

function parseTuning(s: string): PeerTuning {
  const [qps, burst, threads, pvSaveQps] = s.split(':').map(Number);
  if (![qps, burst, threads].every((x) => Number.isFinite(x))) throw new Error(`--peer-tuned ${s}: expected QPS:BURST:THREADS[:PVSAVEQPS]`);
  return { qps: qps!, burst: burst!, threads: threads!, ...(pvSaveQps ? { pvSaveQps } : {}) };
}

function sh(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', cwd: repoRoot, stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '';
  }
}

async function main(): Promise<void> {
  const { values: v } = parseArgs({
    options: {
      n: { type: 'string' },
      reps: { type: 'string' },
      contenders: { type: 'string' },
      'skip-peer': { type: 'boolean', default: false },
      extra: { type: 'string' },
      only: { type: 'string' },
      label: { type: 'string' },
      'latency-ms': { type: 'string', default: '20' },
      concurrency: { type: 'string', default: '32' },
      'scale-n': { type: 'string', default: '10000' },
      'fault-n': { type: 'string', default: '500' },
      'kill-rounds': { type: 'string', default: '10' },
      'resize-n': { type: 'string', default: '100' },
      'no-fault-peer': { type: 'boolean', default: false },
      'ours-mode': { type: 'string', default: 'dist' },
      'peer-tuned': { type: 'string' },
      'tune-n': { type: 'string', default: '1000' },
      latest: { type: 'boolean' },
      trace: { type: 'boolean', default: false },
      'no-latest': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (v.help) {
    const src = readFileSync(new URL(import.meta.url), 'utf8');
    process.stdout.write(src.split('\n').filter((l) => l.startsWith('//')).slice(1, 25).map((l) => l.slice(3)).join('\n') + '\n');
    return;
  }
  const ns = list(v.n, ['100', '500', '1000']).map(Number);
  const phases = new Set(list(v.only, ['bursts', 'scale', 'faults', 'profile', 'resize']));
  const full = v.only === undefined && v.n === undefined && v.contenders === undefined && !v['skip-peer'] && !v.trace;
  const latencyMs = Number(v['latency-ms']);
  const concurrency = Number(v.concurrency);
  const oursMode = v['ours-mode'] as OursMode;
  const tuning = v['peer-tuned'] ? parseTuning(v['peer-tuned']) : DEFAULT_PEER_TUNING;
  let kinds = list(v.contenders, ['floor', 'ideal', 'ours', 'ours-tuned', 'peer-tuned', 'peer-default']);
  if (v['skip-peer']) kinds = kinds.filter((k) => !k.startsWith('peer'));
  const extraKinds = list(v.extra, []).filter((k) => !kinds.includes(k));
  const reps = Number(v.reps ?? (full ? 5 : 1));
  if (!Number.isInteger(reps) || reps < 1) throw new Error(`--reps ${v.reps}: expected a whole number ≥ 1`);
  const settingsFor = (k: string): ContenderSettings => {
    switch (k) {
      case 'floor':
        return floorSettings();
      case 'ideal':
        return idealSettings();
      case 'ours':
        return oursSettings(oursMode);
      case 'ours-tsx':
        return oursSettings('tsx');
      case 'ours-tuned':
        return oursTunedSettings(tuning);
      case 'peer-default':
        return peerDefaultSettings();
      case 'peer-tuned':
        return peerTunedSettings(tuning);
      default:
        throw new Error(`unknown contender ${k} (floor, ideal, ours, ours-tsx, ours-tuned, peer-default, peer-tuned)`);
    }
  };
  const contenders = kinds.map(settingsFor);
  const extras = extraKinds.map(settingsFor);

  const started = new Date();
  const label = v.label ?? (full ? 'full' : 'partial');
  const runId = `${started.toISOString().replace(/[:.]/g, '-').slice(0, 19)}-${label}`;
  const workDir = join(repoRoot, 'bench/results/tmp', runId);
  mkdirSync(workDir, { recursive: true });
  const logFile = join(workDir, 'bench.log');
  const t0 = Date.now();
  const log = (msg: string) => {
    const line = `[${((Date.now() - t0) / 1000).toFixed(0).padStart(5)} s] ${msg}`;
    process.stdout.write(line + '\n');
    appendFileSync(logFile, line + '\n');
  };

  log(`bench ${runId}: phases ${[...phases].join(',')}; N ${ns.join(',')}; contenders ${kinds.join(',')}${extraKinds.length ? ` (+ ${extraKinds.join(',')} at N=${Math.max(...ns)})` : ''}; ${reps} repetition(s); work dir ${workDir}`);
  log(`building: control plane (cached), Go peer (cached); lib/ copied and compiled with tsc`);
  execFileSync(join(repoRoot, 'spec/cluster/build.sh'), { stdio: ['ignore', 'ignore', 'inherit'] });
  if (kinds.some((k) => k.startsWith('peer')) || phases.has('tune') || phases.has('scale') || phases.has('faults')) peerBinary(repoRoot);
  const libChanges = sh('git', ['status', '--porcelain', '--', 'lib']).split('\n').filter(Boolean);
  const snap = takeSnapshot(repoRoot, workDir);

  const results: BenchResults = {
    label,
    runId,
    startedAt: started.toISOString(),
    finishedAt: '',
    durationSec: 0,
    machine: {
      nproc: availableParallelism(),
      cpuModel: cpus()[0]?.model ?? '',
      memGiB: Math.round(totalmem() / 2 ** 30),
      kernel: release(),
      node: process.version,
      go: sh('go', ['env', 'GOVERSION']),
      loadavgStart: loadavg().map((x) => Math.round(x * 100) / 100),
      loadavgEnd: [],
      kubernetes: 'v1.34.4 (spec/cluster testplane: etcd, kube-apiserver, kube-controller-manager)',
    },
    git: {
      commit: sh('git', ['rev-parse', 'HEAD']),
      /** Uncommitted or untracked files under lib/ when the run copied it (the copy is what ran). */
      libChanges,
      libHash: snap.libHash,
    },
    settings: {
      latencyMs,
      concurrency,
      kcm: KCM_SETTINGS,
      apiserver: 'kube-apiserver defaults (priority and fairness on) + audit log at Metadata level for the contenders\' ServiceAccounts only',
      oursMode,
      oursNodeOptions: snap.nodeOptions ?? '',
      oursEntry: 'dist/provisioner.mjs',
      contenders: Object.fromEntries([...contenders, ...extras].map((c) => [c.kind, c.describe])),
      peerTuning: tuning,
      trace: v.trace ?? false,
      repetitions: { reps, order: REP_ORDER },
    },
    bursts: [],
  };
  const save = () => {
    results.finishedAt = new Date().toISOString();
    results.durationSec = Math.round((Date.now() - t0) / 1000);
    results.machine.loadavgEnd = loadavg().map((x) => Math.round(x * 100) / 100);
    const out = join(repoRoot, 'bench/results', `${runId}.json`);
    writeFileSync(out, JSON.stringify(results, null, 2) + '\n');
    return out;
  };

  const sim = await Sim.start(repoRoot, workDir, { latencyMs, srcRoot: snap.root });
  const timeouts = (n: number) => ({ boundTimeoutMs: 120_000 + n * 1000, deleteTimeoutMs: 120_000 + n * 1000 });
  try {
    if (phases.has('tune')) {
      const n = Number(v['tune-n']);
      results.tuning = [];
      log(`tuning the peer at N=${n}`);
      for (const t of TUNING_SWEEP) {
        const s = peerTunedSettings(t, `peer-tune-${results.tuning.length}`);
        const r = await runBurst({ repoRoot, workDir, sim, n, settings: s, latencyMs, concurrency, ...timeouts(n), log });
        results.tuning.push({ tuning: t, result: r });
        save();
      }
      const floor = await runBurst({ repoRoot, workDir, sim, n, settings: floorSettings(), latencyMs, concurrency, ...timeouts(n), log });
      results.tuning.push({ tuning: 'floor', result: floor });
      save();
    }

    if (phases.has('bursts')) {
      for (const n of ns) {
        const here = n === Math.max(...ns) ? [...contenders, ...extras] : contenders;
        for (let rep = 1; rep <= reps; rep++) {
          log(`burst N=${n}, repetition ${rep} of ${reps}`);
          for (const s of interleaved(here, rep)) {
            const r: BurstResult = await runBurst({ repoRoot, workDir, sim, n, settings: s, rep, latencyMs, concurrency, ...timeouts(n), trace: v.trace, log });
            results.bursts.push(r);
            save();
          }
        }
      }
    }

    if (phases.has('profile')) {
      const n = Math.max(...ns);
      const dir = join(workDir, 'cpu-profile');
      mkdirSync(dir, { recursive: true });
      log(`profile: ours at N=${n} under node --cpu-prof (a separate run; its timing is not reported; tsc's output, so time is attributed per module)`);
      const s = { ...oursSettings(oursMode === 'tsx' ? 'tsx' : 'compiled'), nodeArgs: ['--cpu-prof', '--cpu-prof-dir', dir] };
      const r = await runBurst({ repoRoot, workDir, sim, n, settings: s, latencyMs, concurrency, ...timeouts(n), log });
      const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
      if (file) {
        const summary = summarise(JSON.parse(readFileSync(join(dir, file), 'utf8')), 20);
        results.profile = { n, file: join(dir, file), summary, cpuSec: r.process };
        log(`profile: busy ${summary.totalMs - summary.idleMs} ms; top modules ${summary.byModule.slice(0, 5).map(([m, ms]) => `${m} ${ms} ms`).join(', ')}`);
      }
      save();
    }

    if (phases.has('scale')) {
      const n = Number(v['scale-n']);
      log(`scale: ${n} bound claims, then start-up of each provisioner`);
      const listsDir = join(workDir, 'scale-lists');
      mkdirSync(listsDir, { recursive: true });
      process.env.BENCH_DUMP_LISTS = listsDir;
      const scale: ScaleResult = await runScale({
        repoRoot,
        workDir,
        sim,
        n,
        concurrency: 64,
        contenders: [oursSettings(oursMode), ...(oursMode === 'dist' ? [oursSettings('tsx')] : []), peerDefaultSettings()],
        settleMs: 5000,
        log,
      });
      delete process.env.BENCH_DUMP_LISTS;
      results.scale = scale;
      try {
        const out = execFileSync(process.execPath, ['--expose-gc', '--import', 'tsx', join(repoRoot, 'bench/experiments/cache-memory.ts'), listsDir], { cwd: repoRoot, encoding: 'utf8' });
        results.scale.cacheMemory = JSON.parse(out) as Record<string, unknown>;
        log(`scale: heap of the cached lists: ${JSON.stringify(results.scale.cacheMemory)}`);
      } catch (err) {
        log(`scale: cache-memory experiment failed: ${(err as Error).message}`);
      }
      save();
    }

    if (phases.has('resize')) {
      const n = Number(v['resize-n']);
      if (!Number.isInteger(n) || n < 1) throw new Error(`--resize-n ${v['resize-n']}: expected a whole number ≥ 1`);
      results.resize = [];
      for (let rep = 1; rep <= reps; rep++) {
        log(`resize: ours, ${n} claims grown at once, repetition ${rep} of ${reps}`);
        results.resize.push(await runResize({ repoRoot, workDir, sim, n, settings: oursSettings(oursMode), rep, latencyMs, concurrency, timeoutMs: 120_000 + n * 1000, log }));
        save();
      }
    }

    if (phases.has('faults')) {
      const n = Number(v['fault-n']);
      const faultContenders = [oursSettings(oursMode), ...(!v['no-fault-peer'] && !v['skip-peer'] ? [peerTunedSettings(tuning)] : [])];
      results.faults = [];
      const faultSim = await Sim.start(repoRoot, workDir, { latencyMs, sessionTtl: '10s', name: 'datera-sim-10s-sessions', srcRoot: snap.root });
      try {
        for (const fault of ['kill', 'sim-503-session', 'apiserver-restart'] as FaultKind[]) {
          for (const s of faultContenders) {
            log(`fault ${fault}: ${s.kind}, N=${n}`);
            const r: FaultResult = await runFault({
              repoRoot,
              workDir,
              fault,
              settings: s,
              sim: fault === 'sim-503-session' ? faultSim : sim,
              n,
              latencyMs,
              concurrency,
              killRounds: Number(v['kill-rounds']),
              boundTimeoutMs: 300_000,
              log,
            });
            results.faults.push(r);
            save();
          }
        }
      } finally {
        await faultSim.stop();
      }
    }
  } finally {
    await sim.stop();
  }
  const out = save();
  log(`results: ${out}`);
  const writeLatest = v.latest ?? (full && !v['no-latest']);
  const md = writeReports(results, join(repoRoot, 'bench/results'), { latest: writeLatest, base: runId, source: `${runId}.json` });
  log(`report: ${md.join(', ')}`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
