// SPDX-License-Identifier: Apache-2.0
// `datera-provisioner explain` on a real kube-apiserver: the class, the claim and the templates
// ConfigMap read from the cluster (in-process, and as a child process with --kubeconfig), and
// nothing written there. No provisioner runs, so the claim stays Pending as an admin would see it.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { processIo, type CommandIo } from '../../lib/admin/command.js';
import { runCommand } from '../../lib/admin/commands.js';
import type { Plane } from '../cluster/plane.js';
import { apis, claim, freshNamespace, sharedPlane, storageClass, suffix, type Apis } from './harness.js';

const execFileP = promisify(execFile);
const repo = new URL('../..', import.meta.url).pathname;

const TEMPLATES = `templates:
  - name: gold
    replicas: 2
    placement: { mode: all_flash }
    qos: { totalIopsMax: 5000 }
    overridable: [replicas]
`;

describe('e2e: explain reads its inputs from a real control plane', function () {
  this.timeout(180_000);
  let plane: Plane;
  let a: Apis;
  let ns: string;
  const provisioner = `e2e.datera.io/x-${suffix()}`;
  const gold = `gold-${suffix()}`;

  before(async function () {
    plane = await sharedPlane();
    a = apis(plane);
    ns = await freshNamespace(a, 'explain');
    await a.core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'datera-templates' }, data: { 'templates.yaml': TEMPLATES } } });
    await a.storage.createStorageClass({ body: storageClass(gold, provisioner, { template: 'gold' }, 'Retain') });
    await a.core.createNamespacedPersistentVolumeClaim({ namespace: ns, body: claim('db', { className: gold, size: '3Gi', annotations: { 'datera.io/replicas': '1' } }) });
  });

  after(async () => {
    await a?.storage.deleteStorageClass({ name: gold }).catch(() => undefined);
  });

  function io(): { io: CommandIo; out: () => string; err: () => string } {
    let out = '';
    let err = '';
    return { io: { ...processIo(), stdout: (t) => void (out += t), stderr: (t) => void (err += t), env: {} }, out: () => out, err: () => err };
  }

  it('--claim NS/NAME: the claim, its class and the ConfigMap come from the cluster; the request and PV use the claim uid; nothing is written', async () => {
    const before = await a.core.readNamespacedPersistentVolumeClaim({ namespace: ns, name: 'db' });
    const pvsBefore = (await a.core.listPersistentVolume()).items.length;
    const c = io();
    const code = await runCommand(['explain', '--kubeconfig', plane.kubeconfig, '--claim', `${ns}/db`, '--namespace', ns, '--provisioner-name', provisioner, '-o', 'json'], c.io);
    expect(c.err()).to.equal('');
    expect(code).to.equal(0);
    const x = JSON.parse(c.out());
    const uid = before.metadata!.uid!;
    expect(x.claim).to.deep.equal({ namespace: ns, name: 'db', uid, from: 'the cluster' });
    expect(x.storageClass).to.deep.equal({ name: gold, provisioner, from: 'the cluster' });
    expect(x.request).to.deep.equal({
      name: `pvc-${uid}`,
      create_mode: 'kubernetes',
      storage_instances: [{ name: 'storage-1', volumes: [{ name: 'volume-1', size: 3, replica_count: 1, placement_mode: 'all_flash', performance_policy: { total_iops_max: 5000 } }] }],
    });
    const rows = Object.fromEntries((x.settings as Array<{ setting: string; origin: string }>).map((r) => [r.setting, r.origin]));
    expect(rows).to.include({ size: 'claim', replicas: 'claim', 'placement.mode': 'template', template: 'class', reclaimPolicy: 'class' });
    expect(x.persistentVolume.spec.claimRef).to.include({ namespace: ns, name: 'db', uid });
    expect(x.persistentVolume.spec.flexVolume.secretRef).to.deep.equal({ name: 'datera-credentials', namespace: ns });

    const after = await a.core.readNamespacedPersistentVolumeClaim({ namespace: ns, name: 'db' });
    expect(after.metadata!.resourceVersion, 'the claim is untouched').to.equal(before.metadata!.resourceVersion);
    expect(after.status?.phase).to.equal('Pending');
    expect((await a.core.listPersistentVolume()).items.length, 'no PV was created').to.equal(pvsBefore);
  });

  it('as a child process: --class from the cluster with a made-up claim; a claim the template does not allow an override for exits 1', async () => {
    const ok = await execFileP(
      'npx',
      ['tsx', 'lib/main.ts', 'explain', '--kubeconfig', plane.kubeconfig, '--class', gold, '--namespace', ns, '--provisioner-name', provisioner, '--size', '8Gi', '-o', 'json'],
      { cwd: repo, env: { ...process.env, NODE_OPTIONS: '' } },
    );
    const x = JSON.parse(ok.stdout);
    expect(x.request.storage_instances[0].volumes[0]).to.include({ size: 8, replica_count: 2 });
    expect(x.templates.from).to.equal(`key "templates.yaml" of ConfigMap ${ns}/datera-templates (the cluster)`);

    const refused = await execFileP(
      'npx',
      ['tsx', 'lib/main.ts', 'explain', '--kubeconfig', plane.kubeconfig, '--class', gold, '--namespace', ns, '--provisioner-name', provisioner, '--size', '8Gi', '--annotation', 'datera.io/ipPool=x'],
      { cwd: repo, env: { ...process.env, NODE_OPTIONS: '' } },
    ).then(
      () => expect.fail('exit 0'),
      (e: { code: number; stdout: string }) => e,
    );
    expect(refused.code).to.equal(1);
    expect(refused.stdout).to.include('claim annotation "datera.io/ipPool" may not override ipPool: template "gold" allows overriding only: replicas');
  });
});
