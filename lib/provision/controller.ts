// SPDX-License-Identifier: Apache-2.0
// The provisioning controller: claims in, Datera volumes and flexVolume PVs out; reclaim on release.
//
// Data flow (one way): informers (PVC, PV, StorageClass, template ConfigMap) -> caches -> one work
// queue keyed `claim/<uid>` or `volume/<pv name>` -> decide (pure: claim.ts, template.ts,
// volume.ts) -> act (Datera call, then one Kubernetes write) -> event + metric.
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
} from '@kubernetes/client-node';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { DateraError, isDateraConflict, isDateraNotFound } from '../datera/errors.js';
import { STORAGE_INSTANCE_NAME as STORAGE_INSTANCE, VOLUME_NAME as VOLUME } from '../datera/names.js';
import type { AppInstanceCreate, DateraApi } from '../datera/types.js';
import { isFinal, type MaybeFinal } from '../errors.js';
import type { Informer } from '../kube/informer.js';
import type { EventRecorder } from '../kube/events.js';
import { isAlreadyExists, isKubeConflict, isKubeNotFound, statusOf } from '../kube/errors.js';
import type { Logger } from '../observability/logger.js';
import { sourceLabel, type Metrics } from '../observability/metrics.js';
import { Ann, PV_FINALIZER, claimMayNeedUs, decideClaim, requestedStorage, type ClaimContext } from './claim.js';
import type { DateraConnections } from './credentials.js';
import { WorkQueue, type Outcome } from './queue.js';
import { parseTemplates, type TemplateSet } from './app-templates.js';
import { parseQuantity } from './quantity.js';
import { appInstanceRequest, type VolumeParams } from './request.js';
import { OrphanSweep, type OrphanSweepOptions } from './orphans.js';
import { MD, buildVolume, deletableBy, metadataIsOurs, ownershipMetadata } from './volume.js';

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
  readNamespacedPersistentVolumeClaim?(a: { name: string; namespace: string }): Promise<V1PersistentVolumeClaim>;
}

export interface ControllerDeps {
  /**
   * Kubernetes writes, and the reads that confirm a claim or PV is really gone before a Datera
   * volume is deleted for that reason (the caches may be behind). Without the reads (some tests),
   * the caches alone decide.
   */
  core: VolumeApi;
  claims: Informer<V1PersistentVolumeClaim>;
  volumes: Informer<V1PersistentVolume>;
  classes: Informer<V1StorageClass>;
  configMaps: Informer<V1ConfigMap>;
  recorder: Pick<EventRecorder, 'record'>;
  connections: DateraConnections;
  metrics: Metrics;
  logger: Logger;
}

/** A failure the user must fix (bad parameter, refused claim, foreign volume): retried slowly, not with backoff. */
class FinalError extends Error implements MaybeFinal {
  constructor(message: string) {
    super(message);
    this.name = 'FinalError';
  }
  get final(): boolean {
    return true;
  }
}

const CLAIM = 'claim/';
const VOLUME_KEY = 'volume/';
/** The one key of the periodic orphan sweep. */
const SWEEP_KEY = 'sweep/orphans';

/** How a create reached Datera: the same arguments find the same endpoint, credentials and tenant again. */
interface Attempt {
  namespace: string;
  name: string;
  connection: { secretName?: string | undefined; secretNamespace?: string | undefined; tenant?: string | undefined; claimNamespace: string };
}

