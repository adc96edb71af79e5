// SPDX-License-Identifier: Apache-2.0
// Shared pieces of the end-to-end specs: one real control plane for the whole run (stopped by a
// root-level after hook), fresh namespaces, the Datera simulator over real HTTP, and the
// provisioner either in-process (real clients) or as a real child process.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import {
  CoreV1Api,
  StorageV1Api,
  AppsV1Api,
  type V1PersistentVolumeClaim,
  type V1StorageClass,
  type CoreV1Event,
} from '@kubernetes/client-node';
import { loadConfig } from '../../lib/config.js';
import { run, type Running } from '../../lib/main.js';
import { createLogger, nullLogger } from '../../lib/observability/logger.js';
import { repoRoot, startPlane, type Plane } from '../cluster/plane.js';

let planePromise: Promise<Plane> | undefined;

/** The control plane shared by all end-to-end specs of this run (started on first use). */
export function sharedPlane(): Promise<Plane> {
  planePromise ??= startPlane({ pvSyncPeriod: '2s', kcmQps: 200, kcmBurst: 400 });
  return planePromise;
}

after(async function () {
  this.timeout(60_000);
  if (planePromise) await (await planePromise).stop();
});

export interface Apis {
  core: CoreV1Api;
  storage: StorageV1Api;
  apps: AppsV1Api;
}

export function apis(plane: Plane): Apis {
  return { core: plane.kc.makeApiClient(CoreV1Api), storage: plane.kc.makeApiClient(StorageV1Api), apps: plane.kc.makeApiClient(AppsV1Api) };
}

export function suffix(): string {
  return randomBytes(3).toString('hex');
}

export async function freshNamespace(a: Apis, prefix: string): Promise<string> {
  const name = `${prefix}-${suffix()}`;
  await a.core.createNamespace({ body: { metadata: { name } } });
  return name;
}

export const SIM_USER = { name: 'admin', password: 'secret_pw1' };

export interface ProvisionerOptions {
  plane: Plane;
  simUrl: string;
  provisionerName: string;
  namespace: string;
  extraArgs?: string[];
  env?: Record<string, string>;
  logLevel?: string;
}

function provisionerArgs(o: ProvisionerOptions): string[] {
  return [
    '--provisioner-name', o.provisionerName,
    '--namespace', o.namespace,
    '--kubeconfig', o.plane.kubeconfig,
    '--http-address', '127.0.0.1',
    '--http-port', '0',
    '--credentials-dir', '/nonexistent',
    '--retry-initial', '200ms',
    '--retry-max', '5s',
    '--final-error-retry', '30s',
    ...(o.extraArgs ?? []),
  ];
}

function provisionerEnv(o: ProvisionerOptions): Record<string, string> {
  return { DAT_MGMT: o.simUrl, DAT_USER: SIM_USER.name, DAT_PASS: SIM_USER.password, ...(o.env ?? {}) };
}

/** The provisioner in this process, with real Kubernetes and Datera clients. */
export async function startProvisioner(o: ProvisionerOptions & { kubeconfig?: string; leaderElect?: boolean }): Promise<Running> {
  const argv = [...provisionerArgs(o), `--leader-elect=${o.leaderElect ?? false}`];
  if (o.kubeconfig) argv.push('--kubeconfig', o.kubeconfig);
  const config = loadConfig({ argv, env: provisionerEnv(o) });
  const logger = process.env.E2E_LOG ? createLogger({ level: o.logLevel ?? 'debug' }) : nullLogger();
  return run(config, logger);
}

export interface ProvisionerProcess {
  child: ChildProcess;
  logs: () => string;
  /** Resolves when the log shows the given message. */
  waitForLog(re: RegExp, ms?: number): Promise<void>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** The provisioner as a real process (`node --import tsx lib/main.ts`), for kill and failover tests. */
export function startProvisionerProcess(o: ProvisionerOptions): ProvisionerProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'lib/main.ts'), ...provisionerArgs(o)], {
    cwd: repoRoot,
    env: { ...process.env, ...provisionerEnv(o), LOG_LEVEL: o.logLevel ?? 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const waiters: Array<{ re: RegExp; resolve: () => void }> = [];
  const onLine = (line: string) => {
    out += line + '\n';
    if (out.length > 2_000_000) out = out.slice(-1_000_000);
    for (const w of [...waiters]) if (w.re.test(line)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
  };
  createInterface({ input: child.stdout! }).on('line', onLine);
  createInterface({ input: child.stderr! }).on('line', onLine);
  return {
    child,
    logs: () => out,
    waitForLog(re, ms = 60_000) {
      if (re.test(out)) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`provisioner log did not show ${re} within ${ms} ms; last lines:\n${out.split('\n').slice(-20).join('\n')}`)), ms);
        waiters.push({ re, resolve: () => (clearTimeout(t), resolve()) });
      });
    },
    async kill(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill(signal);
      await exited;
    },
  };
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 60_000, everyMs = 200): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

/** Resolves once `read()` answers 404 (the object is gone). */
export async function waitGone(what: string, read: () => Promise<unknown>, ms = 60_000): Promise<void> {
  await waitFor(`${what} gone`, async () => {
    try {
      await read();
      return false;
    } catch (e) {
      if ((e as { code?: number }).code === 404) return true;
      throw e;
    }
  }, ms);
}

export function storageClass(name: string, provisioner: string, parameters: Record<string, string> = {}, reclaimPolicy = 'Delete'): V1StorageClass {
  return { apiVersion: 'storage.k8s.io/v1', kind: 'StorageClass', metadata: { name }, provisioner, parameters, reclaimPolicy, volumeBindingMode: 'Immediate' };
}

export function claim(name: string, opts: { className?: string; betaAnnotation?: string; alphaAnnotation?: string; size?: string; annotations?: Record<string, string>; accessModes?: string[] } = {}): V1PersistentVolumeClaim {
  const annotations: Record<string, string> = { ...(opts.annotations ?? {}) };
  if (opts.betaAnnotation) annotations['volume.beta.kubernetes.io/storage-class'] = opts.betaAnnotation;
  if (opts.alphaAnnotation) annotations['volume.alpha.kubernetes.io/storage-class'] = opts.alphaAnnotation;
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name, annotations },
    spec: {
      ...(opts.className !== undefined ? { storageClassName: opts.className } : {}),
      accessModes: opts.accessModes ?? ['ReadWriteOnce'],
      resources: { requests: { storage: opts.size ?? '1Gi' } },
    },
  };
}

export async function waitBound(a: Apis, namespace: string, name: string, ms = 90_000): Promise<V1PersistentVolumeClaim> {
  return waitFor(`claim ${namespace}/${name} Bound`, async () => {
    const c = await a.core.readNamespacedPersistentVolumeClaim({ name, namespace });
    return c.status?.phase === 'Bound' ? c : undefined;
  }, ms);
}

export async function eventsFor(a: Apis, namespace: string, name: string): Promise<CoreV1Event[]> {
  const list = await a.core.listNamespacedEvent({ namespace, fieldSelector: `involvedObject.name=${name}` });
  return list.items;
}
