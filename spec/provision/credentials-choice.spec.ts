// SPDX-License-Identifier: Apache-2.0
// Which credentials, server and tenant a connection uses, how long a read Secret is trusted, and
// when a client is shared: the choices that decide where a password is sent.
import { expect } from 'chai';
import type { DateraApi } from '../../lib/datera/types.js';
import { nullLogger } from '../../lib/observability/logger.js';
import { CredentialsError, DateraConnections, sameEndpoint, type DateraCredentials } from '../../lib/provision/credentials.js';
import { newVolume } from '../support/builders.js';

const defaults = { endpoint: 'home.datera:7717', username: 'admin', password: 'pw_home', tenant: '/root', apiVersion: '2.2', insecureSkipTlsVerify: false, requestTimeoutMs: 1000, deadlineMs: 1000, connections: 1 };

type Secret = { type?: string; data: Record<string, string> };

function setup(o: { secrets?: Record<string, Secret>; defaults?: Partial<typeof defaults> & { ldapServer?: string }; secretTtlMs?: number } = {}) {
  const secrets = new Map(Object.entries(o.secrets ?? {}));
  const reads: string[] = [];
  const made: DateraCredentials[] = [];
  const closed: number[] = [];
  const c = new DateraConnections({
    defaults: { ...defaults, ...(o.defaults ?? {}) },
    defaultSecret: { name: 'datera-credentials', namespace: 'datera-system' },
    ...(o.secretTtlMs !== undefined ? { secretTtlMs: o.secretTtlMs } : {}),
    readSecret: async (ns, name) => {
      reads.push(`${ns}/${name}`);
      return secrets.get(`${ns}/${name}`);
    },
    makeClient: (cr) => {
      const id = made.push(cr);
      return { id, close: async () => void closed.push(id) } as unknown as DateraApi & { close: () => Promise<void> };
    },
    logger: nullLogger(),
  });
  return { c, secrets, reads, made, closed };
}

const err = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e as Error);

