// SPDX-License-Identifier: Apache-2.0
// Object builders for table-driven specs: newClaim, newStorageClass, newVolume.
import type { V1PersistentVolume, V1PersistentVolumeClaim, V1StorageClass } from '@kubernetes/client-node';

export const PROVISIONER = 'datera.io/provisioner-datera';

export interface ClaimOpts {
  ns?: string;
  uid?: string;
  className?: string;
  beta?: string;
  alpha?: string;
  provisioner?: string | null;
  betaProvisionerOnly?: boolean;
  size?: string;
  accessModes?: string[];
  volumeName?: string;
  selector?: boolean;
  volumeMode?: string;
  dataSource?: { kind: string; name: string; apiGroup?: string };
  annotations?: Record<string, string>;
  deleting?: boolean;
}

export function newClaim(name: string, o: ClaimOpts = {}): V1PersistentVolumeClaim {
  const annotations: Record<string, string> = { ...(o.annotations ?? {}) };
  if (o.provisioner !== null) {
    const p = o.provisioner ?? PROVISIONER;
    annotations['volume.beta.kubernetes.io/storage-provisioner'] = p;
    if (!o.betaProvisionerOnly) annotations['volume.kubernetes.io/storage-provisioner'] = p;
  }
  if (o.beta) annotations['volume.beta.kubernetes.io/storage-class'] = o.beta;
  if (o.alpha) annotations['volume.alpha.kubernetes.io/storage-class'] = o.alpha;
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: {
      name,
      namespace: o.ns ?? 'default',
      uid: o.uid ?? `uid-${name}`,
      resourceVersion: '1',
      annotations,
      ...(o.deleting ? { deletionTimestamp: new Date() } : {}),
    },
    spec: {
      ...(o.className !== undefined ? { storageClassName: o.className } : {}),
      accessModes: o.accessModes ?? ['ReadWriteOnce'],
      resources: { requests: { storage: o.size ?? '1Gi' } },
      ...(o.volumeName ? { volumeName: o.volumeName } : {}),
      ...(o.selector ? { selector: { matchLabels: { a: 'b' } } } : {}),
      ...(o.volumeMode ? { volumeMode: o.volumeMode } : {}),
      ...(o.dataSource ? { dataSource: o.dataSource } : {}),
    },
    status: { phase: o.volumeName ? 'Bound' : 'Pending' },
  };
}

export function newStorageClass(name: string, o: { provisioner?: string; parameters?: Record<string, string>; reclaimPolicy?: string; wffc?: boolean } = {}): V1StorageClass {
  return {
    apiVersion: 'storage.k8s.io/v1',
    kind: 'StorageClass',
    metadata: { name, uid: `uid-sc-${name}`, resourceVersion: '1' },
    provisioner: o.provisioner ?? PROVISIONER,
    parameters: o.parameters ?? {},
    reclaimPolicy: o.reclaimPolicy ?? 'Delete',
    volumeBindingMode: o.wffc ? 'WaitForFirstConsumer' : 'Immediate',
  };
}

export function newVolume(name: string, o: { phase?: string; policy?: string; provisionedBy?: string; finalizers?: string[]; deleting?: boolean; className?: string; options?: Record<string, string>; secretRef?: { name: string; namespace: string } } = {}): V1PersistentVolume {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolume',
    metadata: {
      name,
      uid: `uid-${name}`,
      resourceVersion: '1',
      annotations: { 'pv.kubernetes.io/provisioned-by': o.provisionedBy ?? PROVISIONER },
      finalizers: o.finalizers ?? (o.policy === 'Retain' ? [] : ['kubernetes.io/pv-protection', 'external-provisioner.volume.kubernetes.io/finalizer']),
      ...(o.deleting ? { deletionTimestamp: new Date() } : {}),
    },
    spec: {
      capacity: { storage: '1Gi' },
      accessModes: ['ReadWriteOnce'],
      persistentVolumeReclaimPolicy: o.policy ?? 'Delete',
      storageClassName: o.className ?? 'gold',
      flexVolume: {
        driver: 'datera/iscsi',
        fsType: 'xfs',
        ...(o.secretRef ? { secretRef: o.secretRef } : {}),
        options: { volumeID: name, size: '1', replica: '3', ...(o.options ?? {}) },
      },
    },
    status: { phase: o.phase ?? 'Bound' },
  };
}
