// SPDX-License-Identifier: Apache-2.0
// `datera-provisioner audit` on a real control plane: claims provisioned by the real provisioner,
// a PV created through the API whose app instance does not exist, drift made on the Datera side,
// an orphan of this cluster and an app instance of another cluster; the command reads the cluster
// with a kubeconfig exactly as the provisioner does, and deletes only with --yes.
import { expect } from 'chai';
import type { V1PersistentVolume } from '@kubernetes/client-node';
import { command } from '../../lib/admin/audit.js';
import type { AuditReport } from '../../lib/admin/audit-scan.js';
import { DateraClient } from '../../lib/datera/client.js';
import type { Running } from '../../lib/main.js';
import { DateraSimulator } from '../../lib/sim/server.js';
import type { Plane } from '../cluster/plane.js';
import { SIM_USER, apis, claim, freshNamespace, sharedPlane, startProvisioner, storageClass, suffix, waitBound, type Apis } from './harness.js';

const AI_BODY = { storage_instances: [{ name: 'storage-1', volumes: [{ name: 'volume-1', size: 1, replica_count: 2 }] }] };

describe('e2e: datera-provisioner audit', function () {
  this.timeout(240_000);
  let plane: Plane;
  let a: Apis;
  let sim: DateraSimulator;
  let simUrl: string;
  let direct: DateraClient;
  let ns: string;
  let clusterId: string;
  let running: Running | undefined;
  const name = `e2e.datera.io/audit-${suffix()}`;
  const cls = `audit-${suffix()}`;
  const missingPv = `pvc-missing-${suffix()}`;
  const pvNames: Record<string, string> = {};

  const audit = async (...extra: string[]): Promise<{ code: number; stdout: string; stderr: string }> => {
    let stdout = '';
    let stderr = '';
    const code = await command.run(
      ['--kubeconfig', plane.kubeconfig, '--namespace', ns, '--provisioner-name', name, '--credentials-dir', '/nonexistent', ...extra],
      { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t), env: { DAT_MGMT: simUrl, DAT_USER: SIM_USER.name, DAT_PASS: SIM_USER.password } },
    );
    return { code, stdout, stderr };
  };
  const names = () => sim.appInstances('/root').map((x) => x.name).sort();

  before(async function () {
    plane = await sharedPlane();
    a = apis(plane);
    sim = new DateraSimulator({ users: [SIM_USER] });
    simUrl = await sim.start();
    direct = new DateraClient({ endpoint: simUrl, username: SIM_USER.name, password: SIM_USER.password });
    ns = await freshNamespace(a, 'audit');
    clusterId = (await a.core.readNamespace({ name: 'kube-system' })).metadata!.uid!;
    await a.core.createNamespacedConfigMap({
      namespace: ns,
      body: { metadata: { name: 'datera-templates' }, data: { 'templates.yaml': 'templates:\n  - name: t\n    replicas: 2\n    qos:\n      totalIopsMax: 1000\n' } },
    });
    await a.storage.createStorageClass({ body: storageClass(cls, name, { template: 't' }) });
    running = await startProvisioner({ plane, simUrl, provisionerName: name, namespace: ns, extraArgs: ['--orphan-sweep', 'off'] });
    for (const c of ['same', 'drifted']) {
      await a.core.createNamespacedPersistentVolumeClaim({ namespace: ns, body: claim(c, { className: cls }) });
      pvNames[c] = (await waitBound(a, ns, c)).spec!.volumeName!;
    }
    await running.stop();
    running = undefined;

    // Drift on the Datera side: the volume grew and lost its QoS limit.
    await direct.resizeVolume(pvNames.drifted!, 'storage-1', 'volume-1', 3);
    await direct.setPerformancePolicy(pvNames.drifted!, 'storage-1', 'volume-1', {});
    // A PV of ours whose app instance does not exist.
    const pv: V1PersistentVolume = {
      apiVersion: 'v1',
      kind: 'PersistentVolume',
      metadata: { name: missingPv, annotations: { 'pv.kubernetes.io/provisioned-by': name } },
      spec: {
        capacity: { storage: '1Gi' },
        accessModes: ['ReadWriteOnce'],
        persistentVolumeReclaimPolicy: 'Retain',
        storageClassName: cls,
        flexVolume: { driver: 'datera/iscsi', fsType: 'xfs', options: { volumeID: missingPv, size: '1', replica: '2' } },
      },
    };
    await a.core.createPersistentVolume({ body: pv });
    // An orphan of this cluster (two days old) and a volume of another cluster in the same tenant.
    const md = (pvName: string, cluster: string) => ({
      'k8s-provisioner': name,
      'k8s-pv': pvName,
      'k8s-claim-namespace': ns,
      'k8s-claim-name': `gone-${pvName}`,
      'k8s-claim-uid': `uid-${pvName}`,
      'k8s-storage-class': cls,
      'k8s-cluster-id': cluster,
      'k8s-created-at': new Date(Date.now() - 2 * 86_400_000).toISOString(),
      'k8s-reclaim-policy': 'Delete',
    });
    await direct.createAppInstance({ name: 'pvc-orphan', ...AI_BODY });
    await direct.putMetadata('pvc-orphan', md('pvc-orphan', clusterId));
    await direct.createAppInstance({ name: 'pvc-elsewhere', ...AI_BODY });
    await direct.putMetadata('pvc-elsewhere', md('pvc-elsewhere', 'another-cluster'));
  });
  after(async () => {
    await running?.stop();
    await a?.core.deletePersistentVolume({ name: missingPv }).catch(() => undefined);
    await direct?.close();
    await sim?.stop();
  });

  it('-o json: the orphan with its age, the PV whose app instance is missing, the drift, the other cluster\'s volume; exit 1', async () => {
    const r = await audit('-o', 'json');
    expect(r.code, r.stderr).to.equal(1);
    expect(r.stderr, 'no progress with -o json').to.equal('');
    const report = JSON.parse(r.stdout) as AuditReport;
    expect(report.clusterId).to.equal(clusterId);
    expect(report.errors).to.deep.equal([]);
    expect(report.orphans.map((o) => [o.appInstance, o.claim, Math.round(o.ageSeconds! / 3600)])).to.deep.equal([['pvc-orphan', `${ns}/gone-pvc-orphan`, 48]]);
    expect(report.missing.map((m) => [m.pv, m.appInstance])).to.deep.equal([[missingPv, missingPv]]);
    expect(report.drift.map((d) => [d.pv, d.field, d.actual, d.expected])).to.deep.equal([
      [pvNames.drifted, 'qos.total_iops_max', 'unlimited', '1000'],
      [pvNames.drifted, 'size', '3Gi', '1Gi'],
    ]);
    expect(report.foreign.map((f) => [f.appInstance, f.why, f.clusterId])).to.deep.equal([['pvc-elsewhere', 'another cluster', 'another-cluster']]);
  });

  it('the table lists each section and progress goes to stderr', async () => {
    const r = await audit();
    expect(r.code).to.equal(1);
    expect(r.stdout).to.match(/^ORPHANS .*: 1$/m);
    expect(r.stdout).to.match(/^MISSING .*: 1$/m);
    expect(r.stdout).to.match(/^DRIFT .*: 2$/m);
    expect(r.stdout).to.match(/^FOREIGN .*: 1$/m);
    expect(r.stderr).to.match(/audit: tenant \/root at .*: 4 app instances listed/);
  });

  it('--delete-orphans --older-than 24h is a dry run; with --yes it deletes the orphan and only the orphan', async () => {
    const before = names();
    const dry = await audit('--delete-orphans', '--older-than', '24h', '-o', 'json');
    expect((JSON.parse(dry.stdout) as AuditReport).deletions!.map((d) => [d.appInstance, d.action])).to.deep.equal([['pvc-orphan', 'would-delete']]);
    expect(names()).to.deep.equal(before);

    const tooYoung = await audit('--delete-orphans', '--older-than', '72h', '--yes', '-o', 'json');
    expect((JSON.parse(tooYoung.stdout) as AuditReport).deletions!.map((d) => [d.appInstance, d.action])).to.deep.equal([['pvc-orphan', 'skipped']]);
    expect(names()).to.deep.equal(before);

    const yes = await audit('--delete-orphans', '--older-than', '24h', '--yes', '-o', 'json');
    expect(yes.code, 'the missing app instance and the drift are still findings').to.equal(1);
    expect((JSON.parse(yes.stdout) as AuditReport).deletions!.map((d) => [d.appInstance, d.action])).to.deep.equal([['pvc-orphan', 'deleted']]);
    expect(names()).to.deep.equal(before.filter((n) => n !== 'pvc-orphan'));
    expect(names()).to.include('pvc-elsewhere');
  });

  it('a Datera endpoint that does not answer makes the audit incomplete: exit 2 with the error', async () => {
    const saved = simUrl;
    simUrl = 'http://127.0.0.1:9';
    try {
      const r = await audit('-o', 'json', '--datera-deadline', '2s');
      expect(r.code).to.equal(2);
      expect((JSON.parse(r.stdout) as AuditReport).errors.length).to.be.greaterThan(0);
    } finally {
      simUrl = saved;
    }
  });
});
