// SPDX-License-Identifier: Apache-2.0
// The local two-node cluster of `make cluster` (spec/cluster/cluster.sh) for the demo and the
// real-node end-to-end specs: start it (or reuse a running one), run kubectl against it, wait.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './plane.js';

export const clusterDir = join(repoRoot, '.cluster');
const script = join(repoRoot, 'spec/cluster/cluster.sh');

export interface NodeCluster {
  kubeconfig: string;
  /** The Datera simulator the cluster's Secret names (reachable from pods and nodes). */
  simUrl: string;
  /** Whether this process started the cluster (and so should stop it). */
  startedHere: boolean;
  kubectl(args: string[], input?: string): string;
  /** kubectl that may fail: status and output. */
  tryKubectl(args: string[]): { ok: boolean; out: string };
  /** The per-node copy of a host path (`/dev/disk/by-path`, the plugin dir, ...). */
  nodePath(node: string, hostPath: string): string;
}

export function clusterRunning(): boolean {
  const pidFile = join(clusterDir, 'up.pid');
  if (!existsSync(pidFile) || !existsSync(join(clusterDir, 'plane.json'))) return false;
  try {
    process.kill(Number(readFileSync(pidFile, 'utf8').trim()), 0);
    return true;
  } catch {
    return false;
  }
}

/** Starts the cluster unless one is running; throws with the script's output when it fails. */
export function clusterUp(env: Record<string, string> = {}): NodeCluster {
  const startedHere = !clusterRunning();
  if (startedHere) {
    const r = spawnSync(script, ['up'], { cwd: repoRoot, env: { ...process.env, ...env }, stdio: ['ignore', 'inherit', 'inherit'] });
    if (r.status !== 0) throw new Error(`spec/cluster/cluster.sh up failed (exit ${r.status}); logs in ${clusterDir}`);
  }
  return attach(startedHere);
}

export function clusterDown(): void {
  const r = spawnSync(script, ['down'], { cwd: repoRoot, stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) throw new Error(`spec/cluster/cluster.sh down failed (exit ${r.status})`);
}

function attach(startedHere: boolean): NodeCluster {
  const kubeconfig = join(clusterDir, 'kubeconfig');
  const kubectlBin = join(clusterDir, 'bin', 'kubectl');
  const simUrl = `http://${process.env.CLUSTER_ADDRESS ?? '10.250.0.1'}:${process.env.CLUSTER_SIM_PORT ?? '7717'}`;
  const env = { ...process.env, KUBECONFIG: kubeconfig };
  return {
    kubeconfig,
    simUrl,
    startedHere,
    kubectl(args, input) {
      return execFileSync(kubectlBin, args, { env, input, encoding: 'utf8', maxBuffer: 64 << 20, stdio: ['pipe', 'pipe', 'pipe'] });
    },
    tryKubectl(args) {
      const r = spawnSync(kubectlBin, args, { env, encoding: 'utf8', maxBuffer: 64 << 20 });
      return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
    },
    nodePath(node, hostPath) {
      return join(clusterDir, 'nodes', node, 'root', hostPath);
    },
  };
}

export async function waitFor<T>(what: string, fn: () => T | undefined | false, ms = 180_000, everyMs = 1000): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${ms / 1000} s waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** `kubectl get pod` as JSON, or undefined when it does not exist. */
export function getPod(c: NodeCluster, name: string, ns = 'default'): { phase: string; node: string; uid: string; ready: boolean } | undefined {
  const r = c.tryKubectl(['-n', ns, 'get', 'pod', name, '-o', 'json']);
  if (!r.ok) return undefined;
  const p = JSON.parse(r.out) as { metadata: { uid: string; deletionTimestamp?: string }; spec: { nodeName?: string }; status: { phase?: string; containerStatuses?: { ready: boolean }[] } };
  if (p.metadata.deletionTimestamp) return undefined;
  return {
    phase: p.status.phase ?? '',
    node: p.spec.nodeName ?? '',
    uid: p.metadata.uid,
    ready: (p.status.containerStatuses ?? []).length > 0 && p.status.containerStatuses!.every((s) => s.ready),
  };
}

/** Waits until the pod runs with every container ready (a new incarnation when `notUid` is given). */
export function waitRunning(c: NodeCluster, name: string, ns = 'default', notUid?: string, ms = 180_000) {
  return waitFor(`pod ${ns}/${name} Running`, () => {
    const p = getPod(c, name, ns);
    return p && p.phase === 'Running' && p.ready && p.uid !== notUid ? p : undefined;
  }, ms);
}

/** Recent events of an object, for failure messages. */
export function eventsOf(c: NodeCluster, name: string, ns = 'default'): string {
  return c.tryKubectl(['-n', ns, 'get', 'events', '--field-selector', `involvedObject.name=${name}`, '-o', 'custom-columns=REASON:.reason,MESSAGE:.message']).out;
}
