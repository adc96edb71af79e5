// SPDX-License-Identifier: Apache-2.0
// Never delete what is not ours: the vanished-claim clean-up and reclaim against the simulator.
import { expect } from 'chai';
import type { V1PersistentVolume } from '@kubernetes/client-node';
import type { DateraClient } from '../../lib/datera/client.js';
import type { DateraSimulator } from '../../lib/sim/server.js';
import { deletableBy, metadataIsOurs } from '../../lib/provision/volume.js';
import { PROVISIONER, newClaim, newStorageClass, newVolume } from '../support/builders.js';
import { CLUSTER_ID, apiError, eventually, newHarness, useSimulator, type Harness } from './harness.js';

const AI_BODY = { storage_instances: [{ name: 'storage-1', volumes: [{ name: 'volume-1', size: 1 }] }] };

describe('ownership: never delete what is not ours', function () {
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

  describe('vanished-claim clean-up', () => {
    it('a claim that becomes Bound while its PV create is in flight keeps its app instance when the create then fails', async () => {
      const release = h.core.hold('createPV');
      h.core.failNext('createPV', apiError(504, 'Timeout', 'the PV create timed out')); // ambiguous: it may have been saved
      h.claims.set(newClaim('a', { className: 'gold' }));
      await eventually(h, () => h.core.ops('createPV').length === 1);
      h.claims.set(newClaim('a', { className: 'gold', volumeName: 'pvc-uid-a' })); // bound meanwhile
      release();
      await h.settle();
      await new Promise((r) => setTimeout(r, 100)); // the failed attempt's retry (20 ms backoff) runs
      await h.settle();
      expect(names()).to.deep.equal(['pvc-uid-a']);
      expect(sim.calls().filter((c) => c.method === 'DELETE')).to.have.length(0);
    });

    it('a claim deleted while its PV create is in flight keeps the app instance when the API server has the PV (the cache is behind)', async () => {
      const release = h.core.hold('createPV');
      h.core.failNext('createPV', apiError(504, 'Timeout'));
      const c = newClaim('a', { className: 'gold' });
      h.claims.set(c);
      await eventually(h, () => h.core.ops('createPV').length === 1);
      h.core.server.volumes.set('pvc-uid-a', newVolume('pvc-uid-a')); // the create did land
      h.claims.remove(c);
      release();
      await h.settle();
      await new Promise((r) => setTimeout(r, 100));
      await h.settle();
      expect(names()).to.deep.equal(['pvc-uid-a']);
      expect(h.core.ops('readPV')).to.include('pvc-uid-a');
    });

    it('a claim missing from the cache but present on the API server (same uid) keeps its app instance', async () => {
      h.core.failNext('createPV', apiError(500, 'InternalError'));
      const c = newClaim('a', { className: 'gold' });
      h.claims.set(c);
      await h.settle();
      h.core.server.claims.set('default/a', c);
      h.claims.remove(c);
      await h.settle();
      expect(names()).to.deep.equal(['pvc-uid-a']);
      expect(h.core.ops('readPVC')).to.include('default/a');
    });

    it('a claim deleted before its PV was saved: the app instance is removed through the class\'s own Secret and tenant', async () => {
      h.secrets.set('datera-system/team-b', { type: 'datera/iscsi', data: { username: 'admin', password: 'secret_pw1', server: simUrl } });
      h.classes.set(newStorageClass('team', { parameters: { secretName: 'team-b', secretNamespace: 'datera-system', tenant: '/root/team-b' } }));
      h.core.failNext('createPV', apiError(500, 'InternalError'));
      h.core.failNext('createPV', apiError(500, 'InternalError'));
      const c = newClaim('a', { className: 'team' });
      h.claims.set(c);
      await h.settle();
      expect(sim.appInstances('/root/team-b').map((a) => a.name)).to.deep.equal(['pvc-uid-a']);
      h.claims.remove(c);
      await eventually(h, () => sim.appInstances('/root/team-b').length === 0);
      expect(sim.appInstances('/root/team-b')).to.have.length(0);
    });
  });

  describe('create records who made the volume', () => {
    it('metadata names the cluster id, the Secret the create used, the reclaim policy and the creation time', async () => {
      h.claims.set(newClaim('a', { className: 'gold' }));
      await h.settle();
      const md = await direct.getMetadata('pvc-uid-a');
      expect(md).to.include({ 'k8s-cluster-id': CLUSTER_ID, 'k8s-secret-namespace': 'datera-system', 'k8s-secret-name': 'datera-credentials', 'k8s-pv': 'pvc-uid-a', 'k8s-reclaim-policy': 'Delete' });
      expect(Number.isNaN(Date.parse(md['k8s-created-at'] ?? ''))).to.equal(false);
    });

    it('refuses to adopt an app instance of the same name and claim uid that another cluster made', async () => {
      await direct.createAppInstance({ name: 'pvc-uid-a', ...AI_BODY });
      await direct.putMetadata('pvc-uid-a', { 'k8s-provisioner': PROVISIONER, 'k8s-claim-uid': 'uid-a', 'k8s-pv': 'pvc-uid-a', 'k8s-cluster-id': 'other-cluster' });
      h.claims.set(newClaim('a', { className: 'gold' }));
      await h.settle();
      expect(h.core.ops('createPV')).to.have.length(0);
      expect(h.events.find((e) => e.reason === 'ProvisioningFailed')!.message).to.match(/already exists and was not created for this claim.*cluster other-cluster/);
    });
  });

  describe('reclaim', () => {
    const released = (name: string, claimUid = `uid-claim-${name}`): V1PersistentVolume => {
      const pv = newVolume(name, { phase: 'Released' });
      pv.spec!.claimRef = { kind: 'PersistentVolumeClaim', namespace: 'default', name: 'c', uid: claimUid };
      return pv;
    };
    const tag = async (name: string, md: Record<string, string>) => {
      await direct.createAppInstance({ name, ...AI_BODY });
      await direct.putMetadata(name, md);
    };
    const ours = (name: string) => ({ 'k8s-provisioner': PROVISIONER, 'k8s-pv': name, 'k8s-claim-uid': `uid-claim-${name}`, 'k8s-claim-namespace': 'default', 'k8s-claim-name': 'c' });

    it('deletes an app instance whose metadata names this provisioner, PV, claim uid and cluster', async () => {
      await tag('pvc-1', { ...ours('pvc-1'), 'k8s-cluster-id': CLUSTER_ID });
      h.volumes.set(released('pvc-1'));
      await h.settle();
      expect(names()).to.deep.equal([]);
      expect(h.core.ops('deletePV')).to.deep.equal(['pvc-1']);
    });

    it('deletes an app instance made before cluster ids were recorded when provisioner, PV and claim uid match', async () => {
      await tag('pvc-1', ours('pvc-1'));
      h.volumes.set(released('pvc-1'));
      await h.settle();
      expect(names()).to.deep.equal([]);
    });

    const refusals: Array<[string, (n: string) => Record<string, string>, RegExp]> = [
      ['another cluster', (n) => ({ ...ours(n), 'k8s-cluster-id': 'other-cluster' }), /cluster other-cluster/],
      ['another PV', (n) => ({ ...ours(n), 'k8s-pv': 'pvc-someone-else', 'k8s-cluster-id': CLUSTER_ID }), /PV pvc-someone-else/],
      ['another claim uid', (n) => ({ ...ours(n), 'k8s-claim-uid': 'uid-other' }), /uid uid-other/],
      ['another provisioner', (n) => ({ ...ours(n), 'k8s-provisioner': 'example.com/other' }), /provisioner example\.com\/other/],
      ['no ownership metadata at all', () => ({ note: 'made by hand' }), /no ownership metadata/],
    ];
    for (const [what, md, says] of refusals) {
      it(`refuses to delete an app instance of ${what}: VolumeFailedDelete saying whose it is, app instance and PV kept, finalizer kept, slow retry`, async () => {
        await tag('pvc-1', md('pvc-1'));
        h.volumes.set(released('pvc-1'));
        await h.settle();
        expect(names()).to.deep.equal(['pvc-1']);
        expect(sim.calls().filter((c) => c.method === 'DELETE' || (c.method === 'PUT' && c.path.endsWith('/app_instances/pvc-1')))).to.have.length(0);
        expect(h.core.ops('deletePV')).to.have.length(0);
        expect(h.core.ops('patchPV')).to.have.length(0);
        const ev = h.events.find((e) => e.reason === 'VolumeFailedDelete')!;
        expect(ev).to.include({ kind: 'PersistentVolume', name: 'pvc-1', type: 'Warning' });
        expect(ev.message).to.match(/refusing to delete Datera app instance pvc-1/);
        expect(ev.message).to.match(says);
        expect(h.ctrl.queue.delayed).to.equal(1);
        expect(h.ctrl.queue.failures('volume/pvc-1')).to.equal(0);
        expect(await h.metrics.value('controller_persistentvolume_delete_failed_total', { class: 'gold' })).to.equal(1);
      });
    }
  });

  describe('ownership rules (pure)', () => {
    const names = new Set([PROVISIONER]);
    it('deletableBy: a cluster id is required to match only when the metadata has one; our own id unknown refuses any tagged cluster', () => {
      const md = { 'k8s-provisioner': PROVISIONER, 'k8s-pv': 'p', 'k8s-claim-uid': 'u', 'k8s-cluster-id': 'c1' };
      expect(deletableBy(md, { provisionerNames: names, clusterId: 'c1', pvName: 'p', claimUid: 'u' }).ok).to.equal(true);
      expect(deletableBy(md, { provisionerNames: names, clusterId: 'c2', pvName: 'p', claimUid: 'u' }).ok).to.equal(false);
      expect(deletableBy(md, { provisionerNames: names, pvName: 'p', claimUid: 'u' }).ok).to.equal(false);
      const { 'k8s-cluster-id': _c, ...old } = md;
      expect(deletableBy(old, { provisionerNames: names, clusterId: 'c1', pvName: 'p', claimUid: 'u' }).ok).to.equal(true);
    });
    it('deletableBy: nothing to match against (no PV name, no claim uid) refuses', () => {
      expect(deletableBy({ 'k8s-provisioner': PROVISIONER, 'k8s-pv': 'p' }, { provisionerNames: names, clusterId: 'c1' }).ok).to.equal(false);
    });
    it('metadataIsOurs: empty metadata is adoptable, another cluster\'s is not', () => {
      expect(metadataIsOurs({}, names, 'u', 'c1')).to.equal(true);
      expect(metadataIsOurs({ 'k8s-provisioner': PROVISIONER, 'k8s-claim-uid': 'u', 'k8s-cluster-id': 'c1' }, names, 'u', 'c1')).to.equal(true);
      expect(metadataIsOurs({ 'k8s-provisioner': PROVISIONER, 'k8s-claim-uid': 'u', 'k8s-cluster-id': 'c2' }, names, 'u', 'c1')).to.equal(false);
    });
  });
});
