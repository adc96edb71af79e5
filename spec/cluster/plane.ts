// SPDX-License-Identifier: Apache-2.0
// Starts and stops the local control plane (upstream etcd, kube-apiserver and
// kube-controller-manager, built by spec/cluster/build.sh) for end-to-end tests, the demo and
// benchmarks. The binary comes from TESTPLANE_BIN, else from the cached build (built on first use).
// Prebuilt upstream binaries are honoured the envtest way (TEST_ASSET_KUBE_APISERVER,
// TEST_ASSET_ETCD, TEST_ASSET_KUBE_CONTROLLER_MANAGER, KUBEBUILDER_ASSETS): the launcher checks them.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { KubeConfig } from '@kubernetes/client-node';

const here = dirname(fileURLToPath(import.meta.url));
export const repoRoot = join(here, '..', '..');

export interface PlaneInfo {
  kubeconfig: string;
  server: string;
  token: string;
  dir: string;
  etcd: string;
  controllerManager: string;
  version: string;
  pid: number;
}

export interface PlaneOptions {
  dir?: string;
  port?: number;
  /** kube-controller-manager client QPS/burst (upstream defaults 20/30). */
  kcmQps?: number;
  kcmBurst?: number;
  /** --pvclaimbinder-sync-period, e.g. "2s" (upstream 15s). */
  pvSyncPeriod?: string;
  apiserverArgs?: string[];
  kcmArgs?: string[];
  /** Print component logs' tails when start fails (default true). */
  verbose?: boolean;
}

export interface Plane extends PlaneInfo {
  kc: KubeConfig;
  /** Runs the built kubectl (same version as the server) against this plane. */
  kubectl(args: string[], input?: string): string;
  /** Restarts kube-apiserver in place (same port and etcd); resolves when it is ready again. */
  restartApiserver(): Promise<void>;
  stop(): Promise<void>;
}

/** Path of the multicall binary, building it (cached outside the tree) when needed. */
export function planeBinary(): string {
  if (process.env.TESTPLANE_BIN && existsSync(process.env.TESTPLANE_BIN)) return process.env.TESTPLANE_BIN;
  const out = execFileSync(join(here, 'build.sh'), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  return out.trim().split('\n').pop()!;
}

export function kubeConfigFor(info: Pick<PlaneInfo, 'server' | 'token'>): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'testplane', server: info.server, skipTLSVerify: true }],
    users: [{ name: 'admin', token: info.token }],
    contexts: [{ name: 'testplane', cluster: 'testplane', user: 'admin', namespace: 'default' }],
    currentContext: 'testplane',
  });
  return kc;
}

export async function startPlane(opts: PlaneOptions = {}): Promise<Plane> {
  const bin = planeBinary();
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'testplane-'));
  const args = ['up', '--dir', dir];
  if (opts.port) args.push('--port', String(opts.port));
  if (opts.kcmQps) args.push('--kcm-qps', String(opts.kcmQps));
  if (opts.kcmBurst) args.push('--kcm-burst', String(opts.kcmBurst));
  if (opts.pvSyncPeriod) args.push('--pv-sync-period', opts.pvSyncPeriod);
  for (const a of opts.apiserverArgs ?? []) args.push('--apiserver-arg', a);
  for (const a of opts.kcmArgs ?? []) args.push('--kcm-arg', a);
  const child: ChildProcess = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const info = await new Promise<PlaneInfo>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    rl.once('line', (line) => {
      try {
        resolve(JSON.parse(line) as PlaneInfo);
      } catch {
        reject(new Error(`testplane printed an unexpected line: ${line}`));
      }
    });
    child.once('exit', (code) => {
      const tails = (opts.verbose ?? true) ? componentLogTails(dir) : '';
      reject(new Error(`testplane exited with ${code} before it was ready: ${stderr}\n${tails}`));
    });
  });
  const kc = kubeConfigFor(info);
  let stopped = false;
  return {
    ...info,
    kc,
    kubectl(kargs: string[], input?: string) {
      return execFileSync(bin, ['kubectl', '--kubeconfig', info.kubeconfig, ...kargs], {
        encoding: 'utf8',
        ...(input !== undefined ? { input } : {}),
        stdio: ['pipe', 'pipe', 'pipe'],
      });
    },
    async restartApiserver() {
      const log = join(dir, 'kube-apiserver.log');
      child.kill('SIGUSR1');
      // The launcher logs when it is ready again; poll readyz meanwhile.
      const deadline = Date.now() + 120_000;
      await new Promise((r) => setTimeout(r, 1000));
      while (Date.now() < deadline) {
        try {
          const res = await fetch(`${info.server}/readyz`, { headers: { authorization: `Bearer ${info.token}` }, signal: AbortSignal.timeout(2000) });
          if (res.ok) return;
        } catch {
          /* not up yet */
        }
        await new Promise((r) => setTimeout(r, 250));
      }
      throw new Error(`kube-apiserver did not come back; see ${log}`);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(t);
    },
  };
}

export function componentLogTails(dir: string, lines = 15): string {
  return ['etcd', 'kube-apiserver', 'kube-controller-manager']
    .map((n) => {
      const p = join(dir, `${n}.log`);
      if (!existsSync(p)) return '';
      const all = readFileSync(p, 'utf8').trimEnd().split('\n');
      return `--- ${n}.log (last ${lines} lines)\n${all.slice(-lines).join('\n')}`;
    })
    .filter(Boolean)
    .join('\n');
}
