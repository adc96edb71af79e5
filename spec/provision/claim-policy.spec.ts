// SPDX-License-Identifier: Apache-2.0
// Which claims are ours, and the exact refusals a claim author reads in its ProvisioningFailed event.
import { expect } from 'chai';
import { claimClassName, claimMayNeedUs, claimProvisioner, decideClaim, legacyClassFor, pvNameFor, requestedStorage, type ClaimContext } from '../../lib/provision/claim.js';
import { PROVISIONER, newClaim, newStorageClass } from '../support/builders.js';

const classes = new Map([
  ['gold', newStorageClass('gold')],
  ['other', newStorageClass('other', { provisioner: 'example.com/nfs' })],
  ['late', newStorageClass('late', { wffc: true })],
]);
const ctx = (legacy: Record<string, string> = {}): ClaimContext => ({ names: new Set([PROVISIONER]), legacyAlphaClasses: legacy, getClass: (n) => classes.get(n) });

describe('claim policy: which claims are ours', () => {
  it('the storage-provisioner annotation wins over the beta one when both are set', () => {
    const pvc = newClaim('a', { className: 'gold', provisioner: 'example.com/nfs', annotations: {} });
    pvc.metadata!.annotations!['volume.beta.kubernetes.io/storage-provisioner'] = PROVISIONER;
    expect(claimProvisioner(pvc)).to.equal('example.com/nfs');
    expect(decideClaim(pvc, ctx())).to.deep.equal({ action: 'ignore', reason: 'claim belongs to provisioner example.com/nfs' });
    expect(claimMayNeedUs(pvc, ctx())).to.equal(false);
  });

  it('a claim of ours with no class at all (nor an empty one) is ignored', () => {
    expect(decideClaim(newClaim('a'), ctx())).to.deep.equal({ action: 'ignore', reason: 'claim has no storage class' });
    expect(decideClaim(newClaim('a', { className: '' }), ctx()).action).to.equal('ignore');
  });

  it('a claim whose class is another provisioner\'s is ignored, naming the provisioner', () => {
    expect(decideClaim(newClaim('a', { className: 'other' }), ctx())).to.deep.equal({ action: 'ignore', reason: 'storage class other belongs to example.com/nfs' });
  });

  it('an empty beta class annotation wins over spec.storageClassName (the claim asks for no class)', () => {
    expect(claimClassName(newClaim('a', { className: 'gold', annotations: { 'volume.beta.kubernetes.io/storage-class': '' } }))).to.equal('');
  });

  it('a claim with neither annotation nor class field has no class', () => {
    expect(claimClassName(newClaim('a'))).to.equal(undefined);
    const pvc = newClaim('a');
    pvc.spec!.storageClassName = null as unknown as string;
    expect(claimClassName(pvc)).to.equal(undefined);
  });

  it('a legacy alpha value without its own mapping falls back to the "*" mapping', () => {
    const pvc = newClaim('a', { provisioner: null, alpha: 'whatever' });
    expect(legacyClassFor(pvc, { '*': 'gold' })).to.equal('gold');
    expect(legacyClassFor(pvc, { whatever: 'late', '*': 'gold' })).to.equal('late');
    expect(legacyClassFor(pvc, {})).to.equal(undefined);
    expect(decideClaim(pvc, ctx({ '*': 'gold' }))).to.include({ action: 'provision', className: 'gold', pvClassName: '', legacy: true });
  });

  it('a legacy alpha claim with an empty class field is still legacy; without the alpha annotation it is not', () => {
    expect(legacyClassFor(newClaim('a', { provisioner: null, alpha: 'x', className: '' }), { x: 'gold' })).to.equal('gold');
    expect(legacyClassFor(newClaim('a', { provisioner: null, className: '' }), { '*': 'gold' })).to.equal(undefined);
  });

  it('claimMayNeedUs: a legacy alpha claim is a candidate only when mapped; a bound one never', () => {
    expect(claimMayNeedUs(newClaim('a', { provisioner: null, alpha: 'x' }), { names: new Set([PROVISIONER]), legacyAlphaClasses: { x: 'gold' } })).to.equal(true);
    expect(claimMayNeedUs(newClaim('a', { provisioner: null, alpha: 'x' }), { names: new Set([PROVISIONER]), legacyAlphaClasses: {} })).to.equal(false);
    expect(claimMayNeedUs(newClaim('a', { provisioner: null, alpha: 'x', volumeName: 'pv' }), { names: new Set([PROVISIONER]), legacyAlphaClasses: { x: 'gold' } })).to.equal(false);
  });

  it('a class that does not exist yet: wait, naming it', () => {
    expect(decideClaim(newClaim('a', { className: 'missing' }), ctx())).to.deep.equal({ action: 'wait', reason: 'storage class missing does not exist (yet)' });
  });

  it('the deterministic PV name is pvc-<claim uid>', () => {
    expect(pvNameFor(newClaim('a', { uid: '1234-abcd' }))).to.equal('pvc-1234-abcd');
  });

  it('requestedStorage: the request as a string, or undefined when the claim asks for no size', () => {
    expect(requestedStorage(newClaim('a', { size: '5Gi' }))).to.equal('5Gi');
    const pvc = newClaim('a');
    delete pvc.spec!.resources;
    expect(requestedStorage(pvc)).to.equal(undefined);
    const n = newClaim('a');
    n.spec!.resources!.requests!.storage = 1024 as unknown as string;
    expect(requestedStorage(n)).to.equal('1024');
  });
});

