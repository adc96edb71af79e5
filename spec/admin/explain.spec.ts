// SPDX-License-Identifier: Apache-2.0
// `datera-provisioner explain` (lib/admin/explain.ts) and the per-setting sources it prints
// (request.ts): in-process with files in a temp dir and an HTTP stand-in for the API server, and
// as a child process of lib/main.ts with sockets that would see any connection.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import { expect } from 'chai';
import type { CommandIo } from '../../lib/admin/command.js';
import { runCommand } from '../../lib/admin/commands.js';
import { PLACEHOLDER_UID } from '../../lib/admin/explain.js';
import { parseTemplates } from '../../lib/provision/app-templates.js';
import { appInstanceRequest, type TranslateInput } from '../../lib/provision/request.js';

const execFileP = promisify(execFile);
const repo = new URL('../..', import.meta.url).pathname;

const TEMPLATES = `templates:
  - name: fast
    replicas: 3
    placement: { mode: all_flash }
    qos: { totalIopsMax: 20000, iopsPerGiB: 50 }
    defaultSize: 32Gi
    minSize: 10Gi
    maxSize: 2Ti
    overridable: [replicas, qos.totalIopsMax]
  - name: remote
    dateraTemplate: basic_small
    fsType: ext4
`;

const CONFIGMAP = `apiVersion: v1
kind: ConfigMap
metadata: { name: datera-templates, namespace: datera-system }
data:
  templates.yaml: |
${TEMPLATES.split('\n').map((l) => `    ${l}`).join('\n')}
`;

const CLASS = `apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: { name: datera-fast }
provisioner: datera.io/provisioner-datera
reclaimPolicy: Retain
parameters:
  template: fast
  replica_count: "2"
`;

const CLAIM = `apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: db
  namespace: shop
  uid: 3f1c2d9e-0000-4000-8000-000000000001
  annotations: { datera.io/qos.totalIopsMax: "3000" }
spec:
  storageClassName: datera-fast
  accessModes: [ReadWriteOnce]
  resources: { requests: { storage: 100Gi } }
`;

interface Captured {
  io: CommandIo;
  out: () => string;
  err: () => string;
  kubeConfigCalls: () => number;
}

/** An io over the real file system whose kubeConfig counts calls and returns `kc` (or throws). */
function captureIo(kc?: KubeConfig, env: NodeJS.ProcessEnv = {}): Captured {
  let out = '';
  let err = '';
  let calls = 0;
  return {
    io: {
      stdout: (t) => void (out += t),
      stderr: (t) => void (err += t),
      env,
      readFile: (p) => readFileSync(p, 'utf8'),
      kubeConfig: () => {
        calls++;
        if (!kc) throw new Error('explain asked for a kubeconfig although every input was a file');
        return kc;
      },
    },
    out: () => out,
    err: () => err,
    kubeConfigCalls: () => calls,
  };
}

