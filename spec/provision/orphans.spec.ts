// SPDX-License-Identifier: Apache-2.0
// The orphan sweep: the pure classification, then the sweep run by the controller against the simulator.
import { expect } from 'chai';
import { DateraClient } from '../../lib/datera/client.js';
import type { DateraSimulator } from '../../lib/sim/server.js';
import { classifyAppInstance, type OrphanFacts } from '../../lib/provision/orphans.js';
import type { ControllerOptions } from '../../lib/provision/controller.js';
import type { V1PersistentVolume } from '@kubernetes/client-node';
import { PROVISIONER, newClaim, newStorageClass, newVolume } from '../support/builders.js';
import { CLUSTER_ID, apiError, newHarness, useSimulator, type Harness } from './harness.js';

const AI_BODY = { storage_instances: [{ name: 'storage-1', volumes: [{ name: 'volume-1', size: 1 }] }] };
const LONG_AGO = '2026-01-01T00:00:00.000Z';

function md(name: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    'k8s-provisioner': PROVISIONER,
    'k8s-pv': name,
    'k8s-claim-namespace': 'default',
    'k8s-claim-name': `claim-of-${name}`,
    'k8s-claim-uid': `uid-of-${name}`,
    'k8s-storage-class': 'gold',
    'k8s-cluster-id': CLUSTER_ID,
    'k8s-created-at': LONG_AGO,
    ...extra,
  };
}

