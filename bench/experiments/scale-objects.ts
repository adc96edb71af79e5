// SPDX-License-Identifier: Apache-2.0
// Bound claims and their PVs shaped like kube-apiserver 1.34's answers (managedFields, server
// annotations, finalizers, status), for the memory experiments (startup-memory.ts, cache-heap.ts).

export const NS = 'bench-scale';
export const PROVISIONER = 'bench.datera.io/scale';

const ts = '2026-12-01T19:00:00Z';
const uid = (i: number, kind: string) => `${kind === 'pvc' ? 'c' : 'f'}${i.toString(16).padStart(7, '0')}-1111-4222-8333-${(i * 7919).toString(16).padStart(12, '0').slice(-12)}`;
const managed = (manager: string, op: string, fields: unknown) => ({ manager, operation: op, apiVersion: 'v1', time: ts, fieldsType: 'FieldsV1', fieldsV1: fields });

export function pvc(i: number) {
  const name = `claim-${i}`;
  return {
    metadata: {
      name,
      namespace: NS,
      uid: uid(i, 'pvc'),
      resourceVersion: String(100000 + i),
      creationTimestamp: ts,
      annotations: {
        'pv.kubernetes.io/bind-completed': 'yes',
        'volume.beta.kubernetes.io/storage-provisioner': PROVISIONER,
        'volume.kubernetes.io/storage-provisioner': PROVISIONER,
      },
      finalizers: ['kubernetes.io/pvc-protection'],
      managedFields: [
        managed('bench', 'Update', { 'f:spec': { 'f:accessModes': {}, 'f:resources': { 'f:requests': { '.': {}, 'f:storage': {} } }, 'f:storageClassName': {}, 'f:volumeMode': {} } }),
        managed('kube-controller-manager', 'Update', { 'f:metadata': { 'f:annotations': { '.': {}, 'f:pv.kubernetes.io/bind-completed': {}, 'f:volume.beta.kubernetes.io/storage-provisioner': {}, 'f:volume.kubernetes.io/storage-provisioner': {} } }, 'f:spec': { 'f:volumeName': {} } }),
        { ...managed('kube-controller-manager', 'Update', { 'f:status': { 'f:accessModes': {}, 'f:capacity': { '.': {}, 'f:storage': {} }, 'f:phase': {} } }), subresource: 'status' },
      ],
    },
    spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } }, storageClassName: 'bench-scale', volumeMode: 'Filesystem', volumeName: `pvc-${uid(i, 'pvc')}` },
    status: { phase: 'Bound', accessModes: ['ReadWriteOnce'], capacity: { storage: '1Gi' } },
  };
}

export function pv(i: number) {
  const name = `pvc-${uid(i, 'pvc')}`;
  return {
    metadata: {
      name,
      uid: uid(i, 'pv'),
      resourceVersion: String(200000 + i),
      creationTimestamp: ts,
      annotations: { 'pv.kubernetes.io/provisioned-by': PROVISIONER, 'datera.io/app-instance': name, 'pv.kubernetes.io/bound-by-controller': 'yes' },
      finalizers: ['kubernetes.io/pv-protection', 'external-provisioner.volume.kubernetes.io/finalizer'],
      managedFields: [
        managed('bench', 'Update', { 'f:metadata': { 'f:annotations': { '.': {}, 'f:datera.io/app-instance': {}, 'f:pv.kubernetes.io/provisioned-by': {} }, 'f:finalizers': { '.': {}, 'v:"external-provisioner.volume.kubernetes.io/finalizer"': {} } }, 'f:spec': { 'f:accessModes': {}, 'f:capacity': { '.': {}, 'f:storage': {} }, 'f:claimRef': { '.': {}, 'f:apiVersion': {}, 'f:kind': {}, 'f:name': {}, 'f:namespace': {}, 'f:uid': {} }, 'f:flexVolume': { '.': {}, 'f:driver': {}, 'f:fsType': {}, 'f:options': { '.': {}, 'f:backstoreServer': {}, 'f:replica': {}, 'f:size': {}, 'f:storageInstance': {}, 'f:tenant': {}, 'f:volume': {}, 'f:volumeID': {} }, 'f:secretRef': { '.': {}, 'f:name': {}, 'f:namespace': {} } }, 'f:persistentVolumeReclaimPolicy': {}, 'f:storageClassName': {}, 'f:volumeMode': {} } }),
        { ...managed('kube-controller-manager', 'Update', { 'f:status': { 'f:phase': {} } }), subresource: 'status' },
      ],
    },
    spec: {
      capacity: { storage: '1Gi' },
      accessModes: ['ReadWriteOnce'],
      persistentVolumeReclaimPolicy: 'Delete',
      storageClassName: 'bench-scale',
      volumeMode: 'Filesystem',
      claimRef: { kind: 'PersistentVolumeClaim', apiVersion: 'v1', namespace: NS, name: `claim-${i}`, uid: uid(i, 'pvc') },
      flexVolume: {
        driver: 'datera/iscsi',
        fsType: 'xfs',
        secretRef: { name: 'datera-credentials', namespace: NS },
        options: { volumeID: name, size: '1', replica: '3', backstoreServer: 'http://127.0.0.1:7717', tenant: '/root', storageInstance: 'storage-1', volume: 'volume-1' },
      },
    },
    status: { phase: 'Bound', lastPhaseTransitionTime: ts },
  };
}

