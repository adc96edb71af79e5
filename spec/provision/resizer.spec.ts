// SPDX-License-Identifier: Apache-2.0
// The resizer inside the controller (lib/provision/resizer.ts) against the real Datera simulator
// over HTTP, with in-memory caches that play the API server for the claim status and PV patches:
// the grow, per-GiB QoS, the claim status kubelet reads, events, refusals that change nothing,
// retries, and a restart in the middle of a resize.
import { expect } from 'chai';
import type { V1ConfigMap, V1PersistentVolume, V1PersistentVolumeClaim, V1StorageClass } from '@kubernetes/client-node';
import { nullLogger } from '../../lib/observability/logger.js';
import { newClaim, newStorageClass } from '../support/builders.js';
import { newHarness, useSimulator, type Harness } from './harness.js';

const TEMPLATES = `
templates:
  - name: pergib
    replicas: 2
    maxSize: 20Gi
    qos: { iopsPerGiB: 100, totalIopsMax: 3000 }
`;

function templatesCm(text: string, rv: string): V1ConfigMap {
  return { metadata: { name: 'datera-templates', namespace: 'datera-system', resourceVersion: rv }, data: { 'templates.yaml': text } };
}

function goldClass(allowVolumeExpansion: boolean | undefined, rv = '1'): V1StorageClass {
  const sc = newStorageClass('gold', { parameters: { template: 'pergib' } });
  sc.metadata!.resourceVersion = rv;
  if (allowVolumeExpansion !== undefined) sc.allowVolumeExpansion = allowVolumeExpansion;
  return sc;
}

/** RFC 7386 merge patch. */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> = target && typeof target === 'object' && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

