// SPDX-License-Identifier: Apache-2.0
// The provisioner's parts, one named step each, for run() in lib/main.ts to put together: the
// Kubernetes client, the caches, the event recorder, the Datera connections, the cluster's
// identity, the controller, the health policy and leader election. Effects on the process
// (exit, signals) stay in lib/main.ts.
import { readFileSync } from 'node:fs';
import type { KubernetesObject, V1ConfigMap, V1PersistentVolume, V1PersistentVolumeClaim, V1Secret, V1StorageClass } from '@kubernetes/client-node';
import type { Config } from './config.js';
import { DateraClient } from './datera/client.js';
import { isKubeNotFound, statusOf } from './kube/errors.js';
import { EventRecorder, eventComponent } from './kube/events.js';
import { Informer } from './kube/informer.js';
import { loadKubeConfig } from './kube/kubeconfig.js';
import { LeaderElector, leaseRequestTimeoutMs, type StopReason } from './kube/lease.js';
import { RateLimiter } from './kube/ratelimit.js';
import { KubeRest } from './kube/rest.js';
import type { HealthSource } from './observability/http.js';
import type { Logger } from './observability/logger.js';
import type { Metrics } from './observability/metrics.js';
import { ProvisionController } from './provision/controller.js';
import { DateraConnections } from './provision/credentials.js';

/**
 * What the caches keep of each object: everything but managedFields and the last-applied
 * annotation, which nothing here reads and which are often the bulk of an object.
 */
export function slimObject<T extends KubernetesObject>(obj: T): T {
  const md = obj.metadata;
  if (!md) return obj;
  const lastApplied = 'kubectl.kubernetes.io/last-applied-configuration';
  if (md.managedFields === undefined && md.annotations?.[lastApplied] === undefined) return obj;
  const { managedFields: _m, ...rest } = md;
  if (rest.annotations?.[lastApplied] !== undefined) {
    const { [lastApplied]: _l, ...annotations } = rest.annotations;
    rest.annotations = annotations;
  }
  return { ...obj, metadata: rest };
}

/**
 * The one Kubernetes client of the process (lib/kube/rest.ts): the controller's writes and reads
 * on the shared budget (kubeApiQps/kubeApiBurst); views of it for events and the Lease.
 */
export function kubeClient(config: Config, metrics: Metrics): KubeRest {
  const kc = loadKubeConfig({ kubeconfig: config.kubeconfig });
  return new KubeRest(kc, {
    limiter: new RateLimiter(config.kubeApiQps, config.kubeApiBurst),
    userAgent: `datera-provisioner/${config.identity}`,
    ...metrics.kubeHooks,
  });
}

export interface Caches {
  claims: Informer<V1PersistentVolumeClaim>;
  volumes: Informer<V1PersistentVolume>;
  classes: Informer<V1StorageClass>;
  configMaps: Informer<V1ConfigMap>;
  /** In start order: the templates and classes before the objects that need them. */
  all: Array<Informer<KubernetesObject>>;
}

/**
 * The four caches. Each collection's path (and selector) is written once and serves both its
 * paged plain-JSON list and its watch; objects are slimmed (slimObject) as they arrive.
 */
export function caches(config: Config, rest: KubeRest, logger: Logger): Caches {
  const log = logger.child({ subsystem: 'informer' });
  // Lists of 10,000 objects take longer than one write: their own timeout.
  const lister = rest.with({ timeoutMs: 60_000 });
  const cache = <T extends KubernetesObject>(name: string, path: string, fieldSelector?: string): Informer<T> =>
    new Informer<T>({
      name,
      path,
      ...(fieldSelector ? { fieldSelector } : {}),
      transform: slimObject,
      watch: rest,
      resyncPeriodMs: config.resyncPeriodMs,
      logger: log,
      list: () => lister.list(path, { fieldSelector }, slimObject<T>),
    });
  const claims = cache<V1PersistentVolumeClaim>('pvc', '/api/v1/persistentvolumeclaims');
  const volumes = cache<V1PersistentVolume>('pv', '/api/v1/persistentvolumes');
  const classes = cache<V1StorageClass>('storageclass', '/apis/storage.k8s.io/v1/storageclasses');
  const configMaps = cache<V1ConfigMap>('configmap', `/api/v1/namespaces/${config.namespace}/configmaps`, `metadata.name=${config.templatesConfigMap}`);
  return { claims, volumes, classes, configMaps, all: [configMaps, classes, volumes, claims] as Array<Informer<KubernetesObject>> };
}

