// SPDX-License-Identifier: Apache-2.0
// The resizer: grows the storage behind our bound PVs when their claims ask for more, in the
// steps external-resizer takes for CSI volumes (kube-controller-manager does not expand flexVolume
// PVs). For a `resize/<pv name>` key: decide (resize.ts, pure) -> claim status
// ControllerResizeInProgress + Resizing event -> the storage (VolumeProvisioner.expand: ownership,
// grow-only, per-GiB QoS) -> PV capacity -> claim status NodeResizePending + FileSystemResizePending,
// after which kubelet grows the file system (the driver's `expandfs`) and sets the claim's capacity.
// A refusal (class without allowVolumeExpansion, above the template's maxSize, a shrink, a Datera
// refusal, storage not provably ours) is one VolumeResizeFailed event and ControllerResizeInfeasible
// on the claim; nothing changes on the volume. Every step is repeatable: the storage's size and
// the PV's capacity say how far an earlier attempt (before a crash or a lost response) got.
import type { V1PersistentVolume, V1PersistentVolumeClaim, V1StorageClass } from '@kubernetes/client-node';
import type { EventRecorder } from '../kube/events.js';
import { isKubeConflict } from '../kube/errors.js';
import type { InformerLike } from '../kube/informer.js';
import { isFinal } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { TemplateSet } from './app-templates.js';
import type { VolumeProvisioner } from './provisioner.js';
import { policyRecordOp } from './volume.js';
import type { Outcome } from './queue.js';
import { describeFailure, subjectOf } from './report.js';
import { ResizeStatus, alreadyRefused, storageRefused, decideResize, pvCapacityGiB, resizeStatusPatch, type ResizeDecision } from './resize.js';

interface ResizerDeps {
  core: {
    patchPersistentVolume(a: { name: string; body: object }): Promise<unknown>;
    patchNamespacedPersistentVolumeClaimStatus?(a: { name: string; namespace: string; body: object }): Promise<V1PersistentVolumeClaim>;
  };
  claims: Pick<InformerLike<V1PersistentVolumeClaim>, 'get'>;
  volumes: Pick<InformerLike<V1PersistentVolume>, 'get'>;
  classes: Pick<InformerLike<V1StorageClass>, 'get'>;
  provisioner: VolumeProvisioner;
  templates: () => TemplateSet;
  defaultFsType: string;
  /** The resizer's name in events, as external-resizer names itself ("resizer ..."). */
  name: string;
  recorder: Pick<EventRecorder, 'record'>;
  metrics: Metrics;
  logger: Logger;
  now?: () => Date;
}

export class Resizer {
  readonly #d: ResizerDeps;
  /** PVs whose resize was refused: looked at again when classes or templates change. */
  readonly #refused = new Set<string>();
  /**
   * PVs to try again even though the storage refused the same size before (a class or template
   * changed). Otherwise a refusal by the storage is not repeated on every update of the claim: only
   * a new size, a class or template change, or an admin's edit of the claim status brings it back.
   */
  readonly #again = new Set<string>();
  /**
   * PV name -> resourceVersions of its claim that this process's own status patches replaced. While
   * the cache still shows one of them, a pass would act on state older than our own writes (repeat
   * the storage reads, a stale PV patch, a 409): it waits for the watch to deliver the newer claim,
   * whose update event brings the key back.
   */
  readonly #superseded = new Map<string, Set<string>>();

  constructor(d: ResizerDeps) {
    this.#d = d;
  }

