// SPDX-License-Identifier: Apache-2.0
// The controller with in-memory caches, a recording Kubernetes API that also answers the
// confirming GETs (from `server`), and the real Datera simulator over HTTP. Used by the
// ownership and orphan-sweep specs.
import type { V1ConfigMap, V1PersistentVolume, V1PersistentVolumeClaim, V1StorageClass } from '@kubernetes/client-node';
import { DateraClient } from '../../lib/datera/client.js';
import { DateraSimulator } from '../../lib/sim/server.js';
import type { Informer } from '../../lib/kube/informer.js';
import { nullLogger, type Logger } from '../../lib/observability/logger.js';
import { Metrics } from '../../lib/observability/metrics.js';
import { ProvisionController, type ControllerOptions } from '../../lib/provision/controller.js';
import { DateraConnections } from '../../lib/provision/credentials.js';
import { PROVISIONER } from '../support/builders.js';
import { FakeInformer, apiError } from './controller-fakes.js';

export { apiError } from './controller-fakes.js';

/**
 * Records Kubernetes writes; `failNext(op, err)` makes the next call of op throw; `hold(op)` makes
 * the next call of op wait until the returned function is called. The confirming reads answer
 * from `server` (what the API server holds, which the caches may not show yet).
 */
class FakeCore {
  readonly calls: Array<{ op: string; arg: unknown }> = [];
  readonly server = { volumes: new Map<string, V1PersistentVolume>(), claims: new Map<string, V1PersistentVolumeClaim>() };
  readonly #fail = new Map<string, unknown[]>();
  readonly #holds = new Map<string, Promise<void>>();
  failNext(op: string, err: unknown) {
    this.#fail.set(op, [...(this.#fail.get(op) ?? []), err]);
  }
  hold(op: string): () => void {
    let release!: () => void;
    this.#holds.set(op, new Promise<void>((r) => (release = r)));
    return release;
  }
  async #run(op: string, arg: unknown) {
    this.calls.push({ op, arg });
    const h = this.#holds.get(op);
    if (h) {
      this.#holds.delete(op);
      await h;
    }
    const f = this.#fail.get(op);
    if (f?.length) throw f.shift();
    return arg;
  }
  createPersistentVolume = async (a: { body: V1PersistentVolume }) => this.#run('createPV', a.body) as Promise<V1PersistentVolume>;
  deletePersistentVolume = async (a: { name: string }) => this.#run('deletePV', a.name) as never;
  patchPersistentVolume = async (a: { name: string; body: unknown }) => this.#run('patchPV', a) as never;
  readPersistentVolume = async (a: { name: string }): Promise<V1PersistentVolume> => {
    this.calls.push({ op: 'readPV', arg: a.name });
    const pv = this.server.volumes.get(a.name);
    if (!pv) throw apiError(404, 'NotFound');
    return pv;
  };
  readNamespacedPersistentVolumeClaim = async (a: { name: string; namespace: string }): Promise<V1PersistentVolumeClaim> => {
    this.calls.push({ op: 'readPVC', arg: `${a.namespace}/${a.name}` });
    const pvc = this.server.claims.get(`${a.namespace}/${a.name}`);
    if (!pvc) throw apiError(404, 'NotFound');
    return pvc;
  };
  ops(op: string) {
    return this.calls.filter((c) => c.op === op).map((c) => c.arg);
  }
}

interface Recorded {
  kind: string;
  name: string;
  type: string;
  reason: string;
  message: string;
}

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

export function newHarness(sim: DateraSimulator, simUrl: string, options: Partial<ControllerOptions> = {}, logger: Logger = nullLogger()): Harness {
  const claims = new FakeInformer<V1PersistentVolumeClaim>();
  const volumes = new FakeInformer<V1PersistentVolume>();
  const classes = new FakeInformer<V1StorageClass>();
  const configMaps = new FakeInformer<V1ConfigMap>();
  const core = new FakeCore();
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
        claims: claims as unknown as Informer<V1PersistentVolumeClaim>,
        volumes: volumes as unknown as Informer<V1PersistentVolume>,
        classes: classes as unknown as Informer<V1StorageClass>,
        configMaps: configMaps as unknown as Informer<V1ConfigMap>,
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
      // A new process sees the caches' current content as initial adds.
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
