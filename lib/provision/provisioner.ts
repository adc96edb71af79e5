// SPDX-License-Identifier: Apache-2.0
// The seam between the generic claim/volume loop (controller.ts) and one storage back end
// (datera-provisioner.ts), in the manner of sig-storage-lib-external-provisioner's `Provisioner`.
// The controller decides which claims and PVs need work, makes every Kubernetes write, records
// events and metrics and retries; a VolumeProvisioner makes and removes the storage behind a PV,
// decides whether that storage is provably ours, and builds the PV the controller saves.
import type { MaybeFinal } from '../errors.js';
import type { V1PersistentVolume, V1PersistentVolumeClaim, V1StorageClass } from '@kubernetes/client-node';
import type { Logger } from '../observability/logger.js';
import type { PerformancePolicy } from '../datera/types.js';

/**
 * A failure the user must fix (bad parameter, refused claim, foreign volume): the controller records
 * it and retries slowly (or when classes or templates change), not with backoff.
 */
export class FinalError extends Error implements MaybeFinal {
  constructor(message: string) {
    super(message);
    this.name = 'FinalError';
  }
  get final(): boolean {
    return true;
  }
}

export interface ProvisionRequest {
  claim: V1PersistentVolumeClaim;
  /** `pvc-<claim uid>`: the PV's name, and the storage's, so that every step can be repeated without a second volume. */
  pvName: string;
  /** The class the claim asked for. */
  className: string;
  /** The PV's storageClassName ("" for a class-less legacy claim). */
  pvClassName: string;
  storageClass: V1StorageClass;
  /** Logs about this claim. */
  logger: Logger;
  /**
   * The request is valid and the storage is about to be called: the controller's cue for the
   * Provisioning event. Not called for a request refused before any call.
   */
  onStart(): void;
  /**
   * The storage was reached: from here on a volume may exist even if `provision` fails. `undo`
   * removes it, and only if it provably was made for this claim by this provisioner and cluster;
   * it throws when it cannot tell (retryable). The controller calls it only after confirming that
   * the claim is gone and no PV was saved.
   */
  onReached(undo: () => Promise<void>): void;
}

export interface ProvisionResult {
  /** The PV to create, pre-bound to the claim. */
  pv: V1PersistentVolume;
  /** For the log line of a provisioned claim. */
  sizeGiB: number;
  template: string;
}

/** A grow of the storage behind a bound PV (resize.ts decides it). */
export interface ExpandRequest {
  /** Grow to at least this size; larger storage is left as it is (never shrunk). */
  targetGiB: number;
  /** The class/template limits at the new size and at the current size; the policy changes only when they differ. Absent: QoS is not ours to set. */
  qos?: PerformancePolicy;
  qosBefore?: PerformancePolicy;
}

export interface ExpandResult {
  /** The storage's size now (>= targetGiB). */
  sizeGiB: number;
  /** Whether this call grew it (false: it was large enough already, e.g. a repeated attempt). */
  grown: boolean;
  /** The performance policy set by this call, when it changed one. */
  qosSet?: PerformancePolicy;
}

/** `refused`: the storage is not provably this PV's; nothing was deleted and `reason` says why. */
export type DeleteResult = { kind: 'deleted' } | { kind: 'refused'; reason: string };

export interface VolumeProvisioner {
  /** How events name the storage behind a PV, e.g. "Datera app instance". */
  readonly storageKind: string;
  /** The name of the storage behind one of our PVs. */
  storageName(pv: V1PersistentVolume): string;
  /** Is this PV one this provisioner made (provisioned-by one of its names, with its volume source)? */
  owns(pv: V1PersistentVolume): boolean;
  /**
   * Makes (or adopts, from an earlier attempt for the same claim) the storage for a claim and
   * returns the PV to save. Idempotent by `pvName`. Throws `FinalError` (or another error the
   * controller treats as final) for what the user must fix; any other error is retried.
   */
  provision(req: ProvisionRequest): Promise<ProvisionResult>;
  /** Deletes the storage behind a released PV, only if provably this PV's. Storage already gone counts as deleted. */
  delete(pv: V1PersistentVolume): Promise<DeleteResult>;
  /**
   * Grows the storage behind a bound PV of ours, idempotently: storage already that large is not
   * touched again. Refuses (FinalError) storage that is not provably this PV's. Any other failure is
   * retried by the controller; the storage's own size says how far an earlier attempt got.
   */
  expand(pv: V1PersistentVolume, req: ExpandRequest): Promise<ExpandResult>;
  /** Records on the storage that it is retained (a Delete PV edited to Retain), if it is provably this PV's. */
  markRetained(pv: V1PersistentVolume): Promise<void>;
  /** The performance limits the storage behind one of our PVs has now (non-zero keys only; {} = unlimited). */
  readPerformancePolicy(pv: V1PersistentVolume): Promise<PerformancePolicy>;
  /**
   * Makes the storage's performance limits exactly `policy` (absent keys unlimited), through the
   * connection the PV records. Changes nothing else of the volume. Idempotent; throws when the
   * storage refuses or cannot be reached.
   */
  setPerformancePolicy(pv: V1PersistentVolume, policy: PerformancePolicy): Promise<void>;
}
