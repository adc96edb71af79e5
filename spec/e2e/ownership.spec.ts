// SPDX-License-Identifier: Apache-2.0
// Never delete what is not ours, on a real control plane: the orphan sweep after a provisioner was
// killed between the Datera create and the PV create, and reclaim refusing another cluster's volume.
import { expect } from 'chai';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubernetesObjectApi, loadAllYaml, type KubernetesObject } from '@kubernetes/client-node';
import { DateraClient } from '../../lib/datera/client.js';
import { DateraSimulator } from '../../lib/sim/server.js';
import type { Running } from '../../lib/main.js';
import { repoRoot, type Plane } from '../cluster/plane.js';
import {
  SIM_USER, apis, claim, freshNamespace, sharedPlane, startProvisioner, startProvisionerProcess, storageClass, suffix, waitBound, waitFor, waitGone,
  type Apis, type ProvisionerProcess,
} from './harness.js';

const AI_BODY = { storage_instances: [{ name: 'storage-1', volumes: [{ name: 'volume-1', size: 1 }] }] };

describe('e2e: never delete what is not ours', function () {
  this.timeout(240_000);
  let plane: Plane;
  let a: Apis;
  let sim: DateraSimulator;
  let simUrl: string;
  let direct: DateraClient;
  let ns: string;
  let clusterId: string;
  let first: ProvisionerProcess | undefined;
  let second: Running | undefined;
  const name = `e2e.datera.io/own-${suffix()}`;
  const cls = `own-${suffix()}`;
  const tag = suffix();

  before(async function () {
    plane = await sharedPlane();
    a = apis(plane);
    sim = new DateraSimulator({ users: [SIM_USER] });
    simUrl = await sim.start();
    direct = new DateraClient({ endpoint: simUrl, username: SIM_USER.name, password: SIM_USER.password });
    ns = await freshNamespace(a, 'own');
    clusterId = (await a.core.readNamespace({ name: 'kube-system' })).metadata!.uid!;
    await a.core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'datera-templates' }, data: { 'templates.yaml': 'templates:\n  - name: t\n    replicas: 1\n' } } });
    await a.storage.createStorageClass({ body: storageClass(cls, name, { template: 't' }) });
  });
  after(async function () {
    await first?.kill('SIGKILL');
    await second?.stop();
    await direct?.close();
    await sim?.stop();
  });

  /** A kubeconfig for a ServiceAccount with the shipped RBAC minus "create persistentvolumes": every PV save fails. */
  async function kubeconfigWithoutPvCreate(): Promise<string> {
    const docs = ['serviceaccount.yaml', 'rbac.yaml'].flatMap((f) => loadAllYaml(readFileSync(join(repoRoot, 'manifests/base', f), 'utf8')) as KubernetesObject[]);
    const generic = KubernetesObjectApi.makeApiClient(plane.kc);
    for (const d of docs) {
      const o = JSON.parse(JSON.stringify(d)) as KubernetesObject & { subjects?: Array<{ namespace?: string }>; roleRef?: { name: string }; rules?: Array<{ resources?: string[]; verbs: string[] }> };
      if (o.metadata!.namespace) o.metadata!.namespace = ns;
      if (o.kind === 'ClusterRole' || o.kind === 'ClusterRoleBinding') o.metadata!.name = `${o.metadata!.name}-${tag}`;
      if (o.kind === 'ClusterRoleBinding') o.roleRef!.name = `${o.roleRef!.name}-${tag}`;
      for (const s of o.subjects ?? []) s.namespace = ns;
      for (const r of o.rules ?? []) if (r.resources?.includes('persistentvolumes')) r.verbs = r.verbs.filter((v) => v !== 'create');
      await generic.create(o);
    }
    const token = await a.core.createNamespacedServiceAccountToken({ name: 'datera-provisioner', namespace: ns, body: { spec: { audiences: [], expirationSeconds: 3600 } } });
    const file = join(mkdtempSync(join(tmpdir(), 'own-')), 'kubeconfig');
    writeFileSync(
      file,
      `apiVersion: v1\nkind: Config\nclusters:\n- name: p\n  cluster: {server: "${plane.server}", insecure-skip-tls-verify: true}\nusers:\n- name: sa\n  user: {token: "${token.status!.token}"}\ncontexts:\n- name: p\n  context: {cluster: p, user: sa}\ncurrent-context: p\n`,
    );
    return file;
  }

  it('a provisioner killed between the Datera create and the PV create, the claim deleted: the next provisioner\'s sweep removes the orphan and leaves another cluster\'s app instance in the same tenant alone', async () => {
    const kubeconfig = await kubeconfigWithoutPvCreate();
    first = startProvisionerProcess({ plane, simUrl, provisionerName: name, namespace: ns, extraArgs: ['--kubeconfig', kubeconfig, '--leader-elect=false'] });
    await first.waitForLog(/provisioner running/);
    await a.core.createNamespacedPersistentVolumeClaim({ namespace: ns, body: claim('lost', { className: cls }) });
    const uid = (await a.core.readNamespacedPersistentVolumeClaim({ name: 'lost', namespace: ns })).metadata!.uid!;
    const orphan = `pvc-${uid}`;
    await first.waitForLog(/saving its PersistentVolume failed/);
    const md = await direct.getMetadata(orphan);
    expect(md).to.include({ 'k8s-provisioner': name, 'k8s-cluster-id': clusterId, 'k8s-claim-uid': uid, 'k8s-pv': orphan });
    await first.kill('SIGKILL');
    await a.core.deleteNamespacedPersistentVolumeClaim({ name: 'lost', namespace: ns });
    await waitGone('claim lost', () => a.core.readNamespacedPersistentVolumeClaim({ name: 'lost', namespace: ns }));

    // The grace period (minimum 1m) has "passed": the create time is moved back instead of waiting.
    await direct.putMetadata(orphan, { 'k8s-created-at': '2026-01-01T00:00:00.000Z' });
    // Same tenant, same provisioner name, same shape, but another cluster's; and an untagged one.
    const foreign = `pvc-${suffix()}-foreign`;
    await direct.createAppInstance({ name: foreign, ...AI_BODY });
    await direct.putMetadata(foreign, { ...md, 'k8s-pv': foreign, 'k8s-claim-uid': 'uid-elsewhere', 'k8s-cluster-id': 'another-cluster', 'k8s-created-at': '2026-01-01T00:00:00.000Z' });
    const untagged = `pvc-${suffix()}-untagged`;
    await direct.createAppInstance({ name: untagged, ...AI_BODY });

    second = await startProvisioner({ plane, simUrl, provisionerName: name, namespace: ns, extraArgs: ['--orphan-sweep-grace', '1m', '--orphan-sweep-delay', '0'] });
    await waitFor('orphan removed', async () => !sim.appInstances().some((ai) => ai.name === orphan), 60_000);
    expect(sim.appInstances().map((ai) => ai.name).sort()).to.deep.equal([foreign, untagged].sort());
    const events = await waitFor('OrphanedVolumeDeleted event', async () => {
      const list = await a.core.listEventForAllNamespaces({ fieldSelector: `involvedObject.name=${cls},reason=OrphanedVolumeDeleted` });
      return list.items.length ? list.items : undefined;
    }, 30_000);
    expect(events[0]!.message).to.include(orphan);
    const metrics = await (await fetch(`${second.httpUrl}/metrics`)).text();
    expect(metrics).to.match(/^datera_orphans_removed_total 1$/m);
  });

  it('reclaim refuses an app instance that another cluster has tagged: VolumeFailedDelete on the PV, PV and app instance kept', async () => {
    second ??= await startProvisioner({ plane, simUrl, provisionerName: name, namespace: ns });
    await a.core.createNamespacedPersistentVolumeClaim({ namespace: ns, body: claim('kept', { className: cls }) });
    const c = await waitBound(a, ns, 'kept');
    const pvName = c.spec!.volumeName!;
    await direct.putMetadata(pvName, { 'k8s-cluster-id': 'another-cluster' });
    await a.core.deleteNamespacedPersistentVolumeClaim({ name: 'kept', namespace: ns });
    const ev = await waitFor('VolumeFailedDelete', async () => {
      const list = await a.core.listEventForAllNamespaces({ fieldSelector: `involvedObject.name=${pvName},reason=VolumeFailedDelete` });
      return list.items[0];
    }, 60_000);
    expect(ev.message).to.match(/refusing to delete Datera app instance .*cluster another-cluster/);
    const pv = await a.core.readPersistentVolume({ name: pvName });
    expect(pv.status?.phase).to.equal('Released');
    expect(pv.metadata?.finalizers).to.include('external-provisioner.volume.kubernetes.io/finalizer');
    expect(sim.appInstances().some((ai) => ai.name === pvName)).to.equal(true);
  });
});
