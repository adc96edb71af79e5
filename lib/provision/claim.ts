// SPDX-License-Identifier: Apache-2.0
// Which claims are ours, and what to do with them. Pure: no I/O.
import type { V1PersistentVolumeClaim, V1StorageClass } from '@kubernetes/client-node';

/** Annotation keys, each with who sets it. */
export const Ann = {
  /** Set by kube-controller-manager's PV controller (1.23+) to the class's provisioner. */
  storageProvisioner: 'volume.kubernetes.io/storage-provisioner',
  /** Same, the older key; still set by the PV controller. */
  betaStorageProvisioner: 'volume.beta.kubernetes.io/storage-provisioner',
  /** Set by users (deprecated since 1.6 but honoured, and it wins over spec.storageClassName). */
  betaStorageClass: 'volume.beta.kubernetes.io/storage-class',
  /** Set by users of PetSet-era manifests (Kubernetes 1.3); inert in Kubernetes since 1.6. */
  alphaStorageClass: 'volume.alpha.kubernetes.io/storage-class',
  /** Set by the scheduler for WaitForFirstConsumer classes. */
  selectedNode: 'volume.kubernetes.io/selected-node',
  /** Set by us on every PV we create: the provisioner name. */
  provisionedBy: 'pv.kubernetes.io/provisioned-by',
  /** Set by us on PVs: the Datera app instance backing the PV. */
  appInstance: 'datera.io/app-instance',
  /** Set by us on PVs: the AppTemplate used (empty when none). */
  template: 'datera.io/template',
  /**
   * Set by us on PVs: the performance policy the Datera volume has, as JSON of its non-zero limits
   * in Datera spelling (`{}`: unlimited). Written with the PV and patched after each QoS update
   * (qos-updates.ts); absent where the create did not decide it (clones, Datera-side templates)
   * or on PVs older than the key.
   */
  performancePolicy: 'datera.io/performance-policy',
} as const;

/** Finalizer we put on PVs with reclaim policy Delete; removed after the Datera volume is gone. */
export const PV_FINALIZER = 'external-provisioner.volume.kubernetes.io/finalizer';

/** Access modes a datera/iscsi flexVolume can serve. */
export const SUPPORTED_ACCESS_MODES = ['ReadWriteOnce', 'ReadOnlyMany'] as const;

/** What is wrong with a claim's access modes: it names none, or names some a flexVolume cannot serve. */
export type AccessModeProblem = { kind: 'none' } | { kind: 'unsupported'; modes: string[] };

/**
 * The access-mode rule, for both the claim decision and the request translation: at least one
 * mode, and only SUPPORTED_ACCESS_MODES. Returns undefined when the claim can be served, else the
 * problem with every unsupported mode in the claim's order.
 */
export function accessModeProblem(modes: readonly string[]): AccessModeProblem | undefined {
  if (modes.length === 0) return { kind: 'none' };
  const bad = modes.filter((m) => !(SUPPORTED_ACCESS_MODES as readonly string[]).includes(m));
  return bad.length > 0 ? { kind: 'unsupported', modes: bad } : undefined;
}

export interface ClaimContext {
  /** Our provisioner name and the extra names we serve. */
  names: ReadonlySet<string>;
  /** Alpha annotation value (or `*`) -> one of our classes. */
  legacyAlphaClasses: Readonly<Record<string, string>>;
  getClass(name: string): V1StorageClass | undefined;
}

export type ClaimDecision =
  /** Not ours, or nothing to do (bound, not annotated): no event. */
  | { action: 'ignore'; reason: string }
  /** Ours, but not yet (waiting for the scheduler or the class): checked again on the next change. */
  | { action: 'wait'; reason: string }
  /** Ours, but we cannot serve it as asked: a ProvisioningFailed event, retried slowly. */
  | { action: 'refuse'; className: string; message: string }
  /**
   * Provision with `className`'s parameters. `pvClassName` is what the PV's storageClassName must be
   * for the binder to match it: the class, or "" for a class-less legacy claim.
   */
  | { action: 'provision'; className: string; pvClassName: string; storageClass: V1StorageClass; legacy: boolean };

/** The claim's class: the beta annotation wins over spec.storageClassName (as in the PV controller). */
export function claimClassName(pvc: V1PersistentVolumeClaim): string | undefined {
  const ann = pvc.metadata?.annotations?.[Ann.betaStorageClass];
  if (ann !== undefined) return ann;
  return pvc.spec?.storageClassName ?? undefined;
}

/** The provisioner the PV controller handed the claim to, if any. */
export function claimProvisioner(pvc: V1PersistentVolumeClaim): string | undefined {
  const a = pvc.metadata?.annotations;
  return a?.[Ann.storageProvisioner] ?? a?.[Ann.betaStorageProvisioner];
}

/** The class a legacy alpha-annotated, class-less claim maps to, when configured. */
export function legacyClassFor(pvc: V1PersistentVolumeClaim, map: Readonly<Record<string, string>>): string | undefined {
  const alpha = pvc.metadata?.annotations?.[Ann.alphaStorageClass];
  if (alpha === undefined) return undefined;
  const cls = claimClassName(pvc);
  if (cls !== undefined && cls !== '') return undefined; // a real class wins, as in Kubernetes 1.4
  return map[alpha] ?? map['*'];
}

