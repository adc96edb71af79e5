// SPDX-License-Identifier: Apache-2.0
// End to end on a real kube-apiserver + kube-controller-manager, the Datera simulator over HTTP,
// and the provisioner in-process with real clients.
import { expect } from 'chai';
import type { V1PersistentVolume } from '@kubernetes/client-node';
import { DateraSimulator } from '../../lib/sim/server.js';
import type { Running } from '../../lib/main.js';
import type { Plane } from '../cluster/plane.js';
import { SIM_USER, apis, claim, eventsFor, freshNamespace, sharedPlane, startProvisioner, storageClass, suffix, waitBound, waitFor, waitGone, type Apis } from './harness.js';

const TEMPLATES = `
templates:
  - name: gold
    replicas: 2
    placement: { mode: all_flash }
    ipPool: default
    qos: { totalIopsMax: 5000, totalBandwidthMax: 102400 }
    fsType: xfs
  - name: silver
    replicas: 1
    fsType: ext4
`;

describe('e2e: provisioning on a real control plane', function () {
  this.timeout(240_000);
  let plane: Plane;
  let a: Apis;
  let sim: DateraSimulator;
  let simUrl: string;
  let prov: Running;
  let ns: string;
  const name = `e2e.datera.io/p-${suffix()}`;
  const gold = `gold-${suffix()}`;
  const retain = `retain-${suffix()}`;
  const bad = `bad-${suffix()}`;

  before(async function () {
    plane = await sharedPlane();
    a = apis(plane);
    sim = new DateraSimulator({ users: [SIM_USER] });
    simUrl = await sim.start();
    ns = await freshNamespace(a, 'prov');
    await a.core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'datera-templates' }, data: { 'templates.yaml': TEMPLATES } } });
    await a.storage.createStorageClass({ body: storageClass(gold, name, { template: 'gold' }) });
    await a.storage.createStorageClass({ body: storageClass(retain, name, { template: 'silver' }, 'Retain') });
    await a.storage.createStorageClass({ body: storageClass(bad, name, { template: 'gold', replica_count: '9' }) });
    prov = await startProvisioner({ plane, simUrl, provisionerName: name, namespace: ns });
  });

  after(async function () {
    await prov?.stop();
    await sim?.stop();
  });

  it('binds a claim naming its class in spec.storageClassName and one using the beta annotation, one app instance each', async () => {
    await a.core.createNamespacedPersistentVolumeClaim({ namespace: ns, body: claim('by-field', { className: gold, size: '1500Mi' }) });
    await a.core.createNamespacedPersistentVolumeClaim({ namespace: ns, body: claim('by-annotation', { betaAnnotation: gold, size: '3Gi' }) });
    const c1 = await waitBound(a, ns, 'by-field');
    const c2 = await waitBound(a, ns, 'by-annotation');
    for (const [c, gib] of [[c1, 2], [c2, 3]] as const) {
      const pvName = `pvc-${c.metadata!.uid}`;
      expect(c.spec!.volumeName).to.equal(pvName);
      const pv: V1PersistentVolume = await a.core.readPersistentVolume({ name: pvName });
      expect(pv.spec!.flexVolume!.driver).to.equal('datera/iscsi');
      expect(pv.spec!.flexVolume!.fsType).to.equal('xfs');
      expect(pv.spec!.flexVolume!.options).to.include({ volumeID: pvName, size: String(gib), replica: '2', backstoreServer: simUrl, template: 'gold' });
      expect(pv.spec!.capacity!.storage).to.equal(`${gib}Gi`);
      expect(pv.spec!.claimRef).to.include({ namespace: ns, name: c.metadata!.name, uid: c.metadata!.uid });
      expect(pv.spec!.storageClassName).to.equal(gold);
      expect(pv.spec!.persistentVolumeReclaimPolicy).to.equal('Delete');
      expect(pv.spec!.mountOptions ?? []).to.deep.equal([]);
      expect(pv.metadata!.annotations!['pv.kubernetes.io/provisioned-by']).to.equal(name);
      expect(pv.metadata!.finalizers).to.include('external-provisioner.volume.kubernetes.io/finalizer');
      expect(pv.spec!.flexVolume!.secretRef).to.deep.equal({ name: 'datera-credentials', namespace: ns });
    }
    const ais = sim.appInstances().filter((ai) => [c1, c2].some((c) => ai.name === `pvc-${c.metadata!.uid}`));
    expect(ais).to.have.length(2);
    for (const ai of ais) {
      const vol = ai.storage_instances[0]!.volumes[0]!;
      expect(vol.replica_count).to.equal(2);
      expect(vol.placement_mode).to.equal('all_flash');
      expect(vol.performance_policy).to.include({ total_iops_max: 5000, total_bandwidth_max: 102400 });
    }
    const events = await eventsFor(a, ns, 'by-field');
    expect(events.map((e) => e.reason)).to.include('ProvisioningSucceeded');
  });

  it('deletes the app instance and the PV when a Delete-policy claim is deleted', async () => {
    await a.core.createNamespacedPersistentVolumeClaim({ namespace: ns, body: claim('to-delete', { className: gold }) });
    const c = await waitBound(a, ns, 'to-delete');
    const pvName = c.spec!.volumeName!;
    expect(sim.appInstances().some((ai) => ai.name === pvName)).to.equal(true);
    await a.core.deleteNamespacedPersistentVolumeClaim({ name: 'to-delete', namespace: ns });
    await waitFor('app instance deleted', async () => !sim.appInstances().some((ai) => ai.name === pvName));
    await waitGone(`PV ${pvName}`, () => a.core.readPersistentVolume({ name: pvName }));
  });

  it('writes to Kubernetes at most twice per volume: the PV create and one event when provisioning, one finalizer patch and one PV delete when deleting', async () => {
    /** This provisioner's own count of its Kubernetes requests (kubernetes_api_requests_total) of one verb and resource. */
    const requests = async (verb: string, resource: string): Promise<number> => {
      const text = await (await fetch(`${prov.httpUrl}/metrics`)).text();
      const line = text.split('\n').find((l) => l.startsWith('kubernetes_api_requests_total{') && l.includes(`verb="${verb}"`) && l.includes(`resource="${resource}"`));
      return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
    };
    const counts = async () => ({
      createPV: await requests('create', 'persistentvolumes'),
      patchPV: await requests('patch', 'persistentvolumes'),
      deletePV: await requests('delete', 'persistentvolumes'),
      createEvent: await requests('create', 'events'),
      patchEvent: await requests('patch', 'events'),
    });
    const delta = (a: Record<string, number>, b: Record<string, number>) => Object.fromEntries(Object.keys(a).map((k) => [k, b[k]! - a[k]!]));
    await prov.controller.queue.idle();
    const before = await counts();
    await a.core.createNamespacedPersistentVolumeClaim({ namespace: ns, body: claim('counted', { className: gold }) });
    const c = await waitBound(a, ns, 'counted');
    const pvName = c.spec!.volumeName!;
    await new Promise((r) => setTimeout(r, 1000)); // late watch events would bring late writes
    await prov.controller.queue.idle();
    const provisioned = await counts();
    expect(delta(before, provisioned)).to.deep.equal({ createPV: 1, patchPV: 0, deletePV: 0, createEvent: 1, patchEvent: 0 });
    await a.core.deleteNamespacedPersistentVolumeClaim({ name: 'counted', namespace: ns });
    await waitGone(`PV ${pvName}`, () => a.core.readPersistentVolume({ name: pvName }));
    await new Promise((r) => setTimeout(r, 1000));
    await prov.controller.queue.idle();
    expect(delta(provisioned, await counts())).to.deep.equal({ createPV: 0, patchPV: 1, deletePV: 1, createEvent: 0, patchEvent: 0 });
  });

  it('keeps the app instance and the PV when a Retain-policy claim is deleted', async () => {
    await a.core.createNamespacedPersistentVolumeClaim({ namespace: ns, body: claim('to-retain', { className: retain }) });
    const c = await waitBound(a, ns, 'to-retain');
    const pvName = c.spec!.volumeName!;
    const pv0 = await a.core.readPersistentVolume({ name: pvName });
    expect(pv0.spec!.persistentVolumeReclaimPolicy).to.equal('Retain');
    expect(pv0.metadata!.finalizers ?? []).to.not.include('external-provisioner.volume.kubernetes.io/finalizer');
    expect(pv0.spec!.flexVolume!.fsType).to.equal('ext4');
    await a.core.deleteNamespacedPersistentVolumeClaim({ name: 'to-retain', namespace: ns });
    await waitFor('PV Released', async () => (await a.core.readPersistentVolume({ name: pvName })).status?.phase === 'Released');
    await new Promise((r) => setTimeout(r, 1500)); // give a wrong delete a chance to happen
    expect((await a.core.readPersistentVolume({ name: pvName })).status?.phase).to.equal('Released');
    expect(sim.appInstances().some((ai) => ai.name === pvName)).to.equal(true);
  });

  it('refuses bad parameters with a ProvisioningFailed event naming the parameter, and creates nothing', async () => {
    const before = sim.appInstances().length;
    await a.core.createNamespacedPersistentVolumeClaim({ namespace: ns, body: claim('bad-params', { className: bad }) });
    const ev = await waitFor('ProvisioningFailed event', async () => (await eventsFor(a, ns, 'bad-params')).find((e) => e.reason === 'ProvisioningFailed'));
    expect(ev.type).to.equal('Warning');
    expect(ev.message).to.match(/replica_count/);
    expect(ev.message).to.match(/1\.\.5|1 to 5|between 1 and 5/);
    const c = await a.core.readNamespacedPersistentVolumeClaim({ name: 'bad-params', namespace: ns });
    expect(c.status!.phase).to.equal('Pending');
    expect(sim.appInstances().length).to.equal(before);
  });

  it('applies a ConfigMap template edit to the next volume without a restart', async () => {
    const cls = `edit-${suffix()}`;
    await a.storage.createStorageClass({ body: storageClass(cls, name, { template: 'silver' }) });
    await a.core.createNamespacedPersistentVolumeClaim({ namespace: ns, body: claim('before-edit', { className: cls }) });
    const c1 = await waitBound(a, ns, 'before-edit');
    const ai1 = sim.appInstances().find((ai) => ai.name === c1.spec!.volumeName)!;
    expect(ai1.storage_instances[0]!.volumes[0]!.replica_count).to.equal(1);

    await a.core.patchNamespacedConfigMap(
      { name: 'datera-templates', namespace: ns, body: [{ op: 'replace', path: '/data/templates.yaml', value: TEMPLATES.replace('replicas: 1', 'replicas: 3') }] },
    );
    // The running controller picks the edit up from its ConfigMap informer (an invalid edit: next test).
    await waitFor('edited templates in use', async () => prov.controller.templates.templates.get('silver')?.replicas === 3);
    await a.core.createNamespacedPersistentVolumeClaim({ namespace: ns, body: claim('after-edit', { className: cls }) });
    const c2 = await waitBound(a, ns, 'after-edit');
    const ai2 = sim.appInstances().find((ai) => ai.name === c2.spec!.volumeName)!;
    expect(ai2.storage_instances[0]!.volumes[0]!.replica_count).to.equal(3);
  });

  it('keeps the last good templates when an edit is invalid, and says so in an event on the ConfigMap', async () => {
    const good = prov.controller.templates;
    await a.core.patchNamespacedConfigMap({ name: 'datera-templates', namespace: ns, body: [{ op: 'replace', path: '/data/templates.yaml', value: 'templates:\n  - name: broken\n    replicas: 12\n' }] });
    const ev = await waitFor('InvalidTemplates event', async () => (await eventsFor(a, ns, 'datera-templates')).find((e) => e.reason === 'InvalidTemplates'));
    expect(ev.message).to.match(/replicas/);
    expect(prov.controller.templates).to.equal(good);
  });
});
