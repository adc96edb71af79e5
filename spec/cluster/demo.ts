// SPDX-License-Identifier: Apache-2.0
// `make demo`: the 2016 "Pet Sets and FlexVolumes with Datera" walkthrough on current APIs and
// real nodes. Brings up the local cluster of `make cluster` (control plane, kube-scheduler, two
// kubelets with containerd, the Datera simulator, the provisioner and the node driver installed
// from manifests/), applies manifests/examples/petset-walkthrough, and shows stateful pods
// keeping their data: each member writes to its volume, a member is deleted and comes back with
// its data, the set scales 2 -> 3, and a member moved to the other node still reads its data.
//   --keep   leave the cluster running afterwards (stop it with `make cluster-down`)
import { DateraClient } from '../../lib/datera/client.js';
import { clusterDown, clusterRunning, clusterUp, getPod, waitFor, waitRunning, type NodeCluster } from './nodes.js';
import { repoRoot } from './plane.js';

const keep = process.argv.includes('--keep');
const NS = 'datera-system';
const SET = 'test-petset';

function say(msg: string): void {
  process.stdout.write(`\n\x1b[1m==> ${msg}\x1b[0m\n`);
}
function show(out: string): void {
  process.stdout.write(out.endsWith('\n') ? out : `${out}\n`);
}

function claimPhases(c: NodeCluster): Map<string, string> {
  const out = c.kubectl(['get', 'pvc', '-o', 'jsonpath={range .items[*]}{.metadata.name}={.status.phase}{"\\n"}{end}']);
  return new Map(out.trim().split('\n').filter(Boolean).map((l) => l.split('=') as [string, string]));
}

function readMember(c: NodeCluster, pod: string): string {
  return c.kubectl(['exec', pod, '--', 'cat', '/data/index.html']).trim();
}

