// SPDX-License-Identifier: Apache-2.0
// The example admission policy (manifests/examples/deny-inline-flexvolume) on a real API server:
// a pod with an inline datera/iscsi flexVolume is denied, a pod using a claim is admitted.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { KubernetesObjectApi, loadAllYaml, type KubernetesObject, type V1Pod } from '@kubernetes/client-node';
import { repoRoot, type Plane } from '../cluster/plane.js';
import { apis, freshNamespace, sharedPlane, suffix, waitFor, type Apis } from './harness.js';

describe('e2e: the example policy denies inline datera/iscsi flexVolumes', function () {
  this.timeout(120_000);
  let plane: Plane;
  let a: Apis;
  let ns: string;
  let generic: KubernetesObjectApi;
  const created: KubernetesObject[] = [];

  const pod = (name: string, volume: Record<string, unknown>): V1Pod => ({
    metadata: { name },
    spec: { containers: [{ name: 'c', image: 'busybox', volumeMounts: [{ name: 'data', mountPath: '/data' }] }], volumes: [{ name: 'data', ...volume }] },
  });
  /** Server-side dry run: admission runs, nothing is stored or scheduled. */
  const tryCreate = async (p: V1Pod): Promise<{ ok: true } | { ok: false; message: string }> => {
    try {
      await a.core.createNamespacedPod({ namespace: ns, body: p, dryRun: 'All' });
      return { ok: true };
    } catch (err) {
      const body = (err as { body?: unknown }).body;
      return { ok: false, message: typeof body === 'string' ? body : JSON.stringify(body ?? (err as Error).message) };
    }
  };

  before(async () => {
    plane = await sharedPlane();
    a = apis(plane);
    ns = await freshNamespace(a, 'admission');
    generic = KubernetesObjectApi.makeApiClient(plane.kc);
    const tag = suffix();
    const docs = loadAllYaml(readFileSync(join(repoRoot, 'manifests/examples/deny-inline-flexvolume/policy.yaml'), 'utf8')) as KubernetesObject[];
    for (const d of docs) {
      const o = JSON.parse(JSON.stringify(d)) as KubernetesObject & { spec: Record<string, unknown> };
      o.metadata!.name = `${o.metadata!.name}-${tag}`;
      if (o.kind === 'ValidatingAdmissionPolicyBinding') {
        o.spec.policyName = `${o.spec.policyName as string}-${tag}`;
        // Only this test's namespace: the plane is shared with the other end-to-end specs.
        o.spec.matchResources = { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns } } };
      }
      created.push(await generic.create(o));
    }
  });
  after(async () => {
    for (const o of created.reverse()) await generic.delete(o).catch(() => undefined);
  });

  it('denies a pod with an inline datera/iscsi flexVolume with the policy message, admits one with a claim', async () => {
    const inline = pod('inline', { flexVolume: { driver: 'datera/iscsi', options: { volumeID: 'pvc-someone-else', backstoreServer: 'http://10.9.9.9:7717' } } });
    // The API server picks the new policy up asynchronously: wait until it denies.
    const denied = await waitFor('the policy to deny the inline pod', async () => {
      const r = await tryCreate(inline);
      return r.ok ? undefined : r;
    }, 30_000, 250);
    expect(denied.message).to.contain('inline flexVolume with driver datera/iscsi is not allowed');
    expect(await tryCreate(pod('claim', { persistentVolumeClaim: { claimName: 'data' } }))).to.deep.equal({ ok: true });
    expect(await tryCreate(pod('other-flex', { flexVolume: { driver: 'example/other' } })), 'other drivers are not this policy\'s business').to.deep.equal({ ok: true });
  });
});
