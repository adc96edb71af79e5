// SPDX-License-Identifier: Apache-2.0
// Datera behind the VolumeProvisioner seam (provisioner.ts): a claim, its class and the AppTemplates
// become one app-instance create (or a clone of a claim of ours), and the flexVolume PV is built
// for it. Ownership rules: an app instance left by an earlier attempt is adopted only when its
// metadata names this claim (or is empty: our attempt stopped before tagging it); nothing is
// deleted or marked unless its metadata names this provisioner, this cluster and this PV or claim.
// Kubernetes writes, events, metrics and retries stay with the controller.
import type { V1PersistentVolume, V1PersistentVolumeClaim, V1StorageClass } from '@kubernetes/client-node';
import { isDateraConflict, isDateraNotFound } from '../datera/errors.js';
import { STORAGE_INSTANCE_NAME, VOLUME_NAME } from '../datera/names.js';
import type { AppInstanceCreate, DateraApi, PerformancePolicy } from '../datera/types.js';
import type { InformerLike } from '../kube/informer.js';
import type { Logger } from '../observability/logger.js';
import type { TemplateSet } from './app-templates.js';
import { Ann, requestedStorage } from './claim.js';
import type { DateraConnections } from './credentials.js';
import { FinalError, type DeleteResult, type ExpandRequest, type ExpandResult, type ProvisionRequest, type ProvisionResult, type VolumeProvisioner } from './provisioner.js';
import { pvCapacityGiB, sameQos } from './resize.js';
import { parseQuantity } from './quantity.js';
import { appInstanceRequest, type Translation, type VolumeParams } from './request.js';
import { FLEX_DRIVER, MD, buildVolume, deletableBy, metadataIsOurs, normalPolicy, ownershipMetadata } from './volume.js';

interface DateraProvisionerDeps {
  /** The name recorded on what this provisioner makes. */
  provisionerName: string;
  /** Every name this provisioner answers to (provisionerName and the extra names). */
  names: ReadonlySet<string>;
  /** Recorded on every app instance and required to match before a delete (see ControllerOptions.clusterId). */
  clusterId: string | undefined;
  defaultFsType: string;
  connections: Pick<DateraConnections, 'forProvision' | 'forVolume'>;
  /** The caches a clone's source claim and PV are read from. */
  claims: Pick<InformerLike<V1PersistentVolumeClaim>, 'get'>;
  volumes: Pick<InformerLike<V1PersistentVolume>, 'get'>;
  /** The AppTemplates in force. */
  templates: () => TemplateSet;
  logger: Logger;
}

/** How a create reached Datera: the same arguments find the same endpoint, credentials and tenant again. */
type ConnectionArgs = Parameters<DateraConnections['forProvision']>[0];

export class DateraProvisioner implements VolumeProvisioner {
  readonly storageKind = 'Datera app instance';
  readonly #d: DateraProvisionerDeps;

  constructor(d: DateraProvisionerDeps) {
    this.#d = d;
  }

  storageName(pv: V1PersistentVolume): string {
    return pv.spec?.flexVolume?.options?.volumeID ?? pv.metadata!.name!;
  }

  owns(pv: V1PersistentVolume): boolean {
    const by = pv.metadata?.annotations?.[Ann.provisionedBy];
    return by !== undefined && this.#d.names.has(by) && pv.spec?.flexVolume?.driver === FLEX_DRIVER;
  }

