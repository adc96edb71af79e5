// SPDX-License-Identifier: Apache-2.0
// Volume expansion decisions: the provisioner is the resizer of its own flexVolume PVs
// (kube-controller-manager's expand controller only says "waiting for an external controller"
// for them). Pure: no I/O, no clock. The controller (resizer.ts) carries the decisions out.
//
// The claim's status says where a resize stands, in the words kubelet 1.34 and external-resizer
// use (RecoverVolumeExpansionFailure, GA):
//   status.allocatedResources.storage           the size the resize is going to
//   status.allocatedResourceStatuses.storage    ControllerResizeInProgress -> NodeResizePending
//                                               (kubelet: NodeResizeInProgress -> removed, and
//                                               status.capacity = the new size)
//                                               ControllerResizeInfeasible: refused; the user may
//                                               lower the request again
//   conditions  Resizing / FileSystemResizePending / ControllerResizeError
// The Datera volume's size is the truth for "how far did we get": every step checks it before
// acting, so a resize half done (crash, lost response) is finished and never repeated wrongly,
// and a volume is never shrunk.
import type { V1PersistentVolume, V1PersistentVolumeClaim, V1PersistentVolumeClaimCondition, V1StorageClass } from '@kubernetes/client-node';
import type { PerformancePolicy } from '../datera/types.js';
import type { TemplateSet } from './app-templates.js';
import { GIB, bytesToGiBCeil, parseQuantity } from './quantity.js';
import { appInstanceRequest } from './request.js';

/** `status.allocatedResourceStatuses.storage` values (core/v1 ClaimResourceStatus). */
export const ResizeStatus = {
  controllerInProgress: 'ControllerResizeInProgress',
  controllerInfeasible: 'ControllerResizeInfeasible',
  nodePending: 'NodeResizePending',
  nodeInProgress: 'NodeResizeInProgress',
  nodeInfeasible: 'NodeResizeInfeasible',
} as const;

/** Claim condition types of a resize (core/v1 PersistentVolumeClaimConditionType). */
const ResizeCondition = {
  resizing: 'Resizing',
  fsResizePending: 'FileSystemResizePending',
  controllerError: 'ControllerResizeError',
  nodeError: 'NodeResizeError',
} as const;

const RESIZE_CONDITIONS: ReadonlySet<string> = new Set(Object.values(ResizeCondition));

/** What kubelet shows for a volume waiting for its file system to grow (the text external-resizer uses). */
export const FS_RESIZE_PENDING_MESSAGE = 'Waiting for user to (re-)start a pod to finish file system resize of volume on node.';

export interface ResizeInput {
  claim: V1PersistentVolumeClaim;
  pv: V1PersistentVolume;
  /** The PV's class (undefined: deleted or never existed). */
  storageClass: V1StorageClass | undefined;
  className: string;
  templates: TemplateSet;
  defaults?: { fsType?: string };
}

export type ResizeDecision =
  /** Nothing for the controller to do (no growth asked, or kubelet's turn). */
  | { action: 'none' }
  /** The request went back to the claim's capacity: remove our in-progress/refused status and conditions. */
  | { action: 'clear' }
  /** The resize cannot be done; `message` names the reason and what is allowed. Nothing changes on the volume. */
  | { action: 'refuse'; reason: 'NotAllowed' | 'Shrink' | 'InvalidSize' | 'InvalidParameter'; message: string }
  /**
   * Grow the Datera volume to `targetGiB` (at least; a larger volume stays as it is). `qos` and
   * `qosBefore` are the class/template limits at the new and the current size: the policy changes
   * only when they differ (per-GiB limits) and never for a Datera-side template (`qos` undefined).
   */
  | { action: 'expand'; targetGiB: number; currentGiB: number; qos?: PerformancePolicy; qosBefore?: PerformancePolicy };

/** Bytes of a quantity, or undefined when absent or unparsable. */
function bytesOf(q: unknown): bigint | undefined {
  if (q === undefined || q === null) return undefined;
  return parseQuantity(String(q));
}

/** The PV's capacity in whole GiB (rounded up), 0 when it has none. */
export function pvCapacityGiB(pv: V1PersistentVolume): number {
  const b = bytesOf(pv.spec?.capacity?.storage);
  return b === undefined ? 0 : Number(bytesToGiBCeil(b));
}