describe('admin/explain: the per-setting sources of appInstanceRequest', () => {
  const templates = parseTemplates(TEMPLATES);
  if (!templates.ok) throw new Error(templates.errors.join('; '));
  const input = (over: Partial<TranslateInput> & { annotations?: Record<string, string>; requestBytes?: bigint | null } = {}): TranslateInput => ({
    pvName: 'pvc-1',
    className: 'sc',
    parameters: over.parameters ?? { template: 'fast', replica_count: '2' },
    claim: {
      namespace: 'ns',
      name: 'c',
      uid: '1',
      annotations: over.annotations ?? {},
      ...(over.requestBytes === null ? {} : { requestBytes: over.requestBytes ?? 100n * 2n ** 30n }),
      accessModes: ['ReadWriteOnce'],
    },
    templates: templates.set,
    defaults: { fsType: 'ext4' },
  });

  it('names the layer of each setting: default < provisioner < template < class < claim', () => {
    const r = appInstanceRequest(input({ annotations: { 'datera.io/qos.totalIopsMax': '3000' } }));
    if (!r.ok) expect.fail(r.error.message);
    const s = r.sources;
    expect(s.fsType).to.deep.equal({ origin: 'provisioner', desc: 'provisioner default fsType', value: 'ext4' });
    expect(s.placementMode).to.deep.equal({ origin: 'template', desc: 'template "fast" key placement.mode', param: 'templates.yaml:fast.placement.mode', value: 'all_flash' });
    expect(s.replicas).to.deep.equal({ origin: 'class', desc: 'StorageClass "sc" parameter "replica_count"', param: 'replica_count', value: 2 });
    expect(s.totalIopsMax).to.deep.equal({ origin: 'claim', desc: 'claim annotation "datera.io/qos.totalIopsMax"', param: 'datera.io/qos.totalIopsMax', value: 3000 });
    expect(s.iopsPerGiB?.origin).to.equal('template');
    expect(s.size).to.deep.equal({ origin: 'claim', desc: 'claim "ns/c" field resources.requests.storage', param: 'resources.requests.storage', value: 100 });
    expect(s.template).to.deep.equal({ origin: 'class', desc: 'StorageClass "sc" parameter "template"', param: 'template', value: 'fast' });
    expect(s.secretName, 'no secretName set').to.equal(undefined);
  });

  it('a claim without a request takes its size from the default size and says whose it is', () => {
    const fromTemplate = appInstanceRequest(input({ requestBytes: null }));
    if (!fromTemplate.ok) expect.fail(fromTemplate.error.message);
    expect(fromTemplate.sources.size).to.deep.equal({ origin: 'template', desc: 'template "fast" key defaultSize', param: 'templates.yaml:fast.defaultSize', value: 32 });
    const builtIn = appInstanceRequest(input({ parameters: {}, requestBytes: null }));
    if (!builtIn.ok) expect.fail(builtIn.error.message);
    expect(builtIn.sources.size).to.deep.equal({ origin: 'default', desc: 'built-in default size', value: 16 });
    expect(builtIn.sources.replicas).to.deep.equal({ origin: 'default', desc: 'built-in default', value: 3 });
  });

  it('adding the sources changed neither the request nor the PV parameters', () => {
    const r = appInstanceRequest(input());
    if (!r.ok) expect.fail(r.error.message);
    const vol = r.request.storage_instances?.[0]?.volumes?.[0];
    expect(vol).to.deep.equal({ name: 'volume-1', size: 100, replica_count: 2, placement_mode: 'all_flash', performance_policy: { total_iops_max: 5000 } });
    expect(r.volume).to.deep.equal({ appInstanceName: 'pvc-1', sizeGiB: 100, replicas: 2, fsType: 'ext4', template: 'fast', placementMode: 'all_flash', qos: { total_iops_max: 5000 } });
  });
});

