// SPDX-License-Identifier: Apache-2.0
// The PersistentVolume we write for a provisioned claim. Pure: no I/O.
import type { V1PersistentVolume, V1PersistentVolumeClaim } from '@kubernetes/client-node';
import { STORAGE_INSTANCE_NAME, VOLUME_NAME } from '../datera/names.js';
import type { PerformancePolicy } from '../datera/types.js';
import { Ann, PV_FINALIZER } from './claim.js';
import type { VolumeParams } from './request.js';

export const FLEX_DRIVER = 'datera/iscsi';

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
  /** The performance policy the create sent, recorded on the PV; absent when the create did not decide it (a clone, a Datera-side template). */
  performancePolicy?: PerformancePolicy | undefined;
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
    storageInstance: STORAGE_INSTANCE_NAME,
    volume: VOLUME_NAME,
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
        ...(i.performancePolicy ? { [Ann.performancePolicy]: encodePolicy(i.performancePolicy) } : {}),
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

export const POLICY_KEYS = ['total_iops_max', 'read_iops_max', 'write_iops_max', 'total_bandwidth_max', 'read_bandwidth_max', 'write_bandwidth_max'] as const;

/** A performance policy reduced to its limits: non-zero keys only, in one order (0 or absent = unlimited). */
export function normalPolicy(p: PerformancePolicy | undefined): PerformancePolicy {
  const out: PerformancePolicy = {};
  for (const k of POLICY_KEYS) {
    const v = p?.[k];
    if (typeof v === 'number' && Number.isFinite(v) && v > 0) out[k] = v;
  }
  return out;
}

/** The value of the PV annotation Ann.performancePolicy: JSON of the non-zero limits, in one order. */
export function encodePolicy(p: PerformancePolicy): string {
  return JSON.stringify(normalPolicy(p));
}

/**
 * The JSON-patch operation that records `policy` in a PV's Ann.performancePolicy annotation (the
 * resizer and the QoS updates write it after changing a volume's performance policy).
 */
export function policyRecordOp(pv: V1PersistentVolume, policy: PerformancePolicy): object {
  const value = encodePolicy(policy);
  return pv.metadata?.annotations
    ? { op: 'add', path: `/metadata/annotations/${Ann.performancePolicy.replace(/~/g, '~0').replace(/\//g, '~1')}`, value }
    : { op: 'add', path: '/metadata/annotations', value: { [Ann.performancePolicy]: value } };
}

