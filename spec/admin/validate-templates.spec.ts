// SPDX-License-Identifier: Apache-2.0
// `datera-provisioner validate-templates` (lib/admin/validate-templates.ts): in-process over files
// in a temp dir, and once as a child process of lib/main.ts.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import type { CommandIo } from '../../lib/admin/command.js';
import { runCommand } from '../../lib/admin/commands.js';
import { parseTemplates } from '../../lib/provision/app-templates.js';

const execFileP = promisify(execFile);
const repo = new URL('../..', import.meta.url).pathname;

const GOOD = 'templates:\n  - name: gold\n    replicas: 3\n  - name: silver\n    replicas: 2\n';
/** Five independent problems in three templates. */
const BAD = `templates:
  - name: gold
    replicas: 9
    qos: { totalIopsMaxx: 100 }
  - name: silver
    placement: { mode: warp }
    minSize: 10Gi
    maxSize: 5Gi
  - name: gold
    overridable: [tenant]
`;

function configMap(name: string, data: Record<string, string>): string {
  const body = Object.entries(data)
    .map(([k, v]) => `  ${k}: |\n${v.split('\n').map((l) => `    ${l}`).join('\n')}`)
    .join('\n');
  return `apiVersion: v1\nkind: ConfigMap\nmetadata: { name: ${name}, namespace: datera-system }\ndata:\n${body}\n`;
}

function captureIo(env: NodeJS.ProcessEnv = {}) {
  let out = '';
  let err = '';
  const io: CommandIo = {
    stdout: (t) => void (out += t),
    stderr: (t) => void (err += t),
    env,
    readFile: (p) => readFileSync(p, 'utf8'),
    kubeConfig: () => {
      throw new Error('validate-templates must not look for a cluster');
    },
  };
  return { io, out: () => out, err: () => err };
}

