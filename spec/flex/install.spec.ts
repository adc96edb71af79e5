// SPDX-License-Identifier: Apache-2.0
// The installer and the packaging: the esbuild bundle, the shim, atomic idempotent copies, the
// node settings file from a mounted Secret, the multipath snippet from the ConfigMap, the
// DaemonSet manifest, and the installed driver running a real call-out against the simulator.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadYaml, type V1ConfigMap, type V1DaemonSet } from '@kubernetes/client-node';
import { expect } from 'chai';
import { DateraClient } from '../../lib/datera/client.js';
import { buildFlex } from '../../lib/flex/build.js';
import { DRIVER_DIR, installDriver, installOnce, parseInstallArgs, settingsFromSecretDir } from '../../lib/flex/install.js';
import { DateraSimulator } from '../../lib/sim/server.js';
import { fakesBin, repoRoot } from './harness.js';

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env, until?: (out: string) => boolean): Promise<Ran> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env, cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      if (until?.(stdout)) child.kill('SIGTERM');
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

const manifest = (name: string) => fs.readFileSync(path.join(repoRoot, 'manifests/flex', name), 'utf8');

describe('flex installer and packaging', function () {
  this.timeout(60_000);
  let tmp: string;
  let bundle: { driver: string; installer: string };

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'flex-install-'));
    bundle = await buildFlex(path.join(tmp, 'dist'));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  const fresh = (name: string) => fs.mkdtempSync(path.join(tmp, `${name}-`));

  it('installs runtime, bundle and shim; the installed shim answers init as kubelet expects', async () => {
    const plugins = fresh('plugins');
    const written = installDriver({ pluginDir: plugins, driverBundle: bundle.driver });
    const dir = path.join(plugins, DRIVER_DIR);
    expect(written).to.deep.equal([path.join(dir, '.bin/node'), path.join(dir, '.bin/driver.mjs'), path.join(dir, 'iscsi')]);
    expect(fs.statSync(path.join(dir, 'iscsi')).mode & 0o777).to.equal(0o755);
    expect(fs.statSync(path.join(dir, '.bin/node')).mode & 0o777).to.equal(0o755);
    expect(fs.statSync(path.join(dir, '.bin/driver.mjs')).mode & 0o777).to.equal(0o644);

    const root = fresh('root');
    // kubelet's environment: no Node.js on PATH, maybe NODE_OPTIONS from somewhere else.
    const r = await run(path.join(dir, 'iscsi'), ['init'], { PATH: '/usr/bin:/bin', DATERA_FLEX_ROOT: root, NODE_OPTIONS: '--trace-warnings --bogus-flag' });
    expect(r.stderr).to.equal('');
    expect(JSON.parse(r.stdout)).to.deep.include({ status: 'Success' });
    expect(r.code).to.equal(0);
  });

  it('a second install writes nothing; a changed bundle replaces only that file, atomically', () => {
    const plugins = fresh('plugins');
    installDriver({ pluginDir: plugins, driverBundle: bundle.driver });
    const dir = path.join(plugins, DRIVER_DIR);
    const inode = fs.statSync(path.join(dir, 'iscsi')).ino;
    expect(installDriver({ pluginDir: plugins, driverBundle: bundle.driver })).to.deep.equal([]);
    expect(fs.statSync(path.join(dir, 'iscsi')).ino).to.equal(inode);

    const changed = path.join(tmp, 'driver-v2.mjs');
    fs.writeFileSync(changed, `${fs.readFileSync(bundle.driver, 'utf8')}\n// v2\n`);
    const oldInode = fs.statSync(path.join(dir, '.bin/driver.mjs')).ino;
    expect(installDriver({ pluginDir: plugins, driverBundle: changed })).to.deep.equal([path.join(dir, '.bin/driver.mjs')]);
    expect(fs.statSync(path.join(dir, '.bin/driver.mjs')).ino, 'renamed into place, not rewritten').to.not.equal(oldInode);
    expect(fs.readdirSync(path.join(dir, '.bin')).sort()).to.deep.equal(['driver.mjs', 'node']);
  });

  it('the shim answers with a Failure JSON when its runtime is missing', async () => {
    const plugins = fresh('plugins');
    installDriver({ pluginDir: plugins, driverBundle: bundle.driver });
    const dir = path.join(plugins, DRIVER_DIR);
    fs.rmSync(path.join(dir, '.bin/node'));
    const r = await run(path.join(dir, 'iscsi'), ['init'], { PATH: '/usr/bin:/bin' });
    expect(r.code).to.equal(1);
    expect(JSON.parse(r.stdout)).to.deep.include({ status: 'Failure' });
    expect(JSON.parse(r.stdout).message).to.match(/\.bin is incomplete; is the datera-flex DaemonSet running/);
  });

  it('writes the node settings from the mounted Secret, mode 0600, and only when they change', () => {
    const secret = fresh('secret');
    fs.writeFileSync(path.join(secret, 'server'), '10.0.0.5:7717\n');
    fs.writeFileSync(path.join(secret, 'username'), 'admin');
    fs.writeFileSync(path.join(secret, 'password'), 'pw with trailing space \n');
    fs.writeFileSync(path.join(secret, 'insecureSkipTlsVerify'), 'true');
    fs.writeFileSync(path.join(secret, 'chapUser'), '');
    const etc = fresh('etc');
    const configFile = path.join(etc, 'datera/flex.json');
    const plugins = fresh('plugins');
    const opts = { pluginDir: plugins, driverBundle: bundle.driver, secretDir: secret, configFile, nodeName: 'node-7' };
    expect(installOnce(opts)).to.include(configFile);
    expect(fs.statSync(configFile).mode & 0o777).to.equal(0o600);
    expect(fs.statSync(path.dirname(configFile)).mode & 0o777).to.equal(0o700);
    expect(JSON.parse(fs.readFileSync(configFile, 'utf8'))).to.deep.equal({
      server: '10.0.0.5:7717',
      username: 'admin',
      password: 'pw with trailing space ',
      insecureSkipTlsVerify: true,
      nodeName: 'node-7',
    });
    expect(installOnce(opts)).to.deep.equal([]);
    fs.writeFileSync(path.join(secret, 'password'), 'rotated');
    expect(installOnce(opts)).to.deep.equal([configFile]);
  });

  it('copies the Secret key allowedServers (comma- or newline-separated) into the node settings as a list', () => {
    const secret = fresh('secret');
    fs.writeFileSync(path.join(secret, 'server'), '10.0.0.5:7718');
    fs.writeFileSync(path.join(secret, 'username'), 'admin');
    fs.writeFileSync(path.join(secret, 'password'), 'pw');
    fs.writeFileSync(path.join(secret, 'allowedServers'), 'https://10.0.0.6:7718, 10.0.0.7:7718\n10.0.0.8:7718,\n');
    expect(settingsFromSecretDir(secret).allowedServers).to.deep.equal(['https://10.0.0.6:7718', '10.0.0.7:7718', '10.0.0.8:7718']);
    fs.writeFileSync(path.join(secret, 'allowedServers'), ' , ');
    expect(settingsFromSecretDir(secret).allowedServers).to.equal(undefined);
  });

  it('refuses a Secret without a password, naming the key only', () => {
    const secret = fresh('secret');
    fs.writeFileSync(path.join(secret, 'server'), 'h:7717');
    fs.writeFileSync(path.join(secret, 'username'), 'admin');
    expect(() => settingsFromSecretDir(secret)).to.throw(`Secret mounted at ${secret}: "password" is missing`);
  });

  it('installs the multipath settings of the ConfigMap', () => {
    const cm = loadYaml<V1ConfigMap>(manifest('multipath-conf.yaml'));
    const conf = cm.data!['datera.conf']!;
    for (const line of [
      'vendor "DATERA"',
      'product "IBLOCK"',
      'path_grouping_policy group_by_prio',
      'prio alua',
      'hardware_handler "1 alua"',
      'path_checker tur',
      'path_selector "queue-length 0"',
      'failback 5',
    ]) {
      expect(conf).to.contain(line);
    }
    expect(conf).to.match(/blacklist \{\s*device \{\s*vendor "\.\*"\s*product "\.\*"/);
    expect(conf).to.match(/blacklist_exceptions \{\s*device \{\s*vendor "DATERA"\s*product "IBLOCK"/);

    const src = path.join(fresh('cm'), 'datera.conf');
    fs.writeFileSync(src, conf);
    const dest = path.join(fresh('host-etc'), 'multipath/conf.d/datera.conf');
    const opts = { pluginDir: fresh('plugins'), driverBundle: bundle.driver, multipathConf: src, multipathDest: dest };
    expect(installOnce(opts)).to.include(dest);
    expect(fs.readFileSync(dest, 'utf8')).to.equal(conf);
    expect(installOnce(opts)).to.deep.equal([]);
  });

  it('parses its command line as the DaemonSet passes it', () => {
    const ds = loadYaml<V1DaemonSet>(manifest('daemonset.yaml'));
    const c = ds.spec!.template.spec!.containers[0]!;
    const args = c.args!.map((a) => a.replace('$(NODE_NAME)', 'node-1'));
    expect(parseInstallArgs(args, '/default/driver.mjs')).to.deep.equal({
      pluginDir: '/flexmnt',
      driverBundle: '/app/dist/flex/driver.mjs',
      nodeBinary: undefined,
      secretDir: '/etc/datera-secret',
      configFile: '/host/etc/datera/flex.json',
      nodeName: 'node-1',
      attach: false,
      multipathConf: '/etc/datera-multipath/datera.conf',
      multipathDest: '/host/etc/multipath/conf.d/datera.conf',
      watchSeconds: 60,
    });
    expect(() => parseInstallArgs(['--plugin-dir=/x', '--frobnicate'], '')).to.throw(/unknown option --frobnicate/);
    expect(() => parseInstallArgs([], '')).to.throw(/--plugin-dir is required/);
  });

  it('the DaemonSet mounts what its arguments name, from the host paths kubelet uses', () => {
    const ds = loadYaml<V1DaemonSet>(manifest('daemonset.yaml'));
    const pod = ds.spec!.template.spec!;
    const c = pod.containers[0]!;
    expect(c.image).to.equal('datera/k8s-provisioner:0.1.0');
    const hostPaths = Object.fromEntries(pod.volumes!.filter((v) => v.hostPath).map((v) => [v.name, v.hostPath!.path]));
    expect(hostPaths).to.deep.equal({
      'flexvolume-plugins': '/usr/libexec/kubernetes/kubelet-plugins/volume/exec',
      'datera-etc': '/etc/datera',
      'multipath-etc': '/etc/multipath',
    });
    const mounts = Object.fromEntries(c.volumeMounts!.map((m) => [m.mountPath, m.name]));
    const opts = parseInstallArgs(c.args!, '');
    for (const p of [opts.pluginDir, path.dirname(opts.configFile!), opts.secretDir!, path.dirname(opts.multipathConf!)]) {
      expect(mounts, `a volume is mounted at ${p}`).to.have.property(p);
    }
    expect(opts.multipathDest!.startsWith('/host/etc/multipath/')).to.equal(true);
    expect(pod.volumes!.find((v) => v.name === 'credentials')!.secret!.secretName).to.equal('datera-credentials');
    expect(pod.volumes!.find((v) => v.name === 'multipath-conf')!.configMap!.name).to.equal('datera-multipath');
    const kustomization = fs.readFileSync(path.join(repoRoot, 'manifests/flex/kustomization.yaml'), 'utf8');
    expect(kustomization).to.match(/^namespace: datera-system$/m);
  });

  it('the bundled installer runs once, or watches until SIGTERM', async () => {
    const plugins = fresh('plugins');
    const once = await run(process.execPath, [bundle.installer, `--plugin-dir=${plugins}`]);
    expect(once.code, once.stderr).to.equal(0);
    expect(once.stdout).to.match(/updated .*datera~iscsi\/iscsi/);
    expect(fs.existsSync(path.join(plugins, DRIVER_DIR, '.bin/driver.mjs')), 'default bundle: driver.mjs next to install.mjs').to.equal(true);

    const watched = await run(process.execPath, [bundle.installer, `--plugin-dir=${plugins}`, '--watch=3600'], process.env, (out) =>
      out.includes('everything up to date'),
    );
    expect(watched.code).to.equal(0);
    const bad = await run(process.execPath, [bundle.installer]);
    expect(bad.code).to.equal(2);
    expect(bad.stderr).to.match(/--plugin-dir is required/);
  });

  it('the installed driver attaches and detaches against the simulator (bundled client)', async () => {
    const sim = new DateraSimulator({ users: [{ name: 'admin', password: 'Bundle_pw.1' }] });
    const url = await sim.start();
    const api = new DateraClient({ endpoint: url, username: 'admin', password: 'Bundle_pw.1' });
    try {
      await api.createAppInstance({ name: 'pvc-bundle', storage_instances: [{ name: 'storage-1', volumes: [{ name: 'volume-1', size: 1 }] }] });
      await api.putMetadata('pvc-bundle', { 'k8s-pv': 'pvc-bundle', 'k8s-claim-namespace': 'default' });
      const plugins = fresh('plugins');
      const root = fresh('root');
      fs.mkdirSync(path.join(root, 'etc/iscsi'), { recursive: true });
      fs.writeFileSync(path.join(root, 'etc/iscsi/initiatorname.iscsi'), 'InitiatorName=iqn.1994-05.com.redhat:bundle\n');
      fs.mkdirSync(path.join(root, 'proc'));
      fs.writeFileSync(path.join(root, 'proc/mounts'), '');
      const secret = fresh('secret');
      for (const [k, v] of Object.entries({ server: url, username: 'admin', password: 'Bundle_pw.1' })) fs.writeFileSync(path.join(secret, k), v);
      installOnce({ pluginDir: plugins, driverBundle: bundle.driver, secretDir: secret, configFile: path.join(root, 'etc/datera/flex.json') });
      for (const f of fs.readdirSync(fakesBin)) fs.chmodSync(path.join(fakesBin, f), 0o755);
      const env = { PATH: `${fakesBin}:${path.dirname(process.execPath)}:/usr/bin:/bin`, DATERA_FLEX_ROOT: root, DATERA_FLEX_POLL_MS: '20' };
      const shim = path.join(plugins, DRIVER_DIR, 'iscsi');
      const opts = JSON.stringify({ 'kubernetes.io/pvOrVolumeName': 'pvc-bundle', volumeID: 'pvc-bundle', backstoreServer: url });
      const attach = await run(shim, ['attach', opts, 'node-1'], env);
      expect(attach.stderr).to.equal('');
      expect(JSON.parse(attach.stdout)).to.deep.include({ status: 'Success' });
      const acl = () => sim.appInstances().find((a) => a.name === 'pvc-bundle')!.storage_instances[0]!.acl_policy.initiators;
      expect(acl()).to.have.length(1);
      const detach = await run(shim, ['detach', 'pvc-bundle', 'node-1'], env);
      expect(JSON.parse(detach.stdout)).to.deep.equal({ status: 'Success' });
      expect(acl()).to.have.length(0);
    } finally {
      await api.close();
      await sim.stop();
    }
  });
});