describe('admin/explain: in-process, every input from files', () => {
  let dir: string;
  const file = (name: string, text: string): string => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'explain-spec-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('prints the request and the PV of the real functions, with the source of each setting, and exits 0 without asking for a kubeconfig', async () => {
    const c = captureIo();
    const code = await runCommand(
      ['explain', '--class-file', file('sc.yaml', CLASS), '--templates-file', file('cm.yaml', CONFIGMAP), '--claim-file', file('pvc.yaml', CLAIM), '--datera-endpoint', '10.0.0.5:7718', '-o', 'json'],
      c.io,
    );
    expect(c.err()).to.equal('');
    expect(code).to.equal(0);
    expect(c.kubeConfigCalls()).to.equal(0);
    const x = JSON.parse(c.out());
    expect(x.verdict).to.equal('provision');
    expect(x.tenant).to.equal('/root');
    expect(x.request).to.deep.equal({
      name: 'pvc-3f1c2d9e-0000-4000-8000-000000000001',
      create_mode: 'kubernetes',
      storage_instances: [
        { name: 'storage-1', volumes: [{ name: 'volume-1', size: 100, replica_count: 2, placement_mode: 'all_flash', performance_policy: { total_iops_max: 3000 } }] },
      ],
    });
    const pv = x.persistentVolume;
    expect(pv.metadata.name).to.equal('pvc-3f1c2d9e-0000-4000-8000-000000000001');
    expect(pv.spec.persistentVolumeReclaimPolicy).to.equal('Retain');
    expect(pv.spec.claimRef).to.include({ namespace: 'shop', name: 'db', uid: '3f1c2d9e-0000-4000-8000-000000000001' });
    expect(pv.spec.flexVolume.options).to.include({ backstoreServer: '10.0.0.5:7718', tenant: '/root', size: '100', replica: '2', template: 'fast' });
    expect(pv.spec.flexVolume.secretRef).to.deep.equal({ name: 'datera-credentials', namespace: 'datera-system' });
    const from = Object.fromEntries((x.settings as Array<{ setting: string; origin: string; value: unknown }>).map((r) => [r.setting, [r.origin, r.value]]));
    expect(from).to.deep.include({
      size: ['claim', '100Gi'],
      replicas: ['class', 2],
      'placement.mode': ['template', 'all_flash'],
      fsType: ['provisioner', 'xfs'],
      'qos.totalIopsMax': ['claim', 3000],
      'qos.iopsPerGiB': ['template', 50],
      'performance_policy.total_iops_max': ['claim', 3000],
      endpoint: ['provisioner', '10.0.0.5:7718'],
      reclaimPolicy: ['class', 'Retain'],
      accessModes: ['claim', 'ReadWriteOnce'],
    });
    expect(x.problems).to.deep.equal([]);
  });

  it('a claim made up from --size, --annotation and --access-mode uses the placeholder uid; provisioner flags reach the PV and the fsType', async () => {
    const c = captureIo();
    const code = await runCommand(
      [
        'explain', '--class-file', file('sc.yaml', CLASS), '--templates-file', file('t.yaml', TEMPLATES), '--size', '10Gi',
        '--annotation', 'datera.io/replicas=1', '--access-mode', 'ReadOnlyMany', '--default-fs-type', 'ext4', '--datera-tenant', '/root/team-a', '-o', 'yaml',
      ],
      c.io,
    );
    expect(c.err()).to.equal('');
    expect(code).to.equal(0);
    expect(c.out()).to.include(`name: pvc-${PLACEHOLDER_UID}`);
    expect(c.out()).to.include('replica_count: 1');
    expect(c.out()).to.include('fsType: ext4');
    expect(c.out()).to.include('tenant: /root/team-a');
    expect(c.out()).to.include('readOnly: true');
  });

  it('the default text output has the settings table, the request and the PV', async () => {
    const c = captureIo();
    const code = await runCommand(['explain', '--class-file', file('sc.yaml', CLASS), '--templates-file', file('t.yaml', TEMPLATES), '--size', '50Gi'], c.io);
    expect(code).to.equal(0);
    const out = c.out();
    expect(out).to.include('The claim would be provisioned.');
    expect(out).to.match(/replicas\s+2\s+class\s+StorageClass "datera-fast" parameter "replica_count"/);
    expect(out).to.match(/size\s+50Gi\s+claim/);
    expect(out).to.include('"total_iops_max": 2500');
    expect(out).to.include('kind: PersistentVolume');
    expect(out).to.include('no Datera endpoint given');
  });

  it('lists every problem it can collect, each with its layer, and exits 1: the claim policy and the request translation', async () => {
    const claim = CLAIM.replace('spec:\n', 'spec:\n  selector: { matchLabels: { a: b } }\n').replace('"3000"', '"30000"');
    const c = captureIo();
    const code = await runCommand(['explain', '--class-file', file('sc.yaml', CLASS), '--templates-file', file('t.yaml', TEMPLATES), '--claim-file', file('pvc.yaml', claim), '-o', 'json'], c.io);
    expect(code).to.equal(1);
    const x = JSON.parse(c.out());
    expect(x.verdict).to.equal('refuse');
    expect(x.request).to.equal(undefined);
    expect(x.problems.map((p: { origin: string }) => p.origin)).to.deep.equal(['claim', 'claim']);
    expect(x.problems[0].message).to.include('claim selector (spec.selector) is not supported');
    expect(x.problems[1]).to.include({ parameter: 'datera.io/qos.totalIopsMax', allowed: '1..20000' });
    expect(x.notes.join('\n')).not.to.include('stops');
  });

  it('independent class-parameter and annotation problems are all listed; a problem it cannot set aside (the size) ends the list with a note', async () => {
    const cls = CLASS.replace('replica_count: "2"', 'replica_count: "9"\n  maxiops: "5"\n  placement_mode: warp');
    const c = captureIo();
    const code = await runCommand(
      ['explain', '--class-file', file('sc.yaml', cls), '--templates-file', file('t.yaml', TEMPLATES), '--size', '5Gi', '--annotation', 'datera.io/fsType=ext4', '--annotation', 'datera.io/replicas=0', '-o', 'json'],
      c.io,
    );
    expect(code).to.equal(1);
    const x = JSON.parse(c.out());
    expect(x.problems.map((p: { parameter: string }) => p.parameter)).to.have.members(['replica_count', 'maxiops', 'placement_mode', 'datera.io/fsType', 'datera.io/replicas', 'resources.requests.storage']);
    expect(x.problems.at(-1).message).to.include('below minSize 10Gi of template "fast"');
    expect(x.problems.map((p: { origin: string }) => p.origin).sort()).to.deep.equal(['claim', 'claim', 'claim', 'class', 'class', 'class']);
    expect(x.notes.join('\n')).to.include('the request translation stops at this kind of problem');
  });

  it('an unsupported access mode is reported once, and the translation is still checked past it', async () => {
    const c = captureIo();
    const cls = CLASS.replace('replica_count: "2"', 'replica_count: "9"');
    const code = await runCommand(['explain', '--class-file', file('sc.yaml', cls), '--templates-file', file('t.yaml', TEMPLATES), '--size', '20Gi', '--access-mode', 'ReadWriteMany', '-o', 'json'], c.io);
    expect(code).to.equal(1);
    const x = JSON.parse(c.out());
    expect(x.problems).to.have.length(2);
    expect(x.problems[0].message).to.include('access mode ReadWriteMany is not supported');
    expect(x.problems[1]).to.include({ origin: 'class', parameter: 'replica_count' });
  });

  it('a class of another provisioner: exit 1, not provisioned, a problem naming both provisioners', async () => {
    const c = captureIo();
    const code = await runCommand(['explain', '--class-file', file('sc.yaml', CLASS.replace('datera.io/provisioner-datera', 'ebs.csi.aws.com')), '--templates-file', file('t.yaml', TEMPLATES), '--size', '20Gi'], c.io);
    expect(code).to.equal(1);
    expect(c.out()).to.include('would NOT be provisioned by this provisioner');
    expect(c.out()).to.include('StorageClass "datera-fast" has provisioner "ebs.csi.aws.com", and this provisioner serves only datera.io/provisioner-datera');
  });

  it('invalid templates: every template problem is listed and the exit code is 1', async () => {
    const bad = 'templates:\n  - name: fast\n    replicas: 9\n    qos: { totalIopsMaxx: 5 }\n  - name: fast\n';
    const c = captureIo();
    const code = await runCommand(['explain', '--class-file', file('sc.yaml', CLASS), '--templates-file', file('t.yaml', bad), '--size', '20Gi', '-o', 'json'], c.io);
    expect(code).to.equal(1);
    const x = JSON.parse(c.out());
    expect(x.problems.every((p: { origin: string }) => p.origin === 'templates')).to.equal(true);
    expect(x.problems.map((p: { message: string }) => p.message)).to.deep.equal(parseTemplates(bad).ok ? [] : (parseTemplates(bad) as { errors: string[] }).errors);
    expect(x.problems).to.have.length.at.least(3);
  });

  it('a Datera-side template: the request references it and the settings it decides are marked as not sent', async () => {
    const c = captureIo();
    const cls = CLASS.replace('template: fast', 'template: remote').replace('  replica_count: "2"\n', '');
    const code = await runCommand(['explain', '--class-file', file('sc.yaml', cls), '--templates-file', file('t.yaml', TEMPLATES), '--size', '20Gi', '-o', 'json'], c.io);
    expect(code).to.equal(0);
    const x = JSON.parse(c.out());
    expect(x.request).to.deep.equal({
      name: `pvc-${PLACEHOLDER_UID}`,
      create_mode: 'kubernetes',
      app_template: { path: '/app_templates/basic_small' },
      template_override: { storage_instances: { 'storage-1': { volumes: { 'volume-1': { size: '20' } } } } },
    });
    const replicas = x.settings.find((r: { setting: string }) => r.setting === 'replicas');
    expect(replicas.unsent).to.equal('not sent: Datera template "basic_small" decides it');
  });

  it("a class secretName: the PV's secretRef is that Secret in the provisioner's namespace, and the endpoint a placeholder (no Secret is read)", async () => {
    const c = captureIo();
    const cls = CLASS.replace('replica_count: "2"', 'secretName: team-b');
    const code = await runCommand(['explain', '--class-file', file('sc.yaml', cls), '--templates-file', file('t.yaml', TEMPLATES), '--size', '20Gi', '--namespace', 'storage', '--datera-endpoint', '10.0.0.5:7718', '-o', 'json'], c.io);
    expect(code).to.equal(0);
    const x = JSON.parse(c.out());
    expect(x.persistentVolume.spec.flexVolume.secretRef).to.deep.equal({ name: 'team-b', namespace: 'storage' });
    expect(x.persistentVolume.spec.flexVolume.options.backstoreServer).to.equal('(the "server" of Secret storage/team-b, else 10.0.0.5:7718)');
    const secret = x.settings.find((r: { setting: string }) => r.setting === 'secretRef');
    expect(secret).to.include({ value: 'storage/team-b', origin: 'class' });
    expect(x.notes.join('\n')).to.include('explain never reads Secrets');
  });

  it('provisioner settings are read like the provisioner reads them: config file < environment < flags', async () => {
    const config = file('provisioner.yaml', 'provisionerName: example.com/datera\ndefaultFsType: ext4\ndatera: { tenant: /root/from-file }\nworkers: 4\n');
    const cls = CLASS.replace('datera.io/provisioner-datera', 'example.com/datera');
    const args = ['explain', '--config', config, '--class-file', file('sc.yaml', cls), '--templates-file', file('t.yaml', TEMPLATES), '--size', '20Gi', '-o', 'json'];
    const fromFile = captureIo();
    expect(await runCommand(args, fromFile.io)).to.equal(0);
    const x = JSON.parse(fromFile.out());
    expect(x.persistentVolume.metadata.annotations['pv.kubernetes.io/provisioned-by']).to.equal('example.com/datera');
    expect(x.persistentVolume.spec.flexVolume).to.include({ fsType: 'ext4' });
    expect(x.tenant).to.equal('/root/from-file');
    const fromEnv = captureIo(undefined, { DAT_TENANT: '/root/from-env' });
    expect(await runCommand(args, fromEnv.io)).to.equal(0);
    expect(JSON.parse(fromEnv.out()).tenant).to.equal('/root/from-env');
    const fromFlag = captureIo(undefined, { DAT_TENANT: '/root/from-env' });
    expect(await runCommand([...args, '--datera-tenant', '/root/from-flag'], fromFlag.io)).to.equal(0);
    expect(JSON.parse(fromFlag.out()).tenant).to.equal('/root/from-flag');
  });

  it('usage errors exit 2 and name every bad flag at once', async () => {
    const c = captureIo();
    const code = await runCommand(['explain', '--size', 'ten', '--annotation', 'novalue', '--bogus', '-o', 'xml'], c.io);
    expect(code).to.equal(2);
    for (const m of ['--output must be text, json or yaml', 'name the StorageClass', '--size must be a Kubernetes quantity', '--annotation must be KEY=VALUE', 'unknown flag --bogus']) {
      expect(c.err()).to.include(m);
    }
    expect(c.out()).to.equal('');
  });

  it('an unreadable file or a file without the object exits 2 naming the file', async () => {
    const missing = captureIo();
    expect(await runCommand(['explain', '--class-file', join(dir, 'nope.yaml'), '--size', '1Gi'], missing.io)).to.equal(2);
    expect(missing.err()).to.include(`${join(dir, 'nope.yaml')} cannot be read (ENOENT)`);
    const wrong = captureIo();
    expect(await runCommand(['explain', '--class-file', file('x.yaml', CLAIM), '--size', '1Gi'], wrong.io)).to.equal(2);
    expect(wrong.err()).to.include('holds no StorageClass; it holds PersistentVolumeClaim');
  });

  it('--help prints usage and examples; an unknown command lists the commands and exits 2', async () => {
    const h = captureIo();
    expect(await runCommand(['explain', '--help'], h.io)).to.equal(0);
    expect(h.out()).to.include('Examples:');
    expect(h.out()).to.include('--class-file FILE');
    for (const line of h.out().split('\n')) expect(line.length, line).to.be.at.most(100);
    const u = captureIo();
    expect(await runCommand(['explian'], u.io)).to.equal(2);
    expect(u.err()).to.include('unknown command "explian"');
    expect(u.err()).to.match(/explain\s+the Datera request/);
    expect(u.err()).to.include('validate-templates');
  });
});

