// SPDX-License-Identifier: Apache-2.0
// The PersistentVolume we write for a provisioned claim. Pure: no I/O.
import type { V1PersistentVolume, V1PersistentVolumeClaim } from '@kubernetes/client-node';
import { Ann, PV_FINALIZER } from './claim.js';
import type { VolumeParams } from './template.js';

export const FLEX_DRIVER = 'datera/iscsi';
export const STORAGE_INSTANCE = 'storage-1';
export const VOLUME = 'volume-1';

export interface BuildVolumeInput {
  pvName: string;
  claim: V1PersistentVolumeClaim;
  /** The PV's storageClassName ("" for class-less legacy claims). */
  pvClassName: string;
  reclaimPolicy: string;
  provisionerName: string;
  volume: VolumeParams;
  /** Datera management endpoint, recorded for the node driver and for deletes. */
  endpoint: string;
  tenant: string;
  /** Credentials Secret (type datera/iscsi) kubelet passes to the driver on mount. */
  secretRef: { name: string; namespace: string };
}

/**
 * Builds the PV: flexVolume `datera/iscsi` with everything the node driver and the delete path
 * need in `options` (kubelet passes only these; `detach` gets only the PV name, which is also the
 * app instance name), pre-bound to the claim by a full claimRef with uid. A claim that is only
 * ReadOnlyMany gets `readOnly: true` (kubelet then asks for a read-only mount) and every PV says
 * its access modes in `options.accessModes` for the driver. No mountOptions: the
 * API rejects them on flex PVs. The finalizer is set only for reclaim policy Delete: it keeps the
 * PV object until the Datera volume is gone.
 */
export function buildVolume(i: BuildVolumeInput): V1PersistentVolume {
  const v = i.volume;
  const accessModes = [...(i.claim.spec?.accessModes ?? ['ReadWriteOnce'])];
  // The node driver reads `accessModes`: ReadOnlyMany alone = read-only on many nodes; anything
  // else (or a PV without the option) = one writing node at a time.
  const readOnlyMany = accessModes.length > 0 && accessModes.every((m) => m === 'ReadOnlyMany');
  const options: Record<string, string> = {
    volumeID: v.appInstanceName,
    size: String(v.sizeGiB),
    replica: String(v.replicas),
    backstoreServer: i.endpoint,
    tenant: v.tenant ?? i.tenant,
    storageInstance: STORAGE_INSTANCE,
    volume: VOLUME,
    accessModes: accessModes.join(','),
  };
  if (v.template) options.template = v.template;
  if (v.dateraTemplate) options.dateraTemplate = v.dateraTemplate;
  if (v.ipPool) options.ipPool = v.ipPool;
  if (v.placementMode) options.placementMode = v.placementMode;
  if (v.placementPolicy) options.placementPolicy = v.placementPolicy;

  const meta = i.claim.metadata!;
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolume',
    metadata: {
      name: i.pvName,
      annotations: {
        [Ann.provisionedBy]: i.provisionerName,
        [Ann.appInstance]: v.appInstanceName,
        ...(v.template ? { [Ann.template]: v.template } : {}),
      },
      ...(i.reclaimPolicy === 'Delete' ? { finalizers: [PV_FINALIZER] } : {}),
    },
    spec: {
      capacity: { storage: `${v.sizeGiB}Gi` },
      accessModes,
      persistentVolumeReclaimPolicy: i.reclaimPolicy,
      storageClassName: i.pvClassName,
      volumeMode: 'Filesystem',
      claimRef: {
        kind: 'PersistentVolumeClaim',
        apiVersion: 'v1',
        namespace: meta.namespace!,
        name: meta.name!,
        uid: meta.uid!,
        ...(meta.resourceVersion ? { resourceVersion: meta.resourceVersion } : {}),
      },
      flexVolume: {
        driver: FLEX_DRIVER,
        fsType: v.fsType,
        secretRef: { name: i.secretRef.name, namespace: i.secretRef.namespace },
        readOnly: readOnlyMany,
        options,
      },
    },
  };
}

/** Provisioner metadata recorded on the Datera app instance: who made it, for which claim. */
export function ownershipMetadata(provisionerName: string, claim: V1PersistentVolumeClaim, className: string, pvName: string): Record<string, string> {
  const m = claim.metadata!;
  return {
    'k8s-provisioner': provisionerName,
    'k8s-pv': pvName,
    'k8s-claim-namespace': m.namespace!,
    'k8s-claim-name': m.name!,
    'k8s-claim-uid': m.uid!,
    'k8s-storage-class': className,
  };
}

/**
 * Is an existing app instance's metadata compatible with this claim? Empty metadata counts as
 * ours: the deterministic name was created by an earlier attempt that stopped before tagging it.
 */
export function metadataIsOurs(md: Record<string, string>, provisionerNames: ReadonlySet<string>, claimUid: string): boolean {
  if (!md['k8s-claim-uid'] && !md['k8s-provisioner']) return true;
  return md['k8s-claim-uid'] === claimUid && provisionerNames.has(md['k8s-provisioner'] ?? '');
}
