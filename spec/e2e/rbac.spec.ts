// SPDX-License-Identifier: Apache-2.0
// The shipped RBAC is enough: the provisioner runs with its ServiceAccount's token only.
import { expect } from 'chai';
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubernetesObjectApi, loadAllYaml, type KubernetesObject } from '@kubernetes/client-node';
import { DateraSimulator } from '../../lib/sim/server.js';
import type { Running } from '../../lib/main.js';
import { repoRoot, type Plane } from '../cluster/plane.js';
import { SIM_USER, apis, claim, eventsFor, freshNamespace, sharedPlane, startProvisioner, storageClass, suffix, waitBound, waitFor, waitGone, type Apis } from './harness.js';

describe('e2e: the shipped RBAC is enough', function () {
  this.timeout(180_000);
  let plane: Plane;
  let a: Apis;
  let sim: DateraSimulator;
  let prov: Running;
  let ns: string;
  const name = `e2e.datera.io/rbac-${suffix()}`;
  const cls = `rbac-${suffix()}`;
  const secretCls = `rbac-secret-${suffix()}`;
  const homeCls = `rbac-home-${suffix()}`;
  const foreignCls = `rbac-foreign-${suffix()}`;
  let tenantNs: string;
  /** Plays a Datera server a tenant controls: must never be contacted. */
  let foreign: Server;
  let foreignHits = 0;

  before(async function () {
    plane = await sharedPlane();
    a = apis(plane);
    sim = new DateraSimulator({ users: [SIM_USER, { name: 'team_b', password: 'team_b_pw1' }] });
    const simUrl = await sim.start();
    ns = await freshNamespace(a, 'rbac');
    const tag = suffix();
    // The base manifests, moved to this test's namespace and given unique cluster-scoped names.
    const docs = ['serviceaccount.yaml', 'rbac.yaml'].flatMap((f) => loadAllYaml(readFileSync(join(repoRoot, 'manifests/base', f), 'utf8')) as KubernetesObject[]);
    const generic = KubernetesObjectApi.makeApiClient(plane.kc);
    for (const d of docs) {
      const o = JSON.parse(JSON.stringify(d)) as KubernetesObject & { subjects?: Array<{ namespace?: string }>; roleRef?: { name: string } };
      if (o.metadata!.namespace) o.metadata!.namespace = ns;
      if (o.kind === 'ClusterRole' || o.kind === 'ClusterRoleBinding') o.metadata!.name = `${o.metadata!.name}-${tag}`;
      if (o.kind === 'ClusterRoleBinding') o.roleRef!.name = `${o.roleRef!.name}-${tag}`;
      for (const s of o.subjects ?? []) s.namespace = ns;
      await generic.create(o);
    }
    const token = await a.core.createNamespacedServiceAccountToken({ name: 'datera-provisioner', namespace: ns, body: { spec: { audiences: [], expirationSeconds: 3600 } } });
    const dir = mkdtempSync(join(tmpdir(), 'rbac-'));
    const kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(
      kubeconfig,
      `apiVersion: v1\nkind: Config\nclusters:\n- name: p\n  cluster: {server: "${plane.server}", insecure-skip-tls-verify: true}\nusers:\n- name: sa\n  user: {token: "${token.status!.token}"}\ncontexts:\n- name: p\n  context: {cluster: p, user: sa}\ncurrent-context: p\n`,
    );
    await a.core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'datera-templates' }, data: { 'templates.yaml': 'templates:\n  - name: t\n    replicas: 1\n' } } });
    await a.core.createNamespacedSecret({
      namespace: ns,
      body: { metadata: { name: 'team-b' }, type: 'datera/iscsi', stringData: { username: 'team_b', password: 'team_b_pw1', server: simUrl } },
    });
    await a.storage.createStorageClass({ body: storageClass(cls, name, { template: 't' }) });
    await a.storage.createStorageClass({ body: storageClass(secretCls, name, { secretName: 'team-b', secretNamespace: ns }) });

    // A tenant namespace with a Secret of the same name that points at the tenant's own server.
    foreign = createServer((_req, res) => {
      foreignHits++;
      res.statusCode = 500;
      res.end();
    });
    await new Promise<void>((r) => foreign.listen(0, '127.0.0.1', () => r()));
    const foreignUrl = `http://127.0.0.1:${(foreign.address() as { port: number }).port}`;
    tenantNs = await freshNamespace(a, 'rbac-tenant');
    for (const n of ['team-b', 'team-c'])
      await a.core.createNamespacedSecret({
        namespace: tenantNs,
        body: { metadata: { name: n }, type: 'datera/iscsi', stringData: { username: 'evil', password: 'evil_pw1', server: foreignUrl } },
      });
    await a.storage.createStorageClass({ body: storageClass(homeCls, name, { secretName: 'team-b' }) });
    await a.storage.createStorageClass({ body: storageClass(foreignCls, name, { secretName: 'team-c', secretNamespace: tenantNs }) });
    prov = await startProvisioner({ plane, simUrl, provisionerName: name, namespace: ns, kubeconfig, leaderElect: true });
  });
  after(async function () {
    await prov?.stop();
    await sim?.stop();
    await new Promise((r) => foreign?.close(r));
  });

  it('provisions, emits events, reads templates and a class Secret, holds the Lease, and reclaims as the ServiceAccount', async () => {
    await waitFor('leader', async () => prov.isLeader(), 30_000);
    expect(prov.controller.templates.templates.has('t')).to.equal(true);
    await a.core.createNamespacedPersistentVolumeClaim({ namespace: ns, body: claim('c1', { className: cls }) });
    await a.core.createNamespacedPersistentVolumeClaim({ namespace: ns, body: claim('c2', { className: secretCls }) });
    const c1 = await waitBound(a, ns, 'c1');
    const c2 = await waitBound(a, ns, 'c2');
    expect((await eventsFor(a, ns, 'c1')).map((e) => e.reason)).to.include('ProvisioningSucceeded');
    const pv2 = await a.core.readPersistentVolume({ name: c2.spec!.volumeName! });
    expect(pv2.spec!.flexVolume!.secretRef).to.deep.equal({ name: 'team-b', namespace: ns });
    const calls = sim.calls().filter((c) => c.method === 'POST' && c.route.startsWith('/app_instances'));
    expect(calls.some((c) => c.user === 'team_b')).to.equal(true);

    await a.core.deleteNamespacedPersistentVolumeClaim({ name: 'c1', namespace: ns });
    await a.core.deleteNamespacedPersistentVolumeClaim({ name: 'c2', namespace: ns });
    for (const c of [c1, c2]) {
      await waitGone(`PV ${c.spec!.volumeName}`, () => a.core.readPersistentVolume({ name: c.spec!.volumeName! }));
      expect(sim.appInstances().some((ai) => ai.name === c.spec!.volumeName)).to.equal(false);
    }
  });

  it('a class secretName without secretNamespace is read from the provisioner namespace, not the claim namespace (the tenant server is never contacted)', async () => {
    await waitFor('leader', async () => prov.isLeader(), 30_000);
    await a.core.createNamespacedPersistentVolumeClaim({ namespace: tenantNs, body: claim('c3', { className: homeCls }) });
    const c3 = await waitBound(a, tenantNs, 'c3');
    const pv3 = await a.core.readPersistentVolume({ name: c3.spec!.volumeName! });
    expect(pv3.spec!.flexVolume!.secretRef).to.deep.equal({ name: 'team-b', namespace: ns });
    expect(sim.calls().some((c) => c.method === 'POST' && c.route.startsWith('/app_instances') && c.user === 'team_b')).to.equal(true);
    expect(foreignHits).to.equal(0);
  });

  it('a class naming a Secret in a namespace without a grant fails with an event that names the missing RBAC grant', async () => {
    await waitFor('leader', async () => prov.isLeader(), 30_000);
    await a.core.createNamespacedPersistentVolumeClaim({ namespace: tenantNs, body: claim('c4', { className: foreignCls }) });
    const ev = await waitFor('ProvisioningFailed on c4', async () => (await eventsFor(a, tenantNs, 'c4')).find((e) => e.reason === 'ProvisioningFailed'));
    expect(ev.message).to.include(`credentials Secret ${tenantNs}/team-c may not be read by the provisioner (403 Forbidden)`);
    expect(ev.message).to.include(`a Role in namespace ${tenantNs} with rules [{apiGroups: [""], resources: [secrets], resourceNames: [team-c], verbs: [get]}]`);
    expect(ev.message).to.not.include('evil_pw1');
    expect(foreignHits).to.equal(0);
  });
});
