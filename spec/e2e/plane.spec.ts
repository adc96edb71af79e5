// SPDX-License-Identifier: Apache-2.0
// The local control plane itself: upstream components, stamped version, kubectl, envtest-style
// prebuilt binaries.
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { planeBinary, startPlane, type Plane } from '../cluster/plane.js';
import { sharedPlane } from './harness.js';

function which(cmd: string): string | undefined {
  try {
    return execFileSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

describe('e2e: the local control plane', function () {
  this.timeout(180_000);
  let plane: Plane;
  before(async () => {
    plane = await sharedPlane();
  });

  it('serves /readyz and reports the stamped upstream version', () => {
    const v = JSON.parse(plane.kubectl(['version', '-o', 'json'])) as { serverVersion: { gitVersion: string; major: string; minor: string } };
    expect(v.serverVersion.gitVersion).to.equal('v1.34.4');
    expect(v.serverVersion.minor).to.equal('34');
    expect(plane.kubectl(['get', '--raw', '/readyz'])).to.equal('ok');
  });

  it('runs etcd 3.6 with watch progress support (no RequestWatchProgress warning)', () => {
    const log = readFileSync(join(plane.dir, 'kube-apiserver.log'), 'utf8');
    expect(log).to.not.match(/RequestWatchProgress feature is not supported/);
  });

  it('works with the machine\'s kubectl too', function () {
    const kubectl = which('kubectl');
    if (!kubectl) this.skip(); // reason: no kubectl installed on this machine; the built one is tested above
    const out = execFileSync(kubectl!, ['--kubeconfig', plane.kubeconfig, 'get', 'namespaces', '-o', 'name'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(out).to.include('namespace/default');
  });

  it('accepts prebuilt binaries the envtest way (TEST_ASSET_KUBE_APISERVER, TEST_ASSET_ETCD, TEST_ASSET_KUBE_CONTROLLER_MANAGER)', async () => {
    const bin = planeBinary();
    const dir = mkdtempSync(join(tmpdir(), 'assets-'));
    const marker = join(dir, 'used');
    const env: Record<string, string> = {};
    for (const [name, variable] of [['kube-apiserver', 'TEST_ASSET_KUBE_APISERVER'], ['etcd', 'TEST_ASSET_ETCD'], ['kube-controller-manager', 'TEST_ASSET_KUBE_CONTROLLER_MANAGER']] as const) {
      const wrapper = join(dir, name);
      writeFileSync(wrapper, `#!/bin/sh\necho ${name} >> '${marker}'\nexec '${bin}' ${name} "$@"\n`);
      chmodSync(wrapper, 0o755);
      env[variable] = wrapper;
    }
    const saved = { ...process.env };
    Object.assign(process.env, env);
    let p: Plane | undefined;
    try {
      p = await startPlane({});
      expect(p.kubectl(['get', '--raw', '/readyz'])).to.equal('ok');
    } finally {
      for (const k of Object.keys(env)) if (saved[k] === undefined) delete process.env[k];
      await p?.stop();
    }
    expect(existsSync(marker)).to.equal(true);
    expect(readFileSync(marker, 'utf8').trim().split('\n').sort()).to.deep.equal(['etcd', 'kube-apiserver', 'kube-controller-manager']);
  });
});