/** Reads Ann.performancePolicy back; undefined when absent or not what encodePolicy writes (then the storage is asked). */
export function decodePolicy(text: string | undefined): PerformancePolicy | undefined {
  if (text === undefined) return undefined;
  try {
    const v: unknown = JSON.parse(text);
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
    const p = normalPolicy(v as PerformancePolicy);
    return encodePolicy(p) === text ? p : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Keys of the ownership metadata the provisioner writes on every Datera app instance it creates.
 * Deletes (reclaim, vanished-claim clean-up, orphan sweep) and the node driver read them back;
 * Datera keeps metadata as a flat string map (2 KiB in all is the documented client-side limit,
 * and these values stay far below it).
 */
export const MD = {
  provisioner: 'k8s-provisioner',
  pv: 'k8s-pv',
  claimNamespace: 'k8s-claim-namespace',
  claimName: 'k8s-claim-name',
  claimUid: 'k8s-claim-uid',
  storageClass: 'k8s-storage-class',
  /** Identity of the Kubernetes cluster that made the volume (kube-system namespace uid, or the `clusterId` setting). */
  clusterId: 'k8s-cluster-id',
  /** The credentials Secret the create used: the clean-up and the orphan sweep reach the volume the same way. */
  secretNamespace: 'k8s-secret-namespace',
  secretName: 'k8s-secret-name',
  /** RFC 3339 time of the create; the orphan sweep's grace period counts from here. */
  createdAt: 'k8s-created-at',
  /**
   * The PV's reclaim policy (`Delete` or `Retain`), written at create and re-written `Retain` when a
   * PV is released or deleted under Retain: the orphan sweep never removes a retained volume whose
   * PV an admin deleted.
   */
  reclaimPolicy: 'k8s-reclaim-policy',
} as const;

/** What the create knew besides the claim: where it ran and when. Absent fields are not written. */
export interface OwnershipContext {
  clusterId?: string | undefined;
  secretRef?: { name: string; namespace: string } | undefined;
  createdAt?: Date | undefined;
  reclaimPolicy?: string | undefined;
}

/** Provisioner metadata recorded on the Datera app instance: who made it, in which cluster, for which claim, with which Secret. */
export function ownershipMetadata(provisionerName: string, claim: V1PersistentVolumeClaim, className: string, pvName: string, ctx: OwnershipContext = {}): Record<string, string> {
  const m = claim.metadata!;
  return {
    [MD.provisioner]: provisionerName,
    [MD.pv]: pvName,
    [MD.claimNamespace]: m.namespace!,
    [MD.claimName]: m.name!,
    [MD.claimUid]: m.uid!,
    [MD.storageClass]: className,
    ...(ctx.clusterId ? { [MD.clusterId]: ctx.clusterId } : {}),
    ...(ctx.secretRef ? { [MD.secretNamespace]: ctx.secretRef.namespace, [MD.secretName]: ctx.secretRef.name } : {}),
    ...(ctx.createdAt ? { [MD.createdAt]: ctx.createdAt.toISOString() } : {}),
    ...(ctx.reclaimPolicy ? { [MD.reclaimPolicy]: ctx.reclaimPolicy } : {}),
  };
}

/**
 * Is an existing app instance's metadata compatible with this claim? Empty metadata counts as
 * ours: the deterministic name was created by an earlier attempt that stopped before tagging it.
 * A cluster id, when the metadata carries one, must be ours (`clusterId`): a restored or second
 * cluster sharing the tenant never adopts another cluster's volume.
 */
export function metadataIsOurs(md: Record<string, string>, provisionerNames: ReadonlySet<string>, claimUid: string, clusterId?: string): boolean {
  if (!md[MD.claimUid] && !md[MD.provisioner]) return true;
  if (md[MD.clusterId] && md[MD.clusterId] !== clusterId) return false;
  return md[MD.claimUid] === claimUid && provisionerNames.has(md[MD.provisioner] ?? '');
}

/** Why a delete was refused: whose volume it is instead, for events and logs. */
export type DeleteVerdict = { ok: true } | { ok: false; reason: string };

/**
 * May the provisioner delete this app instance on behalf of a PV or claim? Only when the metadata
 * names one of our provisioner names, this PV (when `pvName` is given), this claim uid (when
 * given), and this cluster. No metadata at all is NOT ours here (a
 * delete needs proof; the create path's "empty = ours" adoption rule does not carry over).
 * Volumes made before cluster ids were recorded carry none: they count as ours when provisioner,
 * PV and claim uid match (backward compatible).
 */
export function deletableBy(md: Record<string, string>, who: { provisionerNames: ReadonlySet<string>; clusterId?: string | undefined; pvName?: string; claimUid?: string }): DeleteVerdict {
  const owner = describeOwner(md);
  if (!md[MD.provisioner] && !md[MD.pv] && !md[MD.claimUid]) return { ok: false, reason: 'it carries no ownership metadata (not made by this provisioner, or made by a version that did not tag volumes)' };
  if (!who.provisionerNames.has(md[MD.provisioner] ?? '')) return { ok: false, reason: `it belongs to ${owner}` };
  if (who.pvName !== undefined && md[MD.pv] !== who.pvName) return { ok: false, reason: `it belongs to ${owner}` };
  if (who.claimUid !== undefined && md[MD.claimUid] !== who.claimUid) return { ok: false, reason: `it belongs to ${owner}` };
  if (who.pvName === undefined && who.claimUid === undefined) return { ok: false, reason: 'no PV or claim to match it against' };
  const cluster = md[MD.clusterId];
  if (cluster !== undefined && cluster !== who.clusterId) return { ok: false, reason: `it belongs to ${owner}` };
  return { ok: true };
}

/** "provisioner P, cluster C, PV V, claim ns/name (uid U)" from metadata, for messages. */
export function describeOwner(md: Record<string, string>): string {
  const part = (k: string) => md[k] ?? '?';
  return `provisioner ${part(MD.provisioner)}, cluster ${md[MD.clusterId] ?? '(not recorded)'}, PV ${part(MD.pv)}, claim ${part(MD.claimNamespace)}/${part(MD.claimName)} (uid ${part(MD.claimUid)})`;
}