describe('credentials: which Secret, server and tenant a connection uses', () => {
  it('no class Secret: the provisioner\'s own settings, without reading any Secret, under the default Secret reference', async () => {
    const { c, reads, made } = setup({ defaults: { ldapServer: 'ldap-1' } });
    const conn = await c.forProvision({ claimNamespace: 'tenant-a' });
    expect(reads).to.deep.equal([]);
    expect(made).to.deep.equal([{ endpoint: 'home.datera:7717', username: 'admin', password: 'pw_home', tenant: '/root', ldapServer: 'ldap-1' }]);
    expect(conn).to.deep.include({ endpoint: 'home.datera:7717', tenant: '/root', secretRef: { name: 'datera-credentials', namespace: 'datera-system' } });
  });

  it('the provisioner\'s settings without an ldapServer give credentials without one', async () => {
    const { c, made } = setup();
    await c.forProvision({});
    expect(made[0]).to.not.have.property('ldapServer');
  });

  it('a class tenant overrides the credentials\' tenant', async () => {
    const { c, made } = setup();
    const conn = await c.forProvision({ tenant: '/root/team-a' });
    expect(conn.tenant).to.equal('/root/team-a');
    expect(made.map((m) => m.tenant)).to.deep.equal(['/root/team-a']);
  });

  it('a Secret named like the default one but in another namespace is read, not replaced by the provisioner\'s own credentials', async () => {
    const { c, reads, made } = setup({ secrets: { 'ops/datera-credentials': { type: 'datera/iscsi', data: { username: 'ops', password: 'pw_ops', server: 'ops.datera:7717' } } } });
    const conn = await c.forProvision({ secretName: 'datera-credentials', secretNamespace: 'ops' });
    expect(reads).to.deep.equal(['ops/datera-credentials']);
    expect(conn.endpoint).to.equal('ops.datera:7717');
    expect(made.map((m) => m.username)).to.deep.equal(['ops']);
  });

  it('a Secret in the default namespace with another name is read, not replaced by the provisioner\'s own credentials', async () => {
    const { c, reads, made } = setup({ secrets: { 'datera-system/team': { type: 'datera/iscsi', data: { username: 'team', password: 'pw_team', server: 'team.datera:7717' } } } });
    await c.forProvision({ secretName: 'team', secretNamespace: 'datera-system' });
    expect(reads).to.deep.equal(['datera-system/team']);
    expect(made.map((m) => m.username)).to.deep.equal(['team']);
  });

  it('the default Secret named explicitly by a class uses the provisioner\'s settings without a read', async () => {
    const { c, reads } = setup();
    const conn = await c.forProvision({ secretName: 'datera-credentials', secretNamespace: 'datera-system' });
    expect(reads).to.deep.equal([]);
    expect(conn.endpoint).to.equal('home.datera:7717');
  });

  it('a Secret without server and tenant keys uses the provisioner\'s server and tenant, and its own username, password and ldapServer', async () => {
    const { c, made } = setup({ secrets: { 'ops/team': { type: 'datera/iscsi', data: { username: 'u', password: 'p', ldapServer: 'corp-ldap' } } } });
    const conn = await c.forProvision({ secretName: 'team', secretNamespace: 'ops' });
    expect(made).to.deep.equal([{ endpoint: 'home.datera:7717', username: 'u', password: 'p', tenant: '/root', ldapServer: 'corp-ldap' }]);
    expect(conn).to.deep.include({ endpoint: 'home.datera:7717', tenant: '/root' });
  });

  it('a Secret without a type is accepted (older Secrets), and one without ldapServer gives credentials without it', async () => {
    const { c, made } = setup({ secrets: { 'ops/team': { data: { username: 'u', password: 'p', server: 's.datera:7717', tenant: '/root/t' } } } });
    await c.forProvision({ secretName: 'team', secretNamespace: 'ops' });
    expect(made).to.deep.equal([{ endpoint: 's.datera:7717', username: 'u', password: 'p', tenant: '/root/t' }]);
  });

  const incomplete: Array<[string, Record<string, string>, string]> = [
    ['no password', { username: 'u' }, 'password'],
    ['no username', { password: 'p' }, 'username'],
    ['an empty password', { username: 'u', password: '' }, 'password'],
    ['neither', {}, 'username, password'],
  ];
  for (const [what, data, keys] of incomplete) {
    it(`a Secret with ${what} is a CredentialsError naming the missing key(s), and no client is made`, async () => {
      const { c, made } = setup({ secrets: { 'ops/team': { type: 'datera/iscsi', data } } });
      const e = await err(c.forProvision({ secretName: 'team', secretNamespace: 'ops' }));
      expect(e).to.be.instanceOf(CredentialsError);
      expect(e!.name).to.equal('CredentialsError');
      expect(e!.message).to.equal(`credentials Secret ops/team lacks key(s) ${keys} (needs username, password, server)`);
      expect(made).to.deep.equal([]);
    });
  }
});

describe('credentials: an existing PV\'s Secret and server', () => {
  it('a PV secretRef without a namespace is read from the default Secret\'s namespace', async () => {
    const { c, reads } = setup({ secrets: { 'datera-system/team': { type: 'datera/iscsi', data: { username: 'u', password: 'p', server: 'home.datera:7717' } } } });
    const pv = newVolume('pvc-1', { phase: 'Released' });
    pv.spec!.flexVolume!.secretRef = { name: 'team' };
    const conn = await c.forVolume(pv);
    expect(reads).to.deep.equal(['datera-system/team']);
    expect(conn.secretRef).to.deep.equal({ name: 'team', namespace: 'datera-system' });
  });

  it('a PV without a secretRef uses the provisioner\'s own credentials under the default Secret reference', async () => {
    const { c, reads } = setup();
    const conn = await c.forVolume(newVolume('pvc-1', { phase: 'Released' }));
    expect(reads).to.deep.equal([]);
    expect(conn.secretRef).to.deep.equal({ name: 'datera-credentials', namespace: 'datera-system' });
    expect(conn.endpoint).to.equal('home.datera:7717');
  });

  it('a PV with a secretRef names that Secret in its connection', async () => {
    const { c } = setup({ secrets: { 'ops/team': { type: 'datera/iscsi', data: { username: 'u', password: 'p', server: 'home.datera:7717' } } } });
    const conn = await c.forVolume(newVolume('pvc-1', { secretRef: { name: 'team', namespace: 'ops' } }));
    expect(conn.secretRef).to.deep.equal({ name: 'team', namespace: 'ops' });
  });

  it('a PV naming its credentials\' own server (same host and port) is served', async () => {
    const { c, made } = setup();
    const conn = await c.forVolume(newVolume('pvc-1', { options: { backstoreServer: 'home.datera:7717' } }));
    expect(conn.endpoint).to.equal('home.datera:7717');
    expect(made).to.have.length(1);
  });

  it('the refusal names the PV, both servers and the Secret, and is a CredentialsError', async () => {
    const { c } = setup();
    const e = await err(c.forVolume(newVolume('pvc-9', { options: { backstoreServer: 'other.datera:7717' } })));
    expect(e).to.be.instanceOf(CredentialsError);
    expect(e!.message).to.equal(
      'PersistentVolume pvc-9 names Datera server "other.datera:7717" (options.backstoreServer), but its credentials (Secret datera-system/datera-credentials) are for "home.datera:7717"; refusing to send them to a server their Secret does not name',
    );
  });

  it('a PV without a name is still refused, as PersistentVolume ?', async () => {
    const { c } = setup();
    const pv = newVolume('x', { options: { backstoreServer: 'other.datera:7717' } });
    delete pv.metadata!.name;
    const e = await err(c.forVolume(pv));
    expect(e!.message).to.match(/^PersistentVolume \? names Datera server/);
  });

  it('a backstoreServer that is not a valid endpoint is refused, not followed', async () => {
    const { c, made } = setup();
    const e = await err(c.forVolume(newVolume('pvc-1', { options: { backstoreServer: 'ftp://home.datera:7717' } })));
    expect(e).to.be.instanceOf(CredentialsError);
    expect(made).to.deep.equal([]);
  });
});

