// SPDX-License-Identifier: Apache-2.0
// Settings of the ownership rules and the orphan sweep, and how the cluster id is found at start-up.
import { expect } from 'chai';
import { ApiException } from '@kubernetes/client-node';
import { ConfigError, loadConfig } from '../lib/config.js';
import { resolveClusterId } from '../lib/wiring.js';
import { nullLogger } from '../lib/observability/logger.js';

const creds = { '/etc/datera/credentials/username': 'admin', '/etc/datera/credentials/password': 'pw_secret', '/etc/datera/credentials/server': '10.0.0.5:7718' };
const files = (m: Record<string, string>) => (p: string) => (m as Record<string, string | undefined>)[p];
const problems = (argv: string[]) => {
  try {
    loadConfig({ argv, env: {}, readFile: files(creds) });
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
  return [];
};

describe('configuration: cluster id and orphan sweep', () => {
  it('defaults: cluster id from kube-system (empty setting), sweep deletes, every 10m, grace 10m', () => {
    const c = loadConfig({ argv: [], env: {}, readFile: files(creds) });
    expect(c).to.include({ clusterId: '', orphanSweep: 'delete', orphanSweepIntervalMs: 600_000, orphanSweepGraceMs: 600_000 });
  });

  it('reads them from the config file, the environment and flags', () => {
    const c = loadConfig({
      argv: ['--config', '/cfg.yaml', '--orphan-sweep-grace', '30m'],
      env: { DATERA_CLUSTER_ID: 'prod-eu-1' },
      readFile: files({ ...creds, '/cfg.yaml': 'orphanSweep: report\norphanSweepIntervalMs: 1h\n' }),
    });
    expect(c).to.include({ clusterId: 'prod-eu-1', orphanSweep: 'report', orphanSweepIntervalMs: 3_600_000, orphanSweepGraceMs: 1_800_000 });
  });

  it('rejects an unknown sweep mode, naming the allowed ones', () => {
    expect(problems(['--orphan-sweep', 'sometimes'])).to.deep.equal(['orphan sweep "sometimes" is not one of delete, report, off']);
  });

  it('rejects a grace period or interval under a minute while the sweep is on, and accepts any when it is off', () => {
    expect(problems(['--orphan-sweep-grace', '5s'])).to.deep.equal(['orphan sweep grace must be at least 1m (a volume being provisioned must never look orphaned), got 5000 ms']);
    expect(problems(['--orphan-sweep-interval', '10s'])).to.deep.equal(['orphan sweep interval must be at least 1m, got 10000 ms']);
    expect(problems(['--orphan-sweep', 'off', '--orphan-sweep-grace', '5s'])).to.deep.equal([]);
  });

  it('rejects a cluster id with characters outside letters, digits, ".", "_", "-"', () => {
    expect(problems(['--cluster-id', 'prod eu/1'])[0]).to.match(/^cluster id "prod eu\/1" must be 1-128 letters, digits/);
  });
});

describe('resolveClusterId', () => {
  const reader = (answer: () => Promise<unknown>) => {
    const calls: string[] = [];
    return { calls, core: { readNamespace: async (a: { name: string }) => (calls.push(a.name), answer()) } as never };
  };

  it('the clusterId setting wins and nothing is read', async () => {
    const r = reader(async () => ({ metadata: { uid: 'from-api' } }));
    expect(await resolveClusterId({ clusterId: 'set-by-admin' }, r.core, nullLogger())).to.equal('set-by-admin');
    expect(r.calls).to.deep.equal([]);
  });

  it('otherwise the uid of the kube-system namespace', async () => {
    const r = reader(async () => ({ metadata: { name: 'kube-system', uid: '7d1e-uid' } }));
    expect(await resolveClusterId({ clusterId: '' }, r.core, nullLogger())).to.equal('7d1e-uid');
    expect(r.calls).to.deep.equal(['kube-system']);
  });

  it('a forbidden read stops start-up with what to grant or set', async () => {
    const r = reader(async () => {
      throw new ApiException(403, 'Forbidden', '{"kind":"Status","code":403}', {});
    });
    let err: Error | undefined;
    await resolveClusterId({ clusterId: '' }, r.core, nullLogger()).catch((e: Error) => (err = e));
    expect(err?.message).to.match(/cannot read the uid of namespace kube-system .*HTTP 403.*namespaces\/kube-system.*clusterId setting \(--cluster-id, DATERA_CLUSTER_ID\)/);
  });
});