async function main(): Promise<void> {
  say('make cluster: control plane + kube-scheduler, two nodes (kubelet + containerd), kube-proxy, Datera simulator;');
  process.stdout.write('    then, as the README says: the credentials Secret, kubectl apply -k manifests/base, kubectl apply -k manifests/flex\n');
  const c = clusterUp();
  show(c.kubectl(['get', 'nodes', '-o', 'wide']));
  show(c.kubectl(['-n', NS, 'get', 'deployment,daemonset,pods', '-o', 'wide']));

  // A re-run on a kept cluster starts the story afresh.
  c.tryKubectl(['delete', '-k', `${repoRoot}/manifests/examples/petset-walkthrough`, '--wait=true', '--timeout=120s']);
  c.tryKubectl(['delete', 'pvc', '--all', '--wait=true', '--timeout=120s']);
  c.tryKubectl(['uncordon', 'node-1', 'node-2']);

  say('Old PetSet manifests name their class in volume.alpha.kubernetes.io/storage-class: map it (legacyAlphaClasses) and restart the provisioner');
  const cfg = c.kubectl(['-n', NS, 'get', 'configmap', 'datera-provisioner-config', '-o', 'jsonpath={.data.provisioner\\.yaml}']);
  if (!cfg.includes('"*": datera-petset')) {
    const edited = cfg.replace(/^legacyAlphaClasses:.*$/m, 'legacyAlphaClasses: { "*": datera-petset }');
    c.kubectl(['-n', NS, 'patch', 'configmap', 'datera-provisioner-config', '--type', 'merge', '-p', JSON.stringify({ data: { 'provisioner.yaml': edited } })]);
    c.kubectl(['-n', NS, 'rollout', 'restart', 'deployment/datera-provisioner']);
    c.kubectl(['-n', NS, 'rollout', 'status', 'deployment/datera-provisioner', '--timeout=180s']);
  }

  say('kubectl apply -k manifests/examples/petset-walkthrough   (StorageClass, claims 0, 1 and 3, the pod kube-pv-demo, a StatefulSet of 2)');
  show(c.kubectl(['apply', '-k', `${repoRoot}/manifests/examples/petset-walkthrough`]));
  await waitFor('claims 0, 1 and 3 Bound', () => ['0', '1', '3'].every((i) => claimPhases(c).get(`pv-claim-test-petset-${i}`) === 'Bound'));
  await waitRunning(c, 'kube-pv-demo');
  await waitRunning(c, `${SET}-0`);
  await waitRunning(c, `${SET}-1`);
  say('kubectl get pv,pvc');
  show(c.kubectl(['get', 'pv,pvc']));
  say('kubectl get pods -o wide   (Running, on real kubelets, each on its own Datera volume)');
  show(c.kubectl(['get', 'pods', '-o', 'wide']));

  say('Each member writes to its volume (busybox httpd serves /data/index.html)');
  for (const i of [0, 1]) {
    const pod = `${SET}-${i}`;
    c.kubectl(['exec', pod, '--', 'sh', '-c', `echo "written by ${pod} on ${getPod(c, pod)!.node} at $(date -u +%H:%M:%S)" > /data/index.html && sync`]);
    show(`${pod}: ${readMember(c, pod)}   (df: ${c.kubectl(['exec', pod, '--', 'df', '-h', '/data']).trim().split('\n').pop()})`);
  }
  const before0 = readMember(c, `${SET}-0`);

  say(`kubectl delete pod ${SET}-0   (the StatefulSet brings it back on the same claim)`);
  const old0 = getPod(c, `${SET}-0`)!;
  show(c.kubectl(['delete', 'pod', `${SET}-0`, '--wait=false']));
  const new0 = await waitRunning(c, `${SET}-0`, 'default', old0.uid);
  const after0 = readMember(c, `${SET}-0`);
  show(`${SET}-0 is back on ${new0.node} and reads: ${after0}`);
  if (after0 !== before0) throw new Error(`${SET}-0 lost its data: wrote "${before0}", read "${after0}"`);

  say(`kubectl scale statefulset ${SET} --replicas=3   (one more claim, one more Datera volume)`);
  show(c.kubectl(['scale', 'statefulset', SET, '--replicas=3']));
  await waitFor('pv-claim-test-petset-2 Bound', () => claimPhases(c).get('pv-claim-test-petset-2') === 'Bound');
  await waitRunning(c, `${SET}-2`);
  c.kubectl(['exec', `${SET}-2`, '--', 'sh', '-c', `echo "written by ${SET}-2 at $(date -u +%H:%M:%S)" > /data/index.html && sync`]);
  show(c.kubectl(['get', 'pods', '-o', 'wide']));

  const p1 = getPod(c, `${SET}-1`)!;
  const other = p1.node === 'node-1' ? 'node-2' : 'node-1';
  const before1 = readMember(c, `${SET}-1`);
  say(`Move ${SET}-1 from ${p1.node} to ${other}: kubectl cordon ${p1.node}; kubectl delete pod ${SET}-1`);
  show(c.kubectl(['cordon', p1.node]));
  show(c.kubectl(['delete', 'pod', `${SET}-1`, '--wait=false']));
  const moved = await waitRunning(c, `${SET}-1`, 'default', p1.uid);
  const after1 = readMember(c, `${SET}-1`);
  show(`${SET}-1 now runs on ${moved.node} and reads: ${after1}`);
  if (moved.node === p1.node) throw new Error(`${SET}-1 did not move off ${p1.node}`);
  if (after1 !== before1) throw new Error(`${SET}-1 lost its data on the move: wrote "${before1}", read "${after1}"`);
  show(c.kubectl(['uncordon', p1.node]));
  show(c.kubectl(['get', 'pods', '-o', 'wide']));

  say('Datera app instances (GET /v2.2/app_instances) and the node each is logged in from');
  const client = new DateraClient({ endpoint: c.simUrl, username: 'admin', password: 'password' });
  const page = await client.listAppInstances();
  const rows = [['APP INSTANCE', 'SIZE', 'CLAIM', 'ACTIVE INITIATORS']];
  for (const ai of page.data) {
    const md = await client.getMetadata(ai.name);
    const si = ai.storage_instances[0] as unknown as { volumes: { size: number }[]; active_initiators?: string[] } | undefined;
    rows.push([ai.name, `${si?.volumes[0]?.size ?? '?'}Gi`, `${md['k8s-claim-namespace']}/${md['k8s-claim-name']}`, (si?.active_initiators ?? []).join(',') || '-']);
  }
  await client.close();
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) show(r.map((col, i) => col.padEnd(widths[i]!)).join('   '));

  if (keep) {
    say('The cluster stays up:');
    show(`  export KUBECONFIG=${c.kubeconfig}\n  kubectl get pods -o wide\n  kubectl exec ${SET}-0 -- cat /data/index.html\n  make cluster-down   # stops everything`);
    return;
  }
  say('make cluster-down');
  clusterDown();
}

const wasRunning = clusterRunning();
main().catch((err: unknown) => {
  process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
  if (keep || wasRunning) {
    process.stderr.write('The cluster is left running for a look (make cluster-down stops it); logs are in .cluster/\n');
  } else {
    process.stderr.write('Stopping the cluster this demo started; its logs stay in .cluster/\n');
    clusterDown();
  }
  process.exit(1);
});