describe('admin/explain: inputs read from the API server', () => {
  let server: Server;
  let kc: KubeConfig;
  const paths: string[] = [];
  const objects: Record<string, unknown> = {};

  before(async () => {
    const { parseYaml } = await import('../../lib/yaml.js');
    objects['/apis/storage.k8s.io/v1/storageclasses/datera-fast'] = parseYaml(CLASS);
    objects['/api/v1/namespaces/shop/persistentvolumeclaims/db'] = parseYaml(CLAIM);
    objects['/api/v1/namespaces/datera-system/configmaps/datera-templates'] = parseYaml(CONFIGMAP);
    server = createHttpServer((req, res) => {
      paths.push(`${req.method} ${req.url}`);
      const obj = objects[req.url ?? ''];
      res.writeHead(obj ? 200 : 404, { 'content-type': 'application/json' });
      res.end(JSON.stringify(obj ?? { kind: 'Status', code: 404, reason: 'NotFound', message: 'not found' }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, skipTLSVerify: true }],
      users: [{ name: 'u', token: 't' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
  });
  after(() => new Promise<void>((r) => server.close(() => r())));
  beforeEach(() => (paths.length = 0));

  it('--claim NS/NAME alone reads the claim, its class and the templates ConfigMap (GETs only) and explains it', async () => {
    const c = captureIo(kc);
    const code = await runCommand(['explain', '--claim', 'shop/db', '-o', 'json'], c.io);
    expect(c.err()).to.equal('');
    expect(code).to.equal(0);
    expect(paths).to.deep.equal([
      'GET /api/v1/namespaces/shop/persistentvolumeclaims/db',
      'GET /apis/storage.k8s.io/v1/storageclasses/datera-fast',
      'GET /api/v1/namespaces/datera-system/configmaps/datera-templates',
    ]);
    const x = JSON.parse(c.out());
    expect(x.claim).to.deep.equal({ namespace: 'shop', name: 'db', uid: '3f1c2d9e-0000-4000-8000-000000000001', from: 'the cluster' });
    expect(x.templates.from).to.equal('key "templates.yaml" of ConfigMap datera-system/datera-templates (the cluster)');
    expect(x.request.storage_instances[0].volumes[0]).to.include({ size: 100, replica_count: 2 });
  });

  it('a class or claim missing from the cluster exits 2 naming it; a missing ConfigMap means no templates', async () => {
    const c = captureIo(kc);
    expect(await runCommand(['explain', '--class', 'nope', '--size', '1Gi'], c.io)).to.equal(2);
    expect(c.err()).to.include('StorageClass nope does not exist in the cluster');
    const d = captureIo(kc);
    expect(await runCommand(['explain', '--class', 'datera-fast', '--size', '20Gi', '--namespace', 'elsewhere', '-o', 'json'], d.io)).to.equal(1);
    const x = JSON.parse(d.out());
    expect(x.notes.join('\n')).to.include('ConfigMap elsewhere/datera-templates does not exist');
    expect(x.problems[0].message).to.include('names AppTemplate "fast", which is not defined');
  });
});

describe('admin/explain: as a child process of lib/main.ts', function () {
  this.timeout(60_000);
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'explain-child-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('everything from files: exit 0, the request on stdout, and not one connection to the kubeconfig server, the in-cluster address or the Datera endpoint', async () => {
    let connections = 0;
    const sink = createTcpServer((s) => {
      connections++;
      s.destroy();
    });
    await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
    const port = (sink.address() as AddressInfo).port;
    try {
      const kubeconfig = join(dir, 'kubeconfig');
      writeFileSync(
        kubeconfig,
        `apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "https://127.0.0.1:${port}", insecure-skip-tls-verify: true}}]\n` +
          'users: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n',
      );
      for (const [n, t] of [['sc.yaml', CLASS], ['cm.yaml', CONFIGMAP], ['pvc.yaml', CLAIM]] as const) writeFileSync(join(dir, n), t);
      const env = { ...process.env, KUBECONFIG: kubeconfig, KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(port), DAT_MGMT: `127.0.0.1:${port}`, NODE_OPTIONS: '' };
      const { stdout } = await execFileP(
        'npx',
        ['tsx', 'lib/main.ts', 'explain', '--class-file', join(dir, 'sc.yaml'), '--templates-file', join(dir, 'cm.yaml'), '--claim-file', join(dir, 'pvc.yaml'), '-o', 'json'],
        { cwd: repo, env },
      );
      const x = JSON.parse(stdout);
      expect(x.request.storage_instances[0].volumes[0]).to.deep.equal({ name: 'volume-1', size: 100, replica_count: 2, placement_mode: 'all_flash', performance_policy: { total_iops_max: 3000 } });
      expect(x.persistentVolume.spec.flexVolume.options.backstoreServer, 'DAT_MGMT is read like the provisioner reads it').to.equal(`127.0.0.1:${port}`);
      expect(connections).to.equal(0);
    } finally {
      await new Promise<void>((r) => sink.close(() => r()));
    }
  });

  it('a refused claim exits 1 and a usage error exits 2', async () => {
    writeFileSync(join(dir, 'sc.yaml'), CLASS);
    writeFileSync(join(dir, 't.yaml'), TEMPLATES);
    const refused = await execFileP('npx', ['tsx', 'lib/main.ts', 'explain', '--class-file', join(dir, 'sc.yaml'), '--templates-file', join(dir, 't.yaml'), '--size', '5Gi'], { cwd: repo }).then(
      () => expect.fail('exit 0'),
      (e: { code: number; stdout: string }) => e,
    );
    expect(refused.code).to.equal(1);
    expect(refused.stdout).to.include('below minSize 10Gi of template "fast"');
    const usage = await execFileP('npx', ['tsx', 'lib/main.ts', 'explain', '--nope'], { cwd: repo }).then(
      () => expect.fail('exit 0'),
      (e: { code: number; stderr: string }) => e,
    );
    expect(usage.code).to.equal(2);
    expect(usage.stderr).to.include('unknown flag --nope');
  });
});
