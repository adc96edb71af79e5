// SPDX-License-Identifier: Apache-2.0
// Guards of the data in the controller, each named after the behaviour a planted bug broke
// while the rest of the suite stayed green: a vanished-claim clean-up only deletes what its
// metadata says is that claim's, a Bound PV's volume survives the PV's deletion, a PV is never
// deleted while our finalizer could not be removed, and a clone is never smaller than its source.
import { expect } from 'chai';
import type { V1PersistentVolume, V1PersistentVolumeClaim } from '@kubernetes/client-node';
import type { DateraClient } from '../../lib/datera/client.js';
import { nullLogger } from '../../lib/observability/logger.js';
import type { ProvisionController } from '../../lib/provision/controller.js';
import type { DateraSimulator } from '../../lib/sim/server.js';
import { PROVISIONER, newClaim, newStorageClass, newVolume } from '../support/builders.js';
import { FakeCore, apiError, type FakeInformer, type Recorded } from './controller-fakes.js';
import { newHarness, useSimulator, type Harness } from './harness.js';

describe('provisioning controller: guards of the data', function () {
  this.timeout(20_000);
  const fx = useSimulator();
  let sim: DateraSimulator;
  let direct: DateraClient;
  let h: Harness;
  let claims: FakeInformer<V1PersistentVolumeClaim>;
  let volumes: FakeInformer<V1PersistentVolume>;
  let core: FakeCore;
  let events: Recorded[];
  let ctrl: ProvisionController;

  beforeEach(() => {
    ({ sim, direct } = fx);
    // No cluster id, retries far off, and no confirming reads: the caches alone decide.
    h = newHarness(sim, fx.url, { retryInitialMs: 60_000, retryMaxMs: 60_000, clusterId: undefined }, nullLogger(), new FakeCore({ confirmingReads: false }));
    ({ claims, volumes, core, events, ctrl } = h);
    h.classes.set(newStorageClass('gold', { parameters: { replica: '2' } }));
    ctrl.start();
  });
  afterEach(async () => {
    await h.close();
  });

  async function settle() {
    await h.settle();
  }
  const aiNames = () => sim.appInstances().map((a) => a.name);
  const dateraDeletes = () => sim.calls().filter((c) => c.method === 'DELETE' && c.path.includes('/app_instances/'));
  /** An app instance this provisioner made for PV `name` (newVolume names no claim): reclaim may delete it. */
  const makeAi = async (name: string) => {
    await direct.createAppInstance({ name, storage_instances: [{ name: 'storage-1', volumes: [{ name: 'volume-1', size: 1 }] }] });
    await direct.putMetadata(name, { 'k8s-provisioner': PROVISIONER, 'k8s-pv': name });
  };

  it('vanished-claim clean-up keeps an app instance whose k8s-claim-uid names another claim', async () => {
    core.failNext('createPV', apiError(500, 'InternalError'));
    const c = newClaim('a', { className: 'gold' });
    claims.set(c);
    await settle();
    expect(aiNames()).to.deep.equal(['pvc-uid-a']);
    // Between the attempt and the claim's deletion the app instance came to belong to someone else.
    await direct.putMetadata('pvc-uid-a', { 'k8s-claim-uid': 'uid-of-another-claim' });
    claims.remove(c);
    await settle();
    expect(aiNames(), 'not ours to delete').to.deep.equal(['pvc-uid-a']);
    expect(dateraDeletes()).to.deep.equal([]);
  });

  it('vanished-claim clean-up deletes the app instance whose k8s-claim-uid is the removed claim (the guard is not "never delete")', async () => {
    core.failNext('createPV', apiError(500, 'InternalError'));
    const c = newClaim('a', { className: 'gold' });
    claims.set(c);
    await settle();
    claims.remove(c);
    await settle();
    expect(aiNames()).to.deep.equal([]);
  });

  it('a Bound PV that is being deleted keeps its Datera volume, its finalizer and its PV object', async () => {
    await makeAi('pvc-bound');
    volumes.set(newVolume('pvc-bound', { phase: 'Bound', deleting: true }));
    await settle();
    expect(aiNames()).to.deep.equal(['pvc-bound']);
    expect(dateraDeletes()).to.deep.equal([]);
    expect(core.calls, 'no finalizer patch, no PV delete').to.deep.equal([]);
  });

  it('a Released PV whose finalizer patch fails is not deleted, and the next sync finishes the job', async () => {
    await makeAi('pvc-rel');
    core.failNext('patchPV', apiError(500, 'InternalError', 'etcd timeout'));
    const pv = newVolume('pvc-rel', { phase: 'Released' });
    volumes.set(pv);
    await settle();
    expect(core.calls.map((c) => c.op), 'the patch was tried and failed; no delete').to.deep.equal(['patchPV']);
    expect(ctrl.queue.failures('volume/pvc-rel')).to.equal(1);
    expect(aiNames(), 'the Datera volume is gone already').to.deep.equal([]);

    volumes.set({ ...pv, metadata: { ...pv.metadata, resourceVersion: '2' } }); // the retry (here: a PV update)
    await settle();
    expect(core.calls.map((c) => c.op)).to.deep.equal(['patchPV', 'patchPV', 'deletePV']);
    expect(dateraDeletes(), 'Datera is called once').to.have.length(1);
  });

  it('a clone smaller than its source is refused with the sizes, and no clone is made', async () => {
    claims.set(newClaim('src', { className: 'gold', size: '2Gi' }));
    await settle();
    const srcPv = (core.ops('createPV') as V1PersistentVolume[])[0]!;
    volumes.set({ ...srcPv, status: { phase: 'Bound' } });
    claims.set(newClaim('src', { className: 'gold', size: '2Gi', volumeName: srcPv.metadata!.name! }));
    claims.set(newClaim('small', { className: 'gold', size: '1Gi', dataSource: { kind: 'PersistentVolumeClaim', name: 'src' } }));
    await settle();
    const ev = events.find((e) => e.name === 'small' && e.reason === 'ProvisioningFailed');
    expect(ev?.message).to.equal('failed to provision volume with StorageClass "gold": clone must be at least as large as its source (2 GiB), asked for 1 GiB');
    expect(aiNames()).to.deep.equal(['pvc-uid-src']);
    expect(core.ops('createPV')).to.have.length(1);
  });
});
