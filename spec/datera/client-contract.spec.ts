// SPDX-License-Identifier: Apache-2.0
// Contract details of the Datera client that the broader specs leave open: endpoint resolution,
// argument checks, the login reply, the success range, paging edge cases, ACL idempotence,
// deadlines, aborts and the client's own dispatcher (MockAgent, fake clock, loopback servers).
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { DateraClient, type DateraClientOptions } from '../../lib/datera/client.js';
import { createDefaultDispatcher, resolveEndpoint } from '../../lib/datera/endpoint.js';
import {
  AuthError,
  ConnectionError,
  DateraError,
  InternalError,
  InvalidRequestError,
  NotFoundError,
  TimeoutError,
  UnavailableError,
  ValidationFailedError,
} from '../../lib/datera/errors.js';
import { datErr, envelope, MockDatera, ORIGIN, V, withCode } from './mock-datera.js';

const PASSWORD = 'Pa55w0rd_contract.secret';

async function rejectionOf(p: Promise<unknown>): Promise<DateraError> {
  try {
    await p;
  } catch (err) {
    expect(err).to.be.instanceOf(DateraError);
    return err as DateraError;
  }
  throw new Error('expected the call to reject');
}

const IQN = 'iqn.1993-08.org.debian:01:abc';
const ACL = '/app_instances/pvc-1/storage_instances/storage-1/acl_policy/initiators';

describe('resolveEndpoint: edge cases', () => {
  it('trims surrounding blanks', () => {
    expect(resolveEndpoint('  https://h:7718  ').origin).to.equal('https://h:7718');
  });

  it('keeps an explicit port other than 7717/7718 on a bare host:port (https)', () => {
    const r = resolveEndpoint('h:8443');
    expect(r.origin).to.equal('https://h:8443');
    expect(r.https).to.equal(true);
  });

  it('reports https false for an http endpoint', () => {
    expect(resolveEndpoint('http://h:7717').https).to.equal(false);
    expect(resolveEndpoint('h:7717').https).to.equal(false);
  });

  it('treats a bare host:port as host:port even when its path contains "://"', () => {
    const r = resolveEndpoint('h:7717/proxy/x://y');
    expect(r.origin).to.equal('http://h:7717');
  });

  it('drops repeated trailing slashes and a trailing version with a multi-digit minor, nothing in the middle', () => {
    expect(resolveEndpoint('https://h/proxy//').basePath).to.equal('/proxy');
    expect(resolveEndpoint('https://h:7718/v2.10').basePath).to.equal('');
    expect(resolveEndpoint('https://h/v2/proxy').basePath).to.equal('/v2/proxy');
    expect(resolveEndpoint('https://h/v10').basePath).to.equal('');
    expect(resolveEndpoint('https://h/p/v2').basePath).to.equal('/p');
  });

  it('names the problem and the input in its errors', () => {
    expect(() => resolveEndpoint('   ')).to.throw(InvalidRequestError, 'Datera endpoint is empty');
    expect(() => resolveEndpoint('http://[bad')).to.throw(InvalidRequestError, 'Datera endpoint is not a valid URL or host:port: http://[bad');
    expect(() => resolveEndpoint('ftp://h')).to.throw(InvalidRequestError, 'Datera endpoint must be http or https: ftp://h');
    let caught: unknown;
    try {
      resolveEndpoint('http://[bad');
    } catch (err) {
      caught = err;
    }
    expect((caught as Error).cause).to.be.instanceOf(TypeError);
  });
});

