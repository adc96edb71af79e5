// SPDX-License-Identifier: Apache-2.0
import { expect } from 'chai';
import { decodeSecret, slimObject } from '../lib/wiring.js';

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

describe('Secret decoding for the Datera credentials (decodeSecret)', () => {
  it('decodes base64 data, lets stringData win over data for the same key, and keeps the type', () => {
    const s = decodeSecret({
      type: 'datera/iscsi',
      data: { username: Buffer.from('admin').toString('base64'), password: Buffer.from('from-data').toString('base64') },
      stringData: { password: 'from-stringData' },
    });
    expect(s).to.deep.equal({ type: 'datera/iscsi', data: { username: 'admin', password: 'from-stringData' } });
  });

  it('gives no type when the Secret has none, and empty data for an empty Secret', () => {
    expect(decodeSecret({})).to.deep.equal({ data: {} });
  });
});
