// SPDX-License-Identifier: Apache-2.0
// How long `datera-provisioner audit` takes over thousands of app instances, and how many Datera
// calls it makes: the simulator seeded with N app instances (PVs of ours, orphans, foreign ones),
// the cluster given as objects (ClusterView), the audit's own scan (lib/admin/audit-scan.ts).
//   npx tsx bench/experiments/audit-scale.ts [N=5000] [latencyMs=5]
// Prints one JSON line per run; the numbers recorded in bench/results/ came from here.
import type { V1PersistentVolume, V1PersistentVolumeClaim } from '@kubernetes/client-node';
import { Audit, type ClusterView } from '../../lib/admin/audit-scan.js';
import { DateraClient } from '../../lib/datera/client.js';
import { nullLogger } from '../../lib/observability/logger.js';
import { parseTemplates } from '../../lib/provision/app-templates.js';
import { DateraConnections } from '../../lib/provision/credentials.js';
import { DateraSimulator } from '../../lib/sim/server.js';

const N = Number(process.argv[2] ?? 5000);
const LATENCY = Number(process.argv[3] ?? 5);
const PROVISIONER = 'datera.io/provisioner-datera';
const CLUSTER = 'c1a5c1a5-0000-4000-8000-000000000001';
const created = new Date(Date.now() - 3 * 86_400_000).toISOString();

async function main(): Promise<void> {
  const sim = new DateraSimulator({ users: [{ name: 'admin', password: 'secret_pw1' }] });
  const url = await sim.start();
  const direct = new DateraClient({ endpoint: url, username: 'admin', password: 'secret_pw1', connections: 32 });
  const volumes: V1PersistentVolume[] = [];
  const claims: V1PersistentVolumeClaim[] = [];
  // 80 % bound PVs of ours (5 % of them drifted), 10 % orphans, 10 % another cluster's.
  const seeds: Promise<unknown>[] = [];
  const t0 = performance.now();
  for (let i = 0; i < N; i++) {
    const name = `pvc-${String(i).padStart(6, '0')}`;
    const kind = i % 10 === 0 ? 'orphan' : i % 10 === 1 ? 'foreign' : 'bound';
    const size = kind === 'bound' && i % 20 === 2 ? 2 : 1;
    seeds.push(
      (async () => {
        await direct.createAppInstance({ name, storage_instances: [{ name: 'storage-1', volumes: [{ name: 'volume-1', size, replica_count: 2 }] }] });
        await direct.putMetadata(name, {
          'k8s-provisioner': PROVISIONER,
          'k8s-pv': name,
          'k8s-claim-namespace': 'apps',
          'k8s-claim-name': `c-${name}`,
          'k8s-claim-uid': `uid-${name}`,
          'k8s-storage-class': 'gold',
          'k8s-cluster-id': kind === 'foreign' ? 'another-cluster' : CLUSTER,
          'k8s-created-at': created,
          'k8s-reclaim-policy': 'Delete',
        });
      })(),
    );
    if (seeds.length >= 64) await Promise.all(seeds.splice(0));
    if (kind === 'bound') {
      volumes.push({
        metadata: { name, annotations: { 'pv.kubernetes.io/provisioned-by': PROVISIONER } },
        spec: {
          capacity: { storage: '1Gi' },
          accessModes: ['ReadWriteOnce'],
          storageClassName: 'gold',
          claimRef: { namespace: 'apps', name: `c-${name}`, uid: `uid-${name}` },
          flexVolume: { driver: 'datera/iscsi', options: { volumeID: name, size: '1' } },
        },
        status: { phase: 'Bound' },
      });
      claims.push({ metadata: { name: `c-${name}`, namespace: 'apps', uid: `uid-${name}` }, spec: { storageClassName: 'gold', volumeName: name, accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } }, status: { phase: 'Bound' } });
    }
  }
  await Promise.all(seeds);
  const seedMs = performance.now() - t0;
  const templates = parseTemplates('templates:\n  - name: t\n    replicas: 2\n');
  if (!templates.ok) throw new Error(templates.errors.join('; '));
  const cluster: ClusterView = {
    provisionerNames: new Set([PROVISIONER]),
    clusterId: CLUSTER,
    namespace: 'datera-system',
    defaultFsType: 'xfs',
    volumes,
    claims,
    classes: [{ metadata: { name: 'gold' }, provisioner: PROVISIONER, parameters: { template: 't' } }],
    templates: templates.set,
    readVolume: async (name) => volumes.find((v) => v.metadata!.name === name),
    readClaim: async (ns, name) => claims.find((c) => c.metadata!.namespace === ns && c.metadata!.name === name),
  };
  const connections = new DateraConnections({
    defaults: { endpoint: url, username: 'admin', password: 'secret_pw1', tenant: '/root', apiVersion: '2.2', insecureSkipTlsVerify: false, requestTimeoutMs: 30_000, deadlineMs: 60_000, connections: 8 },
    defaultSecret: { name: 'datera-credentials', namespace: 'datera-system' },
    readSecret: async () => undefined,
    makeClient: (c) => new DateraClient(c),
    logger: nullLogger(),
  });
  sim.setFaults({ latencyMs: LATENCY });
  sim.clearCalls();
  let progressLines = 0;
  const cpu0 = process.cpuUsage();
  const t1 = performance.now();
  const report = await new Audit(cluster, { connections, progress: () => progressLines++ }).run();
  const ms = performance.now() - t1;
  const cpu = process.cpuUsage(cpu0);
  const byRoute = new Map<string, number>();
  for (const c of sim.calls()) byRoute.set(`${c.method} ${c.route}`, (byRoute.get(`${c.method} ${c.route}`) ?? 0) + 1);
  console.log(
    JSON.stringify({
      appInstances: N,
      simLatencyMs: LATENCY,
      seedSeconds: +(seedMs / 1000).toFixed(1),
      auditSeconds: +(ms / 1000).toFixed(2),
      cpuSeconds: +((cpu.user + cpu.system) / 1e6).toFixed(2),
      rssMB: +(process.memoryUsage().rss / 2 ** 20).toFixed(1),
      progressLines,
      firstDrift: report.drift[0] ? { field: report.drift[0].field, actual: report.drift[0].actual, expected: report.drift[0].expected } : undefined,
      found: { orphans: report.orphans.length, missing: report.missing.length, drift: report.drift.length, foreign: report.foreign.length, errors: report.errors.length },
      dateraCalls: Object.fromEntries([...byRoute].sort()),
    }),
  );
  await connections.close();
  await direct.close();
  await sim.stop();
}

void main();
