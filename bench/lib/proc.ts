// SPDX-License-Identifier: Apache-2.0
// Child processes of the benchmark (simulator, contenders): spawned in their own process group,
// logged to a file, and measured from /proc (CPU seconds, RSS, peak RSS).
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync, readdirSync, type WriteStream } from 'node:fs';
import { createInterface } from 'node:readline';

const CLK_TCK = 100; // sysconf(_SC_CLK_TCK) on Linux/x86-64

export interface ProcStats {
  /** utime + stime of the process and its live descendants, seconds. */
  cpuSec: number;
  /** Current resident set of the process (not descendants), MB. */
  rssMB: number;
  /** Peak resident set (VmHWM) of the process, MB. */
  hwmMB: number;
}

function children(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const t of readdirSync(`/proc/${pid}/task`)) {
      const c = readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').trim();
      if (c) out.push(...c.split(/\s+/).map(Number));
    }
  } catch {
    /* gone */
  }
  return out;
}

function cpuOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start at ") ".
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // f[0] is field 3 (state); utime is field 14, stime field 15.
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return 0;
  }
}

/** CPU, RSS and peak RSS of `pid` (CPU includes live descendants, e.g. tsx's esbuild service). */
export function procStats(pid: number): ProcStats {
  let cpu = 0;
  const stack = [pid];
  while (stack.length) {
    const p = stack.pop()!;
    cpu += cpuOf(p);
    stack.push(...children(p));
  }
  let rssMB = 0;
  let hwmMB = 0;
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    rssMB = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
    hwmMB = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
  } catch {
    /* gone */
  }
  return { cpuSec: cpu, rssMB, hwmMB };
}

/** Samples procStats every `everyMs` and keeps the last sample, so numbers survive the process's death. */
export class StatsSampler {
  last: ProcStats = { cpuSec: 0, rssMB: 0, hwmMB: 0 };
  maxRssMB = 0;
  readonly #timer: NodeJS.Timeout;
  constructor(readonly pid: number, everyMs = 250) {
    this.#timer = setInterval(() => this.sample(), everyMs);
    this.#timer.unref();
  }
  sample(): ProcStats {
    const s = procStats(this.pid);
    if (s.hwmMB > 0) {
      this.last = s;
      this.maxRssMB = Math.max(this.maxRssMB, s.rssMB);
    }
    return this.last;
  }
  stop(): ProcStats {
    clearInterval(this.#timer);
    return this.sample();
  }
}

export interface Child {
  name: string;
  child: ChildProcess;
  pid: number;
  logFile: string;
  /** Resolves with the first log line (stdout or stderr) matching `re` (also one seen before). */
  waitFor(re: RegExp, ms?: number): Promise<RegExpMatchArray>;
  exited(): boolean;
  kill(signal?: NodeJS.Signals, graceMs?: number): Promise<void>;
}

/** Spawns a long-running child in its own process group, its output appended to `logFile`. */
export function startChild(name: string, cmd: string, args: string[], opts: { env?: Record<string, string>; cwd?: string; logFile: string }): Child {
  const child = spawn(cmd, args, {
    cwd: opts.cwd,
    env: { ...process.env, ...(opts.env ?? {}) },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // own process group: a kill reaches the whole child tree, never us
  });
  const log: WriteStream = createWriteStream(opts.logFile, { flags: 'a' });
  const recent: string[] = [];
  const waiters: Array<{ re: RegExp; resolve: (m: RegExpMatchArray) => void }> = [];
  const onLine = (line: string) => {
    log.write(line + '\n');
    recent.push(line);
    if (recent.length > 200) recent.shift();
    for (const w of [...waiters]) {
      const m = w.re.exec(line);
      if (m) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  };
  createInterface({ input: child.stdout! }).on('line', onLine);
  createInterface({ input: child.stderr! }).on('line', onLine);
  let exitedFlag = false;
  const exit = new Promise<void>((r) =>
    child.once('exit', () => {
      exitedFlag = true;
      r();
    }),
  );
  return {
    name,
    child,
    pid: child.pid!,
    logFile: opts.logFile,
    waitFor(re, ms = 120_000) {
      for (const l of recent) {
        const m = re.exec(l);
        if (m) return Promise.resolve(m);
      }
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`${name}: no log line matching ${re} within ${ms} ms (log: ${opts.logFile}); last lines:\n${recent.slice(-10).join('\n')}`)), ms);
        const w = { re, resolve: (m: RegExpMatchArray) => (clearTimeout(t), resolve(m)) };
        waiters.push(w);
        void exit.then(() => {
          if (waiters.includes(w)) {
            clearTimeout(t);
            reject(new Error(`${name} exited (code ${child.exitCode}, signal ${child.signalCode}) before logging ${re}; last lines:\n${recent.slice(-10).join('\n')}`));
          }
        });
      });
    },
    exited: () => exitedFlag,
    async kill(signal: NodeJS.Signals = 'SIGTERM', graceMs = 15_000) {
      if (exitedFlag) return;
      try {
        process.kill(-child.pid!, signal);
      } catch {
        /* already gone */
      }
      const t = setTimeout(() => {
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          /* gone */
        }
      }, graceMs);
      await exit;
      clearTimeout(t);
      await new Promise<void>((r) => log.end(r));
    },
  };
}

/** The control-plane components measured per run, by the name the testplane launcher runs them under. */
export const PLANE_COMPONENTS = ['kube-apiserver', 'etcd', 'kube-controller-manager'] as const;
export type PlaneComponent = (typeof PLANE_COMPONENTS)[number];

/**
 * Pids of etcd, kube-apiserver and kube-controller-manager among the children of the testplane
 * launcher `launcherPid` (spec/cluster/plane: it runs each as `<itself> <component> ...`, or the
 * envtest binary named after the component). Components it cannot find are left out.
 */
export function planePids(launcherPid: number): Partial<Record<PlaneComponent, number>> {
  const out: Partial<Record<PlaneComponent, number>> = {};
  for (const pid of children(launcherPid)) {
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    const words = argv.slice(0, 2).map((a) => a.split('/').pop()!);
    const name = PLANE_COMPONENTS.find((c) => words.includes(c));
    if (name && out[name] === undefined) out[name] = pid;
  }
  return out;
}

/** utime + stime seconds of each component now (a component that is gone reads 0). */
export function planeCpu(pids: Partial<Record<PlaneComponent, number>>): Record<PlaneComponent, number> {
  const out = { 'kube-apiserver': 0, etcd: 0, 'kube-controller-manager': 0 } as Record<PlaneComponent, number>;
  for (const c of PLANE_COMPONENTS) if (pids[c] !== undefined) out[c] = procStats(pids[c]!).cpuSec;
  return out;
}
