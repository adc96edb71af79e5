// SPDX-License-Identifier: Apache-2.0
// The bundle the image runs (lib/bundle.ts -> dist/provisioner.mjs): it starts as a program, and it
// leaves out client-node's generated API classes and models (the memory they cost is why it exists).
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { buildProvisioner } from '../lib/bundle.js';
import { VERSION } from '../lib/version.js';

const run = promisify(execFile);

describe('the provisioner bundle (dist/provisioner.mjs)', function () {
  this.timeout(120_000);
  let dir: string;
  let bundle: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'bundle-spec-'));
    bundle = await buildProvisioner(join(dir, 'dist', 'provisioner.mjs'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('runs as a program: --version prints the version and exits 0, --help lists the flags (no module-level side effect of a bundled module runs)', async () => {
    // package.json next to dist/ as in the image (/app/package.json, /app/dist/provisioner.mjs)
    const env = { ...process.env, NODE_OPTIONS: '' };
    const v = await run(process.execPath, [bundle, '--version'], { cwd: dir, env });
    expect(v.stdout).to.include('datera-provisioner');
    const h = await run(process.execPath, [bundle, '--help'], { cwd: dir, env });
    expect(h.stdout).to.include('--kube-api-qps');
    expect(h.stdout).to.include('--leader-elect');
    expect(VERSION).to.be.a('string');
  });

  it('runs the admin commands: validate-templates exits 0 on the shipped templates, explain prints the request from files and exits 0', async () => {
    const env = { ...process.env, NODE_OPTIONS: '' };
    const root = new URL('..', import.meta.url).pathname;
    const v = await run(process.execPath, [bundle, 'validate-templates', join(root, 'config/templates.yaml')], { cwd: dir, env });
    expect(v.stdout).to.match(/valid, \d+ template\(s\)/);
    const sc = join(dir, 'sc.yaml');
    writeFileSync(sc, 'apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: { name: s }\nprovisioner: datera.io/provisioner-datera\nparameters: { replica_count: "2" }\n');
    const e = await run(process.execPath, [bundle, 'explain', '--class-file', sc, '--size', '5Gi', '-o', 'json'], { cwd: dir, env });
    expect(JSON.parse(e.stdout).request.storage_instances[0].volumes[0]).to.deep.equal({ name: 'volume-1', size: 5, replica_count: 2 });
  });

  it("leaves out client-node's generated API classes and model serialiser (KubeConfig and its authenticators only)", () => {
    const text = readFileSync(bundle, 'utf8');
    // A path only the generated CoreV1Api knows, and a field only the generated V1PodSpec model
    // names: present when any generated API class or the model serialiser is pulled in.
    for (const marker of ['/api/v1/namespaces/{namespace}/pods/{name}/ephemeralcontainers', 'topologySpreadConstraints']) {
      expect(text.includes(marker), marker).to.equal(false);
    }
    expect(text).to.include('KubeConfig');
  });
});