/** Does a claim's state say a resize may need the controller? Cheap: the informer handler's filter. */
export function claimMayNeedResize(pvc: V1PersistentVolumeClaim): boolean {
  const st = pvc.status?.allocatedResourceStatuses?.['storage'];
  if (st === ResizeStatus.controllerInProgress || st === ResizeStatus.controllerInfeasible) return true;
  if (pvc.status?.phase !== 'Bound') return false;
  const req = bytesOf(pvc.spec?.resources?.requests?.['storage']);
  const cap = bytesOf(pvc.status?.capacity?.['storage']);
  return req !== undefined && cap !== undefined && req > cap;
}

export function decideResize(i: ResizeInput): ResizeDecision {
  const { claim, pv, className } = i;
  const status = claim.status?.allocatedResourceStatuses?.['storage'];
  const requestBytes = bytesOf(claim.spec?.resources?.requests?.['storage']);
  const capacityBytes = bytesOf(claim.status?.capacity?.['storage']);
  const pvBytes = bytesOf(pv.spec?.capacity?.storage);
  if (requestBytes === undefined || capacityBytes === undefined || pvBytes === undefined) return { action: 'none' };
  const ours = status === ResizeStatus.controllerInProgress || status === ResizeStatus.controllerInfeasible;

  if (requestBytes <= capacityBytes) {
    // Nothing to grow. A refusal or an attempt of ours that the user took back (request lowered to
    // the capacity again) is cleared, unless the PV was already grown: then kubelet must finish.
    return ours && pvBytes <= capacityBytes ? { action: 'clear' } : { action: 'none' };
  }
  // Our last step is done: NodeResizePending (or kubelet's NodeResizeInProgress) at the size asked is
  // written only after the storage and the PV were grown, so the PV need not be looked at (the cache
  // may not show our PV patch yet).
  const allocatedBytes = bytesOf(claim.status?.allocatedResources?.['storage']);
  if ((status === ResizeStatus.nodePending || status === ResizeStatus.nodeInProgress) && allocatedBytes !== undefined && allocatedBytes >= requestBytes) {
    return { action: 'none' };
  }
  // The PV is as large as asked: the controller's part is done unless the claim still says it is ours
  // (the last status patch was lost): then the controller re-marks it for the node.
  if (pvBytes >= requestBytes && !ours && status !== undefined) return { action: 'none' };

  const pvName = pv.metadata?.name ?? '';
  if (className === '') {
    // A class-less (legacy) PV: the claim's class annotations are editable after binding, so they
    // cannot decide what a grow may do; no class here says expansion is allowed.
    return { action: 'refuse', reason: 'NotAllowed', message: `volume ${pvName} has no StorageClass (a legacy class-less claim), so no class allows its expansion; copy the data to a claim of a class with allowVolumeExpansion: true` };
  }
  if (i.storageClass === undefined) {
    return { action: 'refuse', reason: 'NotAllowed', message: `StorageClass "${className}" of volume ${pvName} does not exist, so nothing says it allows expansion; re-create it with allowVolumeExpansion: true` };
  }
  if (i.storageClass.allowVolumeExpansion !== true) {
    return {
      action: 'refuse',
      reason: 'NotAllowed',
      message: `StorageClass "${className}" does not allow volume expansion (allowVolumeExpansion is ${i.storageClass.allowVolumeExpansion === false ? 'false' : 'not set'}); an admin may set allowVolumeExpansion: true on it`,
    };
  }

  const currentGiB = pvCapacityGiB(pv);
  const translate = (bytes: bigint) =>
    appInstanceRequest({
      pvName,
      className,
      parameters: i.storageClass?.parameters ?? {},
      claim: {
        namespace: claim.metadata?.namespace ?? '',
        name: claim.metadata?.name ?? '',
        uid: claim.metadata?.uid ?? '',
        annotations: claim.metadata?.annotations ?? {},
        requestBytes: bytes,
        accessModes: claim.spec?.accessModes ?? [],
      },
      templates: i.templates,
      ...(i.defaults ? { defaults: i.defaults } : {}),
    });
  const next = translate(requestBytes);
  if (!next.ok) {
    const sizeField = next.error.parameter === 'resources.requests.storage';
    return {
      action: 'refuse',
      reason: sizeField ? 'InvalidSize' : 'InvalidParameter',
      message: `cannot expand volume ${pvName} to ${String(claim.spec?.resources?.requests?.['storage'])}: ${next.error.message}`,
    };
  }
  const targetGiB = next.volume.sizeGiB;
  if (targetGiB < currentGiB) {
    return {
      action: 'refuse',
      reason: 'Shrink',
      message: `volume ${pvName} is already ${currentGiB}Gi and Datera volumes cannot shrink; the claim asks for ${String(claim.spec?.resources?.requests?.['storage'])} (${targetGiB}Gi): ask for ${currentGiB}Gi or more`,
    };
  }
  if (next.volume.dateraTemplate !== undefined) return { action: 'expand', targetGiB, currentGiB };
  const before = translate(BigInt(currentGiB) * GIB);
  return {
    action: 'expand',
    targetGiB,
    currentGiB,
    qos: next.volume.qos,
    ...(before.ok ? { qosBefore: before.volume.qos } : {}),
  };
}