  async provision(req: ProvisionRequest): Promise<ProvisionResult> {
    const { claim: pvc, pvName, className, storageClass } = req;
    const uid = pvc.metadata!.uid!;
    const source = pvc.spec?.dataSourceRef?.kind ?? pvc.spec?.dataSource?.kind ?? '';
    const tr = translateClaim({ claim: pvc, pvName, className, storageClass, templates: this.#d.templates(), defaultFsType: this.#d.defaultFsType });
    if (!tr.ok) throw new FinalError(`invalid parameter: ${tr.error.message}`);
    let request: AppInstanceCreate = tr.request;
    let volume: VolumeParams = tr.volume;
    if (source) ({ request, volume } = this.#cloneRequest(pvc, request, volume));

    req.onStart();
    const connection: ConnectionArgs = {
      secretName: volume.secretName,
      secretNamespace: volume.secretNamespace,
      tenant: volume.tenant,
      claimNamespace: pvc.metadata!.namespace!,
    };
    const conn = await this.#d.connections.forProvision(connection);
    req.onReached(() => this.#abandon(connection, pvName, uid));
    const reclaimPolicy = storageClass.reclaimPolicy ?? 'Delete';
    await this.#ensureAppInstance(conn.client, request, pvc, className, { secretRef: conn.secretRef, reclaimPolicy }, req.logger);
    if (source && volume.sizeGiB > 0) await this.#growClone(conn.client, pvName, volume.sizeGiB);

    const pv = buildVolume({
      pvName,
      claim: pvc,
      pvClassName: req.pvClassName,
      reclaimPolicy,
      provisionerName: this.#d.provisionerName,
      volume,
      endpoint: conn.endpoint,
      tenant: conn.tenant,
      secretRef: conn.secretRef,
      // What the create decided; a clone copies its source's policy, a Datera-side template its own.
      performancePolicy: source || volume.dateraTemplate ? undefined : volume.qos,
    });
    return { pv, sizeGiB: volume.sizeGiB, template: volume.template ?? '' };
  }

  async delete(pv: V1PersistentVolume): Promise<DeleteResult> {
    const ai = this.storageName(pv);
    const conn = await this.#d.connections.forVolume(pv);
    // Ownership first: a PV can name an app instance this cluster did not make (a restored or
    // second cluster sharing the tenant, an edited PV). Gone already counts as deleted.
    const md = await conn.client.getMetadata(ai).catch((e: unknown) => (isDateraNotFound(e) ? undefined : Promise.reject(e)));
    if (md) {
      const verdict = deletableBy(md, this.#deleterOf(pv));
      if (!verdict.ok) return { kind: 'refused', reason: verdict.reason };
      await deleteAppInstance(conn.client, ai);
    }
    return { kind: 'deleted' };
  }

  /**
   * Grows the PV's Datera volume: ownership first (the metadata must name this provisioner, cluster,
   * PV and claim, as for a delete), then the volume's own size decides whether the PUT is needed, so
   * a repeated attempt never resizes twice and never shrinks. The performance policy is set only when
   * the class/template limits differ between the old and the new size (per-GiB limits) and the
   * volume does not already have them.
   */
  async expand(pv: V1PersistentVolume, req: ExpandRequest): Promise<ExpandResult> {
    const ai = this.storageName(pv);
    const conn = await this.#d.connections.forVolume(pv);
    const md = await conn.client.getMetadata(ai).catch((e: unknown) =>
      isDateraNotFound(e) ? Promise.reject(new FinalError(`Datera app instance ${ai} of volume ${pv.metadata!.name!} does not exist`)) : Promise.reject(e),
    );
    const verdict = deletableBy(md, this.#deleterOf(pv));
    if (!verdict.ok) throw new FinalError(`Datera app instance ${ai} is not provably volume ${pv.metadata!.name!}'s (${verdict.reason}); not resizing it`);
    const inst = await conn.client.getAppInstance(ai);
    const siName = pv.spec?.flexVolume?.options?.storageInstance ?? STORAGE_INSTANCE_NAME;
    const volName = pv.spec?.flexVolume?.options?.volume ?? VOLUME_NAME;
    const vol = inst.storage_instances?.find((s) => s.name === siName)?.volumes?.find((v) => v.name === volName);
    if (!vol) throw new FinalError(`Datera app instance ${ai} has no volume ${siName}/${volName}`);
    let sizeGiB = vol.size;
    let grown = false;
    if (sizeGiB < req.targetGiB) {
      await conn.client.resizeVolume(ai, siName, volName, req.targetGiB);
      sizeGiB = req.targetGiB;
      grown = true;
    }
    const result: ExpandResult = { sizeGiB, grown };
    if (req.qos && !sameQos(req.qos, req.qosBefore) && !sameQos(req.qos, vol.performance_policy)) {
      await conn.client.setPerformancePolicy(ai, siName, volName, req.qos);
      result.qosSet = req.qos;
    }
    return result;
  }

  /** Records `k8s-reclaim-policy: Retain` on the PV's app instance, if it is ours and says otherwise. */
  async markRetained(pv: V1PersistentVolume): Promise<void> {
    const ai = this.storageName(pv);
    const conn = await this.#d.connections.forVolume(pv);
    const md = await conn.client.getMetadata(ai).catch((e: unknown) => (isDateraNotFound(e) ? undefined : Promise.reject(e)));
    if (!md || md[MD.reclaimPolicy] === 'Retain') return;
    if (!deletableBy(md, this.#deleterOf(pv)).ok) return;
    await conn.client.putMetadata(ai, { [MD.reclaimPolicy]: 'Retain' });
  }

  async readPerformancePolicy(pv: V1PersistentVolume): Promise<PerformancePolicy> {
    const conn = await this.#d.connections.forVolume(pv);
    const ai = await conn.client.getAppInstance(this.storageName(pv));
    return normalPolicy(ai.storage_instances?.[0]?.volumes?.[0]?.performance_policy);
  }

  /**
   * Changes the performance policy of the PV's app instance, only when its metadata names this
   * provisioner, cluster, PV and claim (as for a resize or a delete): a PV whose volumeID was edited
   * to point at another volume never changes that volume. Not provably ours: FinalError, nothing set.
   */
  async setPerformancePolicy(pv: V1PersistentVolume, policy: PerformancePolicy): Promise<void> {
    const ai = this.storageName(pv);
    const conn = await this.#d.connections.forVolume(pv);
    const md = await conn.client.getMetadata(ai);
    const verdict = deletableBy(md, this.#deleterOf(pv));
    if (!verdict.ok) throw new FinalError(`Datera app instance ${ai} is not provably volume ${pv.metadata!.name!}'s (${verdict.reason}); not changing its QoS`);
    await conn.client.setPerformancePolicy(ai, STORAGE_INSTANCE_NAME, VOLUME_NAME, normalPolicy(policy));
  }

  /** Who asks to delete a PV's app instance: its metadata must name them. */
  #deleterOf(pv: V1PersistentVolume) {
    const claimUid = pv.spec?.claimRef?.uid;
    return { provisionerNames: this.#d.names, clusterId: this.#d.clusterId, pvName: pv.metadata!.name!, ...(claimUid ? { claimUid } : {}) };
  }

  /**
   * The undo of a create whose claim vanished before its PV was saved: through the connection the
   * create used, and only when the metadata says the app instance is this claim's, this
   * provisioner's and this cluster's. Gone already, or not ours: nothing to do.
   */
  async #abandon(connection: ConnectionArgs, pvName: string, uid: string): Promise<void> {
    const conn = await this.#d.connections.forProvision(connection);
    const md = await conn.client.getMetadata(pvName).catch((e: unknown) => (isDateraNotFound(e) ? undefined : Promise.reject(e)));
    if (!md) return;
    const verdict = deletableBy(md, { provisionerNames: this.#d.names, clusterId: this.#d.clusterId, pvName, claimUid: uid });
    if (verdict.ok) {
      await deleteAppInstance(conn.client, pvName);
      this.#d.logger.info('deleted app instance of a claim removed before its PV was saved', { appInstance: pvName, uid });
    } else {
      this.#d.logger.warn('not deleting app instance of a removed claim: it is not ours', { appInstance: pvName, uid, reason: verdict.reason });
    }
  }

  /**
   * Creates the app instance or adopts the one an earlier attempt made. The POST is the look-up:
   * 409 means the name exists, and its metadata must say it was made for this claim (empty
   * metadata = our earlier attempt stopped before tagging it). Anything else is someone else's
   * volume, and we refuse rather than hand it to this claim.
   */
  async #ensureAppInstance(client: DateraApi, request: AppInstanceCreate, pvc: V1PersistentVolumeClaim, className: string, made: { secretRef: { name: string; namespace: string }; reclaimPolicy: string }, log: Logger): Promise<void> {
    const name = request.name;
    const md = ownershipMetadata(this.#d.provisionerName, pvc, className, name, { clusterId: this.#d.clusterId, ...made, createdAt: new Date() });
    try {
      await client.createAppInstance(request);
    } catch (err) {
      if (!isDateraConflict(err)) throw err;
      const existing = await client.getMetadata(name);
      if (!metadataIsOurs(existing, this.#d.names, pvc.metadata!.uid!, this.#d.clusterId))
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
    if (!this.owns(srcPv)) throw new FinalError(`clone source claim ${ns}/${ref!.name} is not a Datera volume of this provisioner`);
    const srcAi = srcPv.spec?.flexVolume?.options?.volumeID ?? srcPvName!;
    // The flexVolume source (options.size) is immutable after creation; a grown PV says its size in capacity.
    const srcGiB = Math.max(Number(srcPv.spec?.flexVolume?.options?.size ?? 0), pvCapacityGiB(srcPv));
    if (volume.sizeGiB < srcGiB) throw new FinalError(`clone must be at least as large as its source (${srcGiB} GiB), asked for ${volume.sizeGiB} GiB`);
    const { template: _t, dateraTemplate: _d, ...plain } = volume; // a clone takes its settings from the source
    return {
      request: {
        name: request.name,
        create_mode: request.create_mode ?? 'kubernetes',
        clone_volume_src: { path: `/app_instances/${srcAi}/storage_instances/${STORAGE_INSTANCE_NAME}/volumes/${VOLUME_NAME}` },
      },
      volume: plain,
    };
  }

  async #growClone(client: DateraApi, name: string, sizeGiB: number): Promise<void> {
    const ai = await client.getAppInstance(name);
    const vol = ai.storage_instances?.[0]?.volumes?.[0];
    if (vol && vol.size < sizeGiB) await client.resizeVolume(name, STORAGE_INSTANCE_NAME, VOLUME_NAME, sizeGiB);
  }
}

/**
 * The create request and PV parameters for a claim, exactly as provision() computes them before a
 * clone replaces the request: the claim's annotations, size and access modes, the class's
 * parameters, the templates and the provisioner's default fsType. Pure (`datera-provisioner
 * explain` prints its result).
 */
export function translateClaim(a: { claim: V1PersistentVolumeClaim; pvName: string; className: string; storageClass: V1StorageClass; templates: TemplateSet; defaultFsType: string }): Translation {
  const pvc = a.claim;
  const size = requestedStorage(pvc);
  return appInstanceRequest({
    pvName: a.pvName,
    className: a.className,
    parameters: a.storageClass.parameters ?? {},
    claim: {
      namespace: pvc.metadata!.namespace!,
      name: pvc.metadata!.name!,
      uid: pvc.metadata!.uid!,
      annotations: pvc.metadata?.annotations ?? {},
      ...(size !== undefined ? { requestBytes: parseQuantity(size) ?? -1n } : {}),
      accessModes: pvc.spec?.accessModes ?? [],
    },
    templates: a.templates,
    defaults: { fsType: a.defaultFsType },
  });
}

/** Offline (force) then delete; "not found" at either step means already gone. Shared with the orphan sweep. */
export async function deleteAppInstance(client: DateraApi, ai: string): Promise<void> {
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
