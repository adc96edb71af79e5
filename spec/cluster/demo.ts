// SPDX-License-Identifier: Apache-2.0
// `make demo`: the 2016 "Pet Sets and FlexVolumes with Datera" walkthrough on current APIs.
// Starts a local control plane (upstream kube-apiserver, etcd, kube-controller-manager), the
// Datera simulator and the provisioner as real processes, applies manifests/examples/petset-walkthrough,
// scales the StatefulSet from 2 to 3, and prints `kubectl get pv,pvc` and the Datera app instances.
//   --keep        stay up afterwards (prints how to use kubectl against it; Ctrl-C stops everything)
//   --dir DIR     state directory (default .demo/)
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { DateraClient } from '../../lib/datera/client.js';
import { repoRoot, startPlane, type Plane } from './plane.js';

const args = process.argv.slice(2);
const keep = args.includes('--keep');
const dirArg = args.indexOf('--dir');
const stateDir = resolve(dirArg >= 0 ? args[dirArg + 1]! : join(repoRoot, '.demo'));
const PROVISIONER = 'datera.io/provisioner-datera';
const NS = 'datera-system';
const USER = { name: 'admin', password: 'demo_password1' };

const children: ChildProcess[] = [];
let plane: Plane | undefined;

function say(msg: string): void {
  process.stdout.write(`\n\x1b[1m==> ${msg}\x1b[0m\n`);
}

