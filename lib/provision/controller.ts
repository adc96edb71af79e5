// SPDX-License-Identifier: Apache-2.0
// The provisioning controller: claims in, Datera volumes and flexVolume PVs out; reclaim on release.
//
// Data flow (one way): informers (PVC, PV, StorageClass, template ConfigMap) -> caches -> one work
// queue keyed `claim/<uid>`, `volume/<pv name>` or `resize/<pv name>` -> decide (pure: claim.ts;
// the AppTemplates of app-templates.ts) -> act (the storage through the VolumeProvisioner seam of
// provisioner.ts, here datera-provisioner.ts, then one Kubernetes write) -> event + metric. This
// module is the generic loop: the informer handlers, which claims and PVs need work, the PV create,
// the vanished-claim clean-up, events, metrics and retries; reclaim.ts is its PV half (storage
// delete, finalizer, PV DELETE) and resizer.ts its volume expansion (bound claims asking for more
// than their capacity). The Datera specifics (request, clone, adoption, ownership before a delete)
// sit behind the seam.
//
// Correctness rests on the deterministic name `pvc-<claim uid>` for both the PV and the Datera app
// instance: every step can be repeated after a crash, a lost response or a failover without
// creating a second volume. Kubernetes API writes per provisioned volume: the PV create and one
// ProvisioningSucceeded event (a Provisioning event only for slow or retried attempts). No reads
// outside the watches, except credential Secrets named by a class (cached).
import type {
  V1ConfigMap,
  V1DeleteOptions,
  V1PersistentVolume,
  V1PersistentVolumeClaim,
  V1StorageClass,
  setHeaderOptions,
} from '@kubernetes/client-node';
import { DateraError } from '../datera/errors.js';
import type { InformerLike } from '../kube/informer.js';
import type { EventRecorder } from '../kube/events.js';
import { isAlreadyExists, isKubeNotFound, statusOf } from '../kube/errors.js';
import { isFinal } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { sourceLabel, type Metrics } from '../observability/metrics.js';
import { claimMayNeedUs, decideClaim, type ClaimContext } from './claim.js';
import type { DateraConnections } from './credentials.js';
import { DateraProvisioner, deleteAppInstance } from './datera-provisioner.js';
import { WorkQueue, type Outcome } from './queue.js';
import { parseTemplates, type TemplateSet } from './app-templates.js';
import { OrphanSweep, type OrphanSweepOptions } from './orphans.js';
import { QOS_KEY, QosUpdater } from './qos-updates.js';
import { FinalError, type VolumeProvisioner } from './provisioner.js';
import { Reclaimer } from './reclaim.js';
import { claimMayNeedResize } from './resize.js';
import { Resizer } from './resizer.js';
import { describeFailure, subjectOf } from './report.js';
import { MD } from './volume.js';

export interface ControllerOptions {
  provisionerName: string;
  extraProvisionerNames: string[];
  legacyAlphaClasses: Record<string, string>;
  namespace: string;
  templatesConfigMap: string;
  templatesKey: string;
  defaultFsType: string;
  workers: number;
  retryInitialMs: number;
  retryMaxMs: number;
  finalErrorRetryMs: number;
  provisioningEventDelayMs: number;
  /**
   * Identity of this Kubernetes cluster, recorded on every app instance created and required to
   * match before a delete (`k8s-cluster-id`). Empty: not recorded, and volumes that carry a cluster
   * id are never deleted or adopted (nothing to match them against); the orphan sweep stays off.
   */
  clusterId?: string;
  /** The orphan sweep (orphans.ts); absent = off. */
  orphanSweep?: OrphanSweepOptions;
  /** Performance-policy changes of existing volumes started per second (qos-updates.ts); default 5. */
  qosUpdatesPerSecond?: number;
}

/**
 * The Kubernetes calls the controller makes, in CoreV1Api's argument shapes: client-node's
 * CoreV1Api fits, and so does the plain-JSON KubeRest (lib/kube/rest.ts) the process uses.
 * Results of writes are not read.
 */
