// SPDX-License-Identifier: Apache-2.0
// The provisioners under test: ours (node lib/main.ts, as a real process) and the Go peer
// (bench/peer, on sig-storage-lib-external-provisioner v13) at library defaults or tuned.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { request } from 'undici';
import { SIM_USER } from './sim.js';
import { startChild, type Child } from './proc.js';

export type ContenderKind = 'ours' | 'peer-default' | 'peer-tuned' | 'floor' | 'ideal' | 'ours-tsx' | 'ours-tuned' | `peer-tune-${string}`;

export interface ContenderSettings {
  /** Label in results. */
  kind: ContenderKind;
  /** What runs: our provisioner, the Go peer, the ideal provisioner (bench/lib/ideal.ts), or nothing (the floor). */
  runner: 'ours' | 'peer' | 'ideal' | 'floor';
  /** Ours only: extra node flags (e.g. a preload of an experiment). */
  nodeArgs?: string[];
  /** Ours only: how it is run (compiled JavaScript as shipped, or TypeScript through tsx). */
  mode?: OursMode;
  /** Human description for the report. */
  describe: string;
  /** Extra command-line arguments (after the common ones). */
  args: string[];
}

/**
 * dist: the bundle the image runs; compiled: the same code as tsc emits it, one file per module
 * (for CPU profiles, which then attribute time to lib/ modules and packages); tsx: the TypeScript.
 */
export type OursMode = 'dist' | 'compiled' | 'tsx';

/** Our provisioner at its shipped defaults (no tuning flags; the effective values are read from its start-up log). */
export function oursSettings(mode: OursMode, extra: string[] = []): ContenderSettings {
  const how =
    mode === 'dist'
      ? 'node <snapshot>/dist/provisioner.mjs, the bundle the image runs, NODE_OPTIONS as in manifests/image/Dockerfile'
      : mode === 'compiled'
        ? 'node <snapshot>/dist/lib/main.js, tsc output, NODE_OPTIONS as in manifests/image/Dockerfile'
        : 'node --import tsx <snapshot>/lib/main.ts';
  return {
    kind: mode === 'tsx' ? 'ours-tsx' : 'ours',
    runner: 'ours',
    mode,
    describe: `ours (${how})${extra.length ? `: ${extra.join(' ')}` : ', shipped defaults'}`,
    args: extra,
  };
}

/** Ours with the tuned peer's client limits (QPS 1000 / burst 2000 for PV writes). */
export function oursTunedSettings(t: { qps: number; burst: number }): ContenderSettings {
  return { ...oursSettings('dist', ['--kube-api-qps', String(t.qps), '--kube-api-burst', String(t.burst)]), kind: 'ours-tuned' };
}

export interface Snapshot {
  /** Root holding lib/ (and package.json) as copied at the start of the run. */
  root: string;
  /** The bundle the image runs (lib/bundle.ts over the copied lib/), relative name `dist/provisioner.mjs`. */
  distEntry: string;
  /** tsc's output of the copied lib/ (dist/lib/main.js). */
  compiledEntry: string;
  /** The ideal provisioner compiled to JavaScript (bench/lib/ideal.ts and what it imports). */
  idealEntry: string;
  tsxEntry: string;
  /** sha256 of the copied lib/ files (path + content), first 12 hex digits. */
  libHash: string;
  /** NODE_OPTIONS the shipped image sets (manifests/image/Dockerfile `ENV NODE_OPTIONS=`), applied to the dist mode. */
  nodeOptions?: string;
}

let snapshot: Snapshot | undefined;

/** bench/lib files the ideal provisioner needs (it imports only these and npm packages). */
const IDEAL_SOURCES = ['ideal.ts', 'kube.ts', 'objects.ts'];

/**
 * Copies lib/ at the start of the run, compiles the copy with tsc (the simulator, the ideal
 * provisioner) and bundles it as the image does, so that every run of ours and the simulator uses
 * the same code even while lib/ changes in the working tree. Ours runs the bundle the shipped
 * image runs (dist/provisioner.mjs); the tsx mode runs the copied TypeScript.
 */
