// SPDX-License-Identifier: Apache-2.0
// The controller with in-memory caches and a recording Kubernetes API (edge cases: conflicts,
// AlreadyExists, failed saves, stale finalizer patches), and the real Datera simulator over HTTP.
import { expect } from 'chai';
import type { V1ConfigMap, V1PersistentVolume, V1PersistentVolumeClaim, V1StorageClass } from '@kubernetes/client-node';
import type { DateraClient } from '../../lib/datera/client.js';
import type { DateraSimulator } from '../../lib/sim/server.js';
import { nullLogger } from '../../lib/observability/logger.js';
import type { Metrics } from '../../lib/observability/metrics.js';
import type { ProvisionController } from '../../lib/provision/controller.js';
import type { DateraConnections } from '../../lib/provision/credentials.js';
import { PROVISIONER, newClaim, newStorageClass, newVolume } from '../support/builders.js';
import { FakeCore, apiError, type FakeInformer, type Recorded } from './controller-fakes.js';
import { newHarness, useSimulator, type Harness } from './harness.js';

describe('provisioning controller', function () {
  this.timeout(20_000);
  const fx = useSimulator();
  let sim: DateraSimulator;
  let simUrl: string;
  let h: Harness;
  let claims: FakeInformer<V1PersistentVolumeClaim>;
  let volumes: FakeInformer<V1PersistentVolume>;
  let classes: FakeInformer<V1StorageClass>;
  let configMaps: FakeInformer<V1ConfigMap>;
  let core: FakeCore;
  let events: Recorded[];
  let metrics: Metrics;
  let connections: DateraConnections;
  let ctrl: ProvisionController;
  let direct: DateraClient;
  let secrets: Map<string, { type?: string; data: Record<string, string> }>;

  beforeEach(() => {
    ({ sim, url: simUrl, direct } = fx);
    // No cluster id, retries far off, and no confirming reads: the caches alone decide.
    h = newHarness(sim, simUrl, { retryInitialMs: 60_000, retryMaxMs: 60_000, clusterId: undefined }, nullLogger(), new FakeCore({ confirmingReads: false }));
    ({ claims, volumes, classes, configMaps, core, events, metrics, connections, secrets, ctrl } = h);
    classes.set(newStorageClass('gold', { parameters: { replica: '2' } }));
    ctrl.start();
  });
  afterEach(async () => {
    await h.close();
  });

  async function settle() {
    await h.settle();
  }
  const reasons = (name: string) => events.filter((e) => e.name === name).map((e) => e.reason);

  it('provisions: one app instance tagged with the claim, one PV, one ProvisioningSucceeded event', async () => {
    claims.set(newClaim('a', { className: 'gold', size: '3Gi' }));
    await settle();
    const ais = sim.appInstances();
    expect(ais.map((a) => a.name)).to.deep.equal(['pvc-uid-a']);
    expect(ais[0]!.storage_instances[0]!.volumes[0]).to.include({ size: 3, replica_count: 2 });
    expect(await direct.getMetadata('pvc-uid-a')).to.include({ 'k8s-claim-uid': 'uid-a', 'k8s-claim-name': 'a', 'k8s-provisioner': PROVISIONER });
    const pvs = core.ops('createPV') as V1PersistentVolume[];
    expect(pvs).to.have.length(1);
    expect(pvs[0]!.spec!.claimRef!.uid).to.equal('uid-a');
    expect(reasons('a')).to.deep.equal(['ProvisioningSucceeded']);
    expect(await metrics.value('controller_persistentvolumeclaim_provision_total', { class: 'gold' })).to.equal(1);
  });

  it('does nothing for a claim whose PV is already in the cache', async () => {
    volumes.set(newVolume('pvc-uid-a'));
    claims.set(newClaim('a', { className: 'gold' }));
    await settle();
    expect(sim.appInstances()).to.have.length(0);
    expect(core.calls).to.have.length(0);
  });

  it('a claim update that arrives before the new PV reaches the cache does not provision again', async () => {
    claims.set(newClaim('a', { className: 'gold' }));
    await settle();
    claims.set(newClaim('a', { className: 'gold', annotations: { touched: 'yes' } }));
    await settle();
    expect(core.ops('createPV')).to.have.length(1);
    expect(sim.calls().filter((c) => c.method === 'POST' && c.path.endsWith('/app_instances'))).to.have.length(1);
    expect(reasons('a')).to.deep.equal(['ProvisioningSucceeded']);
  });

  it('a PV deleted before its claim bound makes the claim provision again', async () => {
    const c = newClaim('a', { className: 'gold' });
    claims.set(c);
    await settle();
    const pv = (core.ops('createPV') as V1PersistentVolume[])[0]!;
    volumes.set(pv);
    volumes.remove(pv);
    await settle();
    expect(core.ops('createPV')).to.have.length(2);
  });

  it('treats AlreadyExists on PV create as success', async () => {
    core.failNext('createPV', apiError(409, 'AlreadyExists'));
    claims.set(newClaim('a', { className: 'gold' }));
    await settle();
    expect(reasons('a')).to.deep.equal(['ProvisioningSucceeded']);
    expect(ctrl.queue.failures('claim/uid-a')).to.equal(0);
  });

  it('keeps the Datera volume when the PV cannot be saved, and the retry adopts it (no second volume)', async () => {
    core.failNext('createPV', apiError(500, 'InternalError', 'etcd timeout'));
    claims.set(newClaim('a', { className: 'gold' }));
    await settle();
    expect(sim.appInstances()).to.have.length(1);
    const failed = events.find((e) => e.reason === 'ProvisioningFailed')!;
    expect(failed.message).to.match(/pvc-uid-a is ready, but saving its PersistentVolume failed.*etcd timeout.*without deleting/);
    expect(ctrl.queue.failures('claim/uid-a')).to.equal(1);
    claims.set(newClaim('a', { className: 'gold' })); // the retry (here: a claim update)
    await settle();
    expect(sim.appInstances()).to.have.length(1);
    expect(core.ops('createPV')).to.have.length(2);
    expect(reasons('a')).to.include('ProvisioningSucceeded');
  });

  it('refuses an existing app instance made for another claim', async () => {
    await direct.createAppInstance({ name: 'pvc-uid-a', storage_instances: [{ name: 'storage-1', volumes: [{ name: 'volume-1', size: 1 }] }] });
    await direct.putMetadata('pvc-uid-a', { 'k8s-provisioner': PROVISIONER, 'k8s-claim-uid': 'someone-else', 'k8s-claim-namespace': 'x', 'k8s-claim-name': 'y' });
    claims.set(newClaim('a', { className: 'gold' }));
    await settle();
    expect(core.ops('createPV')).to.have.length(0);
    expect(events.find((e) => e.reason === 'ProvisioningFailed')!.message).to.match(/already exists and was not created for this claim \(it belongs to claim x\/y/);
    expect(ctrl.queue.delayed).to.equal(1); // slow retry, not backoff
    expect(ctrl.queue.failures('claim/uid-a')).to.equal(0);
  });

  it('adopts and tags an untagged app instance of the same name (a crash between create and metadata)', async () => {
    await direct.createAppInstance({ name: 'pvc-uid-a', storage_instances: [{ name: 'storage-1', volumes: [{ name: 'volume-1', size: 1 }] }] });
    claims.set(newClaim('a', { className: 'gold' }));
    await settle();
    expect(sim.appInstances()).to.have.length(1);
    expect(await direct.getMetadata('pvc-uid-a')).to.include({ 'k8s-claim-uid': 'uid-a' });
    expect(core.ops('createPV')).to.have.length(1);
  });

  it('a bad parameter is a final ProvisioningFailed naming it; Datera is not called; a class edit retries at once', async () => {
    classes.set(newStorageClass('bad', { parameters: { maxIops: 'lots' } }));
    claims.set(newClaim('a', { className: 'bad' }));
    await settle();
    expect(sim.calls().filter((c) => c.route !== '/login')).to.have.length(0);
    const ev = events.find((e) => e.reason === 'ProvisioningFailed')!;
    expect(ev.type).to.equal('Warning');
    expect(ev.message).to.match(/maxIops/);
    classes.set(newStorageClass('bad', { parameters: { maxIops: '500' } }));
    await settle();
    expect(sim.appInstances()[0]!.storage_instances[0]!.volumes[0]!.performance_policy).to.include({ total_iops_max: 500 });
  });

  it('a Datera validation error is final and named in the event', async () => {
    classes.set(newStorageClass('pool', { parameters: { ipPool: 'no-such-pool' } }));
    claims.set(newClaim('a', { className: 'pool' }));
    await settle();
    const ev = events.find((e) => e.reason === 'ProvisioningFailed')!;
    expect(ev.message).to.match(/Datera .*ip_pool/i);
    expect(ctrl.queue.failures('claim/uid-a')).to.equal(0);
  });

  it('a missing class Secret is a final error naming the Secret; the password never shows', async () => {
    classes.set(newStorageClass('team', { parameters: { secretName: 'team-b', secretNamespace: 'storage' } }));
    claims.set(newClaim('a', { className: 'team' }));
    await settle();
    expect(events.find((e) => e.reason === 'ProvisioningFailed')!.message).to.match(/Secret storage\/team-b does not exist/);
    secrets.set('storage/team-b', { type: 'datera/iscsi', data: { username: 'admin', password: 'secret_pw1', server: simUrl } });
    connections.invalidate();
    classes.set(newStorageClass('team', { parameters: { secretName: 'team-b', secretNamespace: 'storage' } }));
    await settle();
    const pv = (core.ops('createPV') as V1PersistentVolume[])[0]!;
    expect(pv.spec!.flexVolume!.secretRef).to.deep.equal({ name: 'team-b', namespace: 'storage' });
    expect(JSON.stringify(events)).to.not.include('secret_pw1');
  });

  it('Datera unavailable: a retryable ProvisioningFailed with backoff', async () => {
    sim.setFaults({ rate503: 1 });
    claims.set(newClaim('a', { className: 'gold' }));
    await settle();
    // Under load the last attempt may hit the call deadline instead of a 503: both are "Datera unavailable, retry".
    const ev = events.find((e) => e.reason === 'ProvisioningFailed')!;
    expect(ev.message, ev.message).to.match(/Datera (NotConnectedError|DATERA_UNAVAILABLE|DATERA_TIMEOUT|\w+Error)? ?(503)?.*(unavailable|503|deadline|timed out)/i);
    expect(ctrl.queue.failures('claim/uid-a')).to.equal(1);
  });

  it('a claim deleted after its volume was made but before the PV was saved: the volume is removed', async () => {
    core.failNext('createPV', apiError(500, 'InternalError'));
    const c = newClaim('a', { className: 'gold' });
    claims.set(c);
    await settle();
    expect(sim.appInstances()).to.have.length(1);
    claims.remove(c);
    await settle();
    expect(sim.appInstances()).to.have.length(0);
  });

  it('reclaims a Released Delete volume: offline, delete, delete the PV, JSON-patch the finalizer away', async () => {
    await direct.createAppInstance({ name: 'pvc-x', storage_instances: [{ name: 'storage-1', volumes: [{ name: 'volume-1', size: 1 }] }] });
    await direct.putMetadata('pvc-x', { 'k8s-provisioner': PROVISIONER, 'k8s-pv': 'pvc-x' });
    volumes.set(newVolume('pvc-x', { phase: 'Released' }));
    await settle();
    expect(sim.appInstances()).to.have.length(0);
    const adminCalls = sim.calls().filter((c) => c.method === 'PUT' && c.path.endsWith('/app_instances/pvc-x'));
    expect(adminCalls).to.have.length(1);
    expect(core.ops('deletePV')).to.deep.equal(['pvc-x']);
    const patch = core.ops('patchPV')[0] as { body: unknown };
    expect(patch.body).to.deep.equal([
      { op: 'test', path: '/metadata/finalizers/1', value: 'external-provisioner.volume.kubernetes.io/finalizer' },
      { op: 'remove', path: '/metadata/finalizers/1' },
    ]);
    expect(await metrics.value('controller_persistentvolume_delete_total', { class: 'gold' })).to.equal(1);
  });

  it('reclaim removes our finalizer before deleting the PV, and a re-run while the cache catches up calls Datera once', async () => {
    await direct.createAppInstance({ name: 'pvc-r', storage_instances: [{ name: 'storage-1', volumes: [{ name: 'volume-1', size: 1 }] }] });
    await direct.putMetadata('pvc-r', { 'k8s-provisioner': PROVISIONER, 'k8s-pv': 'pvc-r' });
    const pv = newVolume('pvc-r', { phase: 'Released' });
    volumes.set(pv);
    await settle();
    expect(core.calls.map((c) => c.op)).to.deep.equal(['patchPV', 'deletePV']);
    // The informer now delivers the PV without our finalizer (still Released, not yet deleting).
    volumes.set({ ...pv, metadata: { ...pv.metadata, finalizers: ['kubernetes.io/pv-protection'] } });
    await settle();
    expect(sim.calls().filter((c) => c.path.includes('/app_instances/pvc-r') && !c.path.includes('/metadata'))).to.have.length(2); // offline + delete, once
    expect(await metrics.value('controller_persistentvolume_delete_total', { class: 'gold' })).to.equal(1);
  });

  it('an app instance already gone counts as deleted', async () => {
    volumes.set(newVolume('pvc-gone', { phase: 'Released' }));
    await settle();
    expect(core.ops('deletePV')).to.deep.equal(['pvc-gone']);
    expect(events).to.have.length(0);
  });

  it('leaves Bound volumes, other provisioners\' volumes and Retain volumes alone (dropping our finalizer from Retain)', async () => {
    await direct.createAppInstance({ name: 'pvc-keep', storage_instances: [{ name: 'storage-1', volumes: [{ name: 'volume-1', size: 1 }] }] });
    volumes.set(newVolume('pvc-bound', { phase: 'Bound' }));
    volumes.set(newVolume('pvc-foreign', { phase: 'Released', provisionedBy: 'example.com/nfs' }));
    volumes.set(newVolume('pvc-keep', { phase: 'Released', policy: 'Retain', finalizers: ['external-provisioner.volume.kubernetes.io/finalizer'] }));
    await settle();
    expect(core.ops('deletePV')).to.have.length(0);
    expect(sim.appInstances().map((a) => a.name)).to.deep.equal(['pvc-keep']);
    expect((core.ops('patchPV')[0] as { name: string }).name).to.equal('pvc-keep');
  });

  it('a failed Datera delete is a VolumeFailedDelete event on the PV and a retry; the PV stays', async () => {
    await direct.createAppInstance({ name: 'pvc-y', storage_instances: [{ name: 'storage-1', volumes: [{ name: 'volume-1', size: 1 }] }] });
    sim.setFaults({ rate503: 1 });
    volumes.set(newVolume('pvc-y', { phase: 'Released' }));
    await settle();
    sim.setFaults({});
    const ev = events.find((e) => e.reason === 'VolumeFailedDelete')!;
    expect(ev).to.include({ kind: 'PersistentVolume', name: 'pvc-y', type: 'Warning' });
    expect(core.ops('deletePV')).to.have.length(0);
    expect(ctrl.queue.failures('volume/pvc-y')).to.equal(1);
  });

  it('a stale finalizer patch (422 test failed) keeps the PV and is retried until the patch and the PV delete succeed', async () => {
    core.failNext('patchPV', apiError(422, 'Invalid', 'the test operation failed'));
    const pv = newVolume('pvc-z', { phase: 'Released' });
    volumes.set(pv);
    await settle();
    expect(ctrl.queue.failures('volume/pvc-z')).to.equal(1);
    expect(core.calls.map((c) => c.op), 'no PV delete while the patch failed').to.deep.equal(['patchPV']);
    volumes.set({ ...pv, metadata: { ...pv.metadata, resourceVersion: '2' } }); // the retry (here: a PV update)
    await settle();
    expect(core.calls.map((c) => c.op)).to.deep.equal(['patchPV', 'patchPV', 'deletePV']);
    expect(ctrl.queue.failures('volume/pvc-z')).to.equal(0);
  });

  it('clones a claim of ours (clone_volume_src) and grows the clone to the requested size', async () => {
    claims.set(newClaim('src', { className: 'gold', size: '2Gi' }));
    await settle();
    const srcPv = (core.ops('createPV') as V1PersistentVolume[])[0]!;
    volumes.set({ ...srcPv, status: { phase: 'Bound' } });
    claims.set(newClaim('src', { className: 'gold', size: '2Gi', volumeName: srcPv.metadata!.name! }));
    claims.set(newClaim('copy', { className: 'gold', size: '5Gi', dataSource: { kind: 'PersistentVolumeClaim', name: 'src' } }));
    await settle();
    const clone = sim.appInstances().find((a) => a.name === 'pvc-uid-copy')!;
    expect(clone, 'clone created').to.not.equal(undefined);
    expect(clone.storage_instances[0]!.volumes[0]!.size).to.equal(5);
    const resize = sim.calls().filter((c) => c.method === 'PUT' && c.path.includes('/app_instances/pvc-uid-copy/storage_instances/storage-1/volumes/volume-1'));
    expect(resize, 'the 2 GiB clone was grown to 5 GiB').to.have.length(1);
    expect(reasons('copy')).to.deep.equal(['ProvisioningSucceeded']);
  });

  it('refuses to clone a claim that is not bound or is smaller than its source', async () => {
    claims.set(newClaim('src', { className: 'gold', size: '2Gi' }));
    claims.set(newClaim('early', { className: 'gold', dataSource: { kind: 'PersistentVolumeClaim', name: 'src' } }));
    await settle();
    expect(events.find((e) => e.name === 'early' && e.reason === 'ProvisioningFailed')!.message).to.match(/clone source claim default\/src is not bound/);

    const srcPv = (core.ops('createPV') as V1PersistentVolume[]).find((p) => p.spec!.claimRef!.name === 'src')!;
    volumes.set({ ...srcPv, status: { phase: 'Bound' } });
    claims.set(newClaim('src', { className: 'gold', size: '2Gi', volumeName: srcPv.metadata!.name! }));
    claims.set(newClaim('small', { className: 'gold', size: '1Gi', dataSource: { kind: 'PersistentVolumeClaim', name: 'src' } }));
    await settle();
    expect(events.find((e) => e.name === 'small' && e.reason === 'ProvisioningFailed')!.message).to.match(
      /clone must be at least as large as its source \(2 GiB\), asked for 1 GiB/,
    );
    expect(sim.appInstances().map((a) => a.name), 'no clone was made').to.not.include('pvc-uid-small');
  });

  it('loads templates from the ConfigMap and keeps the last good set on a bad edit', async () => {
    const cm = (text: string, rv: string): V1ConfigMap => ({ metadata: { name: 'datera-templates', namespace: 'datera-system', resourceVersion: rv, uid: 'cm' }, data: { 'templates.yaml': text } });
    configMaps.set(cm('templates:\n  - name: t1\n    replicas: 1\n', '1'));
    expect([...ctrl.templates.templates.keys()]).to.deep.equal(['t1']);
    configMaps.set(cm('templates:\n  - name: t1\n    replicas: nine\n', '2'));
    expect([...ctrl.templates.templates.keys()]).to.deep.equal(['t1']);
    const ev = events.find((e) => e.reason === 'InvalidTemplates')!;
    expect(ev).to.include({ kind: 'ConfigMap', type: 'Warning' });
    expect(ev.message).to.match(/replicas/);
    expect(await metrics.value('datera_templates_config_valid')).to.equal(0);
  });

  it('the source label of the provision metrics is bounded: a user-chosen data source kind counts as "other"', async () => {
    claims.set(newClaim('odd', { className: 'gold', dataSource: { kind: 'Kind-chosen-by-a-user-1', name: 'x', apiGroup: 'example.io' } }));
    await settle();
    expect(reasons('odd')).to.include('ProvisioningFailed');
    const failed = await metrics.registry.getSingleMetric('controller_persistentvolumeclaim_provision_failed_total')!.get();
    expect(failed.values.map((v) => v.labels.source)).to.deep.equal(['other']);
  });
});