interface VolumeApi {
  createPersistentVolume(a: { body: V1PersistentVolume }): Promise<unknown>;
  deletePersistentVolume(a: { name: string; body?: V1DeleteOptions }): Promise<unknown>;
  /** Called with a JSON patch (an array body) and client-node's JSON-patch header options. */
  patchPersistentVolume(a: { name: string; body: object }, options?: ReturnType<typeof setHeaderOptions>): Promise<unknown>;
  readPersistentVolume?(a: { name: string }): Promise<V1PersistentVolume>;
  /** The resizer's progress on a claim (merge patch of its status); without it, resizes fail with a clear error. */
  patchNamespacedPersistentVolumeClaimStatus?(a: { name: string; namespace: string; body: object }): Promise<V1PersistentVolumeClaim>;
  readNamespacedPersistentVolumeClaim?(a: { name: string; namespace: string }): Promise<V1PersistentVolumeClaim>;
}

export interface ControllerDeps {
  /**
   * Kubernetes writes, and the reads that confirm a claim or PV is really gone before a Datera
   * volume is deleted for that reason (the caches may be behind). Without the reads (some tests),
   * the caches alone decide.
   */
  core: VolumeApi;
  claims: InformerLike<V1PersistentVolumeClaim>;
  volumes: InformerLike<V1PersistentVolume>;
  classes: InformerLike<V1StorageClass>;
  configMaps: InformerLike<V1ConfigMap>;
  recorder: Pick<EventRecorder, 'record'>;
  connections: DateraConnections;
  metrics: Metrics;
  logger: Logger;
}

const CLAIM = 'claim/';
const VOLUME_KEY = 'volume/';
/** The one key of the periodic orphan sweep. */
const SWEEP_KEY = 'sweep/orphans';
/** `resize/<pv name>`: a bound claim of ours asks for more than its capacity (resizer.ts). */
const RESIZE = 'resize/';

/** A provision that reached the storage: the claim it was for, and how to undo it if that claim vanishes. */
interface Attempt {
  namespace: string;
  name: string;
  undo: () => Promise<void>;
}

export class ProvisionController {
  readonly #o: ControllerOptions;
  readonly #d: ControllerDeps;
  /** The storage side: Datera. */
  readonly #p: VolumeProvisioner;
  readonly #log: Logger;
  readonly #names: ReadonlySet<string>;
  readonly queue: WorkQueue;
  /** uid -> namespace/name of claims that may need us (pending, ours or legacy). */
  readonly #pending = new Map<string, string>();
  /** uid -> namespace/name of every claim in the cache: a claim is gone only when it is not here (and a GET agrees). */
  readonly #claimKeys = new Map<string, string>();
  /**
   * Claim uids whose provisioning reached Datera in this process, with the undo of that attempt
   * (clean-up when the claim vanishes, through the connection the create used). In memory only:
   * after a restart the orphan sweep finds what this would have cleaned, from the same facts
   * recorded in the app instance metadata.
   */
  readonly #attempted = new Map<string, Attempt>();
  /**
   * Claim uids provisioned by this process whose PV the cache may not show yet: a claim update
   * that arrives in between must not provision again (a second Datera call and event).
   */
  readonly #provisioned = new Set<string>();
  /** The PV half of the loop (reclaim.ts). */
  readonly #reclaim: Reclaimer;
  /** Volume expansion of our bound PVs (resizer.ts). */
  readonly #resizer: Resizer;
  /** Claim uids that failed with a final error: retried at once when classes or templates change. */
  readonly #finalFailures = new Set<string>();
  #templates: TemplateSet = { templates: new Map() };
  #templatesVersion = '';
  readonly #sweep: OrphanSweep | undefined;
  /** QoS of existing volumes (qos-updates.ts). */
  readonly #qos: QosUpdater;

