// SPDX-License-Identifier: Apache-2.0
// StatefulSets with volumeClaimTemplates, and PetSet-era claims with only the alpha annotation.
import { expect } from 'chai';
import type { V1StatefulSet } from '@kubernetes/client-node';
import { DateraSimulator } from '../../lib/sim/server.js';
import type { Running } from '../../lib/main.js';
import type { Plane } from '../cluster/plane.js';
import { SIM_USER, apis, claim, freshNamespace, sharedPlane, startProvisioner, storageClass, suffix, waitBound, waitFor, waitGone, type Apis } from './harness.js';

function statefulSet(name: string, className: string, replicas: number): V1StatefulSet {
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: { name },
    spec: {
      serviceName: name,
      replicas,
      podManagementPolicy: 'Parallel', // no kubelet runs pods here; Parallel still creates every ordinal's claim
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: { containers: [{ name: 'app', image: 'registry.k8s.io/pause:3.10', volumeMounts: [{ name: 'data', mountPath: '/data' }] }] },
      },
      volumeClaimTemplates: [
        { metadata: { name: 'data' }, spec: { storageClassName: className, accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '2Gi' } } } },
      ],
    },
  };
}

describe('e2e: StatefulSets and legacy PetSet claims', function () {
  this.timeout(240_000);
  let plane: Plane;
  let a: Apis;
  let sim: DateraSimulator;
  let prov: Running;
  let ns: string;
  const name = `e2e.datera.io/s-${suffix()}`;
  const cls = `sts-${suffix()}`;

  before(async function () {
    plane = await sharedPlane();
    a = apis(plane);
    sim = new DateraSimulator({ users: [SIM_USER] });
    const simUrl = await sim.start();
    ns = await freshNamespace(a, 'sts');
    await a.storage.createStorageClass({ body: storageClass(cls, name, { replica: '2' }) });
    prov = await startProvisioner({ plane, simUrl, provisionerName: name, namespace: ns, extraArgs: ['--legacy-alpha-classes', `anything=${cls}`] });
  });
  after(async function () {
    await prov?.stop();
    await sim?.stop();
  });

  it('gives one volume per replica: 2 replicas -> 2 bound claims, scale to 3 -> the third, scale down keeps them', async () => {
    await a.apps.createNamespacedStatefulSet({ namespace: ns, body: statefulSet('web', cls, 2) });
    const c0 = await waitBound(a, ns, 'data-web-0');
    const c1 = await waitBound(a, ns, 'data-web-1');
    expect(c0.spec!.volumeName).to.not.equal(c1.spec!.volumeName);
    await a.apps.patchNamespacedStatefulSetScale({ name: 'web', namespace: ns, body: [{ op: 'replace', path: '/spec/replicas', value: 3 }] });
    const c2 = await waitBound(a, ns, 'data-web-2');
    const names = [c0, c1, c2].map((c) => c.spec!.volumeName);
    expect(new Set(names).size).to.equal(3);
    const ais = sim.appInstances().filter((ai) => names.includes(ai.name));
    expect(ais).to.have.length(3);
    for (const ai of ais) expect(ai.storage_instances[0]!.volumes[0]!.replica_count).to.equal(2);

    await a.apps.patchNamespacedStatefulSetScale({ name: 'web', namespace: ns, body: [{ op: 'replace', path: '/spec/replicas', value: 1 }] });
    await waitFor('scaled down to 1 pod', async () => (await a.core.listNamespacedPod({ namespace: ns, labelSelector: 'app=web' })).items.length === 1);
    await new Promise((r) => setTimeout(r, 2000));
    for (const n of ['data-web-0', 'data-web-1', 'data-web-2']) {
      const c = await a.core.readNamespacedPersistentVolumeClaim({ name: n, namespace: ns });
      expect(c.status!.phase, n).to.equal('Bound');
    }
    expect(sim.appInstances().filter((ai) => names.includes(ai.name))).to.have.length(3);
  });

  it('gives a re-created claim (new uid) a new volume', async () => {
    await a.core.createNamespacedPersistentVolumeClaim({ namespace: ns, body: claim('again', { className: cls }) });
    const first = await waitBound(a, ns, 'again');
    await a.core.deleteNamespacedPersistentVolumeClaim({ name: 'again', namespace: ns });
    await waitGone('claim again', () => a.core.readNamespacedPersistentVolumeClaim({ name: 'again', namespace: ns }));
    await a.core.createNamespacedPersistentVolumeClaim({ namespace: ns, body: claim('again', { className: cls }) });
    const second = await waitBound(a, ns, 'again');
    expect(second.metadata!.uid).to.not.equal(first.metadata!.uid);
    expect(second.spec!.volumeName).to.equal(`pvc-${second.metadata!.uid}`);
    await waitFor('old app instance deleted', async () => !sim.appInstances().some((ai) => ai.name === first.spec!.volumeName));
  });

  it('serves a class-less claim with only volume.alpha.kubernetes.io/storage-class when the mapping names one of our classes', async () => {
    await a.core.createNamespacedPersistentVolumeClaim({ namespace: ns, body: claim('pv-claim-test-petset-3', { alphaAnnotation: 'anything', size: '5Gi' }) });
    const c = await waitBound(a, ns, 'pv-claim-test-petset-3');
    const pv = await a.core.readPersistentVolume({ name: c.spec!.volumeName! });
    expect(pv.spec!.storageClassName ?? '').to.equal('');
    expect(pv.spec!.flexVolume!.options).to.include({ size: '5', replica: '2' });
    expect(sim.appInstances().some((ai) => ai.name === c.spec!.volumeName)).to.equal(true);
  });

  it('leaves alpha claims whose value is not mapped alone', async () => {
    await a.core.createNamespacedPersistentVolumeClaim({ namespace: ns, body: claim('unmapped', { alphaAnnotation: 'something-else' }) });
    await new Promise((r) => setTimeout(r, 2000));
    const c = await a.core.readNamespacedPersistentVolumeClaim({ name: 'unmapped', namespace: ns });
    expect(c.status!.phase).to.equal('Pending');
    expect(sim.appInstances().some((ai) => ai.name === `pvc-${c.metadata!.uid}`)).to.equal(false);
  });
});
