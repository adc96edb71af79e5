// SPDX-License-Identifier: Apache-2.0
// Which Secret a StorageClass's credentials come from: never the claim's namespace.
import { expect } from 'chai';
import { ApiException } from '@kubernetes/client-node';
import type { DateraApi } from '../../lib/datera/types.js';
import { nullLogger } from '../../lib/observability/logger.js';
import { CredentialsError, DateraConnections, type DateraCredentials } from '../../lib/provision/credentials.js';

const defaults = { endpoint: 'home.datera:7717', username: 'admin', password: 'pw_home', tenant: '/root', apiVersion: '2.2', insecureSkipTlsVerify: false, requestTimeoutMs: 1000, deadlineMs: 1000, connections: 1 };

function connections(secrets: Record<string, { type?: string; data: Record<string, string> } | Error>, homeNamespace?: string) {
  const reads: string[] = [];
  const made: DateraCredentials[] = [];
  const c = new DateraConnections({
    defaults,
    defaultSecret: { name: 'datera-credentials', namespace: 'datera-system' },
    ...(homeNamespace ? { homeNamespace } : {}),
    readSecret: async (ns, name) => {
      reads.push(`${ns}/${name}`);
      const s = secrets[`${ns}/${name}`];
      if (s instanceof Error) throw s;
      return s;
    },
    makeClient: (cr) => {
      made.push(cr);
      return {} as DateraApi;
    },
    logger: nullLogger(),
  });
  return { c, reads, made };
}

const secret = (server: string) => ({ type: 'datera/iscsi', data: { username: 'u', password: 'p', server } });

describe('credentials: where a class Secret is read from', () => {
  it('a class secretName without secretNamespace is read from the provisioner namespace, not from the claim namespace', async () => {
    const { c, reads, made } = connections({
      'datera-system/team': secret('good.datera:7717'),
      'tenant-a/team': secret('attacker.example:7717'),
    });
    const conn = await c.forProvision({ secretName: 'team', claimNamespace: 'tenant-a' });
    expect(conn.secretRef).to.deep.equal({ name: 'team', namespace: 'datera-system' });
    expect(conn.endpoint).to.equal('good.datera:7717');
    expect(reads).to.deep.equal(['datera-system/team']);
    expect(made.map((m) => m.endpoint)).to.deep.equal(['good.datera:7717']);
  });

  it('the provisioner namespace (homeNamespace) is used even when the default Secret lives elsewhere', async () => {
    const { c, reads } = connections({ 'storage-ops/team': secret('good.datera:7717') }, 'storage-ops');
    const conn = await c.forProvision({ secretName: 'team', claimNamespace: 'tenant-a' });
    expect(conn.secretRef).to.deep.equal({ name: 'team', namespace: 'storage-ops' });
    expect(reads).to.deep.equal(['storage-ops/team']);
  });

  it('a secretName missing from the provisioner namespace is a CredentialsError naming that namespace, even when the claim namespace has one', async () => {
    const { c, reads } = connections({ 'tenant-a/team': secret('attacker.example:7717') });
    const err = await c.forProvision({ secretName: 'team', claimNamespace: 'tenant-a' }).then(() => undefined, (e: unknown) => e);
    expect(err).to.be.instanceOf(CredentialsError);
    expect((err as Error).message).to.equal('credentials Secret datera-system/team does not exist');
    expect(reads).to.deep.equal(['datera-system/team']);
  });

  it('an explicit secretNamespace is honoured (an admin wrote the class)', async () => {
    const { c } = connections({ 'ops/team': secret('ops.datera:7717') });
    const conn = await c.forProvision({ secretName: 'team', secretNamespace: 'ops', claimNamespace: 'tenant-a' });
    expect(conn.secretRef).to.deep.equal({ name: 'team', namespace: 'ops' });
    expect(conn.endpoint).to.equal('ops.datera:7717');
  });

  it('a 403 on the Secret read is a final CredentialsError that tells the admin which grant is missing, without the password', async () => {
    const forbidden = new ApiException(403, 'Forbidden', JSON.stringify({ kind: 'Status', code: 403, reason: 'Forbidden', message: 'secrets "team" is forbidden' }), {});
    const { c } = connections({ 'ops/team': forbidden });
    const err = await c.forProvision({ secretName: 'team', secretNamespace: 'ops' }).then(() => undefined, (e: unknown) => e);
    expect(err).to.be.instanceOf(CredentialsError);
    const msg = (err as Error).message;
    expect(msg).to.include('credentials Secret ops/team may not be read by the provisioner (403 Forbidden)');
    expect(msg).to.include('only in its own namespace datera-system');
    expect(msg).to.include('a Role in namespace ops with rules [{apiGroups: [""], resources: [secrets], resourceNames: [team], verbs: [get]}]');
    expect(msg).to.not.include('pw_home');
  });

  it('other read failures pass through unchanged (retried by the controller)', async () => {
    const boom = new ApiException(500, 'Internal', JSON.stringify({ kind: 'Status', code: 500, message: 'etcd' }), {});
    const { c } = connections({ 'ops/team': boom });
    const err = await c.forProvision({ secretName: 'team', secretNamespace: 'ops' }).then(() => undefined, (e: unknown) => e);
    expect(err).to.equal(boom);
  });
});

describe('credentials: an existing PV never redirects them', () => {
  const pv = (opts: Record<string, string>, secretRef?: { name: string; namespace: string }) => ({
    metadata: { name: 'pvc-1' },
    spec: { flexVolume: { driver: 'datera/iscsi', options: opts, ...(secretRef ? { secretRef } : {}) } },
  });

  it('a PV whose backstoreServer is not the server of its credentials is a CredentialsError naming both, and no client is made', async () => {
    const { c, made } = connections({});
    const err = await c.forVolume(pv({ backstoreServer: 'attacker.example:7717', tenant: '/root' })).then(() => undefined, (e: unknown) => e);
    expect(err).to.be.instanceOf(CredentialsError);
    expect((err as Error).message).to.contain('"attacker.example:7717"').and.contain('"home.datera:7717"').and.not.contain('pw_home');
    expect(made).to.deep.equal([]);
  });

  it('a class Secret PV naming a server other than its Secret\'s is refused the same way', async () => {
    const { c, made } = connections({ 'datera-system/team': secret('good.datera:7717') });
    const err = await c.forVolume(pv({ backstoreServer: 'home.datera:7717' }, { name: 'team', namespace: 'datera-system' })).then(() => undefined, (e: unknown) => e);
    expect(err).to.be.instanceOf(CredentialsError);
    expect(made).to.deep.equal([]);
  });

  it('the same server spelled another way (scheme, trailing /v2.2) is accepted and the credentials\' own endpoint is used', async () => {
    const { c, made } = connections({});
    const conn = await c.forVolume(pv({ backstoreServer: 'http://home.datera:7717/v2.2', tenant: '/root/t1' }));
    expect(conn.endpoint).to.equal('home.datera:7717');
    expect(conn.tenant).to.equal('/root/t1');
    expect(made.map((m) => [m.endpoint, m.tenant])).to.deep.equal([['home.datera:7717', '/root/t1']]);
  });
});
