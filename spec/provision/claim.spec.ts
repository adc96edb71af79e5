// SPDX-License-Identifier: Apache-2.0
import { expect } from 'chai';
import { decideClaim, claimClassName, claimMayNeedUs, type ClaimContext } from '../../lib/provision/claim.js';
import { PROVISIONER, newClaim, newStorageClass } from '../support/builders.js';

const classes = new Map([
  ['gold', newStorageClass('gold')],
  ['other', newStorageClass('other', { provisioner: 'example.com/nfs' })],
  ['late', newStorageClass('late', { wffc: true })],
]);
const ctx: ClaimContext = { names: new Set([PROVISIONER, 'datera.io/old-name']), legacyAlphaClasses: { anything: 'gold', foreign: 'other' }, getClass: (n) => classes.get(n) };

describe('claim policy (decideClaim)', () => {
  const rows: Array<[string, ReturnType<typeof newClaim>, string, RegExp?]> = [
    ['class in spec.storageClassName', newClaim('a', { className: 'gold' }), 'provision'],
    ['class in the beta annotation', newClaim('a', { beta: 'gold' }), 'provision'],
    ['beta annotation wins over the field', newClaim('a', { beta: 'gold', className: 'missing' }), 'provision'],
    ['only the beta provisioner key set', newClaim('a', { className: 'gold', betaProvisionerOnly: true }), 'provision'],
    ['an extra provisioner name', newClaim('a', { className: 'gold', provisioner: 'datera.io/old-name' }), 'provision'],
    ['already bound', newClaim('a', { className: 'gold', volumeName: 'pv-1' }), 'ignore'],
    ['being deleted', newClaim('a', { className: 'gold', deleting: true }), 'ignore'],
    ['another provisioner', newClaim('a', { className: 'gold', provisioner: 'example.com/nfs' }), 'ignore'],
    ['no provisioner annotation, no alpha', newClaim('a', { className: 'gold', provisioner: null }), 'ignore'],
    ['class does not exist yet', newClaim('a', { className: 'missing' }), 'wait'],
    ['WaitForFirstConsumer without selected node', newClaim('a', { className: 'late' }), 'wait'],
    ['WaitForFirstConsumer with selected node', newClaim('a', { className: 'late', annotations: { 'volume.kubernetes.io/selected-node': 'n1' } }), 'provision'],
    ['selector', newClaim('a', { className: 'gold', selector: true }), 'refuse', /selector/],
    ['block mode', newClaim('a', { className: 'gold', volumeMode: 'Block' }), 'refuse', /Block/],
    ['ReadWriteMany', newClaim('a', { className: 'gold', accessModes: ['ReadWriteMany'] }), 'refuse', /ReadWriteMany.*allowed: ReadWriteOnce, ReadOnlyMany/],
    ['ReadWriteOncePod', newClaim('a', { className: 'gold', accessModes: ['ReadWriteOncePod'] }), 'refuse', /ReadWriteOncePod/],
    ['ReadOnlyMany', newClaim('a', { className: 'gold', accessModes: ['ReadOnlyMany'] }), 'provision'],
    ['snapshot data source', newClaim('a', { className: 'gold', dataSource: { kind: 'VolumeSnapshot', name: 's', apiGroup: 'snapshot.storage.k8s.io' } }), 'refuse', /VolumeSnapshot/],
    ['PVC data source (clone)', newClaim('a', { className: 'gold', dataSource: { kind: 'PersistentVolumeClaim', name: 'src' } }), 'provision'],
    ['no access modes', newClaim('a', { className: 'gold', accessModes: [] }), 'refuse', /^claim has no access modes; allowed: ReadWriteOnce, ReadOnlyMany$/],
    ['a PersistentVolumeClaim data source of another API group', newClaim('a', { className: 'gold', dataSource: { kind: 'PersistentVolumeClaim', name: 'src', apiGroup: 'example.com' } }), 'refuse', /^data source example.com\/PersistentVolumeClaim "src" is not supported/],
    ['a PVC data source with the core API group spelled out as ""', newClaim('a', { className: 'gold', dataSource: { kind: 'PersistentVolumeClaim', name: 'src', apiGroup: '' } }), 'provision'],
    ['legacy alpha claim mapped', newClaim('a', { provisioner: null, alpha: 'anything' }), 'provision'],
    ['legacy alpha claim not mapped', newClaim('a', { provisioner: null, alpha: 'nope' }), 'ignore'],
    ['legacy alpha claim mapped to a foreign class', newClaim('a', { provisioner: null, alpha: 'foreign' }), 'refuse', /not this provisioner/],
    ['alpha annotation on a claim with a real class', newClaim('a', { provisioner: null, alpha: 'anything', className: 'gold' }), 'ignore'],
  ];
  for (const [name, pvc, action, msg] of rows) {
    it(name, () => {
      const d = decideClaim(pvc, ctx);
      expect(d.action, JSON.stringify(d)).to.equal(action);
      if (msg) expect((d as { message: string }).message).to.match(msg);
    });
  }

  it('gives legacy claims an empty PV class so they bind to the class-less claim', () => {
    const d = decideClaim(newClaim('a', { provisioner: null, alpha: 'anything' }), ctx);
    expect(d).to.include({ action: 'provision', className: 'gold', pvClassName: '', legacy: true });
  });

  it('claimClassName prefers the beta annotation', () => {
    expect(claimClassName(newClaim('a', { beta: 'x', className: 'y' }))).to.equal('x');
    expect(claimClassName(newClaim('a', { className: 'y' }))).to.equal('y');
  });

  it('claimMayNeedUs is a cheap superset filter', () => {
    expect(claimMayNeedUs(newClaim('a', { className: 'gold' }), ctx)).to.equal(true);
    expect(claimMayNeedUs(newClaim('a', { className: 'gold', volumeName: 'x' }), ctx)).to.equal(false);
    expect(claimMayNeedUs(newClaim('a', { provisioner: 'example.com/nfs' }), ctx)).to.equal(false);
    expect(claimMayNeedUs(newClaim('a', { provisioner: null, alpha: 'anything' }), ctx)).to.equal(true);
  });
});
