// SPDX-License-Identifier: Apache-2.0
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { ConfigError, describeConfig, loadConfig } from '../lib/config.js';
import { parseDuration } from '../lib/config-flags.js';
import { leaseNameFor } from '../lib/kube/lease.js';

const files = (m: Record<string, string>) => (p: string) => m[p];
const creds = { '/etc/datera/credentials/username': 'admin\n', '/etc/datera/credentials/password': 'pw_secret', '/etc/datera/credentials/server': '10.0.0.5:7718' };

describe('configuration', () => {
  it('has documented defaults and reads credentials from the mounted Secret', () => {
    const c = loadConfig({ argv: [], env: {}, readFile: files(creds) });
    expect(c.provisionerName).to.equal('datera.io/provisioner-datera');
    expect(c.namespace).to.equal('datera-system');
    expect(c.datera).to.include({ endpoint: '10.0.0.5:7718', username: 'admin', password: 'pw_secret', tenant: '/root' });
    expect(c.credentialsSecret).to.deep.equal({ name: 'datera-credentials', namespace: 'datera-system' });
    expect(c.leaderElection).to.include({ enabled: true, leaseName: 'datera.io-provisioner-datera', leaseDurationMs: 15000 });
    expect(c.legacyAlphaClasses).to.deep.equal({});
  });

  it('layers defaults < file < environment < flags', () => {
    const file = 'workers: 8\nkubeApiQps: 10\ndatera:\n  tenant: /root/file\nlegacyAlphaClasses: { "*": gold }\n';
    const c = loadConfig({
      argv: ['--config', '/cfg.yaml', '--workers=4', '--leader-elect', 'false', '--retry-max', '1m'],
      env: { KUBE_API_QPS: '20', DAT_MGMT: 'http://sim:7717', DAT_USER: 'u', DAT_PASS: 'p_secret', POD_NAMESPACE: 'storage' },
      readFile: files({ '/cfg.yaml': file }),
    });
    expect(c.workers).to.equal(4);
    expect(c.kubeApiQps).to.equal(20);
    expect(c.datera.tenant).to.equal('/root/file');
    expect(c.leaderElection.enabled).to.equal(false);
    expect(c.retryMaxMs).to.equal(60_000);
    expect(c.namespace).to.equal('storage');
    expect(c.credentialsSecret.namespace).to.equal('storage');
    expect(c.legacyAlphaClasses).to.deep.equal({ '*': 'gold' });
  });

  it('lists every problem at once, naming the setting, without the password', () => {
    try {
      loadConfig({
        argv: ['--workers', 'many', '--bogus', '1', '--provisioner-name', 'kubernetes.io/datera', '--log-level', 'loud'],
        env: { DAT_PASS: 'hunter2_secret' },
        readFile: files({}),
      });
      expect.fail('should throw');
    } catch (e) {
      expect(e).to.be.instanceOf(ConfigError);
      const m = (e as Error).message;
      expect(m).to.match(/--workers: expected an integer/);
      expect(m).to.match(/unknown flag --bogus/);
      expect(m).to.match(/must not start with kubernetes.io/);
      expect(m).to.match(/log level "loud"/);
      expect(m).to.match(/Datera endpoint is not set/);
      expect(m).to.match(/Datera username is not set/);
      expect(m).to.not.include('hunter2_secret');
    }
  });

  it('rejects unknown config file keys and inconsistent lease timings', () => {
    expect(() => loadConfig({ argv: ['--config', '/c'], env: {}, readFile: files({ ...creds, '/c': 'wrokers: 3\n' }) })).to.throw(/unknown key "wrokers"/);
    expect(() => loadConfig({ argv: ['--leader-elect-renew-deadline', '20s'], env: {}, readFile: files(creds) })).to.throw(/lease duration > renew deadline/);
  });

  it('parses durations and derives lease names; describeConfig hides the password', () => {
    expect(parseDuration('1500ms')).to.equal(1500);
    expect(parseDuration('2s')).to.equal(2000);
    expect(parseDuration('5m')).to.equal(300_000);
    expect(parseDuration('soon')).to.equal(undefined);
    expect(leaseNameFor('datera.io/provisioner-datera')).to.equal('datera.io-provisioner-datera');
    const c = loadConfig({ argv: [], env: {}, readFile: files(creds) });
    expect(JSON.stringify(describeConfig(c))).to.not.include('pw_secret');
  });

  it('the shipped example config (config/provisioner.yaml) loads', () => {
    const text = readFileSync(new URL('../config/provisioner.yaml', import.meta.url), 'utf8');
    const c = loadConfig({ argv: ['--config', '/p.yaml'], env: {}, readFile: files({ ...creds, '/p.yaml': text }) });
    expect(c.workers).to.be.greaterThan(0);
  });
});