describe('credentials: sameEndpoint', () => {
  const rows: Array<[string, string, boolean]> = [
    ['home.datera:7717', 'http://home.datera:7717', true],
    ['home.datera:7717', 'http://home.datera:7717/v2.2', true],
    ['home.datera', 'https://home.datera:7718', true],
    ['home.datera:7717', 'home.datera:7718', false],
    ['home.datera:7717', 'other.datera:7717', false],
    ['http://home.datera:7717/a', 'http://home.datera:7717/b', false],
    ['http://home.datera:7717/a', 'http://home.datera:7717/a/v2.2', true],
    ['', 'home.datera:7717', false],
    ['home.datera:7717', 'ftp://home.datera:7717', false],
  ];
  for (const [a, b, want] of rows) it(`${JSON.stringify(a)} vs ${JSON.stringify(b)}: ${want}`, () => expect(sameEndpoint(a, b)).to.equal(want));
});

describe('credentials: Secret cache and shared clients', () => {
  const ok = (user: string): Secret => ({ type: 'datera/iscsi', data: { username: user, password: `pw_${user}`, server: 'home.datera:7717' } });

  it('a Secret is read once and then served from the cache', async () => {
    const { c, reads } = setup({ secrets: { 'ops/team': ok('u1') } });
    await c.forProvision({ secretName: 'team', secretNamespace: 'ops' });
    await c.forProvision({ secretName: 'team', secretNamespace: 'ops' });
    expect(reads).to.deep.equal(['ops/team']);
  });

  it('invalidate(ref) makes the next use read that Secret again and use its new content; other Secrets stay cached', async () => {
    const { c, secrets, reads, made } = setup({ secrets: { 'ops/team': ok('u1'), 'ops/other': ok('o1') } });
    await c.forProvision({ secretName: 'team', secretNamespace: 'ops' });
    await c.forProvision({ secretName: 'other', secretNamespace: 'ops' });
    secrets.set('ops/team', ok('u2'));
    c.invalidate({ name: 'team', namespace: 'ops' });
    await c.forProvision({ secretName: 'team', secretNamespace: 'ops' });
    await c.forProvision({ secretName: 'other', secretNamespace: 'ops' });
    expect(reads).to.deep.equal(['ops/team', 'ops/other', 'ops/team']);
    expect(made.map((m) => m.username)).to.deep.equal(['u1', 'o1', 'u2']);
  });

  it('invalidate() drops every cached Secret', async () => {
    const { c, reads } = setup({ secrets: { 'ops/team': ok('u1'), 'ops/other': ok('o1') } });
    await c.forProvision({ secretName: 'team', secretNamespace: 'ops' });
    await c.forProvision({ secretName: 'other', secretNamespace: 'ops' });
    c.invalidate();
    await c.forProvision({ secretName: 'team', secretNamespace: 'ops' });
    await c.forProvision({ secretName: 'other', secretNamespace: 'ops' });
    expect(reads).to.deep.equal(['ops/team', 'ops/other', 'ops/team', 'ops/other']);
  });

  it('a read Secret is trusted only for secretTtlMs', async () => {
    const { c, reads } = setup({ secrets: { 'ops/team': ok('u1') }, secretTtlMs: 30 });
    await c.forProvision({ secretName: 'team', secretNamespace: 'ops' });
    await new Promise((r) => setTimeout(r, 60));
    await c.forProvision({ secretName: 'team', secretNamespace: 'ops' });
    expect(reads).to.deep.equal(['ops/team', 'ops/team']);
  });

  it('a missing Secret is not cached as missing: once created it is used', async () => {
    const { c, secrets } = setup();
    expect(await err(c.forProvision({ secretName: 'team', secretNamespace: 'ops' }))).to.be.instanceOf(CredentialsError);
    secrets.set('ops/team', ok('u1'));
    const conn = await c.forProvision({ secretName: 'team', secretNamespace: 'ops' });
    expect(conn.secretRef).to.deep.equal({ name: 'team', namespace: 'ops' });
  });

  it('the same endpoint, user, password and tenant share one client', async () => {
    const { c, made } = setup();
    const a = await c.forProvision({});
    const b = await c.forVolume(newVolume('pvc-1'));
    expect(made).to.have.length(1);
    expect(a.client).to.equal(b.client);
  });

  it('a different tenant, password, user, server or ldapServer gets its own client', async () => {
    const { c, made } = setup({
      secrets: {
        'ops/pw': { data: { username: 'admin', password: 'pw_other', server: 'home.datera:7717', tenant: '/root' } },
        'ops/user': { data: { username: 'admin2', password: 'pw_home', server: 'home.datera:7717', tenant: '/root' } },
        'ops/server': { data: { username: 'admin', password: 'pw_home', server: 'other.datera:7717', tenant: '/root' } },
        'ops/ldap': { data: { username: 'admin', password: 'pw_home', server: 'home.datera:7717', tenant: '/root', ldapServer: 'corp' } },
      },
    });
    const clients = [
      await c.forProvision({}),
      await c.forProvision({ tenant: '/root/t' }),
      await c.forProvision({ secretName: 'pw', secretNamespace: 'ops' }),
      await c.forProvision({ secretName: 'user', secretNamespace: 'ops' }),
      await c.forProvision({ secretName: 'server', secretNamespace: 'ops' }),
      await c.forProvision({ secretName: 'ldap', secretNamespace: 'ops' }),
    ].map((x) => x.client);
    expect(made).to.have.length(6);
    expect(new Set(clients).size).to.equal(6);
  });

  // close() currently closes each client twice (the cache's dispose and the explicit close); both
  // are harmless for DateraClient, so this checks only that none is left open.
  it('close() closes every client, and a closed client is not reused', async () => {
    const { c, made, closed } = setup();
    await c.forProvision({});
    await c.forProvision({ tenant: '/root/t' });
    await c.close();
    expect([...new Set(closed)].sort()).to.deep.equal([1, 2]);
    await c.forProvision({});
    expect(made).to.have.length(3);
  });

  it('a client whose close fails does not make close() fail', async () => {
    const c = new DateraConnections({
      defaults,
      defaultSecret: { name: 'datera-credentials', namespace: 'datera-system' },
      readSecret: async () => undefined,
      makeClient: () => ({ close: async () => Promise.reject(new Error('socket already gone')) }) as unknown as DateraApi,
      logger: nullLogger(),
    });
    await c.forProvision({});
    await c.close();
  });

  it('at most 64 clients are kept: the least recently used one is closed when a 65th is made', async () => {
    const { c, made, closed } = setup();
    for (let i = 0; i < 65; i++) await c.forProvision({ tenant: `/root/t${i}` });
    await new Promise((r) => setTimeout(r, 5));
    expect(made).to.have.length(65);
    expect(closed).to.deep.equal([1]);
    await c.forProvision({ tenant: '/root/t64' });
    expect(made, 'the newest is still shared').to.have.length(65);
  });
});