describe('admin/validate-templates', () => {
  let dir: string;
  const file = (name: string, text: string): string => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'validate-spec-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('a valid bare templates.yaml exits 0 and names its templates', async () => {
    const c = captureIo();
    const f = file('t.yaml', GOOD);
    expect(await runCommand(['validate-templates', f], c.io)).to.equal(0);
    expect(c.out()).to.equal(`${f}: valid, 2 template(s): gold, silver\n`);
  });

  it('the shipped example templates are valid', async () => {
    const c = captureIo();
    expect(await runCommand(['validate-templates', '-q', join(repo, 'config/templates.yaml'), join(repo, 'manifests/base/templates.yaml')], c.io)).to.equal(0);
    expect(c.out()).to.equal('');
  });

  it('an invalid ConfigMap exits 1 and lists every problem parseTemplates finds, not only the first', async () => {
    const parsed = parseTemplates(BAD);
    if (parsed.ok) expect.fail('BAD parsed');
    expect(parsed.errors, 'the fixture has one problem per bad key').to.have.length(6);
    const c = captureIo();
    const f = file('cm.yaml', configMap('datera-templates', { 'templates.yaml': BAD }));
    expect(await runCommand(['validate-templates', f, '-o', 'json'], c.io)).to.equal(1);
    const x = JSON.parse(c.out());
    expect(x.results).to.have.length(1);
    expect(x.results[0]).to.deep.include({ file: f, where: `key "templates.yaml" of ConfigMap datera-system/datera-templates (${f})`, valid: false });
    expect(x.results[0].problems).to.deep.equal(parsed.errors);
    const text = captureIo();
    expect(await runCommand(['validate-templates', f], text.io)).to.equal(1);
    expect(text.out()).to.include('6 problem(s):');
    for (const e of parsed.errors) expect(text.out()).to.include(`  - ${e}\n`);
  });

  it('each problem names the template and the key', () => {
    const parsed = parseTemplates(BAD);
    if (parsed.ok) expect.fail('BAD parsed');
    expect(parsed.errors.join('\n')).to.include('template "gold": replicas');
    expect(parsed.errors.join('\n')).to.include('template "gold": unknown key qos.totalIopsMaxx (did you mean qos.totalIopsMax?)');
    expect(parsed.errors.join('\n')).to.include('template "silver": placement.mode');
    expect(parsed.errors.join('\n')).to.include('template "silver": minSize (10Gi after rounding up) is larger than maxSize (5Gi after rounding down)');
    expect(parsed.errors.join('\n')).to.include('template "gold": duplicate name (templates[0] and templates[2])');
  });

  it('--key picks the data key; by default $DATERA_TEMPLATES_KEY, like the provisioner; a missing key names the keys there are', async () => {
    const f = file('cm.yaml', configMap('t', { 'gold.yaml': GOOD }));
    const flag = captureIo();
    expect(await runCommand(['validate-templates', '--key', 'gold.yaml', f], flag.io)).to.equal(0);
    const env = captureIo({ DATERA_TEMPLATES_KEY: 'gold.yaml' });
    expect(await runCommand(['validate-templates', f], env.io)).to.equal(0);
    const none = captureIo();
    expect(await runCommand(['validate-templates', f], none.io)).to.equal(1);
    expect(none.out()).to.include('ConfigMap datera-system/t in');
    expect(none.out()).to.include('has no key "templates.yaml"; its keys: gold.yaml');
  });

  it('in a file of many objects (a rendered kustomization) the ConfigMap holding the key is the one checked', async () => {
    const all = [configMap('datera-provisioner-config', { 'provisioner.yaml': 'workers: 4' }), configMap('datera-templates', { 'templates.yaml': GOOD }), 'apiVersion: v1\nkind: Namespace\nmetadata: { name: x }\n'].join('---\n');
    const c = captureIo();
    expect(await runCommand(['validate-templates', file('all.yaml', all)], c.io)).to.equal(0);
    expect(c.out()).to.include('ConfigMap datera-system/datera-templates');
  });

  it('several files: exit 1 when any is invalid, each reported', async () => {
    const c = captureIo();
    const good = file('good.yaml', GOOD);
    const bad = file('bad.yaml', 'templates:\n  - name: x\n    replicas: 0\n');
    expect(await runCommand(['validate-templates', good, bad], c.io)).to.equal(1);
    expect(c.out()).to.include(`${good}: valid`);
    expect(c.out()).to.include(`${bad}: 1 problem(s):`);
  });

  it('a YAML syntax error is reported with its line', async () => {
    const c = captureIo();
    expect(await runCommand(['validate-templates', file('t.yaml', 'templates:\n  - name: a\n   replicas: [\n')], c.io)).to.equal(1);
    expect(c.out()).to.match(/templates.yaml is not valid YAML: .* at line \d+, column \d+/);
  });

  it('--help prints usage and examples within 100 columns and exits 0', async () => {
    const c = captureIo();
    expect(await runCommand(['validate-templates', '-h'], c.io)).to.equal(0);
    expect(c.out()).to.include('Examples:');
    expect(c.out()).to.include('--key KEY');
    for (const line of c.out().split('\n')) expect(line.length, line).to.be.at.most(100);
  });

  it('usage errors and unreadable files exit 2', async () => {
    const none = captureIo();
    expect(await runCommand(['validate-templates'], none.io)).to.equal(2);
    expect(none.err()).to.include('name at least one FILE');
    const missing = captureIo();
    expect(await runCommand(['validate-templates', join(dir, 'nope.yaml')], missing.io)).to.equal(2);
    expect(missing.err()).to.include('nope.yaml: cannot be read (ENOENT)');
    const flag = captureIo();
    expect(await runCommand(['validate-templates', '--kye', 'x', 'f'], flag.io)).to.equal(2);
    expect(flag.err()).to.include('unknown flag --kye (did you mean --key?)');
  });

  it('as a child process of lib/main.ts: exit 1 and the problems on stdout for a bad file, 0 for a good one', async function () {
    this.timeout(60_000);
    const bad = file('bad.yaml', BAD);
    const failed = await execFileP('npx', ['tsx', 'lib/main.ts', 'validate-templates', bad], { cwd: repo }).then(
      () => expect.fail('exit 0'),
      (e: { code: number; stdout: string }) => e,
    );
    expect(failed.code).to.equal(1);
    expect(failed.stdout).to.include('6 problem(s):');
    const ok = await execFileP('npx', ['tsx', 'lib/main.ts', 'validate-templates', file('good.yaml', GOOD)], { cwd: repo });
    expect(ok.stdout).to.include('valid, 2 template(s)');
  });
});