/** Events on their own budget (eventQps/eventBurst): a burst of claims must not make PV writes wait behind events. */
export function eventRecorder(config: Config, rest: KubeRest, logger: Logger): EventRecorder {
  return new EventRecorder({
    core: rest.withLimiter(new RateLimiter(config.eventQps, config.eventBurst)),
    // sig-storage-lib-external-provisioner's form: `<provisioner name>_<identity>`.
    component: eventComponent(config.provisionerName, config.identity),
    reportingComponent: config.provisionerName,
    reportingInstance: config.identity,
    logger: logger.child({ subsystem: 'events' }),
  });
}

/** A Secret's data as text (`data` is base64, `stringData` plain), with its type. */
export function decodeSecret(s: Pick<V1Secret, 'type' | 'data' | 'stringData'>): { type?: string; data: Record<string, string> } {
  const data: Record<string, string> = {};
  for (const [k, v] of Object.entries(s.data ?? {})) data[k] = Buffer.from(v, 'base64').toString('utf8');
  for (const [k, v] of Object.entries(s.stringData ?? {})) data[k] = v;
  return { ...(s.type ? { type: s.type } : {}), data };
}

/** The Datera clients, one per credentials Secret and endpoint (lib/provision/credentials.ts). */
export function dateraConnections(config: Config, rest: KubeRest, metrics: Metrics, logger: Logger): DateraConnections {
  const caBundle = config.datera.caBundleFile ? readFileSync(config.datera.caBundleFile, 'utf8') : undefined;
  return new DateraConnections({
    defaults: config.datera,
    defaultSecret: config.credentialsSecret,
    homeNamespace: config.namespace,
    logger,
    readSecret: async (namespace, name) => {
      try {
        return decodeSecret(await rest.readNamespacedSecret({ name, namespace }));
      } catch (err) {
        if (isKubeNotFound(err)) return undefined;
        throw err;
      }
    },
    makeClient: (c) =>
      new DateraClient({
        endpoint: c.endpoint,
        username: c.username,
        password: c.password,
        tenant: c.tenant,
        ...(c.ldapServer ? { ldapServer: c.ldapServer } : {}),
        apiVersion: config.datera.apiVersion,
        connections: config.datera.connections,
        requestTimeoutMs: config.datera.requestTimeoutMs,
        deadlineMs: config.datera.deadlineMs,
        ...(config.datera.maxResponseBytes ? { maxResponseBytes: config.datera.maxResponseBytes } : {}),
        ...(caBundle ? { caBundle } : {}),
        insecureSkipTlsVerify: config.datera.insecureSkipTlsVerify,
        logger: logger.child({ subsystem: 'datera' }),
        observe: (o) => metrics.dateraRequest.observe({ method: o.method, route: o.route, status: String(o.status) }, o.seconds),
      }),
  });
}

/**
 * This cluster's identity for ownership metadata: the `clusterId` setting, else the uid of the
 * kube-system namespace (read once). A failed read stops start-up with what to do: running
 * without an identity would write volumes that no later delete could prove are ours.
 */
export async function resolveClusterId(config: Pick<Config, 'clusterId'>, core: Pick<KubeRest, 'readNamespace'>, logger: Logger): Promise<string> {
  if (config.clusterId) {
    logger.info('cluster id from the clusterId setting', { clusterId: config.clusterId });
    return config.clusterId;
  }
  try {
    const ns = await core.readNamespace({ name: 'kube-system' });
    const uid = ns.metadata?.uid;
    if (!uid) throw new Error('the namespace has no uid');
    logger.info('cluster id from the kube-system namespace uid', { clusterId: uid });
    return uid;
  } catch (err) {
    const s = statusOf(err)?.code;
    throw new Error(
      `cannot read the uid of namespace kube-system as this cluster's id (${s ? `HTTP ${s}` : (err as Error).message}): allow "get" on namespaces/kube-system (manifests/base/rbac.yaml does) or set the clusterId setting (--cluster-id, DATERA_CLUSTER_ID) to a value unique to this cluster`,
      { cause: err },
    );
  }
}

