// SPDX-License-Identifier: Apache-2.0
// Whose app instance is this? Before the driver adds this node to an ACL or logs in, the app
// instance's metadata (written by the provisioner at create time, see ownershipMetadata in
// lib/provision/volume.ts) must name the PV being mounted, and on `mount` the claim's
// namespace must be the pod's. Pure: the caller reads the metadata.
//
// Why the namespace check closes inline volumes: kubelet sets `kubernetes.io/pvOrVolumeName` to
// the PV name for a PV, and to the pod's volume name for an inline volume, so a pod author can
// copy a PV's options into an inline volume named like the PV and pass the `k8s-pv` check. The
// pod namespace is set by kubelet, not by the pod author; a pod can already use any claim of its
// own namespace, so an inline copy of a PV bound to a claim in the same namespace gains nothing,
// and a copy of another namespace's volume is refused.
import type { VolumeRef } from './options.js';
import { FlexError } from './reply.js';

/** Metadata keys the provisioner writes on every app instance it creates. */
const OWNER = {
  pv: 'k8s-pv',
  claimNamespace: 'k8s-claim-namespace',
  claimName: 'k8s-claim-name',
} as const;

export interface Owner {
  pv: string;
  /** Namespace of the claim the PV was provisioned for ("" when the metadata lacks it). */
  claimNamespace: string;
}

/**
 * Throws a FlexError naming the app instance and the reason unless `md` says it belongs to
 * `ref.pvName` and, when `podNamespace` is given (`mount`), to a claim in that namespace. In
 * attach mode the `attach` call-out carries no pod, so only the PV is checked there; the later
 * `mount` of every pod checks the namespace against what attach recorded.
 */
export function checkOwnership(md: Record<string, string>, ref: VolumeRef, podNamespace: string | undefined): Owner {
  const what = `app instance ${ref.appInstance}`;
  const pv = md[OWNER.pv];
  if (!pv) {
    throw new FlexError(
      `refusing to attach ${what}: it carries no ${OWNER.pv} ownership metadata, so it was not provisioned for PersistentVolume ${ref.pvName}`,
    );
  }
  if (pv !== ref.pvName) {
    throw new FlexError(`refusing to attach ${what}: its ${OWNER.pv} metadata names PersistentVolume ${pv}, not ${ref.pvName}`);
  }
  const claimNamespace = md[OWNER.claimNamespace] ?? '';
  if (podNamespace !== undefined) checkNamespace(what, claimNamespace, podNamespace);
  return { pv, claimNamespace };
}

/** The pod's namespace must be the claim's (as recorded from the metadata). */
export function checkNamespace(what: string, claimNamespace: string, podNamespace: string): void {
  if (!claimNamespace) {
    throw new FlexError(`refusing to mount ${what} for a pod in namespace ${podNamespace}: it carries no ${OWNER.claimNamespace} ownership metadata`);
  }
  if (claimNamespace !== podNamespace) {
    throw new FlexError(
      `refusing to mount ${what} for a pod in namespace ${podNamespace}: it belongs to a claim in namespace ${claimNamespace}`,
    );
  }
}