export function takeSnapshot(repoRoot: string, workDir: string): Snapshot {
  const root = join(workDir, 'src');
  rmSync(root, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });
  cpSync(join(repoRoot, 'lib'), join(root, 'lib'), { recursive: true });
  // The ideal provisioner and the driver-side modules it uses, compiled with lib/ so it runs as
  // plain JavaScript (no tsx loader in its CPU and memory).
  mkdirSync(join(root, 'bench-lib'), { recursive: true });
  for (const f of IDEAL_SOURCES) cpSync(join(repoRoot, 'bench/lib', f), join(root, 'bench-lib', f));
  cpSync(join(repoRoot, 'package.json'), join(root, 'package.json'));
  writeFileSync(
    join(root, 'tsconfig.json'),
    JSON.stringify({
      extends: join(repoRoot, 'tsconfig.json'),
      compilerOptions: { rootDir: '.', outDir: 'dist', noEmit: false, types: ['node'], sourceMap: false },
      include: ['lib', 'bench-lib'],
      exclude: [],
    }),
  );
  const distEntry = join(root, 'dist/provisioner.mjs');
  const idealEntry = join(root, 'dist/bench-lib/ideal.js');
  try {
    execFileSync(join(repoRoot, 'node_modules/.bin/tsc'), ['-p', join(root, 'tsconfig.json')], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    // Type errors still emit JavaScript; only a missing entry point is fatal.
    if (!existsSync(idealEntry)) throw new Error(`compiling lib/ failed: ${(err as { stdout?: Buffer }).stdout?.toString() ?? err}`, { cause: err });
  }
  execFileSync(process.execPath, ['--import', 'tsx', join(root, 'lib/bundle.ts'), distEntry], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  if (!existsSync(distEntry)) throw new Error(`bundling lib/ produced no ${distEntry}`);
  const h = createHash('sha256');
  const walk = (dir: string, rel: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      if (e.isDirectory()) walk(join(dir, e.name), `${rel}/${e.name}`);
      else h.update(`${rel}/${e.name}\0`).update(readFileSync(join(dir, e.name)));
    }
  };
  walk(join(root, 'lib'), 'lib');
  let nodeOptions: string | undefined;
  const dockerfile = join(repoRoot, 'manifests/image/Dockerfile');
  if (existsSync(dockerfile)) {
    const m = /^ENV\s+NODE_OPTIONS=(?:"([^"]*)"|(\S+))\s*$/m.exec(readFileSync(dockerfile, 'utf8'));
    nodeOptions = m?.[1] ?? m?.[2];
  }
  snapshot = { root, distEntry, compiledEntry: join(root, 'dist/lib/main.js'), idealEntry, tsxEntry: join(root, 'lib/main.ts'), libHash: h.digest('hex').slice(0, 12), ...(nodeOptions ? { nodeOptions } : {}) };
  return snapshot;
}

function oursEntry(repoRoot: string, mode: OursMode | undefined): { args: string[]; env: Record<string, string> } {
  const s = snapshot ?? takeSnapshot(repoRoot, join(repoRoot, 'bench/results/tmp/snapshot'));
  if (mode === 'tsx') return { args: ['--import', 'tsx', s.tsxEntry], env: {} };
  return { args: [mode === 'compiled' ? s.compiledEntry : s.distEntry], env: s.nodeOptions ? { NODE_OPTIONS: s.nodeOptions } : {} };
}

export function peerDefaultSettings(): ContenderSettings {
  return { kind: 'peer-default', runner: 'peer', describe: 'peer defaults (client-go QPS 5/burst 10, threadiness 4): nothing set, JSON, the library\'s retry limiter (15 s doubling to 1000 s, max-of a 10/s bucket), blocking PV save', args: [] };
}

/** The best peer settings found (see bench/README.md "Tuning the peer"). */
export interface PeerTuning {
  qps: number;
  burst: number;
  threads: number;
  pvSaveQps?: number;
}

