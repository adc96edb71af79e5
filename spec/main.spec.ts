// SPDX-License-Identifier: Apache-2.0
import { expect } from 'chai';
import { slimObject } from '../lib/wiring.js';

describe('cache slimming (slimObject)', () => {
  it('drops managedFields and the last-applied annotation, keeps everything else', () => {
    const obj = {
      kind: 'PersistentVolumeClaim',
      metadata: {
        name: 'a',
        namespace: 'n',
        uid: 'u',
        resourceVersion: '7',
        managedFields: [{ manager: 'kubectl' }],
        annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{"big":true}', 'volume.kubernetes.io/storage-provisioner': 'p' },
      },
      spec: { storageClassName: 'gold' },
    };
    const slim = slimObject(obj);
    expect(slim.metadata).to.deep.equal({ name: 'a', namespace: 'n', uid: 'u', resourceVersion: '7', annotations: { 'volume.kubernetes.io/storage-provisioner': 'p' } });
    expect(slim.spec).to.equal(obj.spec);
    expect(obj.metadata.managedFields, 'the input is not modified').to.have.length(1);
  });

  it('returns objects without either unchanged', () => {
    const obj = { kind: 'X', metadata: { name: 'a', annotations: { k: 'v' } } };
    expect(slimObject(obj)).to.equal(obj);
  });
});
