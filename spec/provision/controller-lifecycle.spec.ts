// SPDX-License-Identifier: Apache-2.0
// What the controller tells operators (log lines) and how it forgets work that no longer matters:
// scheduled retries of deleted claims and PVs, the clean-up of a claim the cache lost too early,
// clones and their sources, and the defaults a class may leave out.
import { Writable } from 'node:stream';
import { expect } from 'chai';
import winston from 'winston';
import type { V1ConfigMap, V1PersistentVolume } from '@kubernetes/client-node';
import type { DateraClient } from '../../lib/datera/client.js';
import type { DateraSimulator } from '../../lib/sim/server.js';
import { createLogger } from '../../lib/observability/logger.js';
import { PROVISIONER, newClaim, newStorageClass, newVolume } from '../support/builders.js';
import { CLUSTER_ID, apiError, eventually, newHarness, useSimulator, type Harness } from './harness.js';

const AI_BODY = { storage_instances: [{ name: 'storage-1', volumes: [{ name: 'volume-1', size: 1 }] }] };

type Line = Record<string, unknown> & { level: string; message: string };
function captureLogger() {
  const lines: Line[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(JSON.parse(chunk.toString()) as Line);
      cb();
    },
  });
  return { lines, logger: createLogger({ level: 'debug', transports: [new winston.transports.Stream({ stream })] }) };
}

