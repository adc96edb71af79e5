// SPDX-License-Identifier: Apache-2.0
import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfigError, loadKubeConfig } from '../../lib/kube/kubeconfig.js';

describe('kube/kubeconfig', () => {
  describe('loadKubeConfig', () => {
    let dir: string;
    const kubeconfig = (server: string) => `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "${server}"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`;
    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), 'kube-spec-'));
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    it('prefers the explicit path over $KUBECONFIG', () => {
      const a = join(dir, 'a');
      const b = join(dir, 'b');
      writeFileSync(a, kubeconfig('https://explicit:6443'));
      writeFileSync(b, kubeconfig('https://from-env:6443'));
      const kc = loadKubeConfig({ kubeconfig: a }, { KUBECONFIG: b, HOME: dir });
      expect(kc.getCurrentCluster()?.server).to.equal('https://explicit:6443');
      expect(loadKubeConfig({}, { KUBECONFIG: b, HOME: dir }).getCurrentCluster()?.server).to.equal('https://from-env:6443');
    });

    it('uses in-cluster config when KUBERNETES_SERVICE_HOST is set and inCluster is forced', () => {
      const kc = loadKubeConfig({ inCluster: true }, { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' });
      expect(kc.getCurrentCluster()?.server).to.equal('https://10.96.0.1:443');
      expect(kc.getCurrentCluster()?.caFile).to.equal('/var/run/secrets/kubernetes.io/serviceaccount/ca.crt');
      expect(kc.getCurrentUser()?.authProvider).to.deep.equal({ name: 'tokenFile', config: { tokenFile: '/var/run/secrets/kubernetes.io/serviceaccount/token' } });
    });

    it('builds the in-cluster server from the given environment only, brackets IPv6, and leaves process.env alone', () => {
      const before = { host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT };
      const kc = loadKubeConfig({ inCluster: true }, { KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '6443' });
      expect(kc.getCurrentCluster()?.server).to.equal('https://[fd00::1]:6443');
      expect({ host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT }).to.deep.equal(before);
    });

    it('throws a clear error instead of falling back to localhost:8080', () => {
      expect(() => loadKubeConfig({}, { HOME: dir })).to.throw(KubeConfigError, /no Kubernetes configuration found/);
      expect(() => loadKubeConfig({ kubeconfig: join(dir, 'nope') }, { HOME: dir })).to.throw(KubeConfigError, /does not exist/);
      expect(() => loadKubeConfig({ inCluster: true }, {})).to.throw(KubeConfigError, /KUBERNETES_SERVICE_HOST/);
    });
  });
});