/** Spawns a long-running child; resolves with the first stdout line matching `ready`. */
function startChild(name: string, argv: string[], ready: RegExp, env: Record<string, string> = {}): Promise<{ child: ChildProcess; match: RegExpMatchArray }> {
  const child = spawn(process.execPath, ['--import', 'tsx', ...argv], { cwd: repoRoot, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  const log = join(stateDir, `${name}.log`);
  const lines: string[] = [];
  return new Promise((resolvePromise, reject) => {
    const onLine = (line: string) => {
      lines.push(line);
      writeFileSync(log, line + '\n', { flag: 'a' });
      const m = ready.exec(line);
      if (m) resolvePromise({ child, match: m });
    };
    createInterface({ input: child.stdout! }).on('line', onLine);
    createInterface({ input: child.stderr! }).on('line', onLine);
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code}:\n${lines.slice(-20).join('\n')}`)));
  });
}

async function waitFor(what: string, fn: () => boolean, ms = 120_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function shutdown(code: number): Promise<never> {
  for (const c of children.reverse()) if (c.exitCode === null) c.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 1500));
  await plane?.stop();
  process.exit(code);
}

async function main(): Promise<void> {
  rmSync(stateDir, { recursive: true, force: true });
  mkdirSync(join(stateDir, 'credentials'), { recursive: true });

  say('Starting the control plane (etcd, kube-apiserver, kube-controller-manager; built from Go modules on first use)');
  plane = await startPlane({ dir: join(stateDir, 'plane'), pvSyncPeriod: '2s' });
  const kubectl = (a: string[], input?: string) => plane!.kubectl(a, input);
  process.stdout.write(`kube-apiserver ${plane.version} at ${plane.server}\n`);

  say('Starting the Datera simulator');
  const sim = await startChild('datera-sim', ['lib/sim/cli.ts', '--port', '0', '--users', `${USER.name}:${USER.password}`, '--seed', 'config/sim-seed.yaml'], /listening on (\S+)/);
  const simUrl = sim.match[1]!;
  process.stdout.write(`Datera API (simulated) at ${simUrl}\n`);

  say('Installing the provisioner configuration: namespace, credentials Secret (type datera/iscsi), AppTemplates');
  kubectl(['apply', '-f', join(repoRoot, 'manifests/base/namespace.yaml')]);
  kubectl(['-n', NS, 'create', 'secret', 'generic', 'datera-credentials', '--type=datera/iscsi', `--from-literal=username=${USER.name}`, `--from-literal=password=${USER.password}`, `--from-literal=server=${simUrl}`]);
  kubectl(['-n', NS, 'create', 'configmap', 'datera-templates', `--from-file=templates.yaml=${join(repoRoot, 'config/templates.yaml')}`]);
  // The Secret as the Deployment would mount it.
  for (const [k, v] of Object.entries({ username: USER.name, password: USER.password, server: simUrl })) writeFileSync(join(stateDir, 'credentials', k), v);

  say('Starting the provisioner (leader election on, PetSet-era alpha claims mapped to datera-petset)');
  await startChild(
    'provisioner',
    ['lib/main.ts', '--kubeconfig', plane.kubeconfig, '--namespace', NS, '--credentials-dir', join(stateDir, 'credentials'), '--http-address', '127.0.0.1', '--http-port', '0', '--legacy-alpha-classes', '*=datera-petset'],
    /became leader/,
    { POD_NAME: 'datera-provisioner-demo' },
  );

  say('kubectl apply -k manifests/examples/petset-walkthrough   (StorageClass, 3 claims, a pod, a StatefulSet of 2)');
  process.stdout.write(kubectl(['apply', '-k', join(repoRoot, 'manifests/examples/petset-walkthrough')]));
  const bound = () => {
    const out = kubectl(['get', 'pvc', '-o', 'jsonpath={range .items[*]}{.metadata.name}={.status.phase}{"\\n"}{end}']);
    return new Map(out.trim().split('\n').filter(Boolean).map((l) => l.split('=') as [string, string]));
  };
  await waitFor('claims 0, 1 and 3 Bound', () => ['0', '1', '3'].every((i) => bound().get(`pv-claim-test-petset-${i}`) === 'Bound'));

  say('kubectl get pv,pvc');
  process.stdout.write(kubectl(['get', 'pv,pvc']));

  say(`kubectl patch statefulset test-petset -p '{"spec":{"replicas":3}}'`);
  process.stdout.write(kubectl(['patch', 'statefulset', 'test-petset', '-p', '{"spec":{"replicas":3}}']));
  await waitFor('pv-claim-test-petset-2 Bound', () => bound().get('pv-claim-test-petset-2') === 'Bound');

  say('kubectl get pv,pvc  (one more Datera volume for the new replica)');
  process.stdout.write(kubectl(['get', 'pv,pvc']));
  say('kubectl get statefulset,pods  (pods stay Pending: this control plane has no scheduler or kubelets)');
  process.stdout.write(kubectl(['get', 'statefulset,pods']));

  say('Datera app instances (GET /v2.2/app_instances, with the metadata the provisioner records)');
  const client = new DateraClient({ endpoint: simUrl, username: USER.name, password: USER.password });
  const page = await client.listAppInstances();
  const rows = [['APP INSTANCE', 'SIZE', 'REPLICAS', 'STATE', 'CLAIM', 'TARGET IQN']];
  for (const ai of page.data) {
    const md = await client.getMetadata(ai.name);
    const si = ai.storage_instances[0];
    const vol = si?.volumes[0];
    rows.push([ai.name, `${vol?.size ?? '?'}Gi`, String(vol?.replica_count ?? '?'), ai.admin_state, `${md['k8s-claim-namespace']}/${md['k8s-claim-name']}`, si?.access.iqn ?? '']);
  }
  await client.close();
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) process.stdout.write(r.map((c, i) => c.padEnd(widths[i]!)).join('   ') + '\n');

  if (keep) {
    say('The demo stays up. In another shell:');
    process.stdout.write(`  export KUBECONFIG=${plane.kubeconfig}\n  kubectl get pv,pvc\n  kubectl describe pvc pv-claim-test-petset-2\n  curl -s ${simUrl}/_sim/state | head\nLogs: ${stateDir}/*.log and ${stateDir}/plane/*.log. Ctrl-C stops everything.\n`);
    await new Promise<void>((r) => process.once('SIGINT', () => r()));
  }
  say('Stopping the provisioner, the simulator and the control plane');
  await shutdown(0);
}

process.on('SIGTERM', () => void shutdown(143));
main().catch(async (err: unknown) => {
  process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\nLogs are in ${stateDir}\n`);
  await shutdown(1);
});