describe('resizer: volume expansion against the simulator', function () {
  this.timeout(20_000);
  const fx = useSimulator();
  let h: Harness;
  let rv = 100;

  beforeEach(() => {
    h = newHarness(fx.sim, fx.url, {}, nullLogger());
    // The API server for the resizer's writes: status patches and PV capacity land in the caches.
    h.core.onClaimStatus = (a) => {
      const cur = h.claims.get(a.name, a.namespace)!;
      const body = a.body as { metadata?: { resourceVersion?: string }; status: object };
      const next = mergePatch({ status: cur.status }, { status: body.status }) as { status: V1PersistentVolumeClaim['status'] };
      const updated: V1PersistentVolumeClaim = { ...cur, metadata: { ...cur.metadata, resourceVersion: String(++rv) }, status: next.status! };
      h.claims.set(updated);
      return updated;
    };
    const recordPatch = h.core.patchPersistentVolume;
    h.core.patchPersistentVolume = async (a) => {
      await recordPatch(a);
      const ops = a.body as { op: string; path: string; value: unknown }[];
      const pv = h.volumes.get(a.name)!;
      const cap = ops.find((o) => o.path === '/spec/capacity/storage');
      if (cap) h.volumes.set({ ...pv, spec: { ...pv.spec, capacity: { storage: String(cap.value) } } });
      return undefined as never;
    };
    h.classes.set(goldClass(true));
    h.configMaps.set(templatesCm(TEMPLATES, '1'));
    h.ctrl.start();
  });
  afterEach(async () => {
    await h.close();
  });

  /** Provisions a claim and binds it as the PV controller would. */
  async function provisioned(name: string, size: string): Promise<V1PersistentVolume> {
    h.claims.set(newClaim(name, { className: 'gold', size }));
    await h.settle();
    const pv = (h.core.ops('createPV') as V1PersistentVolume[]).find((p) => p.spec?.claimRef?.name === name)!;
    h.volumes.set({ ...pv, metadata: { ...pv.metadata, uid: `uid-${pv.metadata!.name!}` }, status: { phase: 'Bound' } });
    const c = h.claims.get(name, 'default')!;
    h.claims.set({ ...c, spec: { ...c.spec, volumeName: pv.metadata!.name! }, status: { phase: 'Bound', capacity: { storage: pv.spec!.capacity!['storage']! } } });
    await h.settle();
    return h.volumes.get(pv.metadata!.name!)!;
  }

  async function ask(name: string, size: string): Promise<void> {
    const c = h.claims.get(name, 'default')!;
    h.claims.set({ ...c, metadata: { ...c.metadata, resourceVersion: String(++rv) }, spec: { ...c.spec, resources: { requests: { storage: size } } } });
    await h.settle();
  }

  const volumeOf = (ai: string) => fx.sim.appInstances().find((a) => a.name === ai)!.storage_instances[0]!.volumes[0]!;
  const eventsOf = (name: string) => h.events.filter((e) => e.name === name).map((e) => `${e.type} ${e.reason}`);
  const resizePuts = () => fx.sim.calls().filter((c) => c.method === 'PUT' && c.route === '/app_instances/:id/storage_instances/:storage_instance_name/volumes/:volume_name');
  const claim = (name: string) => h.claims.get(name, 'default')!;

  it('grows the Datera volume, recomputes per-GiB QoS, patches the PV capacity and leaves the claim NodeResizePending for kubelet', async () => {
    const pv = await provisioned('data', '2Gi');
    expect(volumeOf(pv.metadata!.name!).size).to.equal(2);
    expect(volumeOf(pv.metadata!.name!).performance_policy).to.include({ total_iops_max: 200 });
    fx.sim.clearCalls();
    await ask('data', '10Gi');
    expect(volumeOf(pv.metadata!.name!).size).to.equal(10);
    expect(volumeOf(pv.metadata!.name!).performance_policy).to.include({ total_iops_max: 1000, read_iops_max: 0 });
    expect(h.volumes.get(pv.metadata!.name!)!.spec!.capacity).to.deep.equal({ storage: '10Gi' });
    const st = claim('data').status!;
    expect(st.allocatedResourceStatuses).to.deep.equal({ storage: 'NodeResizePending' });
    expect(st.allocatedResources).to.deep.equal({ storage: '10Gi' });
    expect(st.capacity).to.deep.equal({ storage: '2Gi' }); // kubelet sets it after growing the file system
    expect(st.conditions!.map((c) => c.type)).to.deep.equal(['FileSystemResizePending']);
    expect(eventsOf('data').slice(-2)).to.deep.equal(['Normal Resizing', 'Normal FileSystemResizeRequired']);
    // Datera calls for one resize: metadata (ownership), the app instance, the resize, the policy.
    expect(fx.sim.calls().filter((c) => c.route !== '/login').map((c) => `${c.method} ${c.route}`)).to.deep.equal([
      'GET /app_instances/:id/metadata',
      'GET /app_instances/:id',
      'PUT /app_instances/:id/storage_instances/:storage_instance_name/volumes/:volume_name',
      'PUT /app_instances/:id/storage_instances/:storage_instance_name/volumes/:volume_name/performance_policy',
    ]);
    // One PV patch: uid test, capacity, and the policy it now has (read by the QoS updates instead of Datera).
    expect((h.core.ops('patchPV') as { body: object[] }[]).map((p) => p.body)).to.deep.equal([
      [
        { op: 'test', path: '/metadata/uid', value: `uid-${pv.metadata!.name!}` },
        { op: 'replace', path: '/spec/capacity/storage', value: '10Gi' },
        { op: 'add', path: '/metadata/annotations/datera.io~1performance-policy', value: '{"total_iops_max":1000}' },
      ],
    ]);
    const total = await h.metrics.registry.getSingleMetricAsString('controller_persistentvolumeclaim_resize_total');
    expect(total).to.include('controller_persistentvolumeclaim_resize_total{class="gold"} 1');
  });

  it('kubelet finishing (capacity = request, status removed) ends it: no further Datera call or event', async () => {
    const pv = await provisioned('data', '2Gi');
    await ask('data', '4Gi');
    const c = claim('data');
    h.claims.set({ ...c, status: { phase: 'Bound', capacity: { storage: '4Gi' } } });
    fx.sim.clearCalls();
    const before = h.events.length;
    await h.settle();
    expect(fx.sim.calls()).to.deep.equal([]);
    expect(h.events.length).to.equal(before);
    expect(volumeOf(pv.metadata!.name!).size).to.equal(4);
  });

  it('refuses a size above the template maxSize: one VolumeResizeFailed event, ControllerResizeInfeasible, nothing changes; a template edit that raises maxSize lets it through', async () => {
    const pv = await provisioned('data', '2Gi');
    fx.sim.clearCalls();
    await ask('data', '25Gi');
    await ask('data', '25Gi'); // another update of the claim: no second event
    expect(eventsOf('data').filter((e) => e.endsWith('VolumeResizeFailed'))).to.have.length(1);
    expect(h.events.find((e) => e.reason === 'VolumeResizeFailed')!.message).to.include('above maxSize 20Gi of template "pergib"');
    expect(claim('data').status!.allocatedResourceStatuses).to.deep.equal({ storage: 'ControllerResizeInfeasible' });
    expect(fx.sim.calls()).to.deep.equal([]);
    expect(volumeOf(pv.metadata!.name!).size).to.equal(2);
    expect(h.core.ops('patchPV')).to.deep.equal([]);

    h.configMaps.set(templatesCm(TEMPLATES.replace('maxSize: 20Gi', 'maxSize: 30Gi'), '2'));
    await h.settle();
    expect(volumeOf(pv.metadata!.name!).size).to.equal(25);
    expect(claim('data').status!.allocatedResourceStatuses).to.deep.equal({ storage: 'NodeResizePending' });
  });

  it('refuses while the class does not allow expansion, and resizes once an admin allows it', async () => {
    h.classes.set(goldClass(undefined, '2'));
    const pv = await provisioned('data', '2Gi');
    await ask('data', '3Gi');
    expect(h.events.find((e) => e.reason === 'VolumeResizeFailed')!.message).to.include('StorageClass "gold" does not allow volume expansion');
    expect(volumeOf(pv.metadata!.name!).size).to.equal(2);
    h.classes.set(goldClass(true, '3'));
    await h.settle();
    expect(volumeOf(pv.metadata!.name!).size).to.equal(3);
  });

  it('the user taking a refused request back clears the refusal from the claim', async () => {
    await provisioned('data', '2Gi');
    await ask('data', '25Gi');
    expect(claim('data').status!.allocatedResourceStatuses).to.deep.equal({ storage: 'ControllerResizeInfeasible' });
    await ask('data', '2Gi');
    expect(claim('data').status!.allocatedResourceStatuses ?? {}).to.deep.equal({}); // the API server drops the empty map
    expect(claim('data').status!.conditions).to.deep.equal([]);
  });

  it('a Datera 503 is retried: VolumeResizeFailed, then the resize completes once', async () => {
    const pv = await provisioned('data', '2Gi');
    fx.sim.setFaults({ rate503: 1 });
    const c = claim('data');
    h.claims.set({ ...c, spec: { ...c.spec, resources: { requests: { storage: '6Gi' } } } });
    // Longer than the client's own retry deadline (1.5 s here): the attempt fails and the queue retries.
    await new Promise((r) => setTimeout(r, 2000));
    fx.sim.setFaults({});
    await h.settle();
    await new Promise((r) => setTimeout(r, 100));
    await h.settle();
    expect(eventsOf('data')).to.include('Warning VolumeResizeFailed');
    expect(volumeOf(pv.metadata!.name!).size).to.equal(6);
    expect(claim('data').status!.allocatedResourceStatuses).to.deep.equal({ storage: 'NodeResizePending' });
    expect(resizePuts().filter((c) => c.status === 200)).to.have.length(1);
  });

  it('a restart after the Datera resize but before the PV patch finishes the resize without resizing again', async () => {
    const pv = await provisioned('data', '2Gi');
    const name = pv.metadata!.name!;
    // The state a crash leaves between the Datera resize and the PV patch: the claim says
    // ControllerResizeInProgress to 8Gi, Datera has 8 GiB, the PV still says 2Gi.
    await h.ctrl.stop();
    await fx.direct.resizeVolume(name, 'storage-1', 'volume-1', 8);
    const c = claim('data');
    h.claims.set({
      ...c,
      spec: { ...c.spec, resources: { requests: { storage: '8Gi' } } },
      status: { ...c.status, allocatedResources: { storage: '8Gi' }, allocatedResourceStatuses: { storage: 'ControllerResizeInProgress' }, conditions: [{ type: 'Resizing', status: 'True' }] },
    });
    fx.sim.clearCalls();
    const before = h.events.length;
    await h.restart();
    await h.settle();
    expect(resizePuts()).to.deep.equal([]);
    expect(h.volumes.get(name)!.spec!.capacity).to.deep.equal({ storage: '8Gi' });
    expect(claim('data').status!.allocatedResourceStatuses).to.deep.equal({ storage: 'NodeResizePending' });
    expect(h.events.slice(before).map((e) => e.reason)).to.deep.equal(['FileSystemResizeRequired']);
  });

  it('caches behind its own writes: the claim versions and the PV the watch delivers late cause no second pass (no Datera call, PV patch, status patch or event again)', async () => {
    const pv = await provisioned('data', '2Gi');
    const name = pv.metadata!.name!;
    // The API server answers the writes at once; the watch delivers them only when the spec says.
    let server = claim('data');
    const late: (() => void)[] = [];
    h.core.onClaimStatus = (a) => {
      const body = a.body as { status: object };
      const next = mergePatch({ status: server.status }, { status: body.status }) as { status: V1PersistentVolumeClaim['status'] };
      server = { ...server, metadata: { ...server.metadata, resourceVersion: String(++rv) }, status: next.status! };
      const snapshot = server;
      late.push(() => h.claims.set(snapshot));
      return snapshot;
    };
    h.core.patchPersistentVolume = async (a) => {
      h.core.calls.push({ op: 'patchPV', arg: a });
      late.push(() => {
        const cur = h.volumes.get(a.name)!;
        h.volumes.set({ ...cur, spec: { ...cur.spec, capacity: { storage: '10Gi' } } });
      });
      return undefined as never;
    };
    const c = claim('data');
    server = { ...c, metadata: { ...c.metadata, resourceVersion: String(++rv) }, spec: { ...c.spec, resources: { requests: { storage: '10Gi' } } } };
    h.claims.set(server);
    fx.sim.clearCalls();
    await h.settle();
    expect(late).to.have.length(3); // status in progress, PV, status node pending
    for (const deliver of late.splice(0)) {
      deliver();
      await h.settle();
    }
    expect(fx.sim.calls().filter((x) => x.route !== '/login')).to.have.length(4);
    expect(h.core.ops('patchPV')).to.have.length(1);
    expect(h.core.ops('patchPVCStatus')).to.have.length(2);
    expect(eventsOf('data').filter((e) => e.endsWith('Resizing') || e.endsWith('FileSystemResizeRequired'))).to.deep.equal(['Normal Resizing', 'Normal FileSystemResizeRequired']);
    expect(claim('data').status!.allocatedResourceStatuses).to.deep.equal({ storage: 'NodeResizePending' });
    expect(volumeOf(name).size).to.equal(10);
  });

  it('a resize whose last claim status patch was lost (PV and Datera already grown) is finished with that patch alone: no Datera write, no PV patch', async () => {
    const pv = await provisioned('data', '2Gi');
    const name = pv.metadata!.name!;
    await fx.direct.resizeVolume(name, 'storage-1', 'volume-1', 7);
    await fx.direct.setPerformancePolicy(name, 'storage-1', 'volume-1', { total_iops_max: 700 });
    h.volumes.set({ ...h.volumes.get(name)!, spec: { ...h.volumes.get(name)!.spec, capacity: { storage: '7Gi' } } });
    fx.sim.clearCalls();
    await ask('data', '7Gi');
    expect(fx.sim.calls().filter((x) => x.method !== 'GET' && x.route !== '/login')).to.deep.equal([]);
    expect(h.core.ops('patchPV')).to.deep.equal([]);
    expect(claim('data').status!.allocatedResourceStatuses).to.deep.equal({ storage: 'NodeResizePending' });
  });

  it('never shrinks: a Datera volume already larger than asked (grown out of band) stays as it is, and the PV takes its size', async () => {
    const pv = await provisioned('data', '2Gi');
    const name = pv.metadata!.name!;
    await fx.direct.resizeVolume(name, 'storage-1', 'volume-1', 12);
    fx.sim.clearCalls();
    await ask('data', '10Gi');
    expect(resizePuts()).to.deep.equal([]);
    expect(volumeOf(name).size).to.equal(12);
    expect(h.volumes.get(name)!.spec!.capacity).to.deep.equal({ storage: '12Gi' });
    expect(claim('data').status!.allocatedResources).to.deep.equal({ storage: '12Gi' });
    expect(claim('data').status!.allocatedResourceStatuses).to.deep.equal({ storage: 'NodeResizePending' });
  });

  it('leaves alone what is not its own: a PV of another provisioner, a claim re-created under the PV\'s claim name (other uid), a claim naming another volume', async () => {
    const pv = await provisioned('data', '2Gi');
    const name = pv.metadata!.name!;
    const c = claim('data');
    const grown = { ...c, spec: { ...c.spec, resources: { requests: { storage: '6Gi' } } } };
    fx.sim.clearCalls();
    const before = h.events.length;
    const cases: [string, () => void][] = [
      ['another provisioner', () => h.volumes.set({ ...pv, metadata: { ...pv.metadata, annotations: { ...pv.metadata!.annotations, 'pv.kubernetes.io/provisioned-by': 'example.com/other' } } })],
      ['another claim uid', () => h.claims.set({ ...grown, metadata: { ...grown.metadata, uid: 'uid-recreated' } })],
      ['another volume', () => h.claims.set({ ...grown, spec: { ...grown.spec, volumeName: 'pvc-someone-else' } })],
    ];
    for (const [what, arrange] of cases) {
      h.volumes.set(pv);
      h.claims.set({ ...c, metadata: { ...c.metadata, resourceVersion: String(++rv) } });
      await h.settle();
      arrange();
      if (what === 'another provisioner') h.claims.set({ ...grown, metadata: { ...grown.metadata, resourceVersion: String(++rv) } });
      await h.settle();
      expect(fx.sim.calls().filter((x) => x.route !== '/login'), what).to.deep.equal([]);
      expect(h.events.length, what).to.equal(before);
      expect(h.core.ops('patchPVCStatus'), what).to.deep.equal([]);
    }
    expect(volumeOf(name).size).to.equal(2);
  });

  it('a refusal by the storage is not repeated on every claim update; a template change tries again', async () => {
    const pv = await provisioned('data', '2Gi');
    await fx.direct.putMetadata(pv.metadata!.name!, { 'k8s-claim-uid': 'someone-else' });
    await ask('data', '5Gi');
    expect(claim('data').status!.allocatedResources).to.deep.equal({ storage: '5Gi' });
    const metadataReads = () => fx.sim.calls().filter((x) => x.route === '/app_instances/:id/metadata' && x.method === 'GET').length;
    const reads = metadataReads();
    const events = h.events.length;
    await ask('data', '5Gi'); // another update of the claim (e.g. a label): nothing again
    expect(metadataReads()).to.equal(reads);
    expect(h.events.length).to.equal(events);
    h.configMaps.set(templatesCm(TEMPLATES, '2'));
    await h.settle();
    expect(metadataReads()).to.equal(reads + 1);
    expect(volumeOf(pv.metadata!.name!).size).to.equal(2);
  });

  it('refuses to resize an app instance that is not provably this PV (metadata of another claim): nothing resized', async () => {
    const pv = await provisioned('data', '2Gi');
    await fx.direct.putMetadata(pv.metadata!.name!, { 'k8s-claim-uid': 'someone-else' });
    await ask('data', '5Gi');
    expect(volumeOf(pv.metadata!.name!).size).to.equal(2);
    expect(h.events.find((e) => e.reason === 'VolumeResizeFailed')!.message).to.include('not provably volume');
    expect(claim('data').status!.allocatedResourceStatuses).to.deep.equal({ storage: 'ControllerResizeInfeasible' });
  });
});
