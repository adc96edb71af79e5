#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// Wiring only: config -> logger -> clients -> informers -> leader lease -> controller -> http.
import { readFileSync } from 'node:fs';
import { type KubernetesObject, type V1ConfigMap, type V1PersistentVolume, type V1PersistentVolumeClaim, type V1StorageClass } from '@kubernetes/client-node';
import { ConfigError, describeConfig, loadConfig, type Config } from './config.js';
import { helpOrVersion } from './config-doc.js';
import { DateraClient } from './datera/client.js';
import { isKubeNotFound, statusOf } from './kube/errors.js';
import { EventRecorder, eventComponent } from './kube/events.js';
import { Informer } from './kube/informer.js';
import { loadKubeConfig } from './kube/kubeconfig.js';
import { LeaderElector, leaseRequestTimeoutMs } from './kube/lease.js';
import { RateLimiter } from './kube/ratelimit.js';
import { KubeRest } from './kube/rest.js';
import { startHttp } from './observability/http.js';
import { createLogger, type Logger } from './observability/logger.js';
import { Metrics } from './observability/metrics.js';
import { ProvisionController } from './provision/controller.js';
import { DateraConnections } from './provision/credentials.js';
import { VERSION } from './version.js';

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

export interface Running {
  stop(): Promise<void>;
  controller: ProvisionController;
  httpUrl: string;
  isLeader(): boolean;
}

/** Process-level effects of run(), injectable for tests. */
export interface RunHooks {
  /** Ends the process; called when the leader lease is lost (default process.exit). */
  exit?: (code: number) => void;
}

/**
 * Starts the provisioner; resolves once caches are synced. The HTTP endpoint listens from the
 * start: /healthz answers during the initial list, /readyz only once every cache has synced.
 */