  constructor(o: ControllerOptions, d: ControllerDeps) {
    this.#o = o;
    this.#d = d;
    this.#log = d.logger;
    this.#names = new Set([o.provisionerName, ...o.extraProvisionerNames]);
    this.#p = new DateraProvisioner({
      provisionerName: o.provisionerName,
      names: this.#names,
      clusterId: o.clusterId,
      defaultFsType: o.defaultFsType,
      connections: d.connections,
      claims: d.claims,
      volumes: d.volumes,
      templates: () => this.#templates,
      logger: d.logger,
    });
    this.#reclaim = new Reclaimer({ ...d, provisioner: this.#p, finalErrorRetryMs: o.finalErrorRetryMs });
    this.#resizer = new Resizer({
      core: d.core,
      claims: d.claims,
      volumes: d.volumes,
      classes: d.classes,
      provisioner: this.#p,
      templates: () => this.#templates,
      defaultFsType: o.defaultFsType,
      name: o.provisionerName,
      recorder: d.recorder,
      metrics: d.metrics,
      logger: d.logger.child({ subsystem: 'resizer' }),
    });
    this.queue = new WorkQueue({
      workers: o.workers,
      baseMs: o.retryInitialMs,
      maxMs: o.retryMaxMs,
      handler: (key) => this.#handle(key),
      onError: (key, err) => this.#log.error('unexpected error in work item', { key, err }),
      // One queue for claims, volumes and the sweep; its workqueue_* metrics carry name="provisioner".
      observer: d.metrics.workQueue('provisioner', () => this.queue.state()),
    });
    this.#qos = new QosUpdater({
      ...d,
      provisioner: this.#p,
      templates: () => this.#templates,
      enqueue: (key) => this.queue.add(key),
      logger: d.logger.child({ subsystem: 'qos-updates' }),
      defaultFsType: o.defaultFsType,
      perSecond: o.qosUpdatesPerSecond ?? 5,
    });
    if (o.orphanSweep && o.orphanSweep.mode !== 'off' && o.clusterId) {
      this.#sweep = new OrphanSweep(o.orphanSweep, {
        provisionerNames: this.#names,
        clusterId: o.clusterId,
        namespace: o.namespace,
        connections: d.connections,
        volumes: d.volumes,
        classes: d.classes,
        templates: () => this.#templates,
        claimExists: (uid) => this.#claimKeys.has(uid) || this.#attempted.has(uid) || this.#provisioned.has(uid),
        stillExists: async (md) => (await this.#stillExists(md[MD.pv] ?? '', md[MD.claimNamespace], md[MD.claimName], md[MD.claimUid] ?? '')) !== undefined,
        deleteAppInstance,
        recorder: d.recorder,
        metrics: d.metrics,
        logger: d.logger.child({ subsystem: 'orphan-sweep' }),
      });
    } else if (o.orphanSweep && o.orphanSweep.mode !== 'off') {
      d.logger.warn('orphan sweep is off: no cluster id is known, so no app instance can be proven to be this cluster\'s');
    }
    this.#wire();
  }

  get templates(): TemplateSet {
    return this.#templates;
  }

  /** Starts the workers (the caller starts informers first, and calls this on becoming leader). */
  start(): void {
    this.queue.start();
    this.#qos.resume();
    if (this.#sweep) {
      const delay = this.#o.orphanSweep?.startDelayMs ?? 0;
      if (delay > 0) this.queue.addAfter(SWEEP_KEY, delay);
      else this.queue.add(SWEEP_KEY);
    }
  }

  async stop(): Promise<void> {
    await this.queue.stop();
  }

  /** Runs the orphan sweep now (it then continues at its interval); a no-op when the sweep is off. */
  sweepOrphans(): void {
    if (this.#sweep) this.queue.add(SWEEP_KEY);
  }

  #ctx(): ClaimContext {
    return {
      names: this.#names,
      legacyAlphaClasses: this.#o.legacyAlphaClasses,
      getClass: (n) => this.#d.classes.get(n),
    };
  }

  #wire(): void {
    const { claims, volumes, classes, configMaps } = this.#d;
    const onClaim = (pvc: V1PersistentVolumeClaim) => {
      const uid = pvc.metadata?.uid;
      if (!uid) return;
      this.#claimKeys.set(uid, `${pvc.metadata!.namespace}/${pvc.metadata!.name}`);
      const bound = pvc.spec?.volumeName;
      if (bound && claimMayNeedResize(pvc)) this.queue.add(RESIZE + bound);
      if (claimMayNeedUs(pvc, this.#ctx())) {
        this.#pending.set(uid, `${pvc.metadata!.namespace}/${pvc.metadata!.name}`);
        this.queue.add(CLAIM + uid);
      } else if (this.#pending.delete(uid)) {
        this.#finalFailures.delete(uid);
        this.#provisioned.delete(uid);
        this.queue.forget(CLAIM + uid);
      }
    };
    claims.on('add', onClaim);
    claims.on('update', onClaim);
    claims.on('update', (pvc, old) => this.#qos.claimChanged(pvc, old));
    claims.on('delete', (pvc) => {
      const uid = pvc.metadata?.uid;
      if (!uid) return;
      this.#claimKeys.delete(uid);
      this.#finalFailures.delete(uid);
      this.#provisioned.delete(uid);
      this.#pending.delete(uid);
      if (this.#attempted.has(uid)) this.queue.add(CLAIM + uid); // clean-up check
      else this.queue.forget(CLAIM + uid);
    });

    const onVolume = (pv: V1PersistentVolume) => {
      if (!this.#p.owns(pv)) return;
      const phase = pv.status?.phase;
      if (phase === 'Released' || phase === 'Failed' || pv.metadata?.deletionTimestamp) this.queue.add(VOLUME_KEY + pv.metadata!.name!);
    };
    volumes.on('add', onVolume);
    volumes.on('update', onVolume);
    volumes.on('delete', (pv) => {
      this.queue.forget(VOLUME_KEY + pv.metadata!.name!);
      this.queue.forget(RESIZE + pv.metadata!.name!);
      this.#reclaim.forget(pv.metadata!.name!);
      this.#resizer.forget(pv.metadata!.name!);
      // A PV removed before its claim bound: the claim needs a volume again.
      const uid = pv.spec?.claimRef?.uid;
      if (uid && this.#provisioned.delete(uid) && this.#pending.has(uid)) this.queue.add(CLAIM + uid);
    });

    const onClass = () => this.#retryPending();
    classes.on('add', onClass);
    classes.on('update', onClass);

    const onConfigMap = (cm: V1ConfigMap) => {
      if (cm.metadata?.name !== this.#o.templatesConfigMap || cm.metadata?.namespace !== this.#o.namespace) return;
      this.#loadTemplates(cm);
    };
    configMaps.on('add', onConfigMap);
    configMaps.on('update', onConfigMap);
    configMaps.on('delete', (cm) => {
      if (cm.metadata?.name !== this.#o.templatesConfigMap) return;
      this.#log.warn('template ConfigMap deleted; keeping the last good templates until it is re-created', {
        configMap: `${this.#o.namespace}/${this.#o.templatesConfigMap}`,
      });
    });
  }

  /** Parses the template ConfigMap; an invalid edit keeps the last good set and says what is wrong. */
  #loadTemplates(cm: V1ConfigMap): void {
    const version = cm.metadata?.resourceVersion ?? '';
    if (version && version === this.#templatesVersion) return;
    this.#templatesVersion = version;
    const text = cm.data?.[this.#o.templatesKey];
    const where = `${this.#o.namespace}/${this.#o.templatesConfigMap}`;
    if (text === undefined) {
      this.#d.metrics.templatesValid.set(0);
      const msg = `ConfigMap ${where} has no key "${this.#o.templatesKey}"; keeping the last good templates (${this.#templates.templates.size})`;
      this.#log.error(msg);
      this.#d.recorder.record(subjectOf(cm, 'ConfigMap'), 'Warning', 'InvalidTemplates', msg);
      return;
    }
    const r = parseTemplates(text);
    if (!r.ok) {
      this.#d.metrics.templatesValid.set(0);
      const msg = `AppTemplates in ConfigMap ${where} rejected, keeping the last good templates (${this.#templates.templates.size}): ${r.errors.join('; ')}`;
      this.#log.error('invalid AppTemplates edit', { configMap: where, errors: r.errors });
      this.#d.recorder.record(subjectOf(cm, 'ConfigMap'), 'Warning', 'InvalidTemplates', msg);
      return;
    }
    const before = this.#templates;
    this.#templates = r.set;
    this.#qos.templatesChanged(before, r.set, cm);
    this.#d.metrics.templatesValid.set(1);
    this.#d.metrics.templatesLoaded.set(r.set.templates.size);
    this.#log.info('AppTemplates loaded', { configMap: where, templates: [...r.set.templates.keys()] });
    this.#retryPending();
  }

  /** Classes or templates changed: claims that waited or failed finally get another try now. */
  #retryPending(): void {
    for (const uid of this.#pending.keys()) this.queue.add(CLAIM + uid);
    for (const pv of this.#resizer.refused()) this.queue.add(RESIZE + pv);
  }

  /** The cached claim with this uid, whatever its phase (bound claims included). */
  #claimByUid(uid: string): V1PersistentVolumeClaim | undefined {
    const nsName = this.#claimKeys.get(uid);
    if (!nsName) return undefined;
    const i = nsName.indexOf('/');
    const pvc = this.#d.claims.get(nsName.slice(i + 1), nsName.slice(0, i));
    return pvc?.metadata?.uid === uid ? pvc : undefined;
  }

  async #handle(key: string): Promise<Outcome> {
    if (key.startsWith(CLAIM)) return this.#syncClaim(key.slice(CLAIM.length));
    if (key.startsWith(VOLUME_KEY)) return this.#reclaim.sync(key.slice(VOLUME_KEY.length));
    if (key.startsWith(RESIZE)) return this.#resizer.sync(key.slice(RESIZE.length));
    if (key === SWEEP_KEY && this.#sweep) return this.#sweep.run();
    if (key.startsWith(QOS_KEY)) return this.#qos.sync(key.slice(QOS_KEY.length));
    return { kind: 'done' };
  }

  // ---------------------------------------------------------------- provisioning

  async #syncClaim(uid: string): Promise<Outcome> {
    const pvc = this.#claimByUid(uid);
    const pvName = `pvc-${uid}`;
    // Only a claim absent from the cache may have vanished; one that exists but no longer needs us
    // (bound, e.g. while our PV create was in flight) is left alone, whatever its volume.
    if (!pvc) return this.#cleanupVanishedClaim(uid, pvName);
    if (!this.#pending.has(uid)) return { kind: 'done' };
    if (this.#d.volumes.get(pvName) || this.#provisioned.has(uid)) return { kind: 'done' }; // provisioned already

    const decision = decideClaim(pvc, this.#ctx());
    const log = this.#log.child({ namespace: pvc.metadata!.namespace, claim: pvc.metadata!.name, uid });
    switch (decision.action) {
      case 'ignore':
        return { kind: 'done' };
      case 'wait':
        log.debug('claim waits', { reason: decision.reason });
        return { kind: 'done' }; // the next claim, class or template change re-enqueues it
      case 'refuse':
        return this.#finalFailure(pvc, decision.className, new FinalError(decision.message), log);
    }
    const { className, pvClassName, storageClass } = decision;
    const started = performance.now();
    const source = pvc.spec?.dataSourceRef?.kind ?? pvc.spec?.dataSource?.kind ?? '';
    let provisioningEvent: NodeJS.Timeout | undefined;
    const announce = () => {
      this.#d.recorder.record(subjectOf(pvc, 'PersistentVolumeClaim'), 'Normal', 'Provisioning', `External provisioner is provisioning volume for claim "${pvc.metadata!.namespace}/${pvc.metadata!.name}"`);
    };
    try {
      const made = await this.#p.provision({
        claim: pvc,
        pvName,
        className,
        pvClassName,
        storageClass,
        logger: log,
        onStart: () => {
          if (this.queue.failures(CLAIM + uid) > 0) announce();
          else {
            provisioningEvent = setTimeout(announce, this.#o.provisioningEventDelayMs);
            provisioningEvent.unref?.();
          }
        },
        onReached: (undo) => this.#attempted.set(uid, { namespace: pvc.metadata!.namespace!, name: pvc.metadata!.name!, undo }),
      });
      try {
        await this.#d.core.createPersistentVolume({ body: made.pv });
      } catch (err) {
        if (!isAlreadyExists(err)) {
          const s = statusOf(err);
          throw new Error(`Datera volume ${pvName} is ready, but saving its PersistentVolume failed (${s?.code ?? ''} ${s?.message ?? (err as Error).message}); retrying without deleting the volume`, { cause: err });
        }
      }
      clearTimeout(provisioningEvent);
      this.#attempted.delete(uid);
      this.#finalFailures.delete(uid);
      this.#provisioned.add(uid);
      this.#d.recorder.record(subjectOf(pvc, 'PersistentVolumeClaim'), 'Normal', 'ProvisioningSucceeded', `Successfully provisioned volume ${pvName}`);
      this.#d.metrics.provisionTotal.inc({ class: className, source: sourceLabel(source) });
      this.#d.metrics.provisionDuration.observe({ class: className, source: sourceLabel(source) }, (performance.now() - started) / 1000);
      log.info('provisioned', { pv: pvName, storageClass: className, sizeGiB: made.sizeGiB, template: made.template });
      return { kind: 'done' };
    } catch (err) {
      clearTimeout(provisioningEvent);
      if (isFinal(err)) return this.#finalFailure(pvc, className, err as Error, log);
      const msg = describeFailure(err);
      this.#d.metrics.provisionFailed.inc({ class: className, source: sourceLabel(source) });
      this.#d.recorder.record(subjectOf(pvc, 'PersistentVolumeClaim'), 'Warning', 'ProvisioningFailed', `failed to provision volume with StorageClass "${className}": ${msg}`);
      log.warn('provisioning failed; will retry', { storageClass: className, err: msg, attempt: this.queue.failures(CLAIM + uid) + 1 });
      return { kind: 'retry', error: err };
    }
  }

  #finalFailure(pvc: V1PersistentVolumeClaim, className: string, err: Error, log: Logger): Outcome {
    const uid = pvc.metadata!.uid!;
    const msg = err instanceof DateraError ? describeFailure(err) : err.message;
    this.#finalFailures.add(uid);
    this.#d.metrics.provisionFailed.inc({ class: className, source: sourceLabel(pvc.spec?.dataSourceRef?.kind ?? pvc.spec?.dataSource?.kind) });
    this.#d.recorder.record(subjectOf(pvc, 'PersistentVolumeClaim'), 'Warning', 'ProvisioningFailed', `failed to provision volume with StorageClass "${className}": ${msg}`);
    log.warn('provisioning refused; retrying when the class or templates change', { storageClass: className, err: msg });
    return { kind: 'requeueAfter', ms: this.#o.finalErrorRetryMs };
  }

  /**
   * The claim is gone from the cache. If we reached Datera for it and no PV was saved, remove the
   * app instance we may have made, through the connection the create used, and only after the API
   * server confirms that neither the PV nor the claim exists (the caches may be behind: a PV create
   * that looked failed may have succeeded) and the metadata says it is this claim's, this
   * provisioner's and this cluster's.
   */
  async #cleanupVanishedClaim(uid: string, pvName: string): Promise<Outcome> {
    const attempt = this.#attempted.get(uid);
    if (!attempt) return { kind: 'done' };
    if (this.#d.volumes.get(pvName)) {
      this.#attempted.delete(uid);
      return { kind: 'done' }; // the PV exists: it becomes Released and the reclaim path handles it
    }
    try {
      const exists = await this.#stillExists(pvName, attempt.namespace, attempt.name, uid);
      if (exists === 'pv') this.#attempted.delete(uid); // it becomes Released and the reclaim path handles it
      if (exists) return { kind: 'done' }; // a claim the cache has not caught up with: its delete event brings us back
      await attempt.undo();
      this.#attempted.delete(uid);
      return { kind: 'done' };
    } catch (err) {
      this.#log.warn('clean-up of a removed claim failed; will retry', { appInstance: pvName, err: describeFailure(err) });
      return { kind: 'retry', error: err };
    }
  }

  /**
   * Does the PV, or a claim with this uid, still exist? The caches first, then the API server
   * (the caches may be behind). `undefined` only when both say no; a failed read throws, so
   * nothing is deleted on a guess. Without read access in `core` (tests) the caches decide.
   */
  async #stillExists(pvName: string, namespace: string | undefined, name: string | undefined, uid: string): Promise<'pv' | 'claim' | undefined> {
    if (pvName && this.#d.volumes.get(pvName)) return 'pv';
    if (this.#claimKeys.has(uid)) return 'claim';
    const core = this.#d.core;
    if (pvName && core.readPersistentVolume) {
      const pv = await core.readPersistentVolume({ name: pvName }).catch((e: unknown) => (isKubeNotFound(e) ? undefined : Promise.reject(e)));
      if (pv) return 'pv';
    }
    if (namespace && name && core.readNamespacedPersistentVolumeClaim) {
      const pvc = await core.readNamespacedPersistentVolumeClaim({ name, namespace }).catch((e: unknown) => (isKubeNotFound(e) ? undefined : Promise.reject(e)));
      if (pvc?.metadata?.uid === uid) return 'claim';
    }
    return undefined;
  }
}
