// SPDX-License-Identifier: Apache-2.0
// The controller's decisions on the paths that delete volumes, pick credentials or decide which
// claims and PVs are ours, with the exact event texts users read. Controller with in-memory
// caches and a recording Kubernetes API (harness.ts) against the Datera simulator.
import { expect } from 'chai';
import type { V1ConfigMap, V1PersistentVolume } from '@kubernetes/client-node';
import type { DateraClient } from '../../lib/datera/client.js';
import { DateraError } from '../../lib/datera/errors.js';
import type { DateraSimulator } from '../../lib/sim/server.js';
import { describeFailure } from '../../lib/provision/report.js';
import { PROVISIONER, newClaim, newStorageClass, newVolume } from '../support/builders.js';
import { CLUSTER_ID, apiError, eventually, newHarness, useSimulator, type Harness } from './harness.js';

const AI_BODY = { storage_instances: [{ name: 'storage-1', volumes: [{ name: 'volume-1', size: 1 }] }] };
const FINALIZER = 'external-provisioner.volume.kubernetes.io/finalizer';

describe('provisioning controller: paths that delete, choose credentials or claim ownership', function () {
  this.timeout(20_000);
  const fx = useSimulator();
  let sim: DateraSimulator;
  let simUrl: string;
  let direct: DateraClient;
  let h: Harness;

  beforeEach(() => {
    ({ sim, url: simUrl, direct } = fx);
    h = newHarness(sim, simUrl);
    h.classes.set(newStorageClass('gold', { parameters: { replica: '2' } }));
    h.ctrl.start();
  });
  afterEach(async () => {
    await h.close();
  });

  const names = () => sim.appInstances().map((a) => a.name);
  const dateraDeletes = () => sim.calls().filter((c) => c.method === 'DELETE' && c.path.includes('/app_instances/'));
  const ours = (name: string, claimUid = `uid-claim-${name}`) => ({ 'k8s-provisioner': PROVISIONER, 'k8s-pv': name, 'k8s-claim-uid': claimUid, 'k8s-cluster-id': CLUSTER_ID });
  const tag = async (name: string, md: Record<string, string>) => {
    await direct.createAppInstance({ name, ...AI_BODY });
    await direct.putMetadata(name, md);
  };
  const released = (name: string, o: Parameters<typeof newVolume>[1] = {}): V1PersistentVolume => {
    const pv = newVolume(name, { phase: 'Released', ...o });
    pv.spec!.claimRef = { kind: 'PersistentVolumeClaim', namespace: 'default', name: 'c', uid: `uid-claim-${name}` };
    return pv;
  };
  const eventsOf = (name: string) => h.events.filter((e) => e.name === name).map((e) => `${e.type} ${e.reason}: ${e.message}`);

  describe('provisioning events', () => {
    it('a provisioned claim gets exactly "Successfully provisioned volume pvc-<uid>" on the claim', async () => {
      h.claims.set(newClaim('a', { className: 'gold' }));
      await h.settle();
      expect(h.events).to.deep.equal([{ kind: 'PersistentVolumeClaim', name: 'a', type: 'Normal', reason: 'ProvisioningSucceeded', message: 'Successfully provisioned volume pvc-uid-a' }]);
    });

    it('a retried attempt announces Provisioning at once, naming the claim, then succeeds', async () => {
      h.core.failNext('createPV', apiError(500, 'InternalError', 'etcd timeout'));
      h.claims.set(newClaim('a', { className: 'gold' }));
      await eventually(h, () => h.events.some((e) => e.reason === 'ProvisioningSucceeded'));
      await h.settle();
      expect(eventsOf('a')).to.deep.equal([
        'Warning ProvisioningFailed: failed to provision volume with StorageClass "gold": Datera volume pvc-uid-a is ready, but saving its PersistentVolume failed (500 etcd timeout); retrying without deleting the volume',
        'Normal Provisioning: External provisioner is provisioning volume for claim "default/a"',
        'Normal ProvisioningSucceeded: Successfully provisioned volume pvc-uid-a',
      ]);
      expect(names()).to.deep.equal(['pvc-uid-a']);
    });

    it('a slow first attempt announces Provisioning after provisioningEventDelayMs', async () => {
      await h.close();
      h = newHarness(sim, simUrl, { provisioningEventDelayMs: 1 });
      h.classes.set(newStorageClass('gold'));
      h.ctrl.start();
      const release = h.core.hold('createPV');
      h.claims.set(newClaim('a', { className: 'gold' }));
      await eventually(h, () => h.events.some((e) => e.reason === 'Provisioning'));
      release();
      await h.settle();
      expect(eventsOf('a')).to.deep.equal([
        'Normal Provisioning: External provisioner is provisioning volume for claim "default/a"',
        'Normal ProvisioningSucceeded: Successfully provisioned volume pvc-uid-a',
      ]);
    });

    it('a fast first attempt has no Provisioning event (the timer is cleared)', async () => {
      await h.close();
      h = newHarness(sim, simUrl, { provisioningEventDelayMs: 800 });
      h.classes.set(newStorageClass('gold'));
      h.ctrl.start();
      h.claims.set(newClaim('a', { className: 'gold' }));
      await h.settle();
      await new Promise((r) => setTimeout(r, 900));
      expect(h.events.map((e) => e.reason)).to.deep.equal(['ProvisioningSucceeded']);
    });

    it('a refused claim gets the ProvisioningFailed text with the class, a slow retry and a failed-provision count', async () => {
      h.claims.set(newClaim('a', { className: 'gold', volumeMode: 'Block' }));
      await h.settle();
      expect(eventsOf('a')).to.deep.equal([
        'Warning ProvisioningFailed: failed to provision volume with StorageClass "gold": volumeMode Block is not supported: the datera/iscsi flexVolume driver provides filesystems only; use volumeMode Filesystem',
      ]);
      expect(h.ctrl.queue.delayed).to.equal(1);
      expect(h.ctrl.queue.failures('claim/uid-a')).to.equal(0);
      expect(await h.metrics.value('controller_persistentvolumeclaim_provision_failed_total', { class: 'gold', source: '' })).to.equal(1);
      expect(names()).to.deep.equal([]);
    });

    it('an invalid class parameter is a final ProvisioningFailed starting "invalid parameter:"', async () => {
      h.classes.set(newStorageClass('bad', { parameters: { maxIops: 'lots' } }));
      h.claims.set(newClaim('a', { className: 'bad' }));
      await h.settle();
      expect(eventsOf('a')).to.have.length(1);
      expect(eventsOf('a')[0]).to.match(/^Warning ProvisioningFailed: failed to provision volume with StorageClass "bad": invalid parameter: .*maxIops/);
      expect(h.ctrl.queue.failures('claim/uid-a')).to.equal(0);
    });

    it('a claim waiting for a class that does not exist gets no event and no volume, and provisions when the class appears', async () => {
      h.claims.set(newClaim('a', { className: 'later' }));
      await h.settle();
      expect(h.events).to.deep.equal([]);
      expect(names()).to.deep.equal([]);
      h.classes.set(newStorageClass('later'));
      await h.settle();
      expect(names()).to.deep.equal(['pvc-uid-a']);
    });

    it('a claim of another provisioner is never provisioned, even when a class change re-checks pending claims', async () => {
      h.claims.set(newClaim('a', { className: 'gold', provisioner: 'example.com/nfs' }));
      h.classes.set(newStorageClass('gold', { parameters: { replica: '1' } }));
      await h.settle();
      expect(names()).to.deep.equal([]);
      expect(h.events).to.deep.equal([]);
    });

    it('a claim whose class is another provisioner\'s is never provisioned, and no event is recorded', async () => {
      h.classes.set(newStorageClass('nfs', { provisioner: 'example.com/nfs' }));
      h.claims.set(newClaim('a', { className: 'nfs' }));
      await h.settle();
      expect(names()).to.deep.equal([]);
      expect(h.events).to.deep.equal([]);
    });

    it('a claim that stops needing us (another provisioner took it) is not provisioned by a later class change', async () => {
      h.claims.set(newClaim('a', { className: 'later' }));
      await h.settle();
      h.claims.set(newClaim('a', { className: 'later', provisioner: 'example.com/nfs' }));
      h.classes.set(newStorageClass('later'));
      await h.settle();
      expect(names()).to.deep.equal([]);
    });

    it('the PV records the endpoint, tenant and Secret of the connection the create used', async () => {
      h.secrets.set('datera-system/team-b', { type: 'datera/iscsi', data: { username: 'admin', password: 'secret_pw1', server: simUrl } });
      h.classes.set(newStorageClass('team', { parameters: { secretName: 'team-b', tenant: '/root/team-b' } }));
      h.claims.set(newClaim('a', { className: 'team' }));
      await h.settle();
      const pv = (h.core.ops('createPV') as V1PersistentVolume[])[0]!;
      expect(pv.spec!.flexVolume!.secretRef).to.deep.equal({ name: 'team-b', namespace: 'datera-system' });
      expect(pv.spec!.flexVolume!.options).to.include({ tenant: '/root/team-b' });
      expect(sim.appInstances('/root/team-b').map((a) => a.name)).to.deep.equal(['pvc-uid-a']);
    });

    it('a Retain class: the app instance records reclaim policy Retain and the PV is Retain', async () => {
      h.classes.set(newStorageClass('keep', { reclaimPolicy: 'Retain' }));
      h.claims.set(newClaim('a', { className: 'keep' }));
      await h.settle();
      expect(await direct.getMetadata('pvc-uid-a')).to.include({ 'k8s-reclaim-policy': 'Retain', 'k8s-storage-class': 'keep' });
      expect((h.core.ops('createPV') as V1PersistentVolume[])[0]!.spec!.persistentVolumeReclaimPolicy).to.equal('Retain');
    });

    it('adopting an app instance an earlier attempt tagged for this claim keeps its metadata (no second tag write)', async () => {
      await tag('pvc-uid-a', { 'k8s-provisioner': PROVISIONER, 'k8s-claim-uid': 'uid-a', 'k8s-cluster-id': CLUSTER_ID, 'k8s-created-at': '2026-01-01T00:00:00.000Z' });
      h.claims.set(newClaim('a', { className: 'gold' }));
      await h.settle();
      expect(h.core.ops('createPV')).to.have.length(1);
      expect(await direct.getMetadata('pvc-uid-a')).to.include({ 'k8s-created-at': '2026-01-01T00:00:00.000Z' });
    });

    it('an app instance of the same name made by another provisioner is refused, naming its claim, uid and cluster', async () => {
      await tag('pvc-uid-a', { 'k8s-provisioner': 'example.com/other', 'k8s-claim-uid': 'uid-a', 'k8s-claim-namespace': 'ns', 'k8s-claim-name': 'n', 'k8s-cluster-id': 'c2' });
      h.claims.set(newClaim('a', { className: 'gold' }));
      await h.settle();
      expect(eventsOf('a')).to.deep.equal([
        'Warning ProvisioningFailed: failed to provision volume with StorageClass "gold": Datera app instance pvc-uid-a already exists and was not created for this claim (it belongs to claim ns/n uid uid-a, cluster c2); refusing to reuse it',
      ]);
      expect(h.core.ops('createPV')).to.deep.equal([]);
    });

    it('a foreign app instance without claim metadata is refused with "?" placeholders', async () => {
      await tag('pvc-uid-a', { 'k8s-provisioner': 'example.com/other' });
      h.claims.set(newClaim('a', { className: 'gold' }));
      await h.settle();
      expect(eventsOf('a')[0]).to.match(/it belongs to claim \?\/\? uid \?\); refusing to reuse it$/);
    });
  });

  describe('vanished-claim clean-up', () => {
    const attemptThenVanish = async () => {
      h.core.failNext('createPV', apiError(500, 'InternalError'));
      const c = newClaim('a', { className: 'gold' });
      h.claims.set(c);
      await h.settle();
      expect(names()).to.deep.equal(['pvc-uid-a']);
      return c;
    };

    it('a claim with the same name but another uid on the API server does not save the removed claim\'s app instance', async () => {
      const c = await attemptThenVanish();
      h.core.server.claims.set('default/a', newClaim('a', { className: 'gold', uid: 'uid-a-recreated' }));
      h.claims.remove(c);
      await h.settle();
      expect(names()).to.deep.equal([]);
      expect(h.core.ops('readPV')).to.deep.equal(['pvc-uid-a']);
      expect(h.core.ops('readPVC')).to.deep.equal(['default/a']);
    });

    it('a failed confirming read (500) deletes nothing and is retried; once it answers, the volume goes', async () => {
      const c = await attemptThenVanish();
      const read = h.core.readPersistentVolume!; // the harness's core has the confirming reads
      let fail = true;
      h.core.readPersistentVolume = async (a) => {
        if (fail) throw apiError(500, 'InternalError');
        return read(a);
      };
      h.claims.remove(c);
      await h.settle();
      expect(names()).to.deep.equal(['pvc-uid-a']);
      expect(h.ctrl.queue.failures('claim/uid-a')).to.be.greaterThan(0);
      fail = false;
      await eventually(h, () => names().length === 0);
      expect(names()).to.deep.equal([]);
    });

    it('a failed claim read (500) deletes nothing', async () => {
      const c = await attemptThenVanish();
      h.core.readNamespacedPersistentVolumeClaim = async () => {
        throw apiError(500, 'InternalError');
      };
      h.claims.remove(c);
      await h.settle();
      expect(names()).to.deep.equal(['pvc-uid-a']);
      expect(dateraDeletes()).to.deep.equal([]);
    });

    it('the PV appearing in the cache before the clean-up runs keeps the app instance (reclaim owns it now)', async () => {
      const c = await attemptThenVanish();
      h.volumes.set(newVolume('pvc-uid-a'));
      h.claims.remove(c);
      await h.settle();
      expect(names()).to.deep.equal(['pvc-uid-a']);
      expect(h.core.ops('readPV')).to.deep.equal([]);
    });

    it('an app instance that is already gone is fine: nothing deleted, nothing retried', async () => {
      const c = await attemptThenVanish();
      await direct.setAdminState('pvc-uid-a', 'offline', true);
      await direct.deleteAppInstance('pvc-uid-a', true);
      const before = dateraDeletes().length;
      h.claims.remove(c);
      await h.settle();
      expect(dateraDeletes().length).to.equal(before);
      expect(h.ctrl.queue.failures('claim/uid-a')).to.equal(0);
    });

    it('a claim that never reached Datera leaves nothing to clean and reads nothing', async () => {
      const c = newClaim('a', { className: 'later' });
      h.claims.set(c);
      await h.settle();
      h.claims.remove(c);
      await h.settle();
      expect(h.core.calls).to.deep.equal([]);
    });

    it('a claim deleted after a successful provision does not delete its volume', async () => {
      const c = newClaim('a', { className: 'gold' });
      h.claims.set(c);
      await h.settle();
      h.claims.remove(c);
      await h.settle();
      expect(names()).to.deep.equal(['pvc-uid-a']);
    });

    it('a Datera failure during the clean-up is retried until the volume is gone', async () => {
      const c = await attemptThenVanish();
      sim.setFaults({ rate503: 1 });
      h.claims.remove(c);
      await h.settle();
      expect(names()).to.deep.equal(['pvc-uid-a']);
      expect(h.ctrl.queue.failures('claim/uid-a')).to.be.greaterThan(0);
      sim.setFaults({});
      await eventually(h, () => names().length === 0);
      expect(names()).to.deep.equal([]);
    });
  });

  describe('reclaim', () => {
    it('deletes the app instance the PV names in options.volumeID, not one named like the PV', async () => {
      await tag('ai-custom', ours('pvc-1'));
      await tag('pvc-1', ours('pvc-1'));
      h.volumes.set(released('pvc-1', { options: { volumeID: 'ai-custom' } }));
      await h.settle();
      expect(names()).to.deep.equal(['pvc-1']);
      expect(h.core.ops('deletePV')).to.deep.equal(['pvc-1']);
    });

    it('a Failed PV is not deleted (only Released is)', async () => {
      await tag('pvc-1', ours('pvc-1'));
      h.volumes.set(released('pvc-1', { phase: 'Failed' }));
      await h.settle();
      expect(names()).to.deep.equal(['pvc-1']);
      expect(h.core.calls).to.deep.equal([]);
    });

    it('a PV without a reclaim policy is treated as Delete', async () => {
      await tag('pvc-1', ours('pvc-1'));
      const pv = released('pvc-1');
      delete pv.spec!.persistentVolumeReclaimPolicy;
      h.volumes.set(pv);
      await h.settle();
      expect(names()).to.deep.equal([]);
    });

    it('a Released PV being deleted whose finalizer is already gone is left alone', async () => {
      await tag('pvc-1', ours('pvc-1'));
      h.volumes.set(released('pvc-1', { deleting: true, finalizers: ['kubernetes.io/pv-protection'] }));
      await h.settle();
      expect(names()).to.deep.equal(['pvc-1']);
      expect(h.core.calls).to.deep.equal([]);
    });

    it('a Released PV being deleted with our finalizer: the volume is deleted, the finalizer removed, and no PV delete is sent', async () => {
      await tag('pvc-1', ours('pvc-1'));
      h.volumes.set(released('pvc-1', { deleting: true }));
      await h.settle();
      expect(names()).to.deep.equal([]);
      expect(h.core.calls.map((c) => c.op)).to.deep.equal(['patchPV']);
    });

    it('a PV whose driver is not datera/iscsi is not ours, even with our provisioned-by annotation', async () => {
      await tag('pvc-1', ours('pvc-1'));
      const pv = released('pvc-1');
      pv.spec!.flexVolume!.driver = 'other/driver';
      h.volumes.set(pv);
      await h.settle();
      expect(names()).to.deep.equal(['pvc-1']);
      expect(h.core.calls).to.deep.equal([]);
    });

    it('a PV without a provisioned-by annotation is not ours', async () => {
      await tag('pvc-1', ours('pvc-1'));
      const pv = released('pvc-1');
      pv.metadata!.annotations = {};
      h.volumes.set(pv);
      await h.settle();
      expect(names()).to.deep.equal(['pvc-1']);
    });

    it('an extra provisioner name makes its PVs ours', async () => {
      await h.close();
      h = newHarness(sim, simUrl, { extraProvisionerNames: ['datera.io/old-name'] });
      h.ctrl.start();
      await tag('pvc-1', { ...ours('pvc-1'), 'k8s-provisioner': 'datera.io/old-name' });
      h.volumes.set(released('pvc-1', { provisionedBy: 'datera.io/old-name' }));
      await h.settle();
      expect(names()).to.deep.equal([]);
    });

    it('the finalizer patch tests and removes our finalizer at its own index', async () => {
      await tag('pvc-1', ours('pvc-1'));
      h.volumes.set(released('pvc-1', { finalizers: [FINALIZER, 'kubernetes.io/pv-protection'] }));
      await h.settle();
      expect(h.core.ops('patchPV')).to.deep.equal([
        { name: 'pvc-1', body: [{ op: 'test', path: '/metadata/finalizers/0', value: FINALIZER }, { op: 'remove', path: '/metadata/finalizers/0' }] },
      ]);
    });

    it('a PV already gone when the finalizer is patched (404) counts as done: no retry, no PV delete error', async () => {
      await tag('pvc-1', ours('pvc-1'));
      h.core.failNext('patchPV', apiError(404, 'NotFound'));
      h.core.failNext('deletePV', apiError(404, 'NotFound'));
      h.volumes.set(released('pvc-1'));
      await h.settle();
      expect(names()).to.deep.equal([]);
      expect(h.ctrl.queue.failures('volume/pvc-1')).to.equal(0);
      expect(h.events).to.deep.equal([]);
    });

    it('a failed PV delete (500) after the volume is gone is retried without calling Datera again', async () => {
      await tag('pvc-1', ours('pvc-1'));
      h.core.failNext('deletePV', apiError(500, 'InternalError'));
      const pv = released('pvc-1');
      h.volumes.set(pv);
      await h.settle();
      expect(h.ctrl.queue.failures('volume/pvc-1')).to.equal(1);
      const pv2 = { ...pv, metadata: { ...pv.metadata, resourceVersion: '2', finalizers: ['kubernetes.io/pv-protection'] } };
      h.volumes.set(pv2);
      await h.settle();
      expect(h.core.ops('deletePV')).to.deep.equal(['pvc-1', 'pvc-1']);
      expect(dateraDeletes()).to.have.length(1);
    });

    it('a failed Datera delete: VolumeFailedDelete names the app instance and the Datera error, and counts a failed delete', async () => {
      await tag('pvc-1', ours('pvc-1'));
      sim.setFaults({ rate503: 1 });
      h.volumes.set(released('pvc-1'));
      await h.settle();
      sim.setFaults({});
      const ev = h.events.find((e) => e.reason === 'VolumeFailedDelete')!;
      expect(ev.message).to.match(/^failed to delete Datera app instance pvc-1: Datera /);
      expect(await h.metrics.value('controller_persistentvolume_delete_failed_total', { class: 'gold' })).to.be.greaterThan(0);
      expect(h.core.calls).to.deep.equal([]);
    });

    it('the refusal to delete a foreign app instance names the finalizer that is kept', async () => {
      await tag('pvc-1', { ...ours('pvc-1'), 'k8s-cluster-id': 'other-cluster' });
      h.volumes.set(released('pvc-1'));
      await h.settle();
      const ev = h.events.find((e) => e.reason === 'VolumeFailedDelete')!;
      expect(ev.message).to.match(/^refusing to delete Datera app instance pvc-1: .*; this PersistentVolume keeps its finalizer until an administrator resolves it$/);
    });

    it('a PV whose claimRef has no uid is reclaimed only when the metadata names the PV and no claim uid is required', async () => {
      await tag('pvc-1', { 'k8s-provisioner': PROVISIONER, 'k8s-pv': 'pvc-1', 'k8s-claim-uid': 'uid-x', 'k8s-cluster-id': CLUSTER_ID });
      h.volumes.set(newVolume('pvc-1', { phase: 'Released' }));
      await h.settle();
      expect(names()).to.deep.equal([]);
    });

    it('a PV with a Secret naming another server is not reclaimed: VolumeFailedDelete, nothing deleted anywhere', async () => {
      h.secrets.set('datera-system/team', { type: 'datera/iscsi', data: { username: 'admin', password: 'secret_pw1', server: simUrl } });
      await tag('pvc-1', ours('pvc-1'));
      h.volumes.set(released('pvc-1', { secretRef: { name: 'team', namespace: 'datera-system' }, options: { backstoreServer: 'other.example:7717' } }));
      await h.settle();
      expect(names()).to.deep.equal(['pvc-1']);
      expect(h.core.calls).to.deep.equal([]);
      expect(h.events.map((e) => e.reason)).to.deep.equal(['VolumeFailedDelete']);
      expect(JSON.stringify(h.events)).to.not.include('secret_pw1');
    });

    describe('Retain', () => {
      it('a Released Retain PV with our finalizer: its own app instance is marked Retain, then the finalizer is removed; nothing is deleted', async () => {
        await tag('pvc-1', ours('pvc-1'));
        h.volumes.set(released('pvc-1', { policy: 'Retain', finalizers: [FINALIZER] }));
        await h.settle();
        expect(await direct.getMetadata('pvc-1')).to.include({ 'k8s-reclaim-policy': 'Retain' });
        expect(names()).to.deep.equal(['pvc-1']);
        expect(h.core.calls.map((c) => c.op)).to.deep.equal(['patchPV']);
      });

      it('a Retain PV being deleted (not Released) is handled the same way', async () => {
        await tag('pvc-1', ours('pvc-1'));
        const pv = newVolume('pvc-1', { policy: 'Retain', finalizers: [FINALIZER], deleting: true, phase: 'Bound' });
        pv.spec!.claimRef = { uid: 'uid-claim-pvc-1' };
        h.volumes.set(pv);
        await h.settle();
        expect(await direct.getMetadata('pvc-1')).to.include({ 'k8s-reclaim-policy': 'Retain' });
        expect(h.core.calls.map((c) => c.op)).to.deep.equal(['patchPV']);
      });

      it('a Bound Retain PV keeps its finalizer and its metadata is not touched', async () => {
        await tag('pvc-1', ours('pvc-1'));
        h.volumes.set(newVolume('pvc-1', { policy: 'Retain', finalizers: [FINALIZER], phase: 'Bound' }));
        await h.settle();
        expect(await direct.getMetadata('pvc-1')).to.not.have.property('k8s-reclaim-policy');
        expect(h.core.calls).to.deep.equal([]);
      });

      it('a Released Retain PV without our finalizer is left alone', async () => {
        await tag('pvc-1', ours('pvc-1'));
        h.volumes.set(released('pvc-1', { policy: 'Retain', finalizers: [] }));
        await h.settle();
        expect(await direct.getMetadata('pvc-1')).to.not.have.property('k8s-reclaim-policy');
        expect(h.core.calls).to.deep.equal([]);
      });

      it('a foreign app instance is not marked Retain, but our finalizer still goes', async () => {
        await tag('pvc-1', { ...ours('pvc-1'), 'k8s-cluster-id': 'other-cluster' });
        h.volumes.set(released('pvc-1', { policy: 'Retain', finalizers: [FINALIZER] }));
        await h.settle();
        expect(await direct.getMetadata('pvc-1')).to.not.have.property('k8s-reclaim-policy');
        expect(h.core.calls.map((c) => c.op)).to.deep.equal(['patchPV']);
      });

      it('an app instance already marked Retain is not written again', async () => {
        await tag('pvc-1', { ...ours('pvc-1'), 'k8s-reclaim-policy': 'Retain' });
        const puts = () => sim.calls().filter((c) => c.method === 'PUT' && c.path.includes('/metadata')).length;
        const before = puts();
        h.volumes.set(released('pvc-1', { policy: 'Retain', finalizers: [FINALIZER] }));
        await h.settle();
        expect(puts()).to.equal(before);
        expect(h.core.calls.map((c) => c.op)).to.deep.equal(['patchPV']);
      });

      it('a Retain PV whose app instance is gone just loses the finalizer', async () => {
        h.volumes.set(released('pvc-1', { policy: 'Retain', finalizers: [FINALIZER] }));
        await h.settle();
        expect(h.core.calls.map((c) => c.op)).to.deep.equal(['patchPV']);
      });

      it('marking Retain fails (Datera down): the finalizer stays and the PV is retried', async () => {
        await tag('pvc-1', ours('pvc-1'));
        sim.setFaults({ rate503: 1 });
        h.volumes.set(released('pvc-1', { policy: 'Retain', finalizers: [FINALIZER] }));
        await h.settle();
        sim.setFaults({});
        expect(h.core.calls).to.deep.equal([]);
        expect(h.ctrl.queue.failures('volume/pvc-1')).to.equal(1);
      });
    });
  });

  describe('template ConfigMap', () => {
    const cm = (data: Record<string, string>, rv: string, o: { name?: string; namespace?: string } = {}): V1ConfigMap => ({
      metadata: { name: o.name ?? 'datera-templates', namespace: o.namespace ?? 'datera-system', resourceVersion: rv, uid: 'cm' },
      data,
    });
    const good = 'templates:\n  - name: t1\n    replicas: 1\n';

    it('a ConfigMap without the templates key: InvalidTemplates saying which key, the last good set kept', async () => {
      h.configMaps.set(cm({ 'templates.yaml': good }, '1'));
      h.configMaps.set(cm({ other: 'x' }, '2'));
      expect([...h.ctrl.templates.templates.keys()]).to.deep.equal(['t1']);
      expect(h.events).to.deep.equal([
        { kind: 'ConfigMap', name: 'datera-templates', type: 'Warning', reason: 'InvalidTemplates', message: 'ConfigMap datera-system/datera-templates has no key "templates.yaml"; keeping the last good templates (1)' },
      ]);
      expect(await h.metrics.value('datera_templates_config_valid')).to.equal(0);
    });

    it('a rejected edit names the ConfigMap, the number of templates kept and the error', async () => {
      h.configMaps.set(cm({ 'templates.yaml': 'templates:\n  - name: t1\n    replicas: nine\n' }, '1'));
      expect(h.events).to.have.length(1);
      expect(h.events[0]!.message).to.match(/^AppTemplates in ConfigMap datera-system\/datera-templates rejected, keeping the last good templates \(0\): .*replicas/);
    });

    it('a valid set is loaded and counted; the same resourceVersion again is not re-read', async () => {
      h.configMaps.set(cm({ 'templates.yaml': good }, '7'));
      expect(await h.metrics.value('datera_templates_config_valid')).to.equal(1);
      expect(await h.metrics.value('datera_templates_loaded')).to.equal(1);
      h.configMaps.set(cm({ other: 'x' }, '7'));
      expect(h.events).to.deep.equal([]);
    });

    it('ConfigMaps of another name or namespace are ignored', async () => {
      h.configMaps.set(cm({ other: 'x' }, '1', { name: 'something-else' }));
      h.configMaps.set(cm({ other: 'x' }, '1', { namespace: 'tenant-a' }));
      expect(h.events).to.deep.equal([]);
    });

    it('deleting the ConfigMap keeps the loaded templates', async () => {
      const c = cm({ 'templates.yaml': good }, '1');
      h.configMaps.set(c);
      h.configMaps.remove(c);
      expect([...h.ctrl.templates.templates.keys()]).to.deep.equal(['t1']);
    });

    it('a template that fixes a claim\'s refusal provisions it at once', async () => {
      h.classes.set(newStorageClass('tpl', { parameters: { template: 't1' } }));
      h.claims.set(newClaim('a', { className: 'tpl' }));
      await h.settle();
      expect(names()).to.deep.equal([]);
      expect(h.events.map((e) => e.reason)).to.deep.equal(['ProvisioningFailed']);
      h.configMaps.set(cm({ 'templates.yaml': good }, '1'));
      await h.settle();
      expect(names()).to.deep.equal(['pvc-uid-a']);
    });
  });
});

describe('describeFailure: one secret-free line for events and logs', () => {
  it('a Datera error: API name, status, message and details', () => {
    const e = new DateraError('DATERA_VALIDATION_FAILED', 'bad ip pool', { status: 422, apiName: 'ValidationFailedError', details: ['ip_pool: no such pool', 'x'] });
    expect(describeFailure(e)).to.equal('Datera ValidationFailedError 422: bad ip pool (ip_pool: no such pool; x)');
  });
  it('a Datera error without API name, status or details: its code and message', () => {
    expect(describeFailure(new DateraError('DATERA_UNAVAILABLE', 'no answer'))).to.equal('Datera DATERA_UNAVAILABLE: no answer');
  });
  it('a Kubernetes API error: code, reason and message', () => {
    expect(describeFailure(apiError(409, 'Conflict', 'the object has been modified'))).to.equal('Kubernetes API 409 Conflict: the object has been modified');
  });
  it('a Kubernetes API error without reason or message', () => {
    expect(describeFailure(apiError(500, '', ''))).to.match(/^Kubernetes API 500: /);
  });
  it('a plain error: its message; anything else: its string', () => {
    expect(describeFailure(new Error('boom'))).to.equal('boom');
    expect(describeFailure('text')).to.equal('text');
  });
});