export class ProvisionController {
  readonly #o: ControllerOptions;
  readonly #d: ControllerDeps;
  readonly #log: Logger;
  readonly #names: ReadonlySet<string>;
  readonly queue: WorkQueue;
  /** uid -> namespace/name of claims that may need us (pending, ours or legacy). */
  readonly #pending = new Map<string, string>();
  /** uid -> namespace/name of every claim in the cache: a claim is gone only when it is not here (and a GET agrees). */
  readonly #claimKeys = new Map<string, string>();
  /**
   * Claim uids whose provisioning reached Datera in this process, with the connection it used (for
   * clean-up when the claim vanishes). In memory only: after a restart the orphan sweep finds what
   * this would have cleaned, from the same facts recorded in the app instance metadata.
   */
  readonly #attempted = new Map<string, Attempt>();
  /**
   * Claim uids provisioned by this process whose PV the cache may not show yet: a claim update
   * that arrives in between must not provision again (a second Datera call and event).
   */
  readonly #provisioned = new Set<string>();
  /** PVs whose app instance this process deleted: a re-run while the cache catches up skips Datera. */
  readonly #reclaimed = new Set<string>();
  /**
   * PV name -> uid of the PV this process sent a successful DELETE for. The finalizer patch just
   * before it comes back as an update that re-runs the PV's key while the cache still shows the
   * PV without a deletion timestamp; that re-run must not send the DELETE again. Cleared by the
   * PV's delete event. In memory only: after a restart the listed PV carries its deletion
   * timestamp (or is gone), which stops a second DELETE the same way.
   */
  readonly #pvDeleteSent = new Map<string, string>();
  /** Claim uids that failed with a final error: retried at once when classes or templates change. */
  readonly #finalFailures = new Set<string>();
  #templates: TemplateSet = { templates: new Map() };
  #templatesVersion = '';
  readonly #sweep: OrphanSweep | undefined;