export interface ControllerParts {
  rest: KubeRest;
  caches: Caches;
  recorder: EventRecorder;
  connections: DateraConnections;
  metrics: Metrics;
  logger: Logger;
}

/** The controller with its settings from the config. */
export function controller(config: Config, clusterId: string, p: ControllerParts): ProvisionController {
  return new ProvisionController(
    {
      provisionerName: config.provisionerName,
      extraProvisionerNames: config.extraProvisionerNames,
      legacyAlphaClasses: config.legacyAlphaClasses,
      namespace: config.namespace,
      templatesConfigMap: config.templatesConfigMap,
      templatesKey: config.templatesKey,
      defaultFsType: config.defaultFsType,
      workers: config.workers,
      retryInitialMs: config.retryInitialMs,
      retryMaxMs: config.retryMaxMs,
      finalErrorRetryMs: config.finalErrorRetryMs,
      provisioningEventDelayMs: config.provisioningEventDelayMs,
      qosUpdatesPerSecond: config.qosUpdatesPerSecond,
      clusterId,
      orphanSweep: { mode: config.orphanSweep, intervalMs: config.orphanSweepIntervalMs, graceMs: config.orphanSweepGraceMs, startDelayMs: config.orphanSweepDelayMs },
    },
    {
      core: p.rest,
      claims: p.caches.claims,
      volumes: p.caches.volumes,
      classes: p.caches.classes,
      configMaps: p.caches.configMaps,
      recorder: p.recorder,
      connections: p.connections,
      metrics: p.metrics,
      logger: p.logger.child({ subsystem: 'controller' }),
    },
  );
}

/**
 * What the probes answer. /healthz: the process runs (also while the caches sync). /readyz: every
 * cache has synced (on standbys too). /healthz/leader-election: fails only when the leader has
 * not renewed its lease for a whole lease duration.
 */
export function healthPolicy(config: Config, informers: ReadonlyArray<{ synced: boolean }>, elector: () => LeaderElector | undefined): HealthSource {
  const le = config.leaderElection;
  return {
    healthy: () => ({ ok: true, detail: 'running' }),
    ready: () => {
      const notSynced = informers.filter((i) => !i.synced).length;
      return notSynced ? { ok: false, detail: `${notSynced} cache(s) not synced` } : { ok: true, detail: elector()?.isLeader === false ? 'standby, caches synced' : 'caches synced' };
    },
    leaderHealthy: () => {
      const e = elector();
      if (!e) return { ok: true, detail: le.enabled ? 'leader election not started yet (caches syncing)' : 'leader election disabled' };
      if (!e.isLeader) return { ok: true, detail: 'standby' };
      const last = e.state().lastRenewAt;
      const age = last === undefined ? Infinity : performance.now() - last;
      return age <= le.leaseDurationMs ? { ok: true, detail: 'leading' } : { ok: false, detail: `leader has not renewed for ${Math.round(age)} ms` };
    },
  };
}

/**
 * The leader elector: starts the controller on winning; on losing the lease calls `lost` (the
 * process must stop: two leaders must never work at once).
 */
export function leaderElector(
  config: Config,
  rest: KubeRest,
  metrics: Metrics,
  logger: Logger,
  on: { started: () => void; lost: (reason: StopReason) => void },
): LeaderElector {
  const le = config.leaderElection;
  metrics.leader.set({ name: le.leaseName }, 0);
  return new LeaderElector({
    // Off the controller's budget (a throttled controller must never starve renewals), with
    // the elector's own request timeout.
    api: rest.with({ limiter: undefined, timeoutMs: leaseRequestTimeoutMs(le) }),
    name: le.leaseName,
    namespace: le.namespace,
    identity: config.identity,
    leaseDurationMs: le.leaseDurationMs,
    renewDeadlineMs: le.renewDeadlineMs,
    retryPeriodMs: le.retryPeriodMs,
    logger: logger.child({ subsystem: 'leader-election' }),
    onStartedLeading: () => {
      metrics.leader.set({ name: le.leaseName }, 1);
      logger.info('became leader; starting workers', { lease: `${le.namespace}/${le.leaseName}` });
      on.started();
    },
    onStoppedLeading: (reason) => {
      metrics.leader.set({ name: le.leaseName }, 0);
      if (reason === 'lost') on.lost(reason);
    },
    onNewLeader: (id) => logger.info('leader observed', { leader: id ?? '(none)' }),
  });
}