export async function run(config: Config, logger: Logger, hooks: RunHooks = {}): Promise<Running> {
  const exit = hooks.exit ?? ((code: number) => process.exit(code));
  const metrics = new Metrics();
  const kc = loadKubeConfig({ kubeconfig: config.kubeconfig });
  // Every Kubernetes call goes through one plain-JSON client (lib/kube/rest.ts): the controller's
  // writes and reads on the shared budget, events on their own, the Lease on none.
  const userAgent = `datera-provisioner/${config.identity}`;
  const rest = new KubeRest(kc, { limiter: new RateLimiter(config.kubeApiQps, config.kubeApiBurst), userAgent, ...metrics.kubeHooks });

  const informerLog = logger.child({ subsystem: 'informer' });
  const transform = slimObject;
  const watch = { watch: rest };
  // Plain-JSON paged lists (not client-node models): a quarter of the memory, same shape as watch events.
  const lister = rest.with({ timeoutMs: 60_000 });
  const resync = config.resyncPeriodMs;
  const claims = new Informer<V1PersistentVolumeClaim>({
    name: 'pvc', transform, ...watch, path: '/api/v1/persistentvolumeclaims', resyncPeriodMs: resync, logger: informerLog,
    list: () => lister.list('/api/v1/persistentvolumeclaims', {}, transform<V1PersistentVolumeClaim>),
  });
  const volumes = new Informer<V1PersistentVolume>({
    name: 'pv', transform, ...watch, path: '/api/v1/persistentvolumes', resyncPeriodMs: resync, logger: informerLog,
    list: () => lister.list('/api/v1/persistentvolumes', {}, transform<V1PersistentVolume>),
  });
  const classes = new Informer<V1StorageClass>({
    name: 'storageclass', transform, ...watch, path: '/apis/storage.k8s.io/v1/storageclasses', resyncPeriodMs: resync, logger: informerLog,
    list: () => lister.list('/apis/storage.k8s.io/v1/storageclasses', {}, transform<V1StorageClass>),
  });
  const cmSelector = `metadata.name=${config.templatesConfigMap}`;
  const configMaps = new Informer<V1ConfigMap>({
    name: 'configmap', transform, ...watch, path: `/api/v1/namespaces/${config.namespace}/configmaps`, fieldSelector: cmSelector, resyncPeriodMs: resync, logger: informerLog,
    list: () => lister.list(`/api/v1/namespaces/${config.namespace}/configmaps`, { fieldSelector: cmSelector }, transform<V1ConfigMap>),
  });

  // Events ride on their own budget: a burst of claims must not make PV writes wait behind events.
  const eventLimiter = new RateLimiter(config.eventQps, config.eventBurst);
  const recorder = new EventRecorder({
    core: rest.withLimiter(eventLimiter),
    // sig-storage-lib-external-provisioner's form: `<provisioner name>_<identity>`.
    component: eventComponent(config.provisionerName, config.identity),
    reportingComponent: config.provisionerName,
    reportingInstance: config.identity,
    logger: logger.child({ subsystem: 'events' }),
  });
  const caBundle = config.datera.caBundleFile ? readFileSync(config.datera.caBundleFile, 'utf8') : undefined;
  const connections = new DateraConnections({
    defaults: config.datera,
    defaultSecret: config.credentialsSecret,
    homeNamespace: config.namespace,
    logger,
    readSecret: async (namespace, name) => {
      try {
        const s = await rest.readNamespacedSecret({ name, namespace });
        const data: Record<string, string> = {};
        for (const [k, v] of Object.entries(s.data ?? {})) data[k] = Buffer.from(v, 'base64').toString('utf8');
        for (const [k, v] of Object.entries(s.stringData ?? {})) data[k] = v;
        return { ...(s.type ? { type: s.type } : {}), data };
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

  const informers = [configMaps, classes, volumes, claims];
  let elector: LeaderElector | undefined;
  const le = config.leaderElection;

  // Health endpoints before the caches: a slow initial list must not fail the liveness probe
  // (/healthz), while /readyz says "not synced" until it is done.
  const http = await startHttp(config.httpAddress, config.httpPort, metrics, {
    healthy: () => ({ ok: true, detail: 'running' }),
    ready: () => {
      const notSynced = informers.filter((i) => !i.synced).length;
      return notSynced ? { ok: false, detail: `${notSynced} cache(s) not synced` } : { ok: true, detail: elector?.isLeader === false ? 'standby, caches synced' : 'caches synced' };
    },
    leaderHealthy: () => {
      if (!elector) return { ok: true, detail: le.enabled ? 'leader election not started yet (caches syncing)' : 'leader election disabled' };
      if (!elector.isLeader) return { ok: true, detail: 'standby' };
      const last = elector.state().lastRenewAt;
      const age = last === undefined ? Infinity : performance.now() - last;
      return age <= le.leaseDurationMs ? { ok: true, detail: 'leading' } : { ok: false, detail: `leader has not renewed for ${Math.round(age)} ms` };
    },
  });
  logger.info('health endpoints listening', { http: http.url });

  // After the health endpoints: a slow API server at start-up must not fail the liveness probe.
  let clusterId: string;
  try {
    clusterId = await resolveClusterId(config, rest, logger);
  } catch (err) {
    await new Promise<void>((r) => http.close(() => r()));
    throw err;
  }
  const controller = new ProvisionController(
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
      clusterId,
      orphanSweep: { mode: config.orphanSweep, intervalMs: config.orphanSweepIntervalMs, graceMs: config.orphanSweepGraceMs },
    },
    { core: rest, claims, volumes, classes, configMaps, recorder, connections, metrics, logger: logger.child({ subsystem: 'controller' }) },
  );


  // Caches first, on every replica: a standby keeps them warm so a failover starts at once.
  const t0 = performance.now();
  try {
    await Promise.all(informers.map((i) => i.start()));
  } catch (err) {
    for (const i of informers) i.stop();
    await new Promise<void>((r) => http.close(() => r()));
    throw err;
  }
  logger.info('caches synced', { ms: Math.round(performance.now() - t0), claims: claims.size, volumes: volumes.size, classes: classes.size });

  const electionAbort = new AbortController();
  let stopping = false;
  if (le.enabled) {
    metrics.leader.set({ name: le.leaseName }, 0);
    elector = new LeaderElector({
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
        controller.start();
      },
      onStoppedLeading: (reason) => {
        metrics.leader.set({ name: le.leaseName }, 0);
        if (reason !== 'lost') return;
        // Two leaders must never work at once: stop now, also while draining after SIGTERM (the
        // drain waits for in-flight work, which must not go on writing once another replica may
        // lead), and let the Deployment restart us as a standby.
        logger.error('lost the leader lease; exiting so that only one replica provisions', { reason, draining: stopping });
        exit(1);
      },
      onNewLeader: (id) => logger.info('leader observed', { leader: id ?? '(none)' }),
    });
    void elector.run(electionAbort.signal).catch((err: unknown) => logger.error('leader election stopped', { err }));
  } else {
    controller.start();
  }

  logger.info('provisioner running', { http: http.url, provisioner: config.provisionerName, identity: config.identity });

  return {
    controller,
    httpUrl: http.url,
    isLeader: () => (elector ? elector.isLeader : true),
    async stop() {
      stopping = true;
      await controller.stop(); // in-flight operations finish (the lease is still renewed meanwhile)
      if (elector) await elector.release(); // only writes if we hold it; a standby takes over at once
      electionAbort.abort();
      for (const i of informers) i.stop();
      await recorder.flush();
      await rest.close();
      await connections.close();
      await new Promise<void>((r) => http.close(() => r()));
    },
  };
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

async function main(): Promise<void> {
  const info = helpOrVersion(process.argv.slice(2));
  if (info !== undefined) {
    process.stdout.write(info);
    return;
  }
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`datera-provisioner: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const logger = createLogger({ level: config.logLevel, component: 'datera-provisioner' });
  logger.info('starting', { version: VERSION, config: describeConfig(config) });
  process.on('unhandledRejection', (err) => logger.error('unhandled rejection', { err }));
  let running: Running;
  try {
    running = await run(config, logger);
  } catch (err) {
    logger.error('start-up failed', { err });
    process.exit(1);
  }
  let shuttingDown = false;
  const shutdown = (signal: string) => {
    if (shuttingDown) return;
    shuttingDown = true;
    logger.info('shutting down', { signal });
    const force = setTimeout(() => process.exit(1), 25_000);
    force.unref();
    running.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error('shutdown failed', { err });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('/main.ts') || process.argv[1]?.endsWith('/main.js')) {
  void main();
}