/** Are two policies the same limits (absent = 0 = unlimited)? */
export function sameQos(a: PerformancePolicy | undefined, b: PerformancePolicy | undefined): boolean {
  const keys: (keyof PerformancePolicy)[] = ['total_iops_max', 'read_iops_max', 'write_iops_max', 'total_bandwidth_max', 'read_bandwidth_max', 'write_bandwidth_max'];
  return keys.every((k) => (a?.[k] ?? 0) === (b?.[k] ?? 0));
}

/**
 * The merge patch of `status` that moves a claim's resize to `state`. Conditions of a resize are
 * replaced by the one `state` implies; other conditions are kept. `resourceVersion` makes the
 * patch fail (409) on a claim changed meanwhile, as kubelet's own status patches do.
 */
export function resizeStatusPatch(
  claim: V1PersistentVolumeClaim,
  state:
    | { kind: 'inProgress'; sizeGiB: number }
    | { kind: 'nodePending'; sizeGiB: number }
    /** `sizeGiB`: the size the storage refused (kept in allocatedResources, as external-resizer does). */
    | { kind: 'infeasible'; message: string; sizeGiB?: number }
    | { kind: 'clear' },
  now: Date,
): object {
  const kept = (claim.status?.conditions ?? []).filter((c) => !RESIZE_CONDITIONS.has(c.type));
  const cond = (type: string, message?: string): V1PersistentVolumeClaimCondition => ({
    type,
    status: 'True',
    lastProbeTime: null as unknown as Date,
    lastTransitionTime: now,
    ...(message ? { message } : {}),
  });
  const status: Record<string, unknown> = {};
  switch (state.kind) {
    case 'inProgress':
      status['allocatedResources'] = { storage: `${state.sizeGiB}Gi` };
      status['allocatedResourceStatuses'] = { storage: ResizeStatus.controllerInProgress };
      status['conditions'] = [...kept, cond(ResizeCondition.resizing)];
      break;
    case 'nodePending':
      status['allocatedResources'] = { storage: `${state.sizeGiB}Gi` };
      status['allocatedResourceStatuses'] = { storage: ResizeStatus.nodePending };
      status['conditions'] = [...kept, cond(ResizeCondition.fsResizePending, FS_RESIZE_PENDING_MESSAGE)];
      break;
    case 'infeasible':
      if (state.sizeGiB !== undefined) status['allocatedResources'] = { storage: `${state.sizeGiB}Gi` };
      status['allocatedResourceStatuses'] = { storage: ResizeStatus.controllerInfeasible };
      status['conditions'] = [...kept, cond(ResizeCondition.controllerError, state.message)];
      break;
    case 'clear':
      status['allocatedResources'] = { storage: null };
      status['allocatedResourceStatuses'] = { storage: null };
      status['conditions'] = kept;
      break;
  }
  return { metadata: { resourceVersion: claim.metadata?.resourceVersion }, status };
}

/** Did the storage already refuse growing this claim's volume to `targetGiB` (ControllerResizeInfeasible at that size)? */
export function storageRefused(claim: V1PersistentVolumeClaim, targetGiB: number): boolean {
  return claim.status?.allocatedResourceStatuses?.['storage'] === ResizeStatus.controllerInfeasible && claim.status?.allocatedResources?.['storage'] === `${targetGiB}Gi`;
}

/** Does the claim already show `infeasible` with this message (so a refusal is not recorded twice)? */
export function alreadyRefused(claim: V1PersistentVolumeClaim, message: string): boolean {
  return (
    claim.status?.allocatedResourceStatuses?.['storage'] === ResizeStatus.controllerInfeasible &&
    (claim.status?.conditions ?? []).some((c) => c.type === ResizeCondition.controllerError && c.message === message)
  );
}