/** Cheap filter for informer events: could this claim need work from us? */
export function claimMayNeedUs(pvc: V1PersistentVolumeClaim, ctx: Pick<ClaimContext, 'names' | 'legacyAlphaClasses'>): boolean {
  if (pvc.spec?.volumeName) return false;
  const p = claimProvisioner(pvc);
  if (p !== undefined) return ctx.names.has(p);
  return legacyClassFor(pvc, ctx.legacyAlphaClasses) !== undefined;
}

/**
 * Decides what to do with a claim. The policy for what flex cannot serve:
 * - `spec.selector`: refused. A dynamically provisioned volume carries no labels chosen by the
 *   claim, so a selector could never match it; pre-create a PV for selector-based binding.
 * - `volumeMode: Block`: refused. FlexVolume mounts filesystems only.
 * - access modes other than ReadWriteOnce/ReadOnlyMany: refused (flex reports only these).
 * - `dataSource`/`dataSourceRef`: a PersistentVolumeClaim in the same namespace is cloned by the
 *   controller (it checks the source is ours); any other kind is refused.
 */
export function decideClaim(pvc: V1PersistentVolumeClaim, ctx: ClaimContext): ClaimDecision {
  if (pvc.spec?.volumeName) return { action: 'ignore', reason: 'claim is already bound to a volume' };
  if (pvc.metadata?.deletionTimestamp) return { action: 'ignore', reason: 'claim is being deleted' };

  let className: string;
  let pvClassName: string;
  let legacy = false;
  const provisioner = claimProvisioner(pvc);
  if (provisioner !== undefined) {
    if (!ctx.names.has(provisioner)) return { action: 'ignore', reason: `claim belongs to provisioner ${provisioner}` };
    const cls = claimClassName(pvc);
    if (!cls) return { action: 'ignore', reason: 'claim has no storage class' };
    className = cls;
    pvClassName = cls;
  } else {
    const mapped = legacyClassFor(pvc, ctx.legacyAlphaClasses);
    if (mapped === undefined) return { action: 'ignore', reason: 'claim is not annotated for any provisioner' };
    className = mapped;
    pvClassName = '';
    legacy = true;
  }

  const sc = ctx.getClass(className);
  if (!sc) return { action: 'wait', reason: `storage class ${className} does not exist (yet)` };
  if (!ctx.names.has(sc.provisioner)) {
    if (legacy)
      return { action: 'refuse', className, message: `legacy class mapping points at storage class "${className}", whose provisioner "${sc.provisioner}" is not this provisioner` };
    return { action: 'ignore', reason: `storage class ${className} belongs to ${sc.provisioner}` };
  }
  if (sc.volumeBindingMode === 'WaitForFirstConsumer' && !pvc.metadata?.annotations?.[Ann.selectedNode])
    return { action: 'wait', reason: 'waiting for the scheduler to select a node (WaitForFirstConsumer)' };

  if (pvc.spec?.selector)
    return {
      action: 'refuse',
      className,
      message: 'claim selector (spec.selector) is not supported for dynamically provisioned Datera volumes; remove the selector, or pre-create a PV with matching labels',
    };
  if (pvc.spec?.volumeMode === 'Block')
    return { action: 'refuse', className, message: 'volumeMode Block is not supported: the datera/iscsi flexVolume driver provides filesystems only; use volumeMode Filesystem' };
  const modes = accessModeProblem(pvc.spec?.accessModes ?? []);
  if (modes?.kind === 'none') return { action: 'refuse', className, message: `claim has no access modes; allowed: ${SUPPORTED_ACCESS_MODES.join(', ')}` };
  if (modes?.kind === 'unsupported')
    return { action: 'refuse', className, message: `access mode ${modes.modes.join(', ')} is not supported by datera/iscsi volumes; allowed: ${SUPPORTED_ACCESS_MODES.join(', ')}` };
  const src = pvc.spec?.dataSourceRef ?? pvc.spec?.dataSource;
  if (src && !(src.kind === 'PersistentVolumeClaim' && (src.apiGroup ?? '') === ''))
    return {
      action: 'refuse',
      className,
      message: `data source ${src.apiGroup ? src.apiGroup + '/' : ''}${src.kind} "${src.name}" is not supported; only cloning from a PersistentVolumeClaim provisioned by this provisioner is`,
    };
  return { action: 'provision', className, pvClassName, storageClass: sc, legacy };
}

/** The deterministic PV (and Datera app instance) name for a claim. */
export function pvNameFor(pvc: V1PersistentVolumeClaim): string {
  return `pvc-${pvc.metadata!.uid!}`;
}

/** Requested bytes, or undefined when the claim asks for no size. */
export function requestedStorage(pvc: V1PersistentVolumeClaim): string | undefined {
  const r = pvc.spec?.resources?.requests?.storage;
  return r === undefined ? undefined : String(r);
}
