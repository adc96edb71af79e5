// SPDX-License-Identifier: Apache-2.0
// Which Datera connection the provisioner uses: the PV's own tenant on delete, and only Secrets
// of the type kubelet passes to the datera/iscsi driver.
import { expect } from 'chai';
import type { DateraApi } from '../../lib/datera/types.js';
import { nullLogger } from '../../lib/observability/logger.js';
import { CredentialsError, DateraConnections, type DateraCredentials } from '../../lib/provision/credentials.js';
import { newVolume } from '../support/builders.js';

describe('provisioner credentials (DateraConnections)', () => {
  let made: DateraCredentials[];
  let secrets: Map<string, { type?: string; data: Record<string, string> }>;
  let conns: DateraConnections;

  beforeEach(() => {
    made = [];
    secrets = new Map();
    conns = new DateraConnections({
      defaults: {
        endpoint: 'https://datera.example:7718',
        username: 'admin',
        password: 'default_pw',
        tenant: '/root',
        apiVersion: '2.2',
        insecureSkipTlsVerify: false,
        requestTimeoutMs: 1000,
        deadlineMs: 1000,
        connections: 1,
      },
      defaultSecret: { name: 'datera-credentials', namespace: 'datera-system' },
      readSecret: async (ns, name) => secrets.get(`${ns}/${name}`),
      makeClient: (c) => {
        made.push(c);
        return {} as DateraApi;
      },
      logger: nullLogger(),
    });
  });

  it('delete (forVolume) talks to the tenant the PV records, not the Secret default tenant', async () => {
    const pv = newVolume('pvc-t', { phase: 'Released', options: { tenant: '/root/team-a' } });
    const c = await conns.forVolume(pv);
    expect(c.tenant).to.equal('/root/team-a');
    expect(made.map((m) => m.tenant)).to.deep.equal(['/root/team-a']);
  });

  it('forVolume falls back to the credentials tenant when the PV records none', async () => {
    const c = await conns.forVolume(newVolume('pvc-u', { phase: 'Released' }));
    expect(c.tenant).to.equal('/root');
  });

  it('a class Secret whose type is not datera/iscsi is refused with a CredentialsError naming it and its type', async () => {
    secrets.set('storage/opaque', { type: 'Opaque', data: { username: 'u', password: 'class_pw', server: 'https://other:7718' } });
    let err: unknown;
    try {
      await conns.forProvision({ secretName: 'opaque', secretNamespace: 'storage', claimNamespace: 'default' });
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(CredentialsError);
    expect((err as Error).message).to.equal(
      'credentials Secret storage/opaque has type "Opaque"; kubelet passes only Secrets of type "datera/iscsi" to the datera/iscsi driver',
    );
    expect(made, 'no client was made from it').to.deep.equal([]);
  });

  it('a class Secret of type datera/iscsi is used, with its server and tenant', async () => {
    secrets.set('storage/ok', { type: 'datera/iscsi', data: { username: 'u', password: 'class_pw', server: 'https://other:7718', tenant: '/root/b' } });
    const c = await conns.forProvision({ secretName: 'ok', secretNamespace: 'storage', claimNamespace: 'default' });
    expect(c).to.deep.include({ endpoint: 'https://other:7718', tenant: '/root/b', secretRef: { name: 'ok', namespace: 'storage' } });
  });
});
