// SPDX-License-Identifier: Apache-2.0
// The command line (lib/config-argv.ts) and what it sets through loadConfig: parse problems,
// boolean spellings, Go durations, external-provisioner aliases, templatesKey, the shared Lease
// name and tenant rules.
import { expect } from 'chai';
import { ConfigError, loadConfig, type Config } from '../lib/config.js';
import { readCommandLine } from '../lib/config-argv.js';
import { formatDuration, parseDuration } from '../lib/config-flags.js';
import { leaseNameFor } from '../lib/kube/lease.js';
import { TENANT } from '../lib/provision/values.js';

const creds = { '/etc/datera/credentials/username': 'admin', '/etc/datera/credentials/password': 'pw_secret', '/etc/datera/credentials/server': '10.0.0.5:7718' };
const files = (m: Record<string, string>) => (p: string) => (m as Record<string, string | undefined>)[p];

function load(argv: string[], env: Record<string, string> = {}, extraFiles: Record<string, string> = {}): Config {
  return loadConfig({ argv, env, readFile: files({ ...creds, ...extraFiles }) });
}

/** The problems loadConfig reports for argv (empty when it loads). */
function problems(argv: string[], env: Record<string, string> = {}): string[] {
  try {
    load(argv, env);
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
  return [];
}

describe('command line (parseArgs)', () => {
  it('an unknown flag is one problem naming it; its value is not reported as a stray argument', () => {
    expect(readCommandLine(['--bogus', '1']).problems).to.deep.equal(['unknown flag --bogus (see --help)']);
    expect(readCommandLine(['--bogus=1']).problems).to.deep.equal(['unknown flag --bogus (see --help)']);
  });

  it('reports every command-line problem at once: unknown flag, stray argument, missing value', () => {
    expect(readCommandLine(['--bogus', 'x', 'stray', '--workers']).problems).to.deep.equal([
      'unknown flag --bogus (see --help)',
      'unexpected argument "stray" (flags are --name value or --name=value)',
      'flag --workers needs a value',
    ]);
  });

  it('a single-dash long flag is one problem that gives the two-dash spelling, and the flags after it still count', () => {
    const cl = readCommandLine(['-leader-election', '--workers', '4']);
    expect(cl.problems).to.deep.equal(['unknown flag -leader-election (long flags take two dashes: --leader-election)']);
    expect(cl.values).to.deep.equal([{ key: 'workers', raw: '4', flag: '--workers' }]);
  });

  it('a flag that needs a value, followed by another flag, is told so and how to pass a value starting with "-"', () => {
    expect(readCommandLine(['--workers', '--http-port', '9']).problems[0]).to.equal(
      'flag --workers needs a value, got --http-port (write --workers=--http-port for a value starting with "-")',
    );
  });

  it('takes a negative number after a flag as its value, as before parseArgs', () => {
    const cl = readCommandLine(['--kube-api-qps', '-1', '--event-qps', '-2.5']);
    expect(cl.problems).to.deep.equal([]);
    expect(cl.values).to.deep.equal([
      { key: 'kubeApiQps', raw: '-1', flag: '--kube-api-qps' },
      { key: 'eventQps', raw: '-2.5', flag: '--event-qps' },
    ]);
    expect(readCommandLine(['--log-level', '-v', '4']).problems[0]).to.equal('flag --log-level needs a value, got -v (write --log-level=-v for a value starting with "-")');
  });

  it('reads --config, -h/--help and --version apart from the settings', () => {
    const cl = readCommandLine(['--config', '/c.yaml', '-h']);
    expect(cl).to.deep.include({ configFile: '/c.yaml', help: true, version: false, values: [], problems: [] });
    expect(readCommandLine(['--version'])).to.deep.include({ help: false, version: true });
  });

  it('keeps command-line order, so the later of a flag and its alias wins', () => {
    const cl = readCommandLine(['--workers=4', '--worker-threads', '8']);
    expect(cl.values).to.deep.equal([
      { key: 'workers', raw: '4', flag: '--workers' },
      { key: 'workers', raw: '8', flag: '--worker-threads' },
    ]);
    expect(load(['--workers=4', '--worker-threads', '8']).workers).to.equal(8);
    expect(load(['--worker-threads', '8', '--workers=4']).workers).to.equal(4);
  });

  it('names the flag in a value problem, alias or not', () => {
    expect(problems(['--worker-threads', 'many'])).to.deep.equal(['--worker-threads: expected an integer, got "many"']);
  });
});

describe('boolean spellings', () => {
  const spellings: Array<[string, boolean]> = [['true', true], ['1', true], ['yes', true], ['TRUE', true], ['Yes', true], ['false', false], ['0', false], ['no', false], ['FALSE', false], ['No', false]];

  it('regression: --leader-elect 0 is false, as DATERA_LEADER_ELECT=0 is', () => {
    expect(load(['--leader-elect', '0']).leaderElection.enabled).to.equal(false);
    expect(load([], { DATERA_LEADER_ELECT: '0' }).leaderElection.enabled).to.equal(false);
  });

  it('flag (--x v and --x=v), environment and config file accept the same spellings with the same meaning', () => {
    for (const [word, want] of spellings) {
      expect(load(['--leader-elect', word]).leaderElection.enabled, `--leader-elect ${word}`).to.equal(want);
      expect(load([`--leader-elect=${word}`]).leaderElection.enabled, `--leader-elect=${word}`).to.equal(want);
      expect(load([], { DATERA_LEADER_ELECT: word }).leaderElection.enabled, `DATERA_LEADER_ELECT=${word}`).to.equal(want);
      const file = { '/c.yaml': `leaderElection:\n  enabled: "${word}"\n` };
      expect(load(['--config', '/c.yaml'], {}, file).leaderElection.enabled, `config file "${word}"`).to.equal(want);
    }
  });

  it('a boolean flag alone means true and leaves the next flag alone', () => {
    const c = load(['--leader-elect', '--workers', '3'], { DATERA_LEADER_ELECT: 'false' });
    expect(c.leaderElection.enabled).to.equal(true);
    expect(c.workers).to.equal(3);
  });

  it('a boolean flag does not take a following word that is not a boolean; --x=word is a value problem', () => {
    expect(problems(['--leader-elect', 'maybe'])).to.deep.equal(['unexpected argument "maybe" (flags are --name value or --name=value)']);
    expect(problems(['--leader-elect=maybe'])).to.deep.equal(['--leader-elect: expected true or false (also 1/0, yes/no), got "maybe"']);
    expect(problems([], { DATERA_LEADER_ELECT: 'maybe' })).to.deep.equal(['environment DATERA_LEADER_ELECT: expected true or false (also 1/0, yes/no), got "maybe"']);
  });
});

describe('durations', () => {
  it("parses Go's form (units h, m, s, ms, us, ns, several parts) and bare milliseconds", () => {
    const cases: Array<[string, number]> = [
      ['1m30s', 90_000], ['500ms', 500], ['2h45m', 9_900_000], ['1.5s', 1_500], ['1h0m0s', 3_600_000], ['2s500ms', 2_500],
      ['1500us', 2], ['3000000ns', 3], ['.5m', 30_000], ['1500', 1_500], ['0', 0], [' 5m ', 300_000],
    ];
    for (const [text, ms] of cases) expect(parseDuration(text), text).to.equal(ms);
  });

  it('rejects what is not a duration, negative ones included', () => {
    for (const text of ['', 'soon', '-1s', '1m30', '1x', 's', '1m 30s', '1.2.3s', '5M']) expect(parseDuration(text), text).to.equal(undefined);
  });

  it('formatDuration gives the shortest Go form, which parseDuration reads back', () => {
    expect(formatDuration(90_000)).to.equal('1m30s');
    expect(formatDuration(300_000)).to.equal('5m');
    expect(formatDuration(0)).to.equal('0s');
    for (const ms of [1, 999, 1_000, 1_500, 90_000, 9_900_000, 3_600_000, 86_400_000 + 1]) expect(parseDuration(formatDuration(ms)), String(ms)).to.equal(ms);
  });

  it('flags and config file keys take Go durations', () => {
    const c = load(
      ['--config', '/c.yaml', '--retry-max', '1m30s', '--leader-elect-lease-duration', '1m', '--leader-elect-renew-deadline', '45s500ms'],
      {},
      { '/c.yaml': 'orphanSweepGraceMs: 2h45m\ndatera:\n  requestTimeoutMs: 1m15s\n' },
    );
    expect(c.retryMaxMs).to.equal(90_000);
    expect(c.leaderElection).to.include({ leaseDurationMs: 60_000, renewDeadlineMs: 45_500 });
    expect(c.orphanSweepGraceMs).to.equal(9_900_000);
    expect(c.datera.requestTimeoutMs).to.equal(75_000);
  });

  it('a bad duration names the flag and the accepted forms', () => {
    expect(problems(['--retry-max', '1m30'])).to.deep.equal(['--retry-max: expected a duration such as 500ms, 2s, 5m, 1m30s, got "1m30"']);
  });
});

describe("external-provisioner's flag names", () => {
  it('set the same settings as our flags', () => {
    const c = load([
      '--leader-election', '--leader-election-namespace', 'kube-system',
      '--leader-election-lease-duration', '30s', '--leader-election-renew-deadline', '20s', '--leader-election-retry-period', '5s',
      '--worker-threads', '8', '--retry-interval-start', '2s', '--retry-interval-max', '10m', '--default-fstype', 'ext4', '--timeout', '45s',
    ], { DATERA_LEADER_ELECT: 'false' });
    expect(c.leaderElection).to.include({ enabled: true, namespace: 'kube-system', leaseDurationMs: 30_000, renewDeadlineMs: 20_000, retryPeriodMs: 5_000 });
    expect(c).to.include({ workers: 8, retryInitialMs: 2_000, retryMaxMs: 600_000, defaultFsType: 'ext4' });
    expect(c.datera.requestTimeoutMs).to.equal(45_000);
    expect(load(['--leader-election=false']).leaderElection.enabled).to.equal(false);
  });

  it('the Lease lives in the namespace unless a Lease namespace is set', () => {
    expect(load(['--namespace', 'storage']).leaderElection.namespace).to.equal('storage');
    expect(load(['--namespace', 'storage', '--leader-elect-namespace', 'leases']).leaderElection.namespace).to.equal('leases');
  });

  it('--http-endpoint sets the address and port; an empty host means every interface', () => {
    expect(load(['--http-endpoint', ':9090'])).to.include({ httpAddress: '0.0.0.0', httpPort: 9090 });
    expect(load(['--http-endpoint=127.0.0.1:8081'])).to.include({ httpAddress: '127.0.0.1', httpPort: 8081 });
    expect(load(['--http-endpoint', '[::1]:8082'])).to.include({ httpAddress: '::1', httpPort: 8082 });
    expect(problems(['--http-endpoint', 'localhost'])).to.deep.equal(['--http-endpoint: expected host:port such as :8080 or 127.0.0.1:8080, got "localhost"']);
    expect(problems(['--http-endpoint', ':99999'])).to.deep.equal(['http port must be 0..65535, got 99999']);
  });

  it('-v maps klog verbosity to the log level: 0-3 info, 4 and above debug', () => {
    expect(load(['-v', '0'], { LOG_LEVEL: 'warn' }).logLevel).to.equal('info');
    expect(load(['-v=3']).logLevel).to.equal('info');
    expect(load(['--v=4']).logLevel).to.equal('debug');
    expect(load(['-v5']).logLevel).to.equal('debug');
    expect(problems(['-v', 'loud'])).to.deep.equal(['-v: expected a klog verbosity 0, 1, 2, ... (0-3: info, 4 and above: debug), got "loud"']);
  });

  it('--metrics-path and --logging-format accept only what this provisioner does', () => {
    expect(problems(['--metrics-path', '/metrics', '--logging-format', 'json'])).to.deep.equal([]);
    expect(problems(['--metrics-path', '/stats'])).to.deep.equal(['--metrics-path: only "/metrics" is supported (metrics are served at /metrics), got "/stats"']);
    expect(problems(['--logging-format=text'])).to.deep.equal(['--logging-format: only "json" is supported (logs are JSON lines), got "text"']);
  });
});

describe('templatesKey', () => {
  it('regression: a config file setting templatesKey loads', () => {
    expect(load(['--config', '/c.yaml'], {}, { '/c.yaml': 'templatesKey: custom.yaml\n' }).templatesKey).to.equal('custom.yaml');
  });

  it('has a flag and an environment variable, flag over environment over file over default', () => {
    expect(load([]).templatesKey).to.equal('templates.yaml');
    const file = { '/c.yaml': 'templatesKey: file.yaml\n' };
    expect(load(['--config', '/c.yaml'], { DATERA_TEMPLATES_KEY: 'env.yaml' }, file).templatesKey).to.equal('env.yaml');
    expect(load(['--config', '/c.yaml', '--templates-key', 'flag.yaml'], { DATERA_TEMPLATES_KEY: 'env.yaml' }, file).templatesKey).to.equal('flag.yaml');
  });
});

describe('Lease name and tenant: one rule each', () => {
  const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

  it('the Lease name is the provisioner name with "/" as "-", made a DNS-1123 subdomain', () => {
    expect(leaseNameFor('datera.io/provisioner-datera')).to.equal('datera.io-provisioner-datera');
    expect(leaseNameFor('Example.COM/My_Prov')).to.equal('example.com-my-prov');
    expect(leaseNameFor('a.b/x._y')).to.equal('a.b-x.y');
    const long = leaseNameFor(`x.io/${'a'.repeat(300)}`);
    expect(long).to.have.length(253);
    for (const n of ['Example.COM/My_Prov', 'a.b/x._y', 'x.io/a_-_.b']) expect(leaseNameFor(n), n).to.match(DNS_SUBDOMAIN);
  });

  it('the configuration derives the Lease name with that same rule', () => {
    const name = 'example.com/My_Prov._1';
    expect(load(['--provisioner-name', name]).leaderElection.leaseName).to.equal(leaseNameFor(name)).and.equal('example.com-my-prov.1');
  });

  it('an invalid provisioner name or Lease name is a configuration problem, not a crash', () => {
    expect(problems(['--provisioner-name', '///'])).to.deep.equal(['provisioner name "///" is not a qualified name like datera.io/provisioner-datera']);
    expect(problems(['--leader-elect-lease-name', 'Bad_Name'])).to.deep.equal([
      'leader election lease name "Bad_Name" must be a DNS-1123 subdomain (lower-case letters, digits, "-" and ".", at most 253 characters)',
    ]);
  });

  it('the datera tenant setting accepts exactly the tenant paths StorageClass parameters accept', () => {
    const samples = [
      '/root', '/root/team-a', '/root/OS-1234', '/root/_x1', '/root/team-a/sub_1', '/root/0a1b2c3d-0000-4e5f-8a9b-0123456789ab',
      '/root/a', '/root/ab', '/root/1team', 'root/team', '/root/team a', '/root/', '/root//x', '/roots', `/root/${'a'.repeat(65)}`,
    ];
    const accepted: string[] = [];
    for (const t of samples) {
      const ok = !problems(['--datera-tenant', t]).some((p) => p.startsWith('datera tenant'));
      expect(ok, t).to.equal(TENANT.valid(t));
      if (ok) accepted.push(t);
    }
    expect(accepted).to.deep.equal(samples.slice(0, 6));
    expect(problems(['--datera-tenant', '/root/ab'])).to.deep.equal(['datera tenant "/root/ab" must be a tenant path, "/root" or "/root/<name>" (e.g. "/root/team-a")']);
  });
});