describe('orphan sweep', function () {
  this.timeout(20_000);

  describe('classifyAppInstance (pure)', () => {
    const now = Date.parse('2026-06-01T00:00:00Z');
    const facts = (o: Partial<OrphanFacts> = {}): OrphanFacts => ({
      provisionerNames: new Set([PROVISIONER]),
      clusterId: CLUSTER_ID,
      hasVolume: () => false,
      hasClaim: () => false,
      now,
      graceMs: 600_000,
      firstSeen: now,
      ...o,
    });
    const cases: Array<[string, Record<string, string>, Partial<OrphanFacts>, string]> = [
      ['tagged by us, no PV, no claim, old', md('pvc-1'), {}, 'orphan'],
      ['untagged', {}, {}, 'not-ours'],
      ['another provisioner', md('pvc-1', { 'k8s-provisioner': 'example.com/x' }), {}, 'not-ours'],
      ['another cluster', md('pvc-1', { 'k8s-cluster-id': 'other' }), {}, 'not-ours'],
      ['no cluster id (made before ids were recorded)', (({ 'k8s-cluster-id': _c, ...r }) => r)(md('pvc-1')), {}, 'not-ours'],
      ['our own cluster id unknown', md('pvc-1'), { clusterId: '' }, 'not-ours'],
      ['no claim uid', (({ 'k8s-claim-uid': _u, ...r }) => r)(md('pvc-1')), {}, 'not-ours'],
      ['its PV exists', md('pvc-1'), { hasVolume: (n) => n === 'pvc-1' }, 'has-volume'],
      ['its claim exists', md('pvc-1'), { hasClaim: (u) => u === 'uid-of-pvc-1' }, 'has-claim'],
      ['created within the grace period', md('pvc-1', { 'k8s-created-at': new Date(now - 60_000).toISOString() }), {}, 'too-young'],
      ['created "in the future" (clock skew) counts from now', md('pvc-1', { 'k8s-created-at': new Date(now + 3_600_000).toISOString() }), {}, 'too-young'],
      ['no creation time, first seen now', md('pvc-1', { 'k8s-created-at': 'garbage' }), {}, 'too-young'],
      ['reclaim policy Retain, old', md('pvc-1', { 'k8s-reclaim-policy': 'Retain' }), {}, 'retained'],
      ['reclaim policy Retain, within the grace period', md('pvc-1', { 'k8s-reclaim-policy': 'Retain', 'k8s-created-at': new Date(now - 60_000).toISOString() }), {}, 'too-young'],
      ['no creation time, first seen long ago', md('pvc-1', { 'k8s-created-at': 'garbage' }), { firstSeen: now - 3_600_000 }, 'orphan'],
    ];
    for (const [what, m, f, want] of cases) {
      it(`${what} -> ${want}`, () => {
        expect(classifyAppInstance(m, facts(f)).kind).to.equal(want);
      });
    }
  });

  describe('against the simulator', () => {
    const fx = useSimulator();
    let sim: DateraSimulator;
    let simUrl: string;
    let direct: DateraClient;
    let h: Harness;

    afterEach(async () => {
      await h.close();
    });

    function start(sweep: ControllerOptions['orphanSweep'] = { mode: 'delete', intervalMs: 3_600_000, graceMs: 600_000 }, extra: Partial<ControllerOptions> = {}) {
      h = newHarness(sim, simUrl, { orphanSweep: sweep, ...extra });
      h.classes.set(newStorageClass('gold', { parameters: { replica: '2' } }));
    }
    beforeEach(() => {
      ({ sim, url: simUrl, direct } = fx);
    });
    const ai = async (name: string, metadata: Record<string, string> | undefined, client = direct) => {
      await client.createAppInstance({ name, ...AI_BODY });
      if (metadata) await client.putMetadata(name, metadata);
    };
    const names = (tenant?: string) => sim.appInstances(tenant).map((a) => a.name).sort();
    const sweep = async () => {
      h.ctrl.sweepOrphans();
      await h.settle();
    };

    it('deletes an old app instance of this cluster and provisioner that has no PV and no claim: log, event on its StorageClass, found/removed metrics', async () => {
      start();
      await ai('pvc-orphan', md('pvc-orphan'));
      h.ctrl.start();
      await h.settle();
      expect(names()).to.deep.equal([]);
      const ev = h.events.find((e) => e.reason === 'OrphanedVolumeDeleted')!;
      expect(ev).to.include({ kind: 'StorageClass', name: 'gold', type: 'Normal' });
      expect(ev.message).to.match(/pvc-orphan.*claim default\/claim-of-pvc-orphan \(uid uid-of-pvc-orphan\)/);
      expect(await h.metrics.value('datera_orphans_found_total')).to.equal(1);
      expect(await h.metrics.value('datera_orphans_removed_total')).to.equal(1);
      expect(h.core.ops('readPV')).to.include('pvc-orphan');
      expect(h.core.ops('readPVC')).to.include('default/claim-of-pvc-orphan');
    });

    it('with a start delay the first sweep waits: starting makes no Datera call (the orphan stays), and sweepOrphans() still runs at once', async () => {
      start({ mode: 'delete', intervalMs: 3_600_000, graceMs: 600_000, startDelayMs: 3_600_000 });
      await ai('pvc-orphan', md('pvc-orphan'));
      const before = sim.calls().length;
      h.ctrl.start();
      await h.settle();
      expect(sim.calls().slice(before), 'no Datera call at start-up').to.deep.equal([]);
      expect(names()).to.deep.equal(['pvc-orphan']);
      await sweep();
      expect(names()).to.deep.equal([]);
    });

    it('never touches untagged, foreign-cluster, other-provisioner or pre-cluster-id app instances in the same tenant', async () => {
      start();
      await ai('pvc-untagged', undefined);
      await ai('pvc-foreign', md('pvc-foreign', { 'k8s-cluster-id': 'another-cluster' }));
      await ai('pvc-nfs', md('pvc-nfs', { 'k8s-provisioner': 'example.com/nfs' }));
      const { 'k8s-cluster-id': _c, ...old } = md('pvc-old');
      await ai('pvc-old', old);
      h.ctrl.start();
      await h.settle();
      expect(names()).to.deep.equal(['pvc-foreign', 'pvc-nfs', 'pvc-old', 'pvc-untagged']);
      expect(sim.calls().filter((c) => c.method === 'DELETE' || (c.method === 'PUT' && c.path.includes('/app_instances/') && !c.path.endsWith('/metadata')))).to.have.length(0);
      expect(await h.metrics.value('datera_orphans_found_total')).to.equal(0);
      expect(sim.calls().filter((c) => c.method === 'GET' && c.path.endsWith('/app_instances')).length, 'the sweep listed the tenant').to.be.greaterThan(0);
    });

    it('reads the metadata of another cluster\'s or provisioner\'s app instance once, of an untagged one every sweep', async () => {
      start();
      await ai('pvc-untagged', undefined);
      await ai('pvc-foreign', md('pvc-foreign', { 'k8s-cluster-id': 'another-cluster' }));
      await ai('pvc-nfs', md('pvc-nfs', { 'k8s-provisioner': 'example.com/nfs' }));
      h.ctrl.start();
      await h.settle();
      await sweep();
      const reads = (n: string) => sim.calls().filter((c) => c.method === 'GET' && c.path.endsWith(`/app_instances/${n}/metadata`)).length;
      expect([reads('pvc-untagged'), reads('pvc-foreign'), reads('pvc-nfs')]).to.deep.equal([2, 1, 1]);
      expect(names()).to.deep.equal(['pvc-foreign', 'pvc-nfs', 'pvc-untagged']);
    });

    it('keeps app instances whose PV or claim exists (cache), whose claim exists only on the API server, or that are within the grace period', async () => {
      start();
      await ai('pvc-has-pv', md('pvc-has-pv'));
      h.volumes.set(newVolume('pvc-has-pv'));
      await ai('pvc-pv-named', md('pvc-pv-named', { 'k8s-pv': 'pvc-elsewhere' }));
      h.volumes.set(newVolume('pvc-elsewhere'));
      await ai('pvc-has-claim', md('pvc-has-claim'));
      h.claims.set(newClaim('claim-of-pvc-has-claim', { uid: 'uid-of-pvc-has-claim', className: 'gold', volumeName: 'pvc-has-claim' }));
      await ai('pvc-server-claim', md('pvc-server-claim'));
      h.core.server.claims.set('default/claim-of-pvc-server-claim', newClaim('claim-of-pvc-server-claim', { uid: 'uid-of-pvc-server-claim' }));
      await ai('pvc-young', md('pvc-young', { 'k8s-created-at': new Date().toISOString() }));
      h.ctrl.start();
      await h.settle();
      expect(names()).to.deep.equal(['pvc-has-claim', 'pvc-has-pv', 'pvc-pv-named', 'pvc-server-claim', 'pvc-young']);
      expect(await h.metrics.value('datera_orphans_found_total')).to.equal(0);
      expect(sim.calls().filter((c) => c.method === 'GET' && c.path.endsWith('/app_instances')).length, 'the sweep listed the tenant').to.be.greaterThan(0);
    });

    it('an orphan marked Retain is only reported, even in delete mode', async () => {
      start();
      await ai('pvc-kept', md('pvc-kept', { 'k8s-reclaim-policy': 'Retain' }));
      h.ctrl.start();
      await h.settle();
      expect(names()).to.deep.equal(['pvc-kept']);
      expect(h.events.find((e) => e.reason === 'OrphanedVolume')!.message).to.match(/pvc-kept .*not deleted \(reclaim policy Retain\)/);
      expect(await h.metrics.value('datera_orphans_removed_total')).to.equal(0);
    });

    it('a Delete PV edited to Retain: release marks its volume retained before dropping our finalizer, so the sweep keeps it after the PV is deleted', async () => {
      start({ mode: 'delete', intervalMs: 3_600_000, graceMs: 0 });
      h.ctrl.start();
      const c = newClaim('a', { className: 'gold' });
      h.claims.set(c);
      await h.settle();
      const pv = h.core.ops('createPV')[0] as V1PersistentVolume;
      expect((await direct.getMetadata('pvc-uid-a'))['k8s-reclaim-policy']).to.equal('Delete');
      const edited: V1PersistentVolume = { ...pv, spec: { ...pv.spec, persistentVolumeReclaimPolicy: 'Retain' }, status: { phase: 'Released' } };
      h.claims.remove(c);
      h.volumes.set(edited);
      await h.settle();
      expect((await direct.getMetadata('pvc-uid-a'))['k8s-reclaim-policy']).to.equal('Retain');
      expect((h.core.ops('patchPV')[0] as { name: string }).name).to.equal('pvc-uid-a');
      h.volumes.remove(edited); // the admin deletes the Retain PV
      await sweep();
      expect(names()).to.deep.equal(['pvc-uid-a']);
    });

    it('deletes nothing when the API server cannot confirm the claim is gone', async () => {
      start();
      await ai('pvc-orphan', md('pvc-orphan'));
      h.core.readNamespacedPersistentVolumeClaim = async () => {
        throw apiError(403, 'Forbidden');
      };
      h.ctrl.start();
      await h.settle();
      expect(names()).to.deep.equal(['pvc-orphan']);
    });

    it('report mode: logs, events and counts an orphan once across sweeps, and deletes nothing', async () => {
      start({ mode: 'report', intervalMs: 3_600_000, graceMs: 600_000 });
      await ai('pvc-orphan', md('pvc-orphan'));
      h.ctrl.start();
      await h.settle();
      await sweep();
      expect(names()).to.deep.equal(['pvc-orphan']);
      const evs = h.events.filter((e) => e.reason === 'OrphanedVolume');
      expect(evs).to.have.length(1);
      expect(evs[0]).to.include({ kind: 'StorageClass', name: 'gold', type: 'Warning' });
      expect(evs[0]!.message).to.match(/pvc-orphan .*has no PersistentVolume and no claim; not deleted \(orphanSweep: report\)/);
      expect(await h.metrics.value('datera_orphans_found_total')).to.equal(1);
      expect(await h.metrics.value('datera_orphans')).to.equal(1);
      expect(await h.metrics.value('datera_orphans_removed_total')).to.equal(0);
    });

    it('off, or no cluster id: no sweep lists app instances', async () => {
      for (const extra of [{ orphanSweep: { mode: 'off' as const, intervalMs: 1000, graceMs: 0 } }, { clusterId: '' }]) {
        h = newHarness(sim, simUrl, { orphanSweep: { mode: 'delete', intervalMs: 1000, graceMs: 0 }, ...extra });
        await ai('pvc-orphan', md('pvc-orphan'));
        h.ctrl.start();
        await sweep();
        expect(names()).to.deep.equal(['pvc-orphan']);
        expect(sim.calls().filter((c) => c.method === 'GET' && c.path.endsWith('/app_instances'))).to.have.length(0);
        await h.close();
        sim.reset();
      }
      h = newHarness(sim, simUrl);
    });

    it('sweeps the tenant and Secret a StorageClass names, not only the default', async () => {
      start();
      h.secrets.set('datera-system/team-b', { type: 'datera/iscsi', data: { username: 'admin', password: 'secret_pw1', server: simUrl } });
      h.classes.set(newStorageClass('team', { parameters: { secretName: 'team-b', secretNamespace: 'datera-system', tenant: '/root/team-b' } }));
      const teamB = new DateraClient({ endpoint: simUrl, username: 'admin', password: 'secret_pw1', tenant: '/root/team-b' });
      try {
        await ai('pvc-team-orphan', md('pvc-team-orphan', { 'k8s-storage-class': 'team', 'k8s-secret-namespace': 'datera-system', 'k8s-secret-name': 'team-b' }), teamB);
        await ai('pvc-team-foreign', md('pvc-team-foreign', { 'k8s-cluster-id': 'another-cluster' }), teamB);
      } finally {
        await teamB.close();
      }
      h.ctrl.start();
      await h.settle();
      expect(names('/root/team-b')).to.deep.equal(['pvc-team-foreign']);
      expect(h.events.find((e) => e.reason === 'OrphanedVolumeDeleted')).to.include({ name: 'team' });
    });

    it('a restart loses the in-memory clean-up; the new process\'s sweep removes the app instance of a claim deleted before its PV was saved', async () => {
      start({ mode: 'delete', intervalMs: 3_600_000, graceMs: 0 });
      // First process: the Datera create succeeds, the PV create fails, then the process stops.
      for (let i = 0; i < 1000; i++) h.core.failNext('createPV', apiError(500, 'InternalError'));
      h.ctrl.start();
      const c = newClaim('a', { className: 'gold' });
      h.claims.set(c);
      await h.settle();
      await h.ctrl.stop();
      expect(names()).to.deep.equal(['pvc-uid-a']);
      h.claims.remove(c); // deleted while no provisioner ran
      await h.restart();
      await h.settle();
      expect(names()).to.deep.equal([]);
      expect(await h.metrics.value('datera_orphans_removed_total')).to.equal(1);
    });
  });
});
