// SPDX-License-Identifier: Apache-2.0
// The controller with in-memory caches, a recording Kubernetes API that (unless the spec passes
// one without them) also answers the confirming GETs (from `server`), and the real Datera
// simulator over HTTP. The one set-up of the controller specs that run against the simulator.
import type { V1ConfigMap, V1PersistentVolume, V1PersistentVolumeClaim, V1StorageClass } from '@kubernetes/client-node';
import { DateraClient } from '../../lib/datera/client.js';
import { DateraSimulator } from '../../lib/sim/server.js';
import { nullLogger, type Logger } from '../../lib/observability/logger.js';
import { Metrics } from '../../lib/observability/metrics.js';
import { ProvisionController, type ControllerOptions } from '../../lib/provision/controller.js';
import { DateraConnections } from '../../lib/provision/credentials.js';
import { PROVISIONER } from '../support/builders.js';
import { FakeCore, FakeInformer, type Recorded } from './controller-fakes.js';

export { apiError } from './controller-fakes.js';

export interface Harness {
  claims: FakeInformer<V1PersistentVolumeClaim>;
  volumes: FakeInformer<V1PersistentVolume>;
  classes: FakeInformer<V1StorageClass>;
  configMaps: FakeInformer<V1ConfigMap>;
  core: FakeCore;
  events: Recorded[];
  metrics: Metrics;
  connections: DateraConnections;
  secrets: Map<string, { type?: string; data: Record<string, string> }>;
  ctrl: ProvisionController;
  /** A second controller on the same caches, API and Datera (a restart): the first one is stopped. */
  restart(options?: Partial<ControllerOptions>): Promise<ProvisionController>;
  settle(): Promise<void>;
  close(): Promise<void>;
}

export const CLUSTER_ID = '5e3a2c1d-0000-4000-8000-00000000c1a5';

/**
 * `options` override the defaults below (cluster id CLUSTER_ID, retries after 20 ms); `core` is the
 * recording API, with the confirming reads unless the spec passes `new FakeCore({ confirmingReads: false })`.
 * The controller is not started.
 */
export function newHarness(sim: DateraSimulator, simUrl: string, options: Partial<ControllerOptions> = {}, logger: Logger = nullLogger(), core = new FakeCore()): Harness {
  const claims = new FakeInformer<V1PersistentVolumeClaim>();
  const volumes = new FakeInformer<V1PersistentVolume>();
  const classes = new FakeInformer<V1StorageClass>();
  const configMaps = new FakeInformer<V1ConfigMap>();
  const events: Recorded[] = [];
  const metrics = new Metrics({ defaultMetrics: false });
  const secrets = new Map<string, { type?: string; data: Record<string, string> }>();
  const connections = new DateraConnections({
    defaults: { endpoint: simUrl, username: 'admin', password: 'secret_pw1', tenant: '/root', apiVersion: '2.2', insecureSkipTlsVerify: false, requestTimeoutMs: 2000, deadlineMs: 1500, connections: 8 },
    defaultSecret: { name: 'datera-credentials', namespace: 'datera-system' },
    readSecret: async (ns, name) => secrets.get(`${ns}/${name}`),
    makeClient: (c) => new DateraClient({ ...c, requestTimeoutMs: 2000, deadlineMs: 1500, retryBaseMs: 10, retryMaxMs: 50 }),
    logger: nullLogger(),
  });
  void sim;
  const make = (o: Partial<ControllerOptions>) =>
    new ProvisionController(
      {
        provisionerName: PROVISIONER,
        extraProvisionerNames: [],
        legacyAlphaClasses: {},
        namespace: 'datera-system',
        templatesConfigMap: 'datera-templates',
        templatesKey: 'templates.yaml',
        defaultFsType: 'xfs',
        workers: 4,
        retryInitialMs: 20,
        retryMaxMs: 20,
        finalErrorRetryMs: 600_000,
        provisioningEventDelayMs: 60_000,
        clusterId: CLUSTER_ID,
        ...o,
      },
      {
        core,
        claims,
        volumes,
        classes,
        configMaps,
        recorder: { record: (obj, type, reason, message) => events.push({ kind: obj.kind, name: obj.metadata.name, type, reason, message }) },
        connections,
        metrics,
        logger,
      },
    );
  const h: Harness = {
    claims, volumes, classes, configMaps, core, events, metrics, connections, secrets,
    ctrl: make(options),
    async restart(o = {}) {
      await h.ctrl.stop();
      h.ctrl = make({ ...options, ...o });
      // A new process sees the caches' current content as initial adds (classes and templates first, as the informers start).
      for (const sc of classes.list()) classes.set(sc);
      for (const cm of configMaps.list()) configMaps.set(cm);
      for (const c of claims.list()) claims.set(c);
      for (const v of volumes.list()) volumes.set(v);
      h.ctrl.start();
      return h.ctrl;
    },
    async settle() {
      await new Promise((r) => setTimeout(r, 5));
      await h.ctrl.queue.idle();
    },
    async close() {
      await h.ctrl.stop();
      await connections.close();
    },
  };
  return h;
}

/** Waits until `cond` holds, at most `ms` (polls; does not wait for the queue, whose handlers may be held). */
export async function eventually(_h: Harness, cond: () => boolean, ms = 3000): Promise<void> {
  const until = Date.now() + ms;
  while (!cond() && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
}

/**
 * One simulator for a describe block (admin / secret_pw1), reset with no faults before each
 * test, and a client that talks to it directly (to seed app instances the controller did not make).
 */
export function useSimulator(): { readonly sim: DateraSimulator; readonly url: string; readonly direct: DateraClient } {
  const s = {} as { sim: DateraSimulator; url: string; direct: DateraClient };
  before(async () => {
    s.sim = new DateraSimulator({ users: [{ name: 'admin', password: 'secret_pw1' }] });
    s.url = await s.sim.start();
    s.direct = new DateraClient({ endpoint: s.url, username: 'admin', password: 'secret_pw1' });
  });
  after(async () => {
    await s.direct?.close();
    await s.sim?.stop();
  });
  beforeEach(() => {
    s.sim.reset();
    s.sim.setFaults({});
  });
  return s;
}
