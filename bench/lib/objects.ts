// SPDX-License-Identifier: Apache-2.0
// Objects the benchmark writes: classes, claims, and the PVs of the floor and the 10,000 run
// (shaped like the PVs our provisioner writes, so caches hold the same bytes).
import type { KubeObject } from './kube.js';

export const PROVISIONED_BY = 'pv.kubernetes.io/provisioned-by';
export const PV_FINALIZER = 'external-provisioner.volume.kubernetes.io/finalizer';

export function storageClass(name: string, provisioner: string): KubeObject {
  return {
    apiVersion: 'storage.k8s.io/v1',
    kind: 'StorageClass',
    metadata: { name },
    provisioner,
    reclaimPolicy: 'Delete',
    volumeBindingMode: 'Immediate', // no scheduler in the test plane
    parameters: {},
  };
}

export function claim(name: string, className: string): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name },
    spec: { storageClassName: className, accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
  };
}

/** A PV pre-bound to a claim (full claimRef with uid): the PV controller binds the pair. */
export function preBoundVolume(o: {
  /** Default pvc-<claim uid>, as a provisioner names it. */
  pvName?: string;
  claim: { namespace: string; name: string; uid?: string };
  className: string;
  provisioner: string;
  simUrl: string;
  finalizer: boolean;
}): KubeObject {
  const pvName = o.pvName ?? `pvc-${o.claim.uid}`;
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolume',
    metadata: {
      name: pvName,
      annotations: { [PROVISIONED_BY]: o.provisioner, 'datera.io/app-instance': pvName },
      ...(o.finalizer ? { finalizers: [PV_FINALIZER] } : {}),
    },
    spec: {
      capacity: { storage: '1Gi' },
      accessModes: ['ReadWriteOnce'],
      persistentVolumeReclaimPolicy: 'Delete',
      storageClassName: o.className,
      volumeMode: 'Filesystem',
      claimRef: { kind: 'PersistentVolumeClaim', apiVersion: 'v1', namespace: o.claim.namespace, name: o.claim.name, ...(o.claim.uid ? { uid: o.claim.uid } : {}) },
      flexVolume: {
        driver: 'datera/iscsi',
        fsType: 'xfs',
        secretRef: { name: 'datera-credentials', namespace: o.claim.namespace },
        readOnly: false,
        options: {
          volumeID: pvName,
          size: '1',
          replica: '3',
          backstoreServer: o.simUrl,
          tenant: '/root',
          storageInstance: 'storage-1',
          volume: 'volume-1',
        },
      },
    },
  };
}