/**
 * How kubernetes-csi/external-provisioner (cmd/csi-provisioner), the library's most used caller,
 * tunes it beyond client budgets: protobuf for core types, the claim/volume queues on an
 * exponential per-item retry limiter from --retry-interval-start (1 s) to --retry-interval-max
 * (5 min) instead of the library's 15 s..1000 s plus 10/s bucket, and retries without a limit.
 */
const PEER_TUNED_EXTRAS = ['--protobuf', '--retry-interval-start', '1s', '--retry-interval-max', '5m', '--failed-threshold', '0'];

export function peerTunedSettings(t: PeerTuning, kind: ContenderKind = 'peer-tuned'): ContenderSettings {
  const args = ['--kube-api-qps', String(t.qps), '--kube-api-burst', String(t.burst), '--threadiness', String(t.threads), ...PEER_TUNED_EXTRAS];
  if (t.pvSaveQps && t.pvSaveQps > 0) args.push('--pv-save-qps', String(t.pvSaveQps));
  return { kind, runner: 'peer', describe: `peer tuned as external-provisioner tunes it: ${args.join(' ')}; one shared Datera login`, args };
}

/** The ideal provisioner (bench/lib/ideal.ts): the PV controller's annotation, one PV write, one event; no Datera. */
export function idealSettings(): ContenderSettings {
  return {
    kind: 'ideal',
    runner: 'ideal',
    describe: 'ideal provisioner: waits for the PV controller\'s storage-provisioner annotation, writes the PV (finalizer, claimRef with uid) and one event, no Datera calls; on release removes the finalizer and deletes the PV (bench/lib/ideal.ts, undici keep-alive, no rate limit)',
    args: [],
  };
}

export function floorSettings(): ContenderSettings {
  return { kind: 'floor', runner: 'floor', describe: 'floor: no provisioner; the driver writes each PV pre-bound right after its claim, and deletes it once Released', args: [] };
}

export interface Running {
  settings: ContenderSettings;
  proc: Child;
  /** Ours only: the HTTP endpoint (/metrics, /readyz). */
  httpUrl?: string;
  startedAt: number;
  /** Wall ms from spawn to "caches synced / controller started". */
  readyMs: number;
  /** Ours: the effective settings it logged at start-up. */
  config?: Record<string, unknown>;
}

