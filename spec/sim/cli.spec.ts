// SPDX-License-Identifier: Apache-2.0
import { expect } from 'chai';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { UsageError, parseCli, parseDuration, parseUsers } from '../../lib/sim/cli.js';
import { http } from './helpers.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function startCli(args: string[]): { child: ChildProcess; url: Promise<string>; stderr: () => string } {
  const child = spawn(process.execPath, ['--import', 'tsx', 'lib/sim/cli.ts', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const url = new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /^datera-sim listening on (http:\/\/\S+)\n/m.exec(out);
      if (m) resolve(m[1]!);
    });
    child.once('exit', (code) => reject(new Error(`datera-sim exited with ${code} before printing its URL: ${err}`)));
  });
  return { child, url, stderr: () => err };
}

describe('simulator: datera-sim command', () => {
  it('parses its flags into simulator options', () => {
    const cfg = parseCli([
      '--port', '7717', '--host', '0.0.0.0', '--users', 'admin:password,ops:pw_ops:/root/ops', '--seed', 'config/sim-seed.yaml',
      '--session-ttl', '10s', '--latency-ms', '20', '--rate-503', '0.2', '--capacity-gib', '500', '--allow-online-delete',
    ]);
    expect(cfg).not.to.equal('help');
    if (cfg === 'help') return;
    expect(cfg.port).to.equal(7717);
    expect(cfg.host).to.equal('0.0.0.0');
    expect(cfg.options).to.deep.include({
      users: [{ name: 'admin', password: 'password' }, { name: 'ops', password: 'pw_ops', tenant: '/root/ops' }],
      seedFile: 'config/sim-seed.yaml',
      sessionTtlMs: 10_000,
      capacityGiB: 500,
      requireOfflineForDelete: false,
      faults: { latencyMs: 20, rate503: 0.2 },
    });
    expect(parseCli(['--help'])).to.equal('help');
    expect(parseDuration('15m', 'x')).to.equal(900_000);
    expect(parseDuration('500ms', 'x')).to.equal(500);
    expect(parseDuration('250', 'x')).to.equal(250);
    expect(parseUsers('a_user:pass1')).to.deep.equal([{ name: 'a_user', password: 'pass1' }]);
  });

  it('rejects bad flags with a message naming the flag', () => {
    const cases: Array<[string[], RegExp]> = [
      [['--rate-503', '1.5'], /--rate-503/],
      [['--port', 'x'], /--port/],
      [['--session-ttl', 'soon'], /--session-ttl/],
      [['--users', 'nopassword'], /--users/],
      [['--access-ips', '1.2.3.4'], /--access-ips/],
      [['--wat'], /wat/],
    ];
    for (const [args, re] of cases) {
      expect(() => parseCli(args), args.join(' ')).to.throw(UsageError, re);
    }
  });

  it('starts, prints its URL, serves the seeded templates and stops on SIGTERM', async function () {
    this.timeout(30_000);
    const { child, url } = startCli(['--port', '0', '--seed', 'config/sim-seed.yaml', '--log-level', 'warn']);
    try {
      const base = await url;
      expect(base).to.match(/^http:\/\/127\.0\.0\.1:\d+$/);
      const versions = await http(base, 'GET', '/api_versions');
      expect(versions.body.api_versions).to.include('v2.2');
      const login = await http(base, 'PUT', '/v2.2/login', { name: 'admin', password: 'password' });
      expect(login.status).to.equal(200);
      const tpls = await http(base, 'GET', '/v2.2/app_templates', undefined, { token: login.body.key });
      expect(tpls.body.data.map((t: { name: string }) => t.name)).to.include.members(['basic_small', 'kube-workload']);
      const ai = await http(base, 'POST', '/v2.2/app_instances', {
        name: 'cli-ai',
        app_template: { path: '/app_templates/kube-workload' },
        template_override: { storage_instances: { 'storage-1': { volumes: { 'volume-1': { size: '40' } } } } },
      }, { token: login.body.key });
      expect(ai.status).to.equal(200);
      expect(ai.body.data.storage_instances[0].volumes[0].size).to.equal(40);
    } finally {
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const [code] = await exited;
      expect(code).to.equal(0);
    }
  });

  it('exits with status 2 and a clear message on a bad flag', async function () {
    this.timeout(30_000);
    const { child, url, stderr } = startCli(['--port', '0', '--rate-503', 'lots']);
    url.catch(() => undefined);
    const [code] = await once(child, 'exit');
    expect(code).to.equal(2);
    expect(stderr()).to.match(/--rate-503: "lots" must be a number from 0 to 1/);
  });

  it('exits with status 1 when the seed file is invalid', async function () {
    this.timeout(30_000);
    const { child, url, stderr } = startCli(['--port', '0', '--seed', 'no/such/seed.yaml']);
    url.catch(() => undefined);
    const [code] = await once(child, 'exit');
    expect(code).to.equal(1);
    expect(stderr()).to.match(/cannot start: .*no\/such\/seed\.yaml/);
  });
});
