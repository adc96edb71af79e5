// SPDX-License-Identifier: Apache-2.0
// The PV half of the provisioning loop: a Released or deleted PV of ours, by reclaim policy.
// Delete: the storage goes first (through the VolumeProvisioner, which deletes only what is
// provably this PV's), then our finalizer, then the PV itself with a uid precondition. Retain: the
// storage is marked retained and the finalizer dropped; nothing is deleted. A refused delete keeps
// the storage, the PV and its finalizer, with a VolumeFailedDelete event, and is checked again slowly.
// Every step can be repeated: the controller runs this for a `volume/<pv name>` key until it is done.
import type { V1PersistentVolume } from '@kubernetes/client-node';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import type { EventRecorder } from '../kube/events.js';
import { isKubeConflict, isKubeNotFound } from '../kube/errors.js';
import type { InformerLike } from '../kube/informer.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { PV_FINALIZER } from './claim.js';
import type { ControllerDeps } from './controller.js';
import type { VolumeProvisioner } from './provisioner.js';
import type { Outcome } from './queue.js';
import { describeFailure, subjectOf } from './report.js';

interface ReclaimDeps {
  core: Pick<ControllerDeps['core'], 'deletePersistentVolume' | 'patchPersistentVolume'>;
  volumes: Pick<InformerLike<V1PersistentVolume>, 'get'>;
  provisioner: VolumeProvisioner;
  recorder: Pick<EventRecorder, 'record'>;
  metrics: Metrics;
  logger: Logger;
  /** When a refused delete is checked again. */
  finalErrorRetryMs: number;
}

export class Reclaimer {
  readonly #d: ReclaimDeps;
  /** PVs whose app instance this process deleted: a re-run while the cache catches up skips Datera. */
  readonly #reclaimed = new Set<string>();
  /**
   * PV name -> uid of the PV this process sent a successful DELETE for. The finalizer patch just
   * before it comes back as an update that re-runs the PV's key while the cache still shows the
   * PV without a deletion timestamp; that re-run must not send the DELETE again. Cleared by the
   * PV's delete event (`forget`). In memory only: after a restart the listed PV carries its deletion
   * timestamp (or is gone), which stops a second DELETE the same way.
   */
  readonly #pvDeleteSent = new Map<string, string>();

  constructor(d: ReclaimDeps) {
    this.#d = d;
  }

  /** The PV is gone (its delete event): what this process did to it no longer matters. */
  forget(name: string): void {
    this.#reclaimed.delete(name);
    this.#pvDeleteSent.delete(name);
  }

