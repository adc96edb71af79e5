// SPDX-License-Identifier: Apache-2.0
// The object an event is recorded on: Kubernetes files a claim's event in the claim's namespace
// and links it by uid, so the subject must carry namespace, uid and resourceVersion; a PV's has no namespace.
import { expect } from 'chai';
import type { V1ConfigMap, V1PersistentVolume, V1PersistentVolumeClaim, V1StorageClass } from '@kubernetes/client-node';
import { nullLogger } from '../../lib/observability/logger.js';
import { Metrics } from '../../lib/observability/metrics.js';
import { ProvisionController } from '../../lib/provision/controller.js';
import { DateraConnections } from '../../lib/provision/credentials.js';
import type { DateraApi } from '../../lib/datera/types.js';
import { PROVISIONER, newClaim, newStorageClass, newVolume } from '../support/builders.js';
import { FakeCore, FakeInformer } from './controller-fakes.js';

describe('provisioning controller: the subject of its events', () => {
  it('a claim event names the claim\'s kind, namespace, name, uid and resourceVersion; a PV event has no namespace', async () => {
    const subjects: unknown[] = [];
    const claims = new FakeInformer<V1PersistentVolumeClaim>();
    const volumes = new FakeInformer<V1PersistentVolume>();
    const classes = new FakeInformer<V1StorageClass>();
    const connections = new DateraConnections({
      defaults: { endpoint: 'home.datera:7717', username: 'admin', password: 'pw', tenant: '/root', apiVersion: '2.2', insecureSkipTlsVerify: false, requestTimeoutMs: 1000, deadlineMs: 1000, connections: 1 },
      defaultSecret: { name: 'datera-credentials', namespace: 'datera-system' },
      readSecret: async () => undefined,
      makeClient: () => ({ getMetadata: async () => { throw Object.assign(new Error('down'), { status: 503 }); } }) as unknown as DateraApi,
      logger: nullLogger(),
    });
    const ctrl = new ProvisionController(
      { provisionerName: PROVISIONER, extraProvisionerNames: [], legacyAlphaClasses: {}, namespace: 'datera-system', templatesConfigMap: 't', templatesKey: 'k', defaultFsType: 'xfs', workers: 1, retryInitialMs: 60_000, retryMaxMs: 60_000, finalErrorRetryMs: 600_000, provisioningEventDelayMs: 60_000 },
      {
        core: new FakeCore({ confirmingReads: false }),
        claims,
        volumes,
        classes,
        configMaps: new FakeInformer<V1ConfigMap>(),
        recorder: { record: (obj) => void subjects.push(obj) },
        connections,
        metrics: new Metrics({ defaultMetrics: false }),
        logger: nullLogger(),
      },
    );
    classes.set(newStorageClass('gold'));
    ctrl.start();
    const pvc = newClaim('a', { ns: 'team-a', className: 'gold', volumeMode: 'Block' });
    pvc.metadata!.resourceVersion = '42';
    claims.set(pvc);
    volumes.set(newVolume('pvc-1', { phase: 'Released' }));
    await new Promise((r) => setTimeout(r, 5));
    await ctrl.queue.idle();
    await ctrl.stop();
    expect(subjects).to.deep.include({ kind: 'PersistentVolumeClaim', apiVersion: 'v1', metadata: { name: 'a', namespace: 'team-a', uid: 'uid-a', resourceVersion: '42' } });
    expect(subjects).to.deep.include({ kind: 'PersistentVolume', apiVersion: 'v1', metadata: { name: 'pvc-1', uid: 'uid-pvc-1', resourceVersion: '1' } });
  });
});