describe('claim policy: refusal texts shown in the ProvisioningFailed event', () => {
  const refusal = (pvc: ReturnType<typeof newClaim>, c = ctx()) => {
    const d = decideClaim(pvc, c);
    expect(d.action, JSON.stringify(d)).to.equal('refuse');
    return d as { className: string; message: string };
  };

  it('a legacy mapping to another provisioner\'s class names the class and that provisioner', () => {
    expect(refusal(newClaim('a', { provisioner: null, alpha: 'x' }), ctx({ x: 'other' }))).to.deep.equal({
      action: 'refuse',
      className: 'other',
      message: 'legacy class mapping points at storage class "other", whose provisioner "example.com/nfs" is not this provisioner',
    });
  });

  it('a selector', () => {
    expect(refusal(newClaim('a', { className: 'gold', selector: true })).message).to.equal(
      'claim selector (spec.selector) is not supported for dynamically provisioned Datera volumes; remove the selector, or pre-create a PV with matching labels',
    );
  });

  it('volumeMode Block', () => {
    expect(refusal(newClaim('a', { className: 'gold', volumeMode: 'Block' })).message).to.equal(
      'volumeMode Block is not supported: the datera/iscsi flexVolume driver provides filesystems only; use volumeMode Filesystem',
    );
  });

  it('volumeMode Filesystem is served', () => {
    expect(decideClaim(newClaim('a', { className: 'gold', volumeMode: 'Filesystem' }), ctx()).action).to.equal('provision');
  });

  it('unsupported access modes are all listed, the supported ones not', () => {
    expect(refusal(newClaim('a', { className: 'gold', accessModes: ['ReadWriteOnce', 'ReadWriteMany', 'ReadWriteOncePod'] })).message).to.equal(
      'access mode ReadWriteMany, ReadWriteOncePod is not supported by datera/iscsi volumes; allowed: ReadWriteOnce, ReadOnlyMany',
    );
  });

  it('a claim without an accessModes field is refused as having none', () => {
    const pvc = newClaim('a', { className: 'gold' });
    delete pvc.spec!.accessModes;
    expect(refusal(pvc).message).to.equal('claim has no access modes; allowed: ReadWriteOnce, ReadOnlyMany');
  });

  it('a core-group data source of another kind names the kind without a group prefix', () => {
    expect(refusal(newClaim('a', { className: 'gold', dataSource: { kind: 'ConfigMap', name: 'c' } })).message).to.equal(
      'data source ConfigMap "c" is not supported; only cloning from a PersistentVolumeClaim provisioned by this provisioner is',
    );
  });

  it('dataSourceRef wins over dataSource', () => {
    const pvc = newClaim('a', { className: 'gold', dataSource: { kind: 'PersistentVolumeClaim', name: 'src' } });
    pvc.spec!.dataSourceRef = { kind: 'VolumeSnapshot', name: 's', apiGroup: 'snapshot.storage.k8s.io' };
    expect(refusal(pvc).message).to.equal(
      'data source snapshot.storage.k8s.io/VolumeSnapshot "s" is not supported; only cloning from a PersistentVolumeClaim provisioned by this provisioner is',
    );
  });

  it('the refusal carries the claim\'s class; a provision decision carries the class object', () => {
    expect(refusal(newClaim('a', { className: 'gold', volumeMode: 'Block' })).className).to.equal('gold');
    expect(decideClaim(newClaim('a', { className: 'gold' }), ctx())).to.deep.equal({ action: 'provision', className: 'gold', pvClassName: 'gold', storageClass: classes.get('gold'), legacy: false });
  });

  it('a WaitForFirstConsumer claim waits with the reason, and its refusals come only once a node is selected', () => {
    expect(decideClaim(newClaim('a', { className: 'late', volumeMode: 'Block' }), ctx())).to.deep.equal({ action: 'wait', reason: 'waiting for the scheduler to select a node (WaitForFirstConsumer)' });
  });

  it('a claim being deleted or bound is ignored with the reason', () => {
    expect(decideClaim(newClaim('a', { className: 'gold', deleting: true }), ctx())).to.deep.equal({ action: 'ignore', reason: 'claim is being deleted' });
    expect(decideClaim(newClaim('a', { className: 'gold', volumeName: 'pv' }), ctx())).to.deep.equal({ action: 'ignore', reason: 'claim is already bound to a volume' });
    expect(decideClaim(newClaim('a', { provisioner: null }), ctx())).to.deep.equal({ action: 'ignore', reason: 'claim is not annotated for any provisioner' });
  });
});