  /** Brings the cached PV `name` one step on; `done` when nothing is left to do (or it is not ours). */
  async sync(name: string): Promise<Outcome> {
    const pv = this.#d.volumes.get(name);
    if (!pv || !this.#d.provisioner.owns(pv)) return { kind: 'done' };
    const className = pv.spec?.storageClassName ?? '';
    const policy = pv.spec?.persistentVolumeReclaimPolicy ?? 'Delete';
    const hasFinalizer = pv.metadata?.finalizers?.includes(PV_FINALIZER) ?? false;
    const deleting = !!pv.metadata?.deletionTimestamp;
    const released = pv.status?.phase === 'Released';
    const log = this.#d.logger.child({ pv: name });

    if (policy !== 'Delete') {
      // Retain: the Datera volume and the PV stay. Our finalizer only guards Delete; drop it if
      // present, once the volume is marked retained (a Delete PV edited to Retain: the orphan sweep
      // must not remove the volume after an admin deletes the PV).
      if (hasFinalizer && (released || deleting)) {
        try {
          await this.#d.provisioner.markRetained(pv);
        } catch (err) {
          log.warn('marking a retained volume failed; will retry', { err: describeFailure(err) });
          return { kind: 'retry', error: err };
        }
        return this.#removeFinalizer(pv, log);
      }
      return { kind: 'done' };
    }
    if (!released) return { kind: 'done' };
    if (deleting && !hasFinalizer) return { kind: 'done' };

    const started = performance.now();
    const ai = this.#d.provisioner.storageName(pv);
    const again = this.#reclaimed.has(name);
    try {
      if (!again) {
        // The provisioner deletes only what is provably this PV's; a refusal keeps everything.
        const r = await this.#d.provisioner.delete(pv);
        if (r.kind === 'refused') return this.#refuseForeignDelete(pv, ai, r.reason, log);
        this.#reclaimed.add(name);
      }
    } catch (err) {
      const msg = describeFailure(err);
      this.#d.metrics.deleteFailed.inc({ class: className });
      this.#d.recorder.record(subjectOf(pv, 'PersistentVolume'), 'Warning', 'VolumeFailedDelete', `failed to delete ${this.#d.provisioner.storageKind} ${ai}: ${msg}`);
      log.warn('delete failed; will retry', { appInstance: ai, err: msg });
      return { kind: 'retry', error: err };
    }
    // Finalizer first, while the PV is not being deleted: nothing else edits its finalizers then
    // (pv-protection acts only on deletion), so the guarded patch does not race and need a retry.
    // If the PV delete below fails, the next sync finds the app instance gone and deletes the PV.
    const out = await this.#removeFinalizer(pv, log);
    if (out.kind !== 'done') return out;
    try {
      const uid = pv.metadata?.uid;
      if (!deleting && !(uid && this.#pvDeleteSent.get(name) === uid)) {
        // Preconditioned on the uid: a stale cache never deletes a newer PV of the same name
        // (409: the PV we saw is gone, which is what the delete wanted).
        await this.#d.core
          .deletePersistentVolume({ name, ...(uid ? { body: { preconditions: { uid } } } : {}) })
          .catch((e: unknown) => (isKubeNotFound(e) || (uid && isKubeConflict(e)) ? undefined : Promise.reject(e)));
        if (uid) this.#pvDeleteSent.set(name, uid);
      }
    } catch (err) {
      log.warn('deleting the PV failed; will retry', { err: describeFailure(err) });
      return { kind: 'retry', error: err };
    }
    if (!again) {
      this.#d.metrics.deleteTotal.inc({ class: className });
      this.#d.metrics.deleteDuration.observe({ class: className }, (performance.now() - started) / 1000);
      log.info('deleted volume', { appInstance: ai });
    }
    return out;
  }

  /**
   * The PV's app instance is not provably ours: it is NOT deleted, and neither is the PV. The PV
   * keeps our finalizer (so it stays visible, Released or Terminating, with this event) and is
   * checked again slowly, in case the metadata is corrected. Dropping the finalizer instead would
   * delete the only Kubernetes record of the mismatch; an admin decides (see the troubleshooting notes).
   */
  #refuseForeignDelete(pv: V1PersistentVolume, ai: string, reason: string, log: Logger): Outcome {
    const className = pv.spec?.storageClassName ?? '';
    this.#d.metrics.deleteFailed.inc({ class: className });
    this.#d.recorder.record(
      subjectOf(pv, 'PersistentVolume'),
      'Warning',
      'VolumeFailedDelete',
      `refusing to delete ${this.#d.provisioner.storageKind} ${ai}: ${reason}; this PersistentVolume keeps its finalizer until an administrator resolves it`,
    );
    log.warn('refusing to delete an app instance that is not ours', { appInstance: ai, reason });
    return { kind: 'requeueAfter', ms: this.#d.finalErrorRetryMs };
  }

  /** Removes our finalizer with a JSON patch guarded by a test, so a concurrent change is not overwritten. */
  async #removeFinalizer(pv: V1PersistentVolume, log: Logger): Promise<Outcome> {
    const finalizers = pv.metadata?.finalizers ?? [];
    const i = finalizers.indexOf(PV_FINALIZER);
    if (i < 0) return { kind: 'done' };
    try {
      await this.#d.core.patchPersistentVolume(
        {
          name: pv.metadata!.name!,
          body: [
            { op: 'test', path: `/metadata/finalizers/${i}`, value: PV_FINALIZER },
            { op: 'remove', path: `/metadata/finalizers/${i}` },
          ],
        },
        setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
      );
      return { kind: 'done' };
    } catch (err) {
      if (isKubeNotFound(err)) return { kind: 'done' };
      // 422 (test failed) or 409: the cache was stale; the next PV event brings the fresh object.
      log.debug('finalizer patch did not apply; retrying', { err: describeFailure(err), conflict: isKubeConflict(err) });
      return { kind: 'retry', error: err };
    }
  }
}