describe('DateraClient: contract details (MockAgent)', () => {
  let dat: MockDatera;
  let clock: number;
  let sleeps: number[];
  const clients: DateraClient[] = [];

  function makeClient(extra: Partial<DateraClientOptions> = {}): DateraClient {
    const c = new DateraClient({
      endpoint: ORIGIN,
      username: 'admin',
      password: PASSWORD,
      dispatcher: dat.agent,
      now: () => clock,
      sleep: async (ms) => {
        sleeps.push(ms);
        clock += ms;
      },
      random: () => 0.5,
      ...extra,
    });
    clients.push(c);
    return c;
  }

  beforeEach(() => {
    dat = new MockDatera();
    clock = 0;
    sleeps = [];
  });

  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
    await dat.close();
  });

  describe('arguments and request shape', () => {
    beforeEach(() => dat.acceptLogins());

    it('rejects an empty or non-string name with InvalidRequestError naming the parameter, sending nothing', async () => {
      const client = makeClient();
      const e1 = await rejectionOf(client.getAppInstance(''));
      expect(e1).to.be.instanceOf(InvalidRequestError);
      expect(e1.message).to.equal('app instance name or id must be a non-empty string');
      const e2 = await rejectionOf(client.getInitiator(42 as unknown as string));
      expect(e2.message).to.equal('initiator IQN must be a non-empty string');
      await rejectionOf(client.createAppInstance({} as never));
      expect(dat.seen).to.have.length(0);
    });

    it('names the offending parameter of every method in the argument error', async () => {
      const c = makeClient();
      const cases: [Promise<unknown>, string][] = [
        [c.createAppInstance(undefined as never), 'app instance name'],
        [c.setAdminState('', 'offline'), 'app instance name or id'],
        [c.deleteAppInstance(''), 'app instance name or id'],
        [c.resizeVolume('', 's', 'v', 1), 'app instance'],
        [c.resizeVolume('a', '', 'v', 1), 'storage instance'],
        [c.resizeVolume('a', 's', '', 1), 'volume'],
        [c.getMetadata(''), 'app instance'],
        [c.putMetadata('', {}), 'app instance'],
        [c.createInitiator('', 'n'), 'initiator IQN'],
        [c.addAclInitiator('a', 's', ''), 'initiator IQN'],
        [c.addAclInitiator('', 's', IQN), 'app instance'],
        [c.removeAclInitiator('a', '', IQN), 'storage instance'],
        [c.getAppTemplate(''), 'app template name'],
      ];
      for (const [p, what] of cases) {
        const err = await rejectionOf(p);
        expect(err).to.be.instanceOf(InvalidRequestError);
        expect(err.message).to.equal(`${what} must be a non-empty string`);
      }
      expect(dat.seen).to.have.length(0);
    });

    it('keeps "@" literal in path segments', async () => {
      dat.on('GET', '/initiators/iqn.2000-01.com.x:user@host', { status: 200, data: envelope({ id: 'x', name: 'n' }) });
      expect((await makeClient().getInitiator('iqn.2000-01.com.x:user@host')).name).to.equal('n');
    });

    it('uses the configured API version, with or without a leading "v"', async () => {
      dat.pool.intercept({ path: '/v2.1/login', method: 'PUT' }).reply(200, { key: 'k-21' }).times(2);
      dat.pool.intercept({ path: '/v2.1/system', method: 'GET' }).reply(200, envelope({ name: 'd21' })).times(2);
      expect((await makeClient({ apiVersion: 'v2.1' }).getSystem()).name).to.equal('d21');
      expect((await makeClient({ apiVersion: '2.1' }).getSystem()).name).to.equal('d21');
    });

    it('sends no remote_server when ldapServer is the empty string', async () => {
      dat.on('GET', '/system', { status: 200, data: envelope({ name: 'dat' }) });
      await makeClient({ ldapServer: '' }).getSystem();
      expect(dat.seen[0]?.body).to.deep.equal({ name: 'admin', password: PASSWORD });
    });

    it('sends force false by default for admin state and initiator creation, and no body for a plain delete', async () => {
      dat.on('PUT', '/app_instances/pvc-1', { status: 200, data: envelope({ name: 'pvc-1' }) });
      dat.on('POST', '/initiators', { status: 200, data: envelope({ id: IQN, name: 'n1' }) });
      dat.on('DELETE', '/app_instances/pvc-1', { status: 200, data: envelope({}) });
      const client = makeClient();
      await client.setAdminState('pvc-1', 'offline');
      await client.createInitiator(IQN, 'n1');
      await client.deleteAppInstance('pvc-1');
      expect(dat.calls().map((c) => c.body)).to.deep.equal([
        { admin_state: 'offline', force: false },
        { id: IQN, name: 'n1', force: false },
        undefined,
      ]);
    });

    it('reports the route template of every operation to the observe hook', async () => {
      const routes: string[] = [];
      dat.on('GET', () => true, { status: 200, data: envelope({ name: 'x', id: 'x' }) }, 'persist');
      dat.on('PUT', () => true, { status: 200, data: envelope({ name: 'x', id: 'x' }) }, 'persist');
      dat.on('POST', () => true, { status: 200, data: envelope({ name: 'x', id: 'x' }) }, 'persist');
      dat.on('DELETE', () => true, { status: 200, data: envelope({}) }, 'persist');
      const c = makeClient({ observe: ({ method, route }) => routes.push(`${method} ${route}`) });
      await c.createAppInstance({ name: 'pvc-1' } as never);
      await c.getAppInstance('pvc-1');
      await c.setAdminState('pvc-1', 'offline');
      await c.deleteAppInstance('pvc-1');
      await c.resizeVolume('pvc-1', 'storage-1', 'volume-1', 2);
      await c.getMetadata('pvc-1');
      await c.putMetadata('pvc-1', { a: 'b' });
      await c.createInitiator(IQN, 'n');
      await c.getInitiator(IQN);
      await c.addAclInitiator('pvc-1', 'storage-1', IQN);
      await c.removeAclInitiator('pvc-1', 'storage-1', IQN);
      await c.getAppTemplate('t');
      await c.getSystem();
      expect(routes).to.deep.equal([
        'PUT /login',
        'POST /app_instances',
        'GET /app_instances/:id',
        'PUT /app_instances/:id',
        'DELETE /app_instances/:id',
        'PUT /app_instances/:id/storage_instances/:si/volumes/:vol',
        'GET /app_instances/:id/metadata',
        'PUT /app_instances/:id/metadata',
        'POST /initiators',
        'GET /initiators/:id',
        'PUT /app_instances/:id/storage_instances/:si/acl_policy/initiators',
        'PUT /app_instances/:id/storage_instances/:si/acl_policy/initiators',
        'GET /app_templates/:id',
        'GET /system',
      ]);
      const paths = dat.calls().map((r) => `${r.method} ${r.path}`);
      expect(paths).to.include(`PUT ${V}/app_instances/pvc-1/storage_instances/storage-1/volumes/volume-1`);
      expect(paths).to.include(`PUT ${V}${ACL}`);
      for (const r of dat.calls()) expect(r.headers.accept).to.equal('application/json');
      expect(dat.calls('PUT', ACL).map((r) => r.body)).to.deep.equal([
        { op: 'add', path: `/initiators/${IQN}` },
        { op: 'remove', path: `/initiators/${IQN}` },
      ]);
    });

    it('a broken observe hook does not break the call', async () => {
      dat.on('GET', '/system', { status: 200, data: envelope({ name: 'dat' }) });
      const sys = await makeClient({
        observe: () => {
          throw new Error('metrics down');
        },
      }).getSystem();
      expect(sys.name).to.equal('dat');
    });
  });

  describe('replies', () => {
    beforeEach(() => dat.acceptLogins());

    it('metadata that is not an object reads as an empty map', async () => {
      dat.on('GET', '/app_instances/a/metadata', { status: 200, data: envelope(['x', 'y']) });
      dat.on('GET', '/app_instances/b/metadata', { status: 200, data: envelope('text') });
      dat.on('GET', '/app_instances/c/metadata', { status: 200, data: envelope(null) });
      const c = makeClient();
      expect(await c.getMetadata('a')).to.deep.equal({});
      expect(await c.getMetadata('b')).to.deep.equal({});
      expect(await c.getMetadata('c')).to.deep.equal({});
    });

    it('a metadata PUT whose reply has null data returns a copy of what was sent', async () => {
      dat.on('PUT', '/app_instances/pvc-1/metadata', { status: 200, data: envelope(null) });
      const md = { pvc: 'ns/claim' };
      const got = await makeClient().putMetadata('pvc-1', md);
      expect(got).to.deep.equal({ pvc: 'ns/claim' });
      expect(got).to.not.equal(md);
    });

    it('a metadata PUT whose reply is empty returns a copy of what was sent', async () => {
      dat.on('PUT', '/app_instances/pvc-1/metadata', { status: 200, data: '' });
      expect(await makeClient().putMetadata('pvc-1', { pvc: 'ns/claim' })).to.deep.equal({ pvc: 'ns/claim' });
    });

    it('a 3xx reply is a failure, not a success', async () => {
      dat.on('GET', '/system', { status: 300, data: envelope({ name: 'moved' }) });
      await rejectionOf(makeClient().getSystem());
    });

    it('a success reply whose body is not JSON rejects with InternalError naming the status', async () => {
      dat.pool.intercept({ path: `${V}/system`, method: 'GET' }).reply(200, 'not json at all');
      const err = await rejectionOf(makeClient().getSystem());
      expect(err).to.be.instanceOf(InternalError);
      expect(err.message).to.equal('GET /system failed: HTTP 200 with a body that is not JSON');
      expect(err.status).to.equal(200);
      expect(err.operation).to.equal('GET /system');
    });
  });

  describe('login reply', () => {
    for (const [what, body] of [
      ['an empty body', ''],
      ['an empty key', { key: '' }],
      ['a numeric key', { key: 12345 }],
    ] as const) {
      it(`rejects with AuthError naming PUT /login when the login reply has ${what}`, async () => {
        dat.pool.intercept({ path: `${V}/login`, method: 'PUT' }).reply(200, body as never);
        const err = await rejectionOf(makeClient().getSystem());
        expect(err).to.be.instanceOf(AuthError);
        expect(err.message).to.equal('PUT /login failed: the reply carried no session key');
        expect(err.operation).to.equal('PUT /login');
        expect(dat.calls()).to.have.length(0);
      });
    }
  });

  describe('paging edge cases', () => {
    beforeEach(() => dat.acceptLogins());

    it('a limit alone or an offset alone fetches one page', async () => {
      dat.on('GET', '/app_templates?limit=2', { status: 200, data: envelope([{ name: 'a' }, { name: 'b' }], { total_count: 9 }) });
      dat.on('GET', '/app_templates?offset=7', { status: 200, data: envelope([{ name: 'h' }, { name: 'i' }], { total_count: 9 }) });
      const c = makeClient();
      expect(await c.listAppTemplates({ limit: 2 })).to.deep.equal({ data: [{ name: 'a' }, { name: 'b' }], total: 9, offset: 0, limit: 2 });
      expect(await c.listAppTemplates({ offset: 7 })).to.deep.equal({ data: [{ name: 'h' }, { name: 'i' }], total: 9, offset: 7, limit: 2 });
      expect(dat.calls('GET')).to.have.length(2);
    });

    it('a single page takes offset and limit from the server when it gives them, and totals offset + items without total_count', async () => {
      dat.on('GET', '/app_templates?limit=5&offset=3', { status: 200, data: envelope([{ name: 'd' }], { offset: 4, limit: 50 }) });
      dat.on('GET', '/app_templates?limit=5&offset=3', { status: 200, data: envelope([{ name: 'd' }], { offset: '4', limit: '50' }) });
      const c = makeClient();
      expect(await c.listAppTemplates({ limit: 5, offset: 3 })).to.deep.equal({ data: [{ name: 'd' }], total: 5, offset: 4, limit: 50 });
      expect(await c.listAppTemplates({ limit: 5, offset: 3 })).to.deep.equal({ data: [{ name: 'd' }], total: 4, offset: 3, limit: 5 });
    });

    it('without total_count, follows pages until a short page and totals what it read', async () => {
      const page = (n: number, from: number) => Array.from({ length: n }, (_, i) => ({ name: `t${from + i}` }));
      dat.on('GET', '/app_templates?limit=100&offset=0', { status: 200, data: envelope(page(100, 0)) });
      dat.on('GET', '/app_templates?limit=100&offset=100', { status: 200, data: envelope(page(100, 100)) });
      dat.on('GET', '/app_templates?limit=100&offset=200', { status: 200, data: envelope(page(30, 200)) });
      const got = await makeClient().listAppTemplates();
      expect(got.data).to.have.length(230);
      expect(got.total).to.equal(230);
      expect(got.limit).to.equal(230);
      expect(dat.calls('GET')).to.have.length(3);
    });

    it('with total_count, stops once that many items are read even if the last page was full', async () => {
      const page = (from: number) => Array.from({ length: 100 }, (_, i) => ({ name: `t${from + i}` }));
      dat.on('GET', '/app_templates?limit=100&offset=0', { status: 200, data: envelope(page(0), { total_count: 200 }) });
      dat.on('GET', '/app_templates?limit=100&offset=100', { status: 200, data: envelope(page(100), { total_count: 200 }) });
      const got = await makeClient().listAppTemplates();
      expect(got.total).to.equal(200);
      expect(dat.calls('GET')).to.have.length(2);
    });
  });

  describe('ACL and initiator idempotence', () => {
    beforeEach(() => dat.acceptLogins());

    it('ACL remove counts a 400 or 422 "not present"/"does not exist" refusal as success', async () => {
      dat.on('PUT', ACL, { status: 400, data: datErr(400, 'InvalidRequestError', 'initiator is not present in the ACL') });
      dat.on('PUT', ACL, { status: 422, data: datErr(422, 'ValidationFailedError', 'initiator does not exist') });
      const c = makeClient();
      await c.removeAclInitiator('pvc-1', 'storage-1', IQN);
      await c.removeAclInitiator('pvc-1', 'storage-1', IQN);
      expect(dat.calls('PUT', ACL)).to.have.length(2);
    });

    it('ACL remove still fails on a server error whose text says "no such"', async () => {
      dat.on('PUT', ACL, { status: 500, data: datErr(500, 'DatabaseError', 'no such table') });
      const err = await rejectionOf(makeClient().removeAclInitiator('pvc-1', 'storage-1', IQN));
      expect(err).to.be.instanceOf(InternalError);
    });

    it('ACL add reports failures other than 409', async () => {
      dat.on('PUT', ACL, { status: 404, data: datErr(404, 'NotFoundError', 'storage instance missing') });
      const err = await rejectionOf(makeClient().addAclInitiator('pvc-1', 'storage-1', IQN));
      expect(err).to.be.instanceOf(NotFoundError);
    });

    it('an initiator POST that lost its response and then meets 409 reads the initiator it created', async () => {
      dat.pool.intercept({ path: `${V}/initiators`, method: 'POST' }).replyWithError(withCode('socket hang up', 'ECONNRESET'));
      dat.on('POST', '/initiators', { status: 409, data: datErr(409, 'ConflictError', 'exists') });
      dat.on('GET', `/initiators/${IQN}`, { status: 200, data: envelope({ id: IQN, name: 'created-by-lost-attempt' }) });
      const routes: string[] = [];
      const got = await makeClient({ observe: ({ route }) => routes.push(route) }).createInitiator(IQN, 'n');
      expect(got.name).to.equal('created-by-lost-attempt');
      expect(routes.slice(-1)).to.deep.equal(['/initiators/:id']);
    });

    it('an app instance POST that lost its response reads the object back on the route of one app instance', async () => {
      dat.pool.intercept({ path: `${V}/app_instances`, method: 'POST' }).replyWithError(withCode('socket hang up', 'ECONNRESET'));
      dat.on('POST', '/app_instances', { status: 409, data: datErr(409, 'ConflictError', 'exists') });
      dat.on('GET', '/app_instances/pvc-9', { status: 200, data: envelope({ name: 'pvc-9' }) });
      const routes: string[] = [];
      await makeClient({ observe: ({ route }) => routes.push(route) }).createAppInstance({ name: 'pvc-9' } as never);
      expect(routes.slice(-1)).to.deep.equal(['/app_instances/:id']);
    });

    it('initiator creation reports failures other than 409 without reading the initiator', async () => {
      dat.on('POST', '/initiators', { status: 422, data: datErr(422, 'ValidationFailedError', 'bad iqn') });
      const err = await rejectionOf(makeClient().createInitiator(IQN, 'n'));
      expect(err).to.be.instanceOf(ValidationFailedError);
      expect(dat.calls('GET')).to.have.length(0);
    });
  });

  describe('retries, deadlines and aborts', () => {
    beforeEach(() => dat.acceptLogins());

    it('does not start a retry whose backoff would end exactly at the deadline', async () => {
      // random 0.5 and base 250: the first backoff is 125 ms, the deadline is 125 ms away.
      dat.on('GET', '/system', { status: 503, data: '' });
      const err = await rejectionOf(makeClient({ deadlineMs: 125 }).getSystem());
      expect(err).to.be.instanceOf(UnavailableError);
      expect(sleeps).to.deep.equal([]);
    });

    it('an abort during the backoff wait rejects with the abort error and sends nothing more', async () => {
      dat.on('GET', '/system', { status: 503, data: '' });
      const ac = new AbortController();
      const client = new DateraClient({
        endpoint: ORIGIN,
        username: 'admin',
        password: PASSWORD,
        dispatcher: dat.agent,
        retryBaseMs: 60_000,
        retryMaxMs: 60_000,
        random: () => 0.99,
      });
      clients.push(client);
      const p = client.getSystem({ signal: ac.signal });
      setTimeout(() => ac.abort(), 50);
      const err = await rejectionOf(p);
      expect(err).to.be.instanceOf(TimeoutError);
      expect(err.message).to.equal('GET /system aborted by the caller');
      expect(err.operation).to.equal('GET /system');
      expect((err.cause as Error).name).to.equal('AbortError');
      expect(dat.calls('GET')).to.have.length(1);
    });

    it('a sleep that fails for another reason rejects the call with that error', async () => {
      dat.on('GET', '/system', { status: 503, data: '' });
      const boom = new Error('timer broke');
      const client = makeClient({ sleep: () => Promise.reject(boom) });
      const err = await client.getSystem().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).to.equal(boom);
    });

    it('an abort whose reason is a DateraError rejects with that very error', async () => {
      const reason = new UnavailableError('shutting down', { operation: 'test' });
      const err = await rejectionOf(makeClient().getSystem({ signal: AbortSignal.abort(reason) }));
      expect(err).to.equal(reason);
    });

    it('the per-request timeout is cut to what is left of the call deadline', async () => {
      dat.pool.intercept({ path: `${V}/system`, method: 'GET' }).reply(200, envelope({ name: 'slow' })).delay(3_000);
      const client = new DateraClient({
        endpoint: ORIGIN,
        username: 'admin',
        password: PASSWORD,
        dispatcher: dat.agent,
        requestTimeoutMs: 30_000,
        deadlineMs: 100,
      });
      clients.push(client);
      const err = await rejectionOf(client.getSystem());
      expect(err).to.be.instanceOf(TimeoutError);
      expect(err.message).to.equal(
        'GET /system failed: no complete response in time (request timeout 30000 ms, call deadline 100 ms)',
      );
      expect(err.operation).to.equal('GET /system');
    });

    it('a reply over the body cap is final: one request, no backoff', async () => {
      dat.on('GET', '/system', { status: 200, data: envelope({ name: 'x'.repeat(500) }) }, 'persist');
      const err = await rejectionOf(makeClient({ maxResponseBytes: 100 }).getSystem());
      expect(err.code).to.equal('DATERA_RESPONSE_TOO_LARGE');
      expect(dat.calls('GET')).to.have.length(1);
      expect(sleeps).to.deep.equal([]);
    });

    it('a transport error says its code, or "connection error" without one, with the scrubbed message', async () => {
      dat.pool.intercept({ path: `${V}/system`, method: 'GET' }).replyWithError(withCode(`weird failure near ${PASSWORD}`, 'EWEIRD'));
      dat.pool.intercept({ path: `${V}/app_templates/t`, method: 'GET' }).replyWithError(new Error('plain failure'));
      const c = makeClient();
      const e1 = await rejectionOf(c.getSystem());
      expect(e1).to.be.instanceOf(ConnectionError);
      expect(e1.message).to.equal('GET /system failed: EWEIRD: weird failure near [REDACTED]');
      expect((e1.cause as Error & { code?: string }).code).to.equal('EWEIRD');
      expect((e1.cause as Error).name).to.equal('Error');
      const e2 = await rejectionOf(c.getAppTemplate('t'));
      expect(e2.message).to.equal('GET /app_templates/t failed: connection error: plain failure');
      dat.pool.intercept({ path: `${V}/app_templates/u`, method: 'GET' }).replyWithError(withCode('', 'EWEIRD'));
      expect((await rejectionOf(c.getAppTemplate('u'))).message).to.equal('GET /app_templates/u failed: EWEIRD');
    });

    it('scrubs the last 8 session keys from echoed errors', async () => {
      dat.on('GET', '/system', { status: 200, data: envelope({ name: 'dat' }) }, 'persist');
      const c = makeClient();
      for (let i = 0; i < 9; i++) {
        dat.expireSessions();
        await c.getSystem();
      }
      expect(dat.logins).to.equal(9);
      dat.on('GET', '/app_templates/t', { status: 422, data: datErr(422, 'ValidationFailedError', 'old keys sess-2 and sess-9') });
      const err = await rejectionOf(c.getAppTemplate('t'));
      expect(err.message).to.not.contain('sess-2');
      expect(err.message).to.not.contain('sess-9');
    });
  });
});