describe('provisioning controller: operator log lines and forgotten work', function () {
  this.timeout(20_000);
  const fx = useSimulator();
  let sim: DateraSimulator;
  let simUrl: string;
  let direct: DateraClient;
  let h: Harness;
  let lines: Line[];

  const start = (o: Parameters<typeof newHarness>[2] = {}) => {
    const c = captureLogger();
    lines = c.lines;
    h = newHarness(sim, simUrl, o, c.logger);
    h.classes.set(newStorageClass('gold', { parameters: { replica: '2' } }));
    h.ctrl.start();
  };
  beforeEach(() => {
    ({ sim, url: simUrl, direct } = fx);
    start();
  });
  afterEach(async () => {
    await h.close();
  });

  const names = () => sim.appInstances().map((a) => a.name);
  const tag = async (name: string, md: Record<string, string>) => {
    await direct.createAppInstance({ name, ...AI_BODY });
    await direct.putMetadata(name, md);
  };
  const ours = (name: string) => ({ 'k8s-provisioner': PROVISIONER, 'k8s-pv': name, 'k8s-claim-uid': `uid-claim-${name}`, 'k8s-cluster-id': CLUSTER_ID });
  const released = (name: string, o: Parameters<typeof newVolume>[1] = {}): V1PersistentVolume => {
    const pv = newVolume(name, { phase: 'Released', ...o });
    pv.spec!.claimRef = { kind: 'PersistentVolumeClaim', namespace: 'default', name: 'c', uid: `uid-claim-${name}` };
    return pv;
  };
  const logged = (message: string) => lines.filter((l) => l.message === message);

  describe('log lines', () => {
    it('a provisioned volume is logged at info with PV, class, size and template', async () => {
      h.claims.set(newClaim('a', { className: 'gold', size: '3Gi' }));
      await h.settle();
      expect(logged('provisioned')).to.have.length(1);
      expect(logged('provisioned')[0]).to.include({ level: 'info', pv: 'pvc-uid-a', storageClass: 'gold', sizeGiB: 3, template: '', namespace: 'default', claim: 'a', uid: 'uid-a' });
    });

    it('a retryable provisioning failure is logged at warn with the class, the error and the attempt number', async () => {
      h.core.failNext('createPV', apiError(500, 'InternalError', 'etcd timeout'));
      h.claims.set(newClaim('a', { className: 'gold' }));
      await eventually(h, () => logged('provisioned').length === 1);
      const w = logged('provisioning failed; will retry');
      expect(w).to.have.length(1);
      expect(w[0]).to.include({ level: 'warn', storageClass: 'gold', attempt: 1 });
      expect(w[0]!.err).to.match(/saving its PersistentVolume failed/);
    });

    it('a refused claim is logged at warn with the class and the reason', async () => {
      h.claims.set(newClaim('a', { className: 'gold', volumeMode: 'Block' }));
      await h.settle();
      const w = logged('provisioning refused; retrying when the class or templates change');
      expect(w).to.have.length(1);
      expect(w[0]).to.include({ level: 'warn', storageClass: 'gold' });
      expect(w[0]!.err).to.match(/^volumeMode Block is not supported/);
    });

    it('a waiting claim is logged at debug with the reason', async () => {
      h.claims.set(newClaim('a', { className: 'later' }));
      await h.settle();
      expect(logged('claim waits')[0]).to.include({ level: 'debug', reason: 'storage class later does not exist (yet)' });
    });

    it('adopting an earlier attempt\'s app instance is logged with its name', async () => {
      await tag('pvc-uid-a', { 'k8s-provisioner': PROVISIONER, 'k8s-claim-uid': 'uid-a', 'k8s-cluster-id': CLUSTER_ID });
      h.claims.set(newClaim('a', { className: 'gold' }));
      await h.settle();
      expect(logged('adopted app instance from an earlier attempt')[0]).to.include({ level: 'info', appInstance: 'pvc-uid-a' });
    });

    it('a reclaimed volume is logged at info with its app instance', async () => {
      await tag('pvc-1', ours('pvc-1'));
      h.volumes.set(released('pvc-1'));
      await h.settle();
      expect(logged('deleted volume')[0]).to.include({ level: 'info', appInstance: 'pvc-1', pv: 'pvc-1' });
    });

    it('a refused reclaim is logged at warn with the app instance and the reason', async () => {
      await tag('pvc-1', { ...ours('pvc-1'), 'k8s-cluster-id': 'other-cluster' });
      h.volumes.set(released('pvc-1'));
      await h.settle();
      const w = logged('refusing to delete an app instance that is not ours');
      expect(w[0]).to.include({ level: 'warn', appInstance: 'pvc-1' });
      expect(w[0]!.reason).to.match(/other-cluster/);
    });

    it('a failed Datera delete is logged at warn with the app instance and the error', async () => {
      await tag('pvc-1', ours('pvc-1'));
      sim.setFaults({ rate503: 1 });
      h.volumes.set(released('pvc-1'));
      await h.settle();
      sim.setFaults({});
      const w = logged('delete failed; will retry');
      expect(w[0]).to.include({ level: 'warn', appInstance: 'pvc-1' });
      expect(w[0]!.err).to.match(/^Datera /);
    });

    it('a failed PV delete and a failed finalizer patch are logged with the Kubernetes error', async () => {
      await tag('pvc-1', ours('pvc-1'));
      h.core.failNext('patchPV', apiError(422, 'Invalid', 'the test operation failed'));
      h.volumes.set(released('pvc-1'));
      await h.settle();
      expect(logged('finalizer patch did not apply; retrying')[0]).to.include({ level: 'debug', err: 'Kubernetes API 422 Invalid: the test operation failed', conflict: false });
      h.core.failNext('deletePV', apiError(500, 'InternalError', 'etcd'));
      h.volumes.set({ ...released('pvc-1'), metadata: { ...released('pvc-1').metadata, resourceVersion: '2' } });
      await h.settle();
      expect(logged('deleting the PV failed; will retry')[0]).to.include({ level: 'warn', err: 'Kubernetes API 500 InternalError: etcd' });
    });

    it('a failed Retain marking is logged at warn', async () => {
      await tag('pvc-1', ours('pvc-1'));
      sim.setFaults({ rate503: 1 });
      h.volumes.set(released('pvc-1', { policy: 'Retain', finalizers: ['external-provisioner.volume.kubernetes.io/finalizer'] }));
      await h.settle();
      sim.setFaults({});
      expect(logged('marking a retained volume failed; will retry')[0]).to.include({ level: 'warn', pv: 'pvc-1' });
    });

    it('the vanished-claim clean-up logs what it deleted, what it kept and why, and its failures', async () => {
      // Retries far off: the 20 ms retry of a failed PV save could otherwise run before the edit
      // and removals below (a slow machine) and save the PV, leaving nothing to clean up. The
      // claims' delete events still run the clean-up at once (an add cancels a pending retry).
      await h.close();
      start({ retryInitialMs: 60_000, retryMaxMs: 60_000 });
      h.core.failNext('createPV', apiError(500, 'InternalError'));
      h.core.failNext('createPV', apiError(500, 'InternalError'));
      const a = newClaim('a', { className: 'gold' });
      const b = newClaim('b', { className: 'gold' });
      h.claims.set(a);
      h.claims.set(b);
      await h.settle();
      await direct.putMetadata('pvc-uid-b', { 'k8s-claim-uid': 'someone-else' });
      h.claims.remove(a);
      h.claims.remove(b);
      await h.settle();
      expect(logged('deleted app instance of a claim removed before its PV was saved')[0]).to.include({ level: 'info', appInstance: 'pvc-uid-a', uid: 'uid-a' });
      const kept = logged('not deleting app instance of a removed claim: it is not ours');
      expect(kept[0]).to.include({ level: 'warn', appInstance: 'pvc-uid-b', uid: 'uid-b' });
      expect(kept[0]!.reason).to.match(/someone-else/);
      expect(names()).to.deep.equal(['pvc-uid-b']);
    });

    it('a failed clean-up is logged at warn and retried', async () => {
      h.core.failNext('createPV', apiError(500, 'InternalError'));
      const a = newClaim('a', { className: 'gold' });
      h.claims.set(a);
      await h.settle();
      h.core.readPersistentVolume = async () => {
        throw apiError(503, 'ServiceUnavailable', 'apiserver down');
      };
      h.claims.remove(a);
      await eventually(h, () => logged('clean-up of a removed claim failed; will retry').length > 0);
      expect(logged('clean-up of a removed claim failed; will retry')[0]).to.include({ level: 'warn', appInstance: 'pvc-uid-a', err: 'Kubernetes API 503 ServiceUnavailable: apiserver down' });
      expect(names()).to.deep.equal(['pvc-uid-a']);
    });

    it('template loads, rejected edits and a deleted ConfigMap are logged', async () => {
      const cm = (text: string, rv: string): V1ConfigMap => ({ metadata: { name: 'datera-templates', namespace: 'datera-system', resourceVersion: rv }, data: { 'templates.yaml': text } });
      h.configMaps.set(cm('templates:\n  - name: t1\n    replicas: 1\n', '1'));
      expect(logged('AppTemplates loaded')[0]).to.deep.include({ level: 'info', configMap: 'datera-system/datera-templates', templates: ['t1'] });
      h.configMaps.set(cm('templates:\n  - name: t1\n    replicas: nine\n', '2'));
      const bad = logged('invalid AppTemplates edit')[0]!;
      expect(bad).to.include({ level: 'error', configMap: 'datera-system/datera-templates' });
      expect(bad.errors).to.be.an('array').that.is.not.empty;
      h.configMaps.remove(cm('', '3'));
      expect(logged('template ConfigMap deleted; keeping the last good templates until it is re-created')[0]).to.include({ level: 'warn', configMap: 'datera-system/datera-templates' });
    });

    it('a ConfigMap of another name being deleted is not logged', async () => {
      h.configMaps.remove({ metadata: { name: 'other', namespace: 'datera-system' } });
      expect(lines.filter((l) => /ConfigMap/.test(l.message))).to.deep.equal([]);
    });

    it('a ConfigMap without data is reported as lacking the key', async () => {
      h.configMaps.set({ metadata: { name: 'datera-templates', namespace: 'datera-system', resourceVersion: '1' } });
      expect(h.events.map((e) => e.message)).to.deep.equal(['ConfigMap datera-system/datera-templates has no key "templates.yaml"; keeping the last good templates (0)']);
      expect(lines.filter((l) => l.level === 'error').map((l) => l.message)).to.deep.equal(['ConfigMap datera-system/datera-templates has no key "templates.yaml"; keeping the last good templates (0)']);
    });

    it('an orphan sweep asked for without a cluster id warns that it is off; "off" says nothing', async () => {
      await h.close();
      start({ clusterId: '', orphanSweep: { mode: 'report', intervalMs: 3_600_000, graceMs: 600_000 } });
      expect(logged('orphan sweep is off: no cluster id is known, so no app instance can be proven to be this cluster\'s')).to.have.length(1);
      await h.close();
      start({ clusterId: '', orphanSweep: { mode: 'off', intervalMs: 3_600_000, graceMs: 600_000 } });
      expect(lines.filter((l) => /orphan sweep/.test(l.message))).to.deep.equal([]);
      await h.close();
      start({ orphanSweep: { mode: 'off', intervalMs: 3_600_000, graceMs: 600_000 } });
      h.ctrl.sweepOrphans();
      await h.settle();
      expect(sim.calls().filter((c) => c.method === 'GET' && c.path.endsWith('/app_instances'))).to.deep.equal([]);
    });
  });

  describe('forgotten work', () => {
    it('a refused claim that is deleted drops its scheduled slow retry', async () => {
      const c = newClaim('a', { className: 'gold', volumeMode: 'Block' });
      h.claims.set(c);
      await h.settle();
      expect(h.ctrl.queue.delayed).to.equal(1);
      h.claims.remove(c);
      expect(h.ctrl.queue.delayed).to.equal(0);
    });

    it('a refused claim that stops needing us (another provisioner took it) drops its scheduled retry', async () => {
      h.claims.set(newClaim('a', { className: 'gold', volumeMode: 'Block' }));
      await h.settle();
      h.claims.set(newClaim('a', { className: 'gold', volumeMode: 'Block', provisioner: 'example.com/nfs' }));
      expect(h.ctrl.queue.delayed).to.equal(0);
    });

    it('a PV whose reclaim was refused drops its scheduled retry when it is deleted', async () => {
      await tag('pvc-1', { ...ours('pvc-1'), 'k8s-cluster-id': 'other-cluster' });
      const pv = released('pvc-1');
      h.volumes.set(pv);
      await h.settle();
      expect(h.ctrl.queue.delayed).to.equal(1);
      h.volumes.remove(pv);
      expect(h.ctrl.queue.delayed).to.equal(0);
    });

    it('a vanished claim still on the API server is cleaned up when its delete finally arrives', async () => {
      h.core.failNext('createPV', apiError(500, 'InternalError'));
      const c = newClaim('a', { className: 'gold' });
      h.claims.set(c);
      await h.settle();
      h.core.server.claims.set('default/a', c);
      h.claims.remove(c); // the cache lost it early
      await h.settle();
      expect(names()).to.deep.equal(['pvc-uid-a']);
      h.core.server.claims.delete('default/a');
      h.claims.remove(c); // the real delete
      await h.settle();
      expect(names()).to.deep.equal([]);
    });

    it('a re-run of a reclaimed PV while the cache catches up makes no Datera call and sends no second PV delete', async () => {
      await tag('pvc-1', ours('pvc-1'));
      const pv = released('pvc-1');
      h.volumes.set(pv);
      await h.settle();
      const calls = sim.calls().length;
      h.volumes.set({ ...pv, metadata: { ...pv.metadata, resourceVersion: '2', finalizers: ['kubernetes.io/pv-protection'] } });
      await h.settle();
      expect(sim.calls().length).to.equal(calls);
      expect(h.core.calls.map((c) => c.op)).to.deep.equal(['patchPV', 'deletePV']);
    });

    it('a Released PV without our finalizer: the volume and the PV are deleted, no finalizer patch is sent', async () => {
      await tag('pvc-1', ours('pvc-1'));
      h.volumes.set(released('pvc-1', { finalizers: ['kubernetes.io/pv-protection'] }));
      await h.settle();
      expect(names()).to.deep.equal([]);
      expect(h.core.calls.map((c) => c.op)).to.deep.equal(['deletePV']);
    });
  });

  describe('clones and class defaults', () => {
    const bindSource = async (size = '2Gi') => {
      h.claims.set(newClaim('src', { className: 'gold', size }));
      await h.settle();
      const srcPv = (h.core.ops('createPV') as V1PersistentVolume[])[0]!;
      h.volumes.set({ ...srcPv, status: { phase: 'Bound' } });
      h.claims.set(newClaim('src', { className: 'gold', size, volumeName: srcPv.metadata!.name! }));
      return srcPv;
    };
    const failure = (name: string) => h.events.find((e) => e.name === name && e.reason === 'ProvisioningFailed')?.message;

    it('a clone of a claim that does not exist is refused naming it', async () => {
      h.claims.set(newClaim('copy', { className: 'gold', dataSource: { kind: 'PersistentVolumeClaim', name: 'nope' } }));
      await h.settle();
      expect(failure('copy')).to.equal('failed to provision volume with StorageClass "gold": clone source claim default/nope does not exist');
      expect(names()).to.deep.equal([]);
    });

    it('a clone of a bound claim whose PV is not this provisioner\'s is refused', async () => {
      const pv = newVolume('pv-foreign', { provisionedBy: 'example.com/nfs' });
      h.volumes.set(pv);
      h.claims.set(newClaim('src', { className: 'gold', volumeName: 'pv-foreign' }));
      h.claims.set(newClaim('copy', { className: 'gold', dataSource: { kind: 'PersistentVolumeClaim', name: 'src' } }));
      await h.settle();
      expect(failure('copy')).to.equal('failed to provision volume with StorageClass "gold": clone source claim default/src is not a Datera volume of this provisioner');
      expect(names()).to.deep.equal([]);
    });

    it('a claim naming a volume that is not in the cache yet is not a bound clone source', async () => {
      h.claims.set(newClaim('src', { className: 'gold', volumeName: 'pv-missing' }));
      h.claims.set(newClaim('copy', { className: 'gold', dataSource: { kind: 'PersistentVolumeClaim', name: 'src' } }));
      await h.settle();
      expect(failure('copy')).to.equal('failed to provision volume with StorageClass "gold": clone source claim default/src is not bound yet');
    });

    it('a bound source whose claim is not phase Bound yet is refused as not bound', async () => {
      const srcPv = await bindSource();
      const src = newClaim('src', { className: 'gold', size: '2Gi', volumeName: srcPv.metadata!.name! });
      src.status = { phase: 'Pending' };
      h.claims.set(src);
      h.claims.set(newClaim('copy', { className: 'gold', size: '2Gi', dataSource: { kind: 'PersistentVolumeClaim', name: 'src' } }));
      await h.settle();
      expect(failure('copy')).to.match(/is not bound yet$/);
    });

    it('a clone as large as its source is made and not resized', async () => {
      await bindSource();
      h.claims.set(newClaim('copy', { className: 'gold', size: '2Gi', dataSource: { kind: 'PersistentVolumeClaim', name: 'src' } }));
      await h.settle();
      expect(names().sort()).to.deep.equal(['pvc-uid-copy', 'pvc-uid-src']);
      expect(sim.calls().filter((c) => c.method === 'PUT' && c.path.includes('/app_instances/pvc-uid-copy/storage_instances/'))).to.deep.equal([]);
      expect(h.events.filter((e) => e.name === 'copy').map((e) => e.reason)).to.deep.equal(['ProvisioningSucceeded']);
    });

    it('a class without a reclaim policy gives Delete on the PV and in the app instance metadata', async () => {
      const sc = newStorageClass('plain');
      delete sc.reclaimPolicy;
      h.classes.set(sc);
      h.claims.set(newClaim('a', { className: 'plain' }));
      await h.settle();
      expect((h.core.ops('createPV') as V1PersistentVolume[])[0]!.spec!.persistentVolumeReclaimPolicy).to.equal('Delete');
      expect(await direct.getMetadata('pvc-uid-a')).to.include({ 'k8s-reclaim-policy': 'Delete' });
    });

    it('a class Secret with an unusable server is a final ProvisioningFailed (slow retry, no backoff)', async () => {
      h.secrets.set('datera-system/bad', { type: 'datera/iscsi', data: { username: 'u', password: 'pw_bad', server: 'ftp://nowhere:21' } });
      h.classes.set(newStorageClass('bad', { parameters: { secretName: 'bad' } }));
      h.claims.set(newClaim('a', { className: 'bad' }));
      await h.settle();
      expect(failure('a')).to.match(/^failed to provision volume with StorageClass "bad": Datera DATERA_INVALID_REQUEST: Datera endpoint must be http or https/);
      expect(h.ctrl.queue.failures('claim/uid-a')).to.equal(0);
      expect(h.ctrl.queue.delayed).to.equal(1);
    });

    it('a PV create failing without a Kubernetes status names the error in the event', async () => {
      h.core.failNext('createPV', new Error('socket hang up'));
      h.claims.set(newClaim('a', { className: 'gold' }));
      await eventually(h, () => h.events.some((e) => e.reason === 'ProvisioningFailed'));
      expect(failure('a')).to.equal('failed to provision volume with StorageClass "gold": Datera volume pvc-uid-a is ready, but saving its PersistentVolume failed ( socket hang up); retrying without deleting the volume');
    });
  });
});