  constructor(o: ControllerOptions, d: ControllerDeps) {
    this.#o = o;
    this.#d = d;
    this.#log = d.logger;
    this.#names = new Set([o.provisionerName, ...o.extraProvisionerNames]);
    this.queue = new WorkQueue({
      workers: o.workers,
      baseMs: o.retryInitialMs,
      maxMs: o.retryMaxMs,
      handler: (key) => this.#handle(key),
      onError: (key, err) => this.#log.error('unexpected error in work item', { key, err }),
      // One queue for claims, volumes and the sweep; its workqueue_* metrics carry name="provisioner".
      observer: d.metrics.workQueue('provisioner', () => this.queue.state()),
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
        deleteAppInstance: (client, name) => this.#deleteAppInstance(client, name),
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
    if (this.#sweep) this.queue.add(SWEEP_KEY);
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
      if (!this.#isOurs(pv)) return;
      const phase = pv.status?.phase;
      if (phase === 'Released' || phase === 'Failed' || pv.metadata?.deletionTimestamp) this.queue.add(VOLUME_KEY + pv.metadata!.name!);
    };
    volumes.on('add', onVolume);
    volumes.on('update', onVolume);
    volumes.on('delete', (pv) => {
      this.queue.forget(VOLUME_KEY + pv.metadata!.name!);
      this.#reclaimed.delete(pv.metadata!.name!);
      this.#pvDeleteSent.delete(pv.metadata!.name!);
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
    this.#templates = r.set;
    this.#d.metrics.templatesValid.set(1);
    this.#d.metrics.templatesLoaded.set(r.set.templates.size);
    this.#log.info('AppTemplates loaded', { configMap: where, templates: [...r.set.templates.keys()] });
    this.#retryPending();
  }

  /** Classes or templates changed: claims that waited or failed finally get another try now. */
  #retryPending(): void {
    for (const uid of this.#pending.keys()) this.queue.add(CLAIM + uid);
  }

  #isOurs(pv: V1PersistentVolume): boolean {
    const by = pv.metadata?.annotations?.[Ann.provisionedBy];
    return by !== undefined && this.#names.has(by) && pv.spec?.flexVolume?.driver === 'datera/iscsi';
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
    if (key.startsWith(VOLUME_KEY)) return this.#syncVolume(key.slice(VOLUME_KEY.length));
    if (key === SWEEP_KEY && this.#sweep) return this.#sweep.run();
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
      const tr = appInstanceRequest({
        pvName,
        className,
        parameters: storageClass.parameters ?? {},
        claim: {
          namespace: pvc.metadata!.namespace!,
          name: pvc.metadata!.name!,
          uid,
          annotations: pvc.metadata?.annotations ?? {},
          ...(requestedStorage(pvc) !== undefined ? { requestBytes: parseQuantity(requestedStorage(pvc)!) ?? -1n } : {}),
          accessModes: pvc.spec?.accessModes ?? [],
        },
        templates: this.#templates,
        defaults: { fsType: this.#o.defaultFsType },
      });
      if (!tr.ok) throw new FinalError(`invalid parameter: ${tr.error.message}`);
      let request: AppInstanceCreate = tr.request;
      let volume: VolumeParams = tr.volume;
      if (source) ({ request, volume } = this.#cloneRequest(pvc, request, volume));

      if (this.queue.failures(CLAIM + uid) > 0) announce();
      else {
        provisioningEvent = setTimeout(announce, this.#o.provisioningEventDelayMs);
        provisioningEvent.unref?.();
      }
      const connection = {
        secretName: volume.secretName,
        secretNamespace: volume.secretNamespace,
        tenant: volume.tenant,
        claimNamespace: pvc.metadata!.namespace!,
      };
      const conn = await this.#d.connections.forProvision(connection);
      this.#attempted.set(uid, { namespace: pvc.metadata!.namespace!, name: pvc.metadata!.name!, connection });
      await this.#ensureAppInstance(conn.client, request, pvc, className, { secretRef: conn.secretRef, reclaimPolicy: storageClass.reclaimPolicy ?? 'Delete' }, log);
      if (source && volume.sizeGiB > 0) await this.#growClone(conn.client, pvName, volume.sizeGiB);

      const pv = buildVolume({
        pvName,
        claim: pvc,
        pvClassName,
        reclaimPolicy: storageClass.reclaimPolicy ?? 'Delete',
        provisionerName: this.#o.provisionerName,
        volume,
        endpoint: conn.endpoint,
        tenant: conn.tenant,
        secretRef: conn.secretRef,
      });
      try {
        await this.#d.core.createPersistentVolume({ body: pv });
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
      log.info('provisioned', { pv: pvName, storageClass: className, sizeGiB: volume.sizeGiB, template: volume.template ?? '' });
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
   * Creates the app instance or adopts the one an earlier attempt made. The POST is the look-up:
   * 409 means the name exists, and its metadata must say it was made for this claim (empty
   * metadata = our earlier attempt stopped before tagging it). Anything else is someone else's
   * volume, and we refuse rather than hand it to this claim.
   */
  async #ensureAppInstance(client: DateraApi, request: AppInstanceCreate, pvc: V1PersistentVolumeClaim, className: string, made: { secretRef: { name: string; namespace: string }; reclaimPolicy: string }, log: Logger): Promise<void> {
    const name = request.name;
    const md = ownershipMetadata(this.#o.provisionerName, pvc, className, name, { clusterId: this.#o.clusterId, ...made, createdAt: new Date() });
    try {
      await client.createAppInstance(request);
    } catch (err) {
      if (!isDateraConflict(err)) throw err;
      const existing = await client.getMetadata(name);
      if (!metadataIsOurs(existing, this.#names, pvc.metadata!.uid!, this.#o.clusterId))
        throw new FinalError(
          `Datera app instance ${name} already exists and was not created for this claim (it belongs to claim ${existing['k8s-claim-namespace'] ?? '?'}/${existing['k8s-claim-name'] ?? '?'} uid ${existing['k8s-claim-uid'] ?? '?'}${existing[MD.clusterId] ? `, cluster ${existing[MD.clusterId]}` : ''}); refusing to reuse it`,
        );
      if (existing['k8s-claim-uid']) {
        log.info('adopted app instance from an earlier attempt', { appInstance: name });
        return;
      }
    }
    await client.putMetadata(name, md);
  }

  /** Clone from a claim of ours in the same namespace: `clone_volume_src` and the source's size at least. */
  #cloneRequest(pvc: V1PersistentVolumeClaim, request: AppInstanceCreate, volume: VolumeParams): { request: AppInstanceCreate; volume: VolumeParams } {
    const ref = pvc.spec?.dataSourceRef ?? pvc.spec?.dataSource;
    const ns = pvc.metadata!.namespace!;
    const src = this.#d.claims.get(ref!.name, ns);
    if (!src) throw new FinalError(`clone source claim ${ns}/${ref!.name} does not exist`);
    const srcPvName = src.spec?.volumeName;
    const srcPv = srcPvName ? this.#d.volumes.get(srcPvName) : undefined;
    if (!srcPv || src.status?.phase !== 'Bound') throw new FinalError(`clone source claim ${ns}/${ref!.name} is not bound yet`);
    if (!this.#isOurs(srcPv)) throw new FinalError(`clone source claim ${ns}/${ref!.name} is not a Datera volume of this provisioner`);
    const srcAi = srcPv.spec?.flexVolume?.options?.volumeID ?? srcPvName!;
    const srcGiB = Number(srcPv.spec?.flexVolume?.options?.size ?? 0);
    if (volume.sizeGiB < srcGiB) throw new FinalError(`clone must be at least as large as its source (${srcGiB} GiB), asked for ${volume.sizeGiB} GiB`);
    const { template: _t, dateraTemplate: _d, ...plain } = volume; // a clone takes its settings from the source
    return {
      request: {
        name: request.name,
        create_mode: request.create_mode ?? 'kubernetes',
        clone_volume_src: { path: `/app_instances/${srcAi}/storage_instances/${STORAGE_INSTANCE}/volumes/${VOLUME}` },
      },
      volume: plain,
    };
  }

  async #growClone(client: DateraApi, name: string, sizeGiB: number): Promise<void> {
    const ai = await client.getAppInstance(name);
    const vol = ai.storage_instances?.[0]?.volumes?.[0];
    if (vol && vol.size < sizeGiB) await client.resizeVolume(name, STORAGE_INSTANCE, VOLUME, sizeGiB);
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
      const conn = await this.#d.connections.forProvision(attempt.connection);
      const md = await conn.client.getMetadata(pvName).catch((e: unknown) => (isDateraNotFound(e) ? undefined : Promise.reject(e)));
      if (md) {
        const verdict = deletableBy(md, { provisionerNames: this.#names, clusterId: this.#o.clusterId, pvName, claimUid: uid });
        if (verdict.ok) {
          await this.#deleteAppInstance(conn.client, pvName);
          this.#log.info('deleted app instance of a claim removed before its PV was saved', { appInstance: pvName, uid });
        } else {
          this.#log.warn('not deleting app instance of a removed claim: it is not ours', { appInstance: pvName, uid, reason: verdict.reason });
        }
      }
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

  // ---------------------------------------------------------------- reclaim

  async #syncVolume(name: string): Promise<Outcome> {
    const pv = this.#d.volumes.get(name);
    if (!pv || !this.#isOurs(pv)) return { kind: 'done' };
    const className = pv.spec?.storageClassName ?? '';
    const policy = pv.spec?.persistentVolumeReclaimPolicy ?? 'Delete';
    const hasFinalizer = pv.metadata?.finalizers?.includes(PV_FINALIZER) ?? false;
    const deleting = !!pv.metadata?.deletionTimestamp;
    const released = pv.status?.phase === 'Released';
    const log = this.#log.child({ pv: name });

    if (policy !== 'Delete') {
      // Retain: the Datera volume and the PV stay. Our finalizer only guards Delete; drop it if
      // present, once the volume is marked retained (a Delete PV edited to Retain: the orphan sweep
      // must not remove the volume after an admin deletes the PV).
      if (hasFinalizer && (released || deleting)) {
        try {
          await this.#markRetained(pv);
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
    const ai = pv.spec?.flexVolume?.options?.volumeID ?? name;
    const again = this.#reclaimed.has(name);
    try {
      if (!again) {
        const conn = await this.#d.connections.forVolume(pv);
        // Ownership first: a PV can name an app instance this cluster did not make (a restored or
        // second cluster sharing the tenant, an edited PV). Gone already counts as deleted.
        const md = await conn.client.getMetadata(ai).catch((e: unknown) => (isDateraNotFound(e) ? undefined : Promise.reject(e)));
        if (md) {
          const verdict = deletableBy(md, { provisionerNames: this.#names, clusterId: this.#o.clusterId, pvName: name, ...(pv.spec?.claimRef?.uid ? { claimUid: pv.spec.claimRef.uid } : {}) });
          if (!verdict.ok) return this.#refuseForeignDelete(pv, ai, verdict.reason, log);
          await this.#deleteAppInstance(conn.client, ai);
        }
        this.#reclaimed.add(name);
      }
    } catch (err) {
      const msg = describeFailure(err);
      this.#d.metrics.deleteFailed.inc({ class: className });
      this.#d.recorder.record(subjectOf(pv, 'PersistentVolume'), 'Warning', 'VolumeFailedDelete', `failed to delete Datera app instance ${ai}: ${msg}`);
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
      `refusing to delete Datera app instance ${ai}: ${reason}; this PersistentVolume keeps its finalizer until an administrator resolves it`,
    );
    log.warn('refusing to delete an app instance that is not ours', { appInstance: ai, reason });
    return { kind: 'requeueAfter', ms: this.#o.finalErrorRetryMs };
  }

  /** Records `k8s-reclaim-policy: Retain` on the PV's app instance, if it is ours and says otherwise. */
  async #markRetained(pv: V1PersistentVolume): Promise<void> {
    const name = pv.metadata!.name!;
    const ai = pv.spec?.flexVolume?.options?.volumeID ?? name;
    const conn = await this.#d.connections.forVolume(pv);
    const md = await conn.client.getMetadata(ai).catch((e: unknown) => (isDateraNotFound(e) ? undefined : Promise.reject(e)));
    if (!md || md[MD.reclaimPolicy] === 'Retain') return;
    if (!deletableBy(md, { provisionerNames: this.#names, clusterId: this.#o.clusterId, pvName: name, ...(pv.spec?.claimRef?.uid ? { claimUid: pv.spec.claimRef.uid } : {}) }).ok) return;
    await conn.client.putMetadata(ai, { [MD.reclaimPolicy]: 'Retain' });
  }

  /** Offline (force) then delete; "not found" at either step means already gone. */
  async #deleteAppInstance(client: DateraApi, ai: string): Promise<void> {
    try {
      await client.setAdminState(ai, 'offline', true);
    } catch (err) {
      if (isDateraNotFound(err)) return;
      throw err;
    }
    try {
      await client.deleteAppInstance(ai, true);
    } catch (err) {
      if (!isDateraNotFound(err)) throw err;
    }
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

function subjectOf(obj: { metadata?: { name?: string; namespace?: string; uid?: string; resourceVersion?: string } }, kind: string) {
  const m = obj.metadata ?? {};
  return {
    kind,
    apiVersion: 'v1',
    metadata: {
      name: m.name ?? '',
      ...(m.namespace ? { namespace: m.namespace } : {}),
      ...(m.uid ? { uid: m.uid } : {}),
      ...(m.resourceVersion ? { resourceVersion: m.resourceVersion } : {}),
    },
  };
}

/** A one-line, secret-free description for events and logs. */
export function describeFailure(err: unknown): string {
  if (err instanceof DateraError) {
    const detail = err.details.length ? ` (${err.details.join('; ')})` : '';
    return `Datera ${err.apiName ?? err.code}${err.status ? ` ${err.status}` : ''}: ${err.message}${detail}`;
  }
  const s = statusOf(err);
  if (s) return `Kubernetes API ${s.code}${s.reason ? ` ${s.reason}` : ''}: ${s.message ?? ''}`;
  return err instanceof Error ? err.message : String(err);
}