describe('DateraClient: its own dispatcher and a shared login (loopback server)', function () {
  this.timeout(20_000);
  let server: Server;
  let url: string;
  let route: (req: IncomingMessage, res: ServerResponse) => void;
  let open: number;
  let maxOpen: number;
  const clients: DateraClient[] = [];

  before(async () => {
    server = createServer((req, res) => {
      open++;
      maxOpen = Math.max(maxOpen, open);
      res.once('close', () => open--);
      route(req, res);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  beforeEach(() => {
    open = 0;
    maxOpen = 0;
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
    server.closeAllConnections();
  });

  const json = (res: ServerResponse, body: unknown) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(body));
  };

  it('a reply whose declared Content-Length equals the cap is read; the refusal above it names the status and operation', async () => {
    const body = JSON.stringify({ data: { name: 'x'.repeat(50) }, metadata: {} });
    let big = false;
    route = (req, res) => {
      res.setHeader('content-type', 'application/json');
      if (req.url?.endsWith('/login')) return void res.end(JSON.stringify({ key: 'k1' }));
      if (big) {
        // declared above the cap, body still on its way
        res.setHeader('content-length', String(10 * Buffer.byteLength(body)));
        res.write('{"data":');
        return;
      }
      res.setHeader('content-length', String(Buffer.byteLength(body)));
      res.end(body);
    };
    const c = new DateraClient({ endpoint: url, username: 'admin', password: PASSWORD, maxResponseBytes: Buffer.byteLength(body) });
    clients.push(c);
    expect((await c.getSystem()).name).to.equal('x'.repeat(50));
    big = true;
    const err = await rejectionOf(c.getSystem());
    expect(err.code).to.equal('DATERA_RESPONSE_TOO_LARGE');
    expect(err.status).to.equal(200);
    expect(err.operation).to.equal('GET /system');
  });

  it('close() closes the dispatcher the client created: later calls fail and reach nothing', async () => {
    let hits = 0;
    route = (req, res) => {
      hits++;
      json(res, req.url?.endsWith('/login') ? { key: 'k1' } : envelope({ name: 'dat' }));
    };
    const c = new DateraClient({ endpoint: url, username: 'admin', password: PASSWORD, retryBaseMs: 1, deadlineMs: 2_000 });
    clients.push(c);
    await c.getSystem();
    expect(hits).to.equal(2);
    await c.close();
    await c.close();
    await rejectionOf(c.getSystem());
    expect(hits).to.equal(2);
  });

  it('close() leaves an injected dispatcher open for its owner', async () => {
    route = (req, res) => json(res, req.url?.endsWith('/login') ? { key: 'k1' } : envelope({ name: 'dat' }));
    const agent = createDefaultDispatcher({}, false);
    try {
      const c = new DateraClient({ endpoint: url, username: 'admin', password: PASSWORD, dispatcher: agent });
      await c.getSystem();
      await c.close();
      const res = await agent.request({ origin: url, path: '/v2.2/system', method: 'GET' });
      expect(res.statusCode).to.equal(200);
      await res.body.text();
    } finally {
      await agent.close();
    }
  });

  it('the default dispatcher opens at most `connections` connections to the endpoint', async () => {
    const held: ServerResponse[] = [];
    route = (_req, res) => {
      held.push(res);
      if (held.length === 1) setTimeout(() => held.forEach((r) => json(r, envelope({}))), 300);
      else json(res, envelope({}));
    };
    const agent = createDefaultDispatcher({ connections: 1 }, false);
    try {
      await Promise.all(
        [1, 2, 3].map(async () => {
          const res = await agent.request({ origin: url, path: '/x', method: 'GET' });
          await res.body.text();
        }),
      );
      expect(maxOpen).to.equal(1);
    } finally {
      await agent.close();
    }
  });

  it('the default dispatcher gives up on headers after requestTimeoutMs', async () => {
    route = () => undefined; // never answers
    const agent = createDefaultDispatcher({ requestTimeoutMs: 200 }, false);
    try {
      const outcome = await Promise.race([
        agent.request({ origin: url, path: '/x', method: 'GET' }).then(
          () => 'answered',
          (e: Error & { code?: string }) => e.code,
        ),
        new Promise((r) => setTimeout(() => r('still waiting'), 5_000)),
      ]);
      expect(outcome).to.equal('UND_ERR_HEADERS_TIMEOUT');
    } finally {
      await agent.close();
    }
  });

  it('a caller that aborts while the shared login is in flight is rejected at once; the login goes on for the others', async () => {
    let releaseLogin: () => void = () => undefined;
    let logins = 0;
    route = (req, res) => {
      if (req.url?.endsWith('/login')) {
        logins++;
        releaseLogin = () => json(res, { key: 'k-shared' });
        return;
      }
      json(res, envelope({ name: 'dat' }));
    };
    const c = new DateraClient({ endpoint: url, username: 'admin', password: PASSWORD, deadlineMs: 10_000 });
    clients.push(c);
    const ac = new AbortController();
    const other = c.getSystem();
    const aborted = c.getSystem({ signal: ac.signal }).then(
      () => 'resolved',
      (e: Error) => e,
    );
    await new Promise((r) => setTimeout(r, 50));
    ac.abort();
    const outcome = await Promise.race([aborted, new Promise((r) => setTimeout(() => r('still waiting'), 3_000))]);
    expect(outcome).to.be.instanceOf(TimeoutError);
    expect((outcome as Error).message).to.equal('GET /system aborted by the caller');
    releaseLogin();
    expect((await other).name).to.equal('dat');
    expect(logins).to.equal(1);
  });
});