let peerBin: string | undefined;
/** Path of the peer binary, built once (cached outside the tree) by bench/peer/build.sh. */
export function peerBinary(repoRoot: string): string {
  peerBin ??= execFileSync(join(repoRoot, 'bench/peer/build.sh'), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim().split('\n').pop()!;
  return peerBin;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export interface StartInput {
  repoRoot: string;
  settings: ContenderSettings;
  kubeconfig: string;
  simUrl: string;
  provisionerName: string;
  namespace: string;
  logFile: string;
  httpPort?: number;
}

/** Starts a contender and resolves once it says it is serving (informer caches synced). */
export async function startContender(i: StartInput): Promise<Running> {
  if (i.settings.runner === 'ours') {
    const entry = oursEntry(i.repoRoot, i.settings.mode); // compiles once, before the clock starts
    const port = i.httpPort ?? (await freePort());
    const startedAt = Date.now();
    const proc = startChild(
      'ours',
      process.execPath,
      [
        ...(i.settings.nodeArgs ?? []),
        ...(process.env.BENCH_OURS_NODE_ARGS ?? '').split(' ').filter(Boolean),
        ...entry.args,
        '--provisioner-name', i.provisionerName,
        '--namespace', i.namespace,
        '--kubeconfig', i.kubeconfig,
        '--http-address', '127.0.0.1',
        '--http-port', String(port),
        '--leader-elect=false',
        '--credentials-dir', '/nonexistent',
        ...i.settings.args,
      ],
      { cwd: i.repoRoot, env: { ...entry.env, DAT_MGMT: i.simUrl, DAT_USER: SIM_USER.name, DAT_PASS: SIM_USER.password, LOG_LEVEL: 'info' }, logFile: i.logFile },
    );
    await proc.waitFor(/"message":"provisioner running"/, 120_000);
    const readyMs = Date.now() - startedAt;
    let config: Record<string, unknown> | undefined;
    try {
      const line = (await proc.waitFor(/^\{.*"message":"starting".*\}$/, 1000))[0];
      const c = (JSON.parse(line) as { config: Record<string, unknown> }).config;
      config = Object.fromEntries(['workers', 'kubeApiQps', 'kubeApiBurst', 'eventQps', 'eventBurst', 'provisioningEventDelayMs', 'retryInitialMs'].filter((k) => k in c).map((k) => [k, c[k]]));
    } catch {
      /* older builds log differently: leave it out */
    }
    return { settings: i.settings, proc, httpUrl: `http://127.0.0.1:${port}`, startedAt, readyMs, ...(config ? { config } : {}) };
  }
  if (i.settings.runner === 'floor') throw new Error('the floor has no process');
  if (i.settings.runner === 'ideal') {
    const startedAt = Date.now();
    const proc = startChild(
      'ideal',
      process.execPath,
      [(snapshot ?? takeSnapshot(i.repoRoot, join(i.repoRoot, 'bench/results/tmp/snapshot'))).idealEntry, '--kubeconfig', i.kubeconfig, '--provisioner', i.provisionerName, '--namespace', i.namespace, '--backstore-server', i.simUrl],
      { cwd: i.repoRoot, logFile: i.logFile },
    );
    await proc.waitFor(/ideal provisioner running/, 120_000);
    return { settings: i.settings, proc, startedAt, readyMs: Date.now() - startedAt };
  }
  const bin = peerBinary(i.repoRoot);
  const startedAt = Date.now();
  const proc = startChild(
    i.settings.kind,
    bin,
    [
      '--kubeconfig', i.kubeconfig,
      '--provisioner', i.provisionerName,
      '--endpoint', i.simUrl,
      '--namespace', i.namespace,
      ...i.settings.args,
    ],
    { env: { DAT_USER: SIM_USER.name, DAT_PASS: SIM_USER.password }, logFile: i.logFile },
  );
  await proc.waitFor(/Started provisioner controller/, 120_000);
  return { settings: i.settings, proc, startedAt, readyMs: Date.now() - startedAt };
}

/** Our /metrics: Kubernetes API requests by "verb resource", and Datera calls by "method route". */
export async function scrapeOurs(httpUrl: string): Promise<{ kube: Record<string, number>; datera: Record<string, number>; eventsDropped?: Record<string, number> }> {
  const res = await request(`${httpUrl}/metrics`);
  const text = await res.body.text();
  const kube: Record<string, number> = {};
  const datera: Record<string, number> = {};
  const eventsDropped: Record<string, number> = {};
  for (const line of text.split('\n')) {
    // Any counter of dropped events, whatever its name (none in the shipped build at the time of writing).
    const d = /^(\w*event\w*drop\w*|\w*drop\w*event\w*)(\{.*\})? (\S+)$/.exec(line);
    if (d) eventsDropped[d[1]! + (d[2] ?? '')] = Number(d[3]);
    let m = /^kubernetes_api_requests_total\{(.*)\} (\S+)$/.exec(line);
    if (m) {
      const l = labels(m[1]!);
      const k = `${l.verb} ${l.resource}`;
      kube[k] = (kube[k] ?? 0) + Number(m[2]);
      continue;
    }
    m = /^datera_request_duration_seconds_count\{(.*)\} (\S+)$/.exec(line);
    if (m) {
      const l = labels(m[1]!);
      const k = `${l.method} ${l.route}`;
      datera[k] = (datera[k] ?? 0) + Number(m[2]);
    }
  }
  return { kube, datera, ...(Object.keys(eventsDropped).length ? { eventsDropped } : {}) };
}

function labels(s: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of s.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) out[m[1]!] = m[2]!;
  return out;
}
