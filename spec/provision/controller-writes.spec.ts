// SPDX-License-Identifier: Apache-2.0
// How many Kubernetes writes the controller makes per volume (the performance target: at most 2
// when provisioning and at most 2 when deleting), including the re-deliveries of the same PV that
// a real informer makes while the controller's own writes come back as watch events. Controller
// with in-memory caches and a recording Kubernetes API (harness.ts) against the Datera simulator.
import { expect } from 'chai';
import type { V1PersistentVolume } from '@kubernetes/client-node';
import { PROVISIONER, newClaim, newStorageClass, newVolume } from '../support/builders.js';
import { CLUSTER_ID, apiError, newHarness, useSimulator, type Harness } from './harness.js';

const AI_BODY = { storage_instances: [{ name: 'storage-1', volumes: [{ name: 'volume-1', size: 1 }] }] };
const FINALIZER = 'external-provisioner.volume.kubernetes.io/finalizer';

describe('provisioning controller: Kubernetes writes per volume', function () {
  this.timeout(20_000);
  const fx = useSimulator();
  let h: Harness;
  /** Every PV delete request as the controller sent it (name and options body). */
  let deletes: Array<{ name: string; body?: unknown }>;

  beforeEach(() => {
    h = newHarness(fx.sim, fx.url);
    deletes = [];
    const recordDelete = h.core.deletePersistentVolume;
    h.core.deletePersistentVolume = async (a: { name: string; body?: unknown }) => {
      deletes.push(a);
      return recordDelete(a);
    };
    h.classes.set(newStorageClass('gold', { parameters: { replica: '2' } }));
    h.ctrl.start();
  });
  afterEach(async () => {
    await h.close();
  });

  /** Kubernetes writes so far: PV creates, patches and deletes, and events. */
  const writes = () => [...h.core.calls.map((c) => c.op).filter((op) => op !== 'readPV' && op !== 'readPVC'), ...h.events.map((e) => `event ${e.reason}`)];
  const dateraDeletes = () => fx.sim.calls().filter((c) => c.method === 'DELETE' && c.path.includes('/app_instances/'));
  const ours = (name: string) => ({ 'k8s-provisioner': PROVISIONER, 'k8s-pv': name, 'k8s-claim-uid': `uid-claim-${name}`, 'k8s-cluster-id': CLUSTER_ID });
  const tag = async (name: string) => {
    await fx.direct.createAppInstance({ name, ...AI_BODY });
    await fx.direct.putMetadata(name, ours(name));
  };
  const released = (name: string, o: Parameters<typeof newVolume>[1] = {}): V1PersistentVolume => {
    const pv = newVolume(name, { phase: 'Released', ...o });
    pv.spec!.claimRef = { kind: 'PersistentVolumeClaim', namespace: 'default', name: 'c', uid: `uid-claim-${name}` };
    return pv;
  };
  /** The PV as the watch delivers it after a write: a new resourceVersion and the given changes. */
  const next = (pv: V1PersistentVolume, rv: string, md: Partial<NonNullable<V1PersistentVolume['metadata']>>): V1PersistentVolume => ({
    ...pv,
    metadata: { ...pv.metadata, resourceVersion: rv, ...md },
  });

  it('provisioning a claim writes the PV once and one ProvisioningSucceeded event, also when the claim is re-delivered before its PV shows up', async () => {
    const c = newClaim('a', { className: 'gold' });
    h.claims.set(c);
    await h.settle();
    h.claims.set({ ...c, metadata: { ...c.metadata, resourceVersion: '2' } }); // a claim update (or resync) before the PV's event
    await h.settle();
    const pv = h.core.ops('createPV')[0] as V1PersistentVolume;
    h.volumes.set({ ...pv, metadata: { ...pv.metadata, uid: 'uid-pv-a', resourceVersion: '3' } });
    await h.settle();
    expect(writes()).to.deep.equal(['createPV', 'event ProvisioningSucceeded']);
  });

  it('reclaiming a Released PV writes one finalizer patch and one PV delete, however often the PV is re-delivered before it is gone', async () => {
    await tag('pvc-1');
    const pv = released('pvc-1');
    h.volumes.set(pv);
    await h.settle();
    // The finalizer patch's own event: still Released, no deletion timestamp yet (the DELETE's
    // event has not arrived). This is what re-ran the key and repeated the DELETE.
    const unfinalized = next(pv, '2', { finalizers: ['kubernetes.io/pv-protection'] });
    h.volumes.set(unfinalized);
    await h.settle();
    h.volumes.set(unfinalized); // a resync of the same object
    await h.settle();
    const terminating = next(unfinalized, '3', { deletionTimestamp: new Date() }); // the DELETE's event
    h.volumes.set(terminating);
    await h.settle();
    h.volumes.remove(terminating);
    await h.settle();
    expect(writes()).to.deep.equal(['patchPV', 'deletePV']);
    expect(dateraDeletes()).to.have.length(1);
  });

  it('reclaiming a Released PV without our finalizer writes one PV delete, however often the PV is re-delivered', async () => {
    await tag('pvc-1');
    const pv = released('pvc-1', { finalizers: ['kubernetes.io/pv-protection'] });
    h.volumes.set(pv);
    await h.settle();
    h.volumes.set(next(pv, '2', {}));
    await h.settle();
    expect(writes()).to.deep.equal(['deletePV']);
  });

  it('the PV delete carries a precondition on the uid of the PV the cache showed', async () => {
    await tag('pvc-1');
    h.volumes.set(released('pvc-1'));
    await h.settle();
    expect(deletes).to.deep.equal([{ name: 'pvc-1', body: { preconditions: { uid: 'uid-pvc-1' } } }]);
  });

  it('a PV delete refused by its uid precondition (409: the PV of that name is another one now) is done: no retry, no event', async () => {
    await tag('pvc-1');
    h.core.failNext('deletePV', apiError(409, 'Conflict', 'Precondition failed: UID in precondition: uid-pvc-1, UID in object meta: uid-new'));
    h.volumes.set(released('pvc-1'));
    await h.settle();
    expect(writes()).to.deep.equal(['patchPV', 'deletePV']);
    expect(h.ctrl.queue.failures('volume/pvc-1')).to.equal(0);
    expect(h.ctrl.queue.delayed).to.equal(0);
  });

  it('a failed PV delete (500) is sent again on the retry: only a delete that succeeded is not repeated', async () => {
    await tag('pvc-1');
    h.core.failNext('deletePV', apiError(500, 'InternalError'));
    const pv = released('pvc-1');
    h.volumes.set(pv);
    await h.settle();
    h.volumes.set(next(pv, '2', { finalizers: ['kubernetes.io/pv-protection'] })); // brings the retry forward
    await h.settle();
    expect(writes()).to.deep.equal(['patchPV', 'deletePV', 'deletePV']);
    expect(h.ctrl.queue.failures('volume/pvc-1')).to.equal(0);
  });

  it('a new Released PV under the same name (another uid) after our delete is deleted too', async () => {
    await tag('pvc-1');
    const pv = released('pvc-1');
    h.volumes.set(pv);
    await h.settle();
    // The old PV's delete event was missed; the cache now shows a different PV of that name.
    h.volumes.set(next(pv, '5', { uid: 'uid-pvc-1-again', finalizers: ['kubernetes.io/pv-protection', FINALIZER] }));
    await h.settle();
    expect(deletes.map((d) => d.body)).to.deep.equal([{ preconditions: { uid: 'uid-pvc-1' } }, { preconditions: { uid: 'uid-pvc-1-again' } }]);
  });

  it('a restart after the PV delete was sent: the listed PV, which carries its deletion timestamp, gets no second delete and no Datera call', async () => {
    await tag('pvc-1');
    const pv = released('pvc-1');
    h.volumes.set(pv);
    await h.settle();
    h.volumes.set(next(pv, '3', { finalizers: ['kubernetes.io/pv-protection'], deletionTimestamp: new Date() }));
    await h.settle();
    const dateraCalls = fx.sim.calls().length;
    await h.restart();
    await h.settle();
    expect(writes()).to.deep.equal(['patchPV', 'deletePV']);
    expect(fx.sim.calls().length).to.equal(dateraCalls);
  });
});
