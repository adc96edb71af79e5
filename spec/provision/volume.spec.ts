// SPDX-License-Identifier: Apache-2.0
import { expect } from 'chai';
import { buildVolume, metadataIsOurs, ownershipMetadata } from '../../lib/provision/volume.js';
import { PROVISIONER, newClaim } from '../support/builders.js';

const volume = { appInstanceName: 'pvc-uid-a', sizeGiB: 5, replicas: 2, fsType: 'ext4', template: 'gold', qos: {} };
const base = {
  pvName: 'pvc-uid-a',
  claim: newClaim('a', { className: 'gold', accessModes: ['ReadOnlyMany'] }),
  pvClassName: 'gold',
  reclaimPolicy: 'Delete',
  provisionerName: PROVISIONER,
  volume,
  endpoint: '10.0.0.5:7718',
  tenant: '/root',
  secretRef: { name: 'datera-credentials', namespace: 'datera-system' },
};

describe('PV builder (buildVolume)', () => {
  it('writes a flexVolume PV pre-bound to the claim with everything the node driver needs', () => {
    const pv = buildVolume(base);
    expect(pv.metadata!.name).to.equal('pvc-uid-a');
    expect(pv.metadata!.annotations).to.include({ 'pv.kubernetes.io/provisioned-by': PROVISIONER, 'datera.io/app-instance': 'pvc-uid-a', 'datera.io/template': 'gold' });
    expect(pv.metadata!.finalizers).to.deep.equal(['external-provisioner.volume.kubernetes.io/finalizer']);
    expect(pv.spec!.capacity).to.deep.equal({ storage: '5Gi' });
    expect(pv.spec!.accessModes).to.deep.equal(['ReadOnlyMany']);
    expect(pv.spec!.persistentVolumeReclaimPolicy).to.equal('Delete');
    expect(pv.spec!.storageClassName).to.equal('gold');
    expect(pv.spec!.mountOptions).to.equal(undefined);
    expect(pv.spec!.claimRef).to.deep.equal({ kind: 'PersistentVolumeClaim', apiVersion: 'v1', namespace: 'default', name: 'a', uid: 'uid-a', resourceVersion: '1' });
    expect(pv.spec!.flexVolume).to.deep.equal({
      driver: 'datera/iscsi',
      fsType: 'ext4',
      secretRef: { name: 'datera-credentials', namespace: 'datera-system' },
      readOnly: true,
      options: {
        volumeID: 'pvc-uid-a',
        size: '5',
        replica: '2',
        backstoreServer: '10.0.0.5:7718',
        tenant: '/root',
        storageInstance: 'storage-1',
        volume: 'volume-1',
        accessModes: 'ReadOnlyMany',
        template: 'gold',
      },
    });
  });

  it('a ReadOnlyMany-only claim gets readOnly: true; ReadWriteOnce, both modes, or none get readOnly: false', () => {
    const cases: [string[] | undefined, boolean, string][] = [
      [['ReadOnlyMany'], true, 'ReadOnlyMany'],
      [['ReadWriteOnce'], false, 'ReadWriteOnce'],
      [['ReadWriteOnce', 'ReadOnlyMany'], false, 'ReadWriteOnce,ReadOnlyMany'],
      [undefined, false, 'ReadWriteOnce'],
    ];
    for (const [modes, readOnly, option] of cases) {
      const claim = newClaim('a', { className: 'gold', accessModes: modes ?? ['ReadWriteOnce'] });
      if (!modes) delete claim.spec!.accessModes;
      const pv = buildVolume({ ...base, claim });
      expect(pv.spec!.flexVolume!.readOnly, String(modes)).to.equal(readOnly);
      expect(pv.spec!.flexVolume!.options!.accessModes, String(modes)).to.equal(option);
      expect(pv.spec!.accessModes, String(modes)).to.deep.equal(option.split(','));
    }
  });

  it('puts no finalizer on Retain volumes and an empty class on legacy ones', () => {
    const pv = buildVolume({ ...base, reclaimPolicy: 'Retain', pvClassName: '' });
    expect(pv.metadata!.finalizers).to.equal(undefined);
    expect(pv.spec!.storageClassName).to.equal('');
  });

  it('recognises its own app instances by metadata', () => {
    const names = new Set([PROVISIONER]);
    const md = ownershipMetadata(PROVISIONER, newClaim('a'), 'gold', 'pvc-uid-a');
    expect(md).to.include({ 'k8s-claim-uid': 'uid-a', 'k8s-claim-namespace': 'default', 'k8s-claim-name': 'a', 'k8s-storage-class': 'gold', 'k8s-provisioner': PROVISIONER });
    expect(metadataIsOurs(md, names, 'uid-a')).to.equal(true);
    expect(metadataIsOurs(md, names, 'uid-b')).to.equal(false);
    expect(metadataIsOurs({ ...md, 'k8s-provisioner': 'someone/else' }, names, 'uid-a')).to.equal(false);
    expect(metadataIsOurs({}, names, 'uid-a'), 'untagged: an earlier attempt of ours').to.equal(true);
  });
});