  /** PV names to look at again after a class or template change. */
  refused(): string[] {
    for (const pv of this.#refused) this.#again.add(pv);
    return [...this.#refused];
  }

  forget(pvName: string): void {
    this.#refused.delete(pvName);
    this.#again.delete(pvName);
    this.#superseded.delete(pvName);
  }

  async sync(pvName: string): Promise<Outcome> {
    const pv = this.#d.volumes.get(pvName);
    if (!pv || !this.#d.provisioner.owns(pv)) return this.#done(pvName);
    const ref = pv.spec?.claimRef;
    const claim = ref?.name && ref.namespace ? this.#d.claims.get(ref.name, ref.namespace) : undefined;
    if (!claim || claim.metadata?.uid !== ref?.uid || claim.spec?.volumeName !== pvName) return this.#done(pvName);
    const stale = this.#superseded.get(pvName);
    if (stale) {
      if (stale.has(claim.metadata?.resourceVersion ?? '')) return { kind: 'done' };
      this.#superseded.delete(pvName); // the cache has caught up with our writes
    }
    // The PV's own class: a claim's class annotations can be edited after binding.
    const className = pv.spec?.storageClassName ?? '';
    const decision = decideResize({
      claim,
      pv,
      className,
      storageClass: className ? this.#d.classes.get(className) : undefined,
      templates: this.#d.templates(),
      defaults: { fsType: this.#d.defaultFsType },
    });
    const log = this.#d.logger.child({ namespace: claim.metadata?.namespace, claim: claim.metadata?.name, pv: pvName });
    try {
      switch (decision.action) {
        case 'none':
          return this.#done(pvName);
        case 'clear':
          await this.#patchStatus(claim, { kind: 'clear' });
          log.info('resize taken back: the claim asks for its current capacity again');
          return this.#done(pvName);
        case 'refuse':
          return await this.#refuse(claim, className, decision.message, log, pvName);
        case 'expand':
          return await this.#expand(pv, claim, className, decision, log);
      }
    } catch (err) {
      // A Kubernetes write failed (409: the claim changed meanwhile): decide again on fresh state.
      if (!isKubeConflict(err)) log.warn('resize step failed; will retry', { err: describeFailure(err) });
      return { kind: 'retry', error: err };
    }
  }

  #done(pvName: string): Outcome {
    this.#refused.delete(pvName);
    this.#again.delete(pvName);
    return { kind: 'done' };
  }

  async #refuse(claim: V1PersistentVolumeClaim, className: string, message: string, log: Logger, pvName: string, sizeGiB?: number): Promise<Outcome> {
    this.#refused.add(pvName);
    this.#again.delete(pvName);
    if (alreadyRefused(claim, message)) return { kind: 'done' };
    this.#d.metrics.resizeFailed.inc({ class: className });
    this.#d.recorder.record(subjectOf(claim, 'PersistentVolumeClaim'), 'Warning', 'VolumeResizeFailed', message);
    log.warn('resize refused', { reason: message });
    await this.#patchStatus(claim, { kind: 'infeasible', message, ...(sizeGiB !== undefined ? { sizeGiB } : {}) });
    return { kind: 'done' };
  }

  async #expand(pv: V1PersistentVolume, claim: V1PersistentVolumeClaim, className: string, d: Extract<ResizeDecision, { action: 'expand' }>, log: Logger): Promise<Outcome> {
    const pvName = pv.metadata!.name!;
    if (storageRefused(claim, d.targetGiB) && !this.#again.has(pvName)) {
      this.#refused.add(pvName);
      return { kind: 'done' };
    }
    this.#again.delete(pvName);
    const started = performance.now();
    let current = claim;
    const st = claim.status?.allocatedResourceStatuses?.['storage'];
    if (st !== ResizeStatus.controllerInProgress || claim.status?.allocatedResources?.['storage'] !== `${d.targetGiB}Gi`) {
      current = await this.#patchStatus(claim, { kind: 'inProgress', sizeGiB: d.targetGiB });
      this.#d.recorder.record(subjectOf(claim, 'PersistentVolumeClaim'), 'Normal', 'Resizing', `External resizer is resizing volume ${pvName}`);
    }
    let result;
    try {
      result = await this.#d.provisioner.expand(pv, { targetGiB: d.targetGiB, ...(d.qos ? { qos: d.qos } : {}), ...(d.qosBefore ? { qosBefore: d.qosBefore } : {}) });
    } catch (err) {
      const msg = `resize volume "${pvName}" by resizer "${this.#d.name}" failed: ${describeFailure(err)}`;
      if (isFinal(err)) return this.#refuse(current, className, msg, log, pvName, d.targetGiB);
      this.#d.metrics.resizeFailed.inc({ class: className });
      this.#d.recorder.record(subjectOf(claim, 'PersistentVolumeClaim'), 'Warning', 'VolumeResizeFailed', msg);
      log.warn('resize failed; will retry', { err: describeFailure(err) });
      return { kind: 'retry', error: err };
    }
    this.#refused.delete(pvName);
    // One JSON patch with a uid test (never a PV re-created under the same name): the capacity, and
    // the performance policy the volume now has (qos-updates.ts reads it instead of asking Datera).
    const ops: object[] = [{ op: 'test', path: '/metadata/uid', value: pv.metadata!.uid }];
    if (pvCapacityGiB(pv) < result.sizeGiB) ops.push({ op: 'replace', path: '/spec/capacity/storage', value: `${result.sizeGiB}Gi` });
    if (result.qosSet) ops.push(policyRecordOp(pv, result.qosSet));
    if (ops.length > 1) await this.#d.core.patchPersistentVolume({ name: pvName, body: ops });
    await this.#patchStatus(current, { kind: 'nodePending', sizeGiB: result.sizeGiB });
    const qos = result.qosSet ? `; performance policy now ${JSON.stringify(result.qosSet)}` : '';
    this.#d.recorder.record(
      subjectOf(claim, 'PersistentVolumeClaim'),
      'Normal',
      'FileSystemResizeRequired',
      `Datera volume of ${pvName} is ${result.sizeGiB}Gi${qos}; kubelet grows the file system on the node that mounts it`,
    );
    this.#d.metrics.resizeTotal.inc({ class: className });
    this.#d.metrics.resizeDuration.observe({ class: className }, (performance.now() - started) / 1000);
    log.info('volume resized; file system resize pending on the node', { fromGiB: d.currentGiB, toGiB: result.sizeGiB, grown: result.grown, qos: result.qosSet });
    return { kind: 'done' };
  }

  async #patchStatus(claim: V1PersistentVolumeClaim, state: Parameters<typeof resizeStatusPatch>[1]): Promise<V1PersistentVolumeClaim> {
    const core = this.#d.core;
    if (!core.patchNamespacedPersistentVolumeClaimStatus) throw new Error('this Kubernetes client cannot patch claim status (persistentvolumeclaims/status)');
    const body = resizeStatusPatch(claim, state, (this.#d.now ?? (() => new Date()))());
    const updated = await core.patchNamespacedPersistentVolumeClaimStatus({ name: claim.metadata!.name!, namespace: claim.metadata!.namespace!, body });
    const pvName = claim.spec?.volumeName;
    const rv = claim.metadata?.resourceVersion;
    if (pvName && rv && updated?.metadata?.resourceVersion && updated.metadata.resourceVersion !== rv) {
      const set = this.#superseded.get(pvName) ?? new Set<string>();
      set.add(rv);
      this.#superseded.set(pvName, set);
    }
    return updated ?? claim;
  }
}
