// SPDX-License-Identifier: Apache-2.0
// QoS of existing volumes through the controller, against the Datera simulator: template edits
// with and without `applyToExisting: [qos]`, claim QoS annotation edits, refusals, settings that
// apply to new volumes only, failures, the rate limit, and a restart between the change and its record.
import { expect } from 'chai';
import type { V1ConfigMap, V1PersistentVolume } from '@kubernetes/client-node';
import type { PerformancePolicy } from '../../lib/datera/types.js';
import { normalPolicy } from '../../lib/provision/volume.js';
import { newClaim, newStorageClass } from '../support/builders.js';
import { apiError, eventually, newHarness, useSimulator, type Harness } from './harness.js';

const ANN = 'datera.io/performance-policy';

const TEMPLATES = `
templates:
  - name: fast
    replicas: 2
    qos: { totalIopsMax: 1000, readBandwidthMax: 4000 }
    overridable: [qos, replicas]
`;
const OPT_IN = '    applyToExisting: [qos]\n';

describe('provisioning controller: QoS of existing volumes', function () {
  this.timeout(20_000);
  const fx = useSimulator();
  let h: Harness;
  let cmVersion = 0;

  const setTemplates = (text: string) => {
    const cm: V1ConfigMap = { metadata: { name: 'datera-templates', namespace: 'datera-system', resourceVersion: String(++cmVersion), uid: 'cm' }, data: { 'templates.yaml': text } };
    h.configMaps.set(cm);
  };

  function start(options: Parameters<typeof newHarness>[2] = {}) {
    h = newHarness(fx.sim, fx.url, options);
    h.classes.set(newStorageClass('gold', { parameters: { template: 'fast' } }));
    setTemplates(TEMPLATES);
    h.ctrl.start();
  }
  afterEach(async () => {
    await h.close();
  });

  /** Provisions claim `name` (2 GiB) and binds it: the PV and the claim in the caches as Bound. */
  async function bound(name: string, annotations: Record<string, string> = {}): Promise<V1PersistentVolume> {
    h.claims.set(newClaim(name, { className: 'gold', size: '2Gi', annotations }));
    await h.settle();
    const pv = (h.core.ops('createPV') as V1PersistentVolume[]).find((p) => p.spec?.claimRef?.name === name)!;
    const saved: V1PersistentVolume = { ...pv, metadata: { ...pv.metadata, resourceVersion: '1' }, status: { phase: 'Bound' } };
    h.volumes.set(saved);
    h.core.server.volumes.set(saved.metadata!.name!, saved);
    h.claims.set(newClaim(name, { className: 'gold', size: '2Gi', annotations, volumeName: pv.metadata!.name! }));
    await h.settle();
    return saved;
  }

  /** Edits a bound claim's annotations (an update event with the old claim). */
  function annotate(name: string, annotations: Record<string, string>) {
    h.claims.set(newClaim(name, { className: 'gold', size: '2Gi', annotations, volumeName: `pvc-uid-${name}` }));
  }

  const policyOf = (ai: string): PerformancePolicy => normalPolicy(fx.sim.appInstances().find((a) => a.name === ai)!.storage_instances[0]!.volumes[0]!.performance_policy);
  const replicasOf = (ai: string) => fx.sim.appInstances().find((a) => a.name === ai)!.storage_instances[0]!.volumes[0]!.replica_count;
  const writes = () => fx.sim.calls().filter((c) => c.method !== 'GET' && !c.path.endsWith('/login'));
  const policyWrites = () => writes().filter((c) => c.path.endsWith('/performance_policy'));
  const eventsOf = (name: string, reason: string) => h.events.filter((e) => e.name === name && e.reason === reason);
  const patchedPolicies = () => (h.core.ops('patchPV') as { name: string; body: { path: string; value: string }[] }[]).map((p) => [p.name, p.body[0]!.path, p.body[0]!.value]);

  it('records the policy the create sent on the PV, in the PV body (no extra write)', async () => {
    start();
    const pv = await bound('a');
    expect(pv.metadata!.annotations![ANN]).to.equal('{"total_iops_max":1000,"read_bandwidth_max":4000}');
    expect(h.core.ops('patchPV')).to.deep.equal([]);
  });

  it('a template edit with applyToExisting: [qos] changes every volume of it (read back from the simulator), one QoSUpdated event and one PV patch per volume', async () => {
    start();
    await bound('a');
    await bound('b');
    fx.sim.clearCalls();
    setTemplates(TEMPLATES.replace('totalIopsMax: 1000', 'totalIopsMax: 500') + OPT_IN);
    await h.settle();
    expect(policyOf('pvc-uid-a')).to.deep.equal({ total_iops_max: 500, read_bandwidth_max: 4000 });
    expect(policyOf('pvc-uid-b')).to.deep.equal({ total_iops_max: 500, read_bandwidth_max: 4000 });
    // Datera calls per changed volume: one read (the truth before a change), the ownership check, one write.
    expect(fx.sim.calls().filter((c) => !c.path.endsWith('/login')).map((c) => `${c.method} ${c.route}`).sort()).to.deep.equal([
      'GET /app_instances/:id',
      'GET /app_instances/:id',
      'GET /app_instances/:id/metadata',
      'GET /app_instances/:id/metadata',
      'PUT /app_instances/:id/storage_instances/:storage_instance_name/volumes/:volume_name/performance_policy',
      'PUT /app_instances/:id/storage_instances/:storage_instance_name/volumes/:volume_name/performance_policy',
    ]);
    expect(writes().map((c) => `${c.method} ${c.path}`).sort()).to.deep.equal([
      'PUT /v2.2/app_instances/pvc-uid-a/storage_instances/storage-1/volumes/volume-1/performance_policy',
      'PUT /v2.2/app_instances/pvc-uid-b/storage_instances/storage-1/volumes/volume-1/performance_policy',
    ]);
    for (const name of ['a', 'b']) {
      expect(eventsOf(name, 'QoSUpdated').map((e) => e.message)).to.deep.equal([`QoS of volume pvc-uid-${name} changed: totalIopsMax 1000 -> 500 (template "fast" edited)`]);
    }
    expect(patchedPolicies().sort()).to.deep.equal([
      ['pvc-uid-a', '/metadata/annotations/datera.io~1performance-policy', '{"total_iops_max":500,"read_bandwidth_max":4000}'],
      ['pvc-uid-b', '/metadata/annotations/datera.io~1performance-policy', '{"total_iops_max":500,"read_bandwidth_max":4000}'],
    ]);
    expect(await h.metrics.value('controller_persistentvolume_qos_update_total', { class: 'gold' })).to.equal(2);
    expect(h.events.filter((e) => e.kind === 'ConfigMap')).to.deep.equal([]);
  });

  it('never changes the QoS of an app instance that is not provably the PV\'s (metadata of another claim): one QoSUpdateFailed Warning, no retry, policy unchanged', async () => {
    start();
    await bound('a');
    await fx.direct.putMetadata('pvc-uid-a', { 'k8s-claim-uid': 'someone-else' });
    fx.sim.clearCalls();
    setTemplates(TEMPLATES.replace('totalIopsMax: 1000', 'totalIopsMax: 500') + OPT_IN);
    await h.settle();
    await new Promise((r) => setTimeout(r, 100)); // past the harness's 20 ms retry: a retry would show
    await h.settle();
    expect(policyWrites()).to.deep.equal([]);
    expect(policyOf('pvc-uid-a')).to.deep.equal({ total_iops_max: 1000, read_bandwidth_max: 4000 });
    const failed = eventsOf('a', 'QoSUpdateFailed');
    expect(failed).to.have.length(1);
    expect(failed[0]!.message).to.include('not provably volume pvc-uid-a').and.not.include('will retry');
    expect(h.core.ops('patchPV')).to.deep.equal([]);
  });

  it('an opted-in edit that leaves a volume\'s limits as they are makes no Datera call for it', async () => {
    start();
    await bound('a');
    fx.sim.clearCalls();
    setTemplates(TEMPLATES + OPT_IN); // the opt-in alone: the volume has the template's QoS already
    await h.settle();
    expect(fx.sim.calls().filter((c) => !c.path.endsWith('/login'))).to.deep.equal([]);
    expect(h.core.ops('patchPV')).to.deep.equal([]);
    expect(eventsOf('a', 'QoSUpdated')).to.deep.equal([]);
  });

  it('a template QoS edit without opt-in leaves existing volumes alone and says so once on the ConfigMap', async () => {
    start();
    await bound('a');
    await bound('b');
    fx.sim.clearCalls();
    setTemplates(TEMPLATES.replace('totalIopsMax: 1000', 'totalIopsMax: 500'));
    await h.settle();
    expect(policyOf('pvc-uid-a')).to.deep.equal({ total_iops_max: 1000, read_bandwidth_max: 4000 });
    expect(fx.sim.calls().filter((c) => !c.path.endsWith('/login'))).to.deep.equal([]);
    expect(h.events.filter((e) => e.reason === 'QoSUpdated')).to.deep.equal([]);
    expect(h.events.filter((e) => e.kind === 'ConfigMap')).to.deep.equal([
      {
        kind: 'ConfigMap',
        name: 'datera-templates',
        type: 'Normal',
        reason: 'VolumeSettingNotApplied',
        message:
          'AppTemplates edit applies to new volumes only for: template "fast" changed qos: its 2 existing volume(s) keep their values (add applyToExisting: [qos] to the template to change their QoS). ' +
          'Only QoS can change on an existing volume, and only for templates with applyToExisting: [qos]',
      },
    ]);
  });

  it('a replicas edit of an opted-in template changes no volume: one ConfigMap event for the edit, not one per volume', async () => {
    start();
    await bound('a');
    await bound('b');
    setTemplates(TEMPLATES + OPT_IN);
    await h.settle();
    fx.sim.clearCalls();
    setTemplates(TEMPLATES.replace('replicas: 2', 'replicas: 3') + OPT_IN);
    await h.settle();
    expect(replicasOf('pvc-uid-a')).to.equal(2);
    expect(fx.sim.calls().filter((c) => !c.path.endsWith('/login'))).to.deep.equal([]);
    const notes = h.events.filter((e) => e.kind === 'ConfigMap');
    expect(notes).to.have.length(1);
    expect(notes[0]!.message).to.include('template "fast" changed replicas: its 2 existing volume(s) keep their values');
  });

  it('a claim QoS annotation edit changes its volume\'s limit even without opt-in, and only that limit', async () => {
    start();
    await bound('a');
    await bound('b');
    // A pending template edit without opt-in must not ride along with the claim's change.
    setTemplates(TEMPLATES.replace('readBandwidthMax: 4000', 'readBandwidthMax: 8000'));
    await h.settle();
    fx.sim.clearCalls();
    annotate('a', { 'datera.io/qos.totalIopsMax': '300' });
    await h.settle();
    expect(policyOf('pvc-uid-a')).to.deep.equal({ total_iops_max: 300, read_bandwidth_max: 4000 });
    expect(policyOf('pvc-uid-b')).to.deep.equal({ total_iops_max: 1000, read_bandwidth_max: 4000 });
    expect(policyWrites()).to.have.length(1);
    expect(eventsOf('a', 'QoSUpdated').map((e) => e.message)).to.deep.equal([
      'QoS of volume pvc-uid-a changed: totalIopsMax 1000 -> 300 (claim annotation datera.io/qos.totalIopsMax changed)',
    ]);
    expect(patchedPolicies()).to.deep.equal([['pvc-uid-a', '/metadata/annotations/datera.io~1performance-policy', '{"total_iops_max":300,"read_bandwidth_max":4000}']]);
  });

  it('a loosening claim annotation is refused with a Warning naming it and the allowed range; nothing changes', async () => {
    start();
    await bound('a');
    fx.sim.clearCalls();
    annotate('a', { 'datera.io/qos.totalIopsMax': '5000' });
    await h.settle();
    expect(policyOf('pvc-uid-a')).to.deep.equal({ total_iops_max: 1000, read_bandwidth_max: 4000 });
    expect(fx.sim.calls().filter((c) => !c.path.endsWith('/login'))).to.deep.equal([]);
    const refused = eventsOf('a', 'QoSUpdateRefused');
    expect(refused).to.have.length(1);
    expect(refused[0]!.type).to.equal('Warning');
    expect(refused[0]!.message).to.include('claim annotation "datera.io/qos.totalIopsMax" asks for 5000').and.include('allowed 1..1000');
  });

  it('a replicas annotation edit on a bound claim: one Warning that it applies to new volumes only, nothing changes', async () => {
    start();
    await bound('a');
    fx.sim.clearCalls();
    const added = h.ctrl.queue.state();
    annotate('a', { 'datera.io/replicas': '3' });
    await h.settle();
    expect(replicasOf('pvc-uid-a')).to.equal(2);
    expect(fx.sim.calls().filter((c) => !c.path.endsWith('/login'))).to.deep.equal([]);
    expect(h.core.ops('patchPV')).to.deep.equal([]);
    expect(h.ctrl.queue.state()).to.deep.include({ depth: added.depth, delayed: added.delayed });
    expect(eventsOf('a', 'VolumeSettingNotApplied')).to.deep.equal([
      {
        kind: 'PersistentVolumeClaim',
        name: 'a',
        type: 'Warning',
        reason: 'VolumeSettingNotApplied',
        message:
          'claim annotation "datera.io/replicas" (unset -> "3") applies to new volumes only: volume pvc-uid-a keeps the value it was made with. ' +
          'Only the QoS annotations (datera.io/qos.*) the template lets claims override change an existing volume',
      },
    ]);
  });

  it('a Datera failure is a QoSUpdateFailed Warning and a failed count; the retry changes the volume once', async () => {
    start({ retryInitialMs: 50, retryMaxMs: 50 });
    await bound('a');
    fx.sim.setFaults({ rate503: 1 });
    annotate('a', { 'datera.io/qos.totalIopsMax': '300' });
    await h.settle();
    expect(eventsOf('a', 'QoSUpdateFailed')).to.have.length(1);
    expect(eventsOf('a', 'QoSUpdateFailed')[0]!.message).to.match(/^failed to change QoS of volume pvc-uid-a \(claim annotation datera.io\/qos.totalIopsMax changed\): Datera (NotConnectedError 503|DATERA_TIMEOUT): GET \/app_instances\/pvc-uid-a failed: .*; will retry$/); // 503s until the call's deadline: either is the last answer
    expect(await h.metrics.value('controller_persistentvolume_qos_update_failed_total', { class: 'gold' })).to.equal(1);
    fx.sim.setFaults({});
    await eventually(h, () => eventsOf('a', 'QoSUpdated').length > 0);
    await h.settle();
    expect(policyOf('pvc-uid-a')).to.deep.equal({ total_iops_max: 300, read_bandwidth_max: 4000 });
    expect(eventsOf('a', 'QoSUpdated')).to.have.length(1);
  });

  it('changes are rate-limited: past the burst, volumes wait for their token in the queue', async () => {
    start({ qosUpdatesPerSecond: 0.001 }); // burst 1, the next token in 1000 s
    await bound('a');
    await bound('b');
    await bound('c');
    fx.sim.clearCalls();
    setTemplates(TEMPLATES.replace('totalIopsMax: 1000', 'totalIopsMax: 500') + OPT_IN);
    await h.settle();
    expect(policyWrites()).to.have.length(1);
    expect(h.events.filter((e) => e.reason === 'QoSUpdated')).to.have.length(1);
    expect(h.ctrl.queue.delayed).to.equal(2);
  });

  it('a restart after the change but before the PV records it: the new process records it, with no second change or event', async () => {
    start({ retryInitialMs: 60_000, retryMaxMs: 60_000 });
    await bound('a');
    h.core.failNext('patchPV', apiError(500, 'InternalError', 'etcd timeout'));
    setTemplates(TEMPLATES.replace('totalIopsMax: 1000', 'totalIopsMax: 500') + OPT_IN);
    await h.settle();
    expect(policyOf('pvc-uid-a')).to.deep.equal({ total_iops_max: 500, read_bandwidth_max: 4000 });
    expect(h.core.ops('patchPV')).to.have.length(1); // failed: the PV still records 1000
    await h.restart();
    // The new process loads the templates (first load) and brings opted-in volumes to them.
    const cm = h.configMaps.get('datera-templates', 'datera-system')!;
    h.configMaps.set(cm);
    await h.settle();
    expect(policyWrites()).to.have.length(1);
    expect(eventsOf('a', 'QoSUpdated')).to.have.length(1);
    expect(eventsOf('a', 'QoSUpdateFailed')).to.deep.equal([]);
    expect(patchedPolicies()).to.have.length(2);
    expect(patchedPolicies()[1]).to.deep.equal(['pvc-uid-a', '/metadata/annotations/datera.io~1performance-policy', '{"total_iops_max":500,"read_bandwidth_max":4000}']);
  });

  it('at start, volumes of an opted-in template that differ from it are changed, even when the templates were loaded before the volumes were cached', async () => {
    start();
    const pv = await bound('a');
    const claim = h.claims.get('a', 'default')!;
    await h.close();
    // A new process: templates first (the ConfigMap's initial list), then the PV and claim caches.
    h = newHarness(fx.sim, fx.url);
    h.classes.set(newStorageClass('gold', { parameters: { template: 'fast' } }));
    setTemplates(TEMPLATES.replace('totalIopsMax: 1000', 'totalIopsMax: 500') + OPT_IN);
    h.volumes.set(pv);
    h.claims.set(claim);
    fx.sim.clearCalls();
    h.ctrl.start();
    await h.settle();
    expect(policyOf('pvc-uid-a')).to.deep.equal({ total_iops_max: 500, read_bandwidth_max: 4000 });
    expect(policyWrites()).to.have.length(1);
    expect(eventsOf('a', 'QoSUpdated').map((e) => e.message)).to.deep.equal([
      'QoS of volume pvc-uid-a changed: totalIopsMax 1000 -> 500 (template "fast" applies its QoS to existing volumes)',
    ]);
  });

  it('a PV without the annotation (made by an older version) has its policy read once and recorded, unchanged', async () => {
    start();
    const pv = await bound('a');
    const old: V1PersistentVolume = { ...pv, metadata: { ...pv.metadata, resourceVersion: '2', annotations: { ...pv.metadata!.annotations } } };
    delete old.metadata!.annotations![ANN];
    h.volumes.set(old);
    fx.sim.clearCalls();
    setTemplates(TEMPLATES + OPT_IN);
    await h.settle();
    expect(fx.sim.calls().filter((c) => !c.path.endsWith('/login')).map((c) => `${c.method} ${c.route}`)).to.deep.equal(['GET /app_instances/:id']);
    expect(patchedPolicies()).to.deep.equal([['pvc-uid-a', '/metadata/annotations/datera.io~1performance-policy', '{"total_iops_max":1000,"read_bandwidth_max":4000}']]);
    expect(h.events.filter((e) => e.reason === 'QoSUpdated')).to.deep.equal([]);
  });
});
