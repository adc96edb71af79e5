// SPDX-License-Identifier: Apache-2.0
// Unit specs of the Datera REST client against an undici MockAgent (no network, no real time:
// backoff sleeps are injected and the deadline runs on a fake clock).
import { Writable } from 'node:stream';
import { expect } from 'chai';
import winston from 'winston';
import { DateraClient, type DateraClientOptions, DEFAULT_DRIVER_ID } from '../../lib/datera/client.js';
import { resolveEndpoint } from '../../lib/datera/endpoint.js';
import {
  AuthError,
  ConflictError,
  ConnectionError,
  DateraError,
  InternalError,
  InvalidRequestError,
  NotFoundError,
  TimeoutError,
  UnavailableError,
  ValidationFailedError,
} from '../../lib/datera/errors.js';
import { createLogger } from '../../lib/observability/logger.js';
import { datErr, envelope, MockDatera, ORIGIN, V, withCode } from './mock-datera.js';

const PASSWORD = 'Pa55w0rd_very.secret';

async function rejectionOf(p: Promise<unknown>): Promise<DateraError> {
  try {
    await p;
  } catch (err) {
    expect(err).to.be.instanceOf(DateraError);
    return err as DateraError;
  }
  throw new Error('expected the call to reject');
}

/** A winston logger at debug level whose formatted lines land in `lines`. */
function capturingLogger(): { logger: winston.Logger; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString('utf8'));
      done();
    },
  });
  const logger = createLogger({ level: 'debug', transports: [new winston.transports.Stream({ stream })] });
  return { logger, lines };
}

const ai = (name: string) => ({
  path: `/app_instances/${name}`,
  id: `id-${name}`,
  name,
  tenant: '/root',
  create_mode: 'kubernetes',
  admin_state: 'online',
  health: 'ok',
  app_template: { path: '' },
  storage_instances: [],
});

describe('DateraClient', () => {
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

  describe('login and headers', () => {
    it('logs in lazily with name/password and sends Auth-Token, tenant, Datera-Driver and Content-Type', async () => {
      dat.acceptLogins();
      dat.on('GET', '/app_instances/pvc-1', { status: 200, data: envelope(ai('pvc-1')) });
      const client = makeClient();
      expect(dat.logins).to.equal(0);

      const got = await client.getAppInstance('pvc-1');

      expect(got.name).to.equal('pvc-1');
      expect(dat.logins).to.equal(1);
      const [login, get] = dat.seen;
      expect(login?.method).to.equal('PUT');
      expect(login?.path).to.equal(`${V}/login`);
      expect(login?.body).to.deep.equal({ name: 'admin', password: PASSWORD });
      expect(login?.headers).to.not.have.property('auth-token');
      expect(login?.headers).to.not.have.property('tenant');
      expect(login?.headers['datera-driver']).to.equal(DEFAULT_DRIVER_ID);
      expect(get?.headers['auth-token']).to.equal('sess-1');
      expect(get?.headers.tenant).to.equal('/root');
      expect(get?.headers['datera-driver']).to.match(/^datera-k8s-provisioner-/);
      expect(get?.headers['content-type']).to.equal('application/json');
    });

    it('sends remote_server for LDAP, the configured tenant and driver id, and reuses the session', async () => {
      dat.acceptLogins();
      dat.on('GET', '/system', { status: 200, data: envelope({ name: 'dat', sw_version: '3.3.5' }) }, 2);
      const client = makeClient({ ldapServer: 'corp-ldap', tenant: '/root/team-a', driverId: 'drv-x' });

      await client.getSystem();
      await client.getSystem();

      expect(dat.logins).to.equal(1);
      expect(dat.seen[0]?.body).to.deep.equal({ name: 'admin', password: PASSWORD, remote_server: 'corp-ldap' });
      for (const r of dat.calls()) {
        expect(r.headers.tenant).to.equal('/root/team-a');
        expect(r.headers['datera-driver']).to.equal('drv-x');
      }
    });

    it('rejects with AuthError, without retrying, when login itself answers 401', async () => {
      dat.pool.intercept({ path: `${V}/login`, method: 'PUT' }).reply(401, datErr(401, 'AuthFailedError', 'bad credentials'));
      const client = makeClient();

      const err = await rejectionOf(client.getSystem());

      expect(err).to.be.instanceOf(AuthError);
      expect(err.code).to.equal('DATERA_AUTH');
      expect(err.operation).to.equal('PUT /login');
      expect(sleeps).to.deep.equal([]);
    });

    it('retries a login that meets 503', async () => {
      dat.pool.intercept({ path: `${V}/login`, method: 'PUT' }).reply(503, '');
      dat.acceptLogins();
      dat.on('GET', '/system', { status: 200, data: envelope({ name: 'dat' }) });
      const client = makeClient();

      await client.getSystem();

      expect(sleeps).to.have.length(1);
      expect(dat.logins).to.equal(1);
    });

    it('rejects with AuthError when a login reply carries no key', async () => {
      dat.pool.intercept({ path: `${V}/login`, method: 'PUT' }).reply(200, { version: 'v2.2' });
      const err = await rejectionOf(makeClient().getSystem());
      expect(err).to.be.instanceOf(AuthError);
    });
  });

  describe('envelope', () => {
    beforeEach(() => dat.acceptLogins());

    it('returns `data` of the envelope', async () => {
      dat.on('GET', '/system', {
        status: 200,
        data: { ...envelope({ name: 'dat-1', uuid: 'u-1', sw_version: '3.3.5', total_capacity: 100 }), request_time: 5 },
      });
      const sys = await makeClient().getSystem();
      expect(sys).to.deep.equal({ name: 'dat-1', uuid: 'u-1', sw_version: '3.3.5', total_capacity: 100 });
    });

    it('URL-encodes names but keeps the colons of IQNs', async () => {
      dat.on('GET', '/app_instances/a%20b%2Fc', { status: 200, data: envelope(ai('a b/c')) });
      dat.on('GET', '/initiators/iqn.1993-08.org.debian:01:abc', {
        status: 200,
        data: envelope({ path: '/initiators/iqn.1993-08.org.debian:01:abc', id: 'iqn.1993-08.org.debian:01:abc', name: 'n1' }),
      });
      const client = makeClient();
      expect((await client.getAppInstance('a b/c')).name).to.equal('a b/c');
      expect((await client.getInitiator('iqn.1993-08.org.debian:01:abc')).name).to.equal('n1');
    });

    it('stringifies typed metadata values on read', async () => {
      dat.on('GET', '/app_instances/pvc-1/metadata', {
        status: 200,
        data: envelope({ size: 16, formatted: true, fs_type: 'ext4', nested: { a: 1 }, gone: null }),
      });
      const md = await makeClient().getMetadata('pvc-1');
      expect(md).to.deep.equal({ size: '16', formatted: 'true', fs_type: 'ext4', nested: '{"a":1}', gone: '' });
    });

    it('PUTs metadata as a flat object and returns the resulting map', async () => {
      dat.on('PUT', '/app_instances/pvc-1/metadata', (req) => ({ status: 200, data: envelope({ ...(req.body as object), old: 1 }) }));
      const md = await makeClient().putMetadata('pvc-1', { pvc: 'ns/claim' });
      expect(dat.calls('PUT')[0]?.body).to.deep.equal({ pvc: 'ns/claim' });
      expect(md).to.deep.equal({ pvc: 'ns/claim', old: '1' });
    });

    it('sends the documented bodies for admin state, delete with force and resize', async () => {
      dat.on('PUT', '/app_instances/pvc-1', { status: 200, data: envelope(ai('pvc-1')) });
      dat.on('DELETE', '/app_instances/pvc-1', { status: 200, data: envelope(ai('pvc-1')) });
      dat.on('DELETE', '/app_instances/pvc-2', { status: 200, data: envelope(ai('pvc-2')) });
      dat.on('PUT', '/app_instances/pvc-1/storage_instances/storage-1/volumes/volume-1', {
        status: 200,
        data: envelope({ name: 'volume-1', size: 20, path: '/p', uuid: 'u', op_state: 'available' }),
      });
      const client = makeClient();

      await client.setAdminState('pvc-1', 'offline', true);
      await client.deleteAppInstance('pvc-1', true);
      await client.deleteAppInstance('pvc-2');
      const vol = await client.resizeVolume('pvc-1', 'storage-1', 'volume-1', 20);

      const calls = dat.calls();
      expect(calls.map((c) => [c.method, c.body])).to.deep.equal([
        ['PUT', { admin_state: 'offline', force: true }],
        ['DELETE', { force: true }],
        ['DELETE', undefined],
        ['PUT', { size: 20 }],
      ]);
      expect(vol.size).to.equal(20);
    });

    it('maps 404 to NotFoundError with the Datera message and the operation', async () => {
      dat.on('GET', '/app_instances/nope', {
        status: 404,
        data: datErr(404, 'NotFoundError', 'App instance nope does not exist'),
      });
      const err = await rejectionOf(makeClient().getAppInstance('nope'));
      expect(err).to.be.instanceOf(NotFoundError);
      expect(err.code).to.equal('DATERA_NOT_FOUND');
      expect(err.status).to.equal(404);
      expect(err.apiName).to.equal('NotFoundError');
      expect(err.operation).to.equal('GET /app_instances/nope');
      expect(err.message).to.contain('App instance nope does not exist');
      expect(sleeps).to.deep.equal([]);
    });

    it('maps by Datera name before HTTP status, and other 5xx to InternalError without retrying', async () => {
      dat.on('GET', '/app_templates/t1', { status: 400, data: datErr(400, 'ValidationFailedError', 'odd') });
      dat.on('GET', '/app_templates/t2', { status: 403, data: { message: 'forbidden' } });
      dat.on('GET', '/app_templates/t3', { status: 500, data: datErr(500, 'DatabaseError', 'db down') });
      const client = makeClient();
      expect(await rejectionOf(client.getAppTemplate('t1'))).to.be.instanceOf(ValidationFailedError);
      expect(await rejectionOf(client.getAppTemplate('t2'))).to.be.instanceOf(InvalidRequestError);
      expect(await rejectionOf(client.getAppTemplate('t3'))).to.be.instanceOf(InternalError);
      expect(sleeps).to.deep.equal([]);
    });

    it('calls the observe hook once per exchange with the route template', async () => {
      const seen: { method: string; route: string; status: number | 'error' }[] = [];
      dat.on('GET', '/app_instances/pvc-1', { status: 503, data: '' });
      dat.on('GET', '/app_instances/pvc-1', { status: 200, data: envelope(ai('pvc-1')) });
      const client = makeClient({ observe: ({ method, route, status }) => seen.push({ method, route, status }) });
      await client.getAppInstance('pvc-1');
      expect(seen).to.deep.equal([
        { method: 'PUT', route: '/login', status: 200 },
        { method: 'GET', route: '/app_instances/:id', status: 503 },
        { method: 'GET', route: '/app_instances/:id', status: 200 },
      ]);
    });
  });

  describe('paging', () => {
    beforeEach(() => dat.acceptLogins());

    it('fetches every page (limit 100) following total_count when no limit/offset is given', async () => {
      const all = Array.from({ length: 250 }, (_, i) => ai(`pvc-${i}`));
      dat.on(
        'GET',
        (p) => p.startsWith(`${V}/app_instances?`),
        (req) => {
          const q = new URL(req.path, ORIGIN).searchParams;
          const limit = Number(q.get('limit'));
          const offset = Number(q.get('offset'));
          const data = all.slice(offset, offset + limit);
          return { status: 200, data: envelope(data, { total_count: all.length, limit, offset, request_count: data.length }) };
        },
        'persist',
      );

      const page = await makeClient().listAppInstances({ filter: 'match(name,pvc-.*)' });

      expect(page.data).to.have.length(250);
      expect(page.data[249]?.name).to.equal('pvc-249');
      expect(page.total).to.equal(250);
      const queries = dat.calls('GET').map((r) => Object.fromEntries(new URL(r.path, ORIGIN).searchParams));
      expect(queries).to.deep.equal([
        { limit: '100', offset: '0', filter: 'match(name,pvc-.*)' },
        { limit: '100', offset: '100', filter: 'match(name,pvc-.*)' },
        { limit: '100', offset: '200', filter: 'match(name,pvc-.*)' },
      ]);
    });

    it('returns one page when limit or offset is given', async () => {
      dat.on('GET', '/app_templates?limit=2&offset=4', {
        status: 200,
        data: envelope([{ name: 't4' }, { name: 't5' }], { total_count: 9, limit: 2, offset: 4, request_count: 2 }),
      });
      const page = await makeClient().listAppTemplates({ limit: 2, offset: 4 });
      expect(page).to.deep.equal({ data: [{ name: 't4' }, { name: 't5' }], total: 9, offset: 4, limit: 2 });
      expect(dat.calls('GET')).to.have.length(1);
    });

    it('stops on an empty page even if total_count promised more', async () => {
      dat.on('GET', '/app_templates?limit=100&offset=0', { status: 200, data: envelope([{ name: 't' }], { total_count: 5 }) });
      dat.on('GET', '/app_templates?limit=100&offset=1', { status: 200, data: envelope([], { total_count: 5 }) });
      const page = await makeClient().listAppTemplates();
      expect(page.data).to.have.length(1);
    });
  });

  describe('session renewal', () => {
    beforeEach(() => dat.acceptLogins());

    it('logs in again once after a 401 and resends the request', async () => {
      // three GETs reach the server: the first, the one refused with 401, the resend
      dat.on('GET', '/system', { status: 200, data: envelope({ name: 'dat' }) }, 3);
      const client = makeClient();
      await client.getSystem();
      dat.expireSessions();

      const sys = await client.getSystem();

      expect(sys.name).to.equal('dat');
      expect(dat.logins).to.equal(2);
      expect(dat.calls('GET').map((r) => r.headers['auth-token'])).to.deep.equal(['sess-1', 'sess-1', 'sess-2']);
      expect(sleeps).to.deep.equal([]);
    });

    it('a burst of 10 concurrent calls on an expired session triggers exactly one login', async () => {
      dat.on('GET', (p) => p.startsWith(`${V}/app_instances/`), (req) => ({ status: 200, data: envelope(ai(req.path.split('/').pop()!)) }), 'persist');
      const client = makeClient();
      await client.getAppInstance('warm-up');
      expect(dat.logins).to.equal(1);
      dat.expireSessions();

      const got = await Promise.all(Array.from({ length: 10 }, (_, i) => client.getAppInstance(`pvc-${i}`)));

      expect(got.map((g) => g.name)).to.deep.equal(Array.from({ length: 10 }, (_, i) => `pvc-${i}`));
      expect(dat.logins).to.equal(2);
      const resent = dat.calls('GET').filter((r) => r.headers['auth-token'] === 'sess-2');
      expect(resent).to.have.length(10);
    });

    it('10 concurrent first calls share one lazy login', async () => {
      dat.on('GET', '/system', { status: 200, data: envelope({ name: 'dat' }) }, 10);
      const client = makeClient();
      await Promise.all(Array.from({ length: 10 }, () => client.getSystem()));
      expect(dat.logins).to.equal(1);
    });

    it('rejects with AuthError when the resend after a fresh login is refused again', async () => {
      dat.pool
        .intercept({ path: `${V}/system`, method: 'GET' })
        .reply(401, datErr(401, 'AuthFailedError', 'no'))
        .times(2);
      const client = makeClient();
      const err = await rejectionOf(client.getSystem());
      expect(err).to.be.instanceOf(AuthError);
      expect(dat.logins).to.equal(2);
    });
  });

  describe('retries', () => {
    beforeEach(() => dat.acceptLogins());

    it('retries 503 with capped exponential backoff and full jitter, then succeeds', async () => {
      dat.on('GET', '/system', { status: 503, data: { http: 503 } }, 3);
      dat.on('GET', '/system', { status: 200, data: envelope({ name: 'dat' }) });
      const client = makeClient({ retryBaseMs: 100, retryMaxMs: 300, random: () => 0.5 });

      const sys = await client.getSystem();

      expect(sys.name).to.equal('dat');
      expect(dat.calls('GET')).to.have.length(4);
      // ceilings 100, 200, 300 (capped), each halved by the jitter draw
      expect(sleeps).to.deep.equal([50, 100, 150]);
    });

    it('retries 500 "REST server is still initializing" like a 503', async () => {
      dat.on('GET', '/system', { status: 500, data: datErr(500, 'InternalError', 'REST server is still initializing') });
      dat.on('GET', '/system', { status: 200, data: envelope({ name: 'dat' }) });
      await makeClient().getSystem();
      expect(dat.calls('GET')).to.have.length(2);
      expect(sleeps).to.have.length(1);
    });

    it('rejects with UnavailableError (the last error) once the deadline passes', async () => {
      dat.on('GET', '/system', { status: 503, data: '' }, 'persist');
      const err = await rejectionOf(makeClient({ deadlineMs: 2_000, retryBaseMs: 250, retryMaxMs: 1_000 }).getSystem());
      expect(err).to.be.instanceOf(UnavailableError);
      expect(err.retryable).to.equal(true);
      expect(clock).to.be.lessThan(2_000);
      expect(sleeps.length).to.be.greaterThan(2);
    });

    it('does not retry 422 and maps it to ValidationFailedError with details', async () => {
      dat.on('POST', '/app_instances', {
        status: 422,
        data: datErr(422, 'ValidationFailedError', 'Data failed validation', [
          'storage_instances.0.volumes.0.size: 0 is less than the minimum of 1',
        ]),
      });
      const err = await rejectionOf(makeClient().createAppInstance({ name: 'pvc-1' }));
      expect(err).to.be.instanceOf(ValidationFailedError);
      expect(err.code).to.equal('DATERA_VALIDATION_FAILED');
      expect(err.details).to.deep.equal(['storage_instances.0.volumes.0.size: 0 is less than the minimum of 1']);
      expect(err.operation).to.equal('POST /app_instances');
      expect(err.message).to.contain('Data failed validation');
      expect(dat.calls('POST')).to.have.length(1);
      expect(sleeps).to.deep.equal([]);
    });

    it('a POST that lost its response and then meets 409 resolves to the existing object', async () => {
      dat.pool.intercept({ path: `${V}/app_instances`, method: 'POST' }).replyWithError(withCode('socket hang up', 'ECONNRESET'));
      dat.on('POST', '/app_instances', { status: 409, data: datErr(409, 'ConflictError', 'App instance pvc-1 already exists') });
      dat.on('GET', '/app_instances/pvc-1', { status: 200, data: envelope(ai('pvc-1')) });

      const got = await makeClient().createAppInstance({ name: 'pvc-1', create_mode: 'kubernetes' });

      expect(got.name).to.equal('pvc-1');
      expect(dat.calls('GET', '/app_instances/pvc-1')).to.have.length(1);
    });

    it('a POST that timed out is resent, and a 409 then resolves to the existing object', async () => {
      dat.pool
        .intercept({ path: `${V}/app_instances`, method: 'POST' })
        .reply(200, envelope(ai('late')))
        .delay(500);
      dat.on('POST', '/app_instances', { status: 409, data: datErr(409, 'ConflictError', 'exists') });
      dat.on('GET', '/app_instances/pvc-1', { status: 200, data: envelope(ai('pvc-1')) });

      const got = await makeClient({ requestTimeoutMs: 20 }).createAppInstance({ name: 'pvc-1' });

      expect(got.name).to.equal('pvc-1');
    });

    it('a clean 409 on the first POST rejects with ConflictError', async () => {
      dat.on('POST', '/app_instances', { status: 409, data: datErr(409, 'ConflictError', 'App instance pvc-1 already exists') });
      const err = await rejectionOf(makeClient().createAppInstance({ name: 'pvc-1' }));
      expect(err).to.be.instanceOf(ConflictError);
      expect(err.code).to.equal('DATERA_CONFLICT');
      expect(err.message).to.contain('already exists');
      expect(dat.calls('GET')).to.have.length(0);
    });

    it('a refused connection on create is retried, and a 409 after it is still a conflict (nothing was sent)', async () => {
      dat.pool.intercept({ path: `${V}/app_instances`, method: 'POST' }).replyWithError(withCode('connect ECONNREFUSED', 'ECONNREFUSED'));
      dat.on('POST', '/app_instances', { status: 409, data: datErr(409, 'ConflictError', 'exists') });
      const err = await rejectionOf(makeClient().createAppInstance({ name: 'pvc-1' }));
      expect(err).to.be.instanceOf(ConflictError);
      expect(sleeps).to.have.length(1);
    });

    it('connection refused until past the deadline rejects with ConnectionError', async () => {
      dat.pool.intercept({ path: `${V}/system`, method: 'GET' }).replyWithError(withCode('connect ECONNREFUSED 10.0.0.5:7718', 'ECONNREFUSED')).persist();
      const client = makeClient({ deadlineMs: 5_000, retryBaseMs: 250, retryMaxMs: 1_000, random: () => 0.99 });

      const err = await rejectionOf(client.getSystem());

      expect(err).to.be.instanceOf(ConnectionError);
      expect(err.code).to.equal('DATERA_CONNECTION');
      expect(err.message).to.contain('ECONNREFUSED');
      expect(sleeps.length).to.be.greaterThan(3);
      expect(Math.max(...sleeps)).to.be.at.most(1_000);
    });

    it('a per-request timeout is retried for GET', async () => {
      dat.pool
        .intercept({ path: `${V}/system`, method: 'GET' })
        .reply(200, envelope({ name: 'slow' }))
        .delay(500);
      dat.on('GET', '/system', { status: 200, data: envelope({ name: 'fast' }) });
      const statuses: (number | 'error')[] = [];
      const client = makeClient({ requestTimeoutMs: 20, observe: (o) => o.route === '/system' && statuses.push(o.status) });

      const sys = await client.getSystem();

      expect(sys.name).to.equal('fast');
      expect(statuses).to.deep.equal(['error', 200]);
    });

    it('per-request timeouts until the deadline reject with TimeoutError', async () => {
      dat.pool
        .intercept({ path: `${V}/system`, method: 'GET' })
        .reply(200, envelope({ name: 'slow' }))
        .delay(500)
        .times(2);
      const client = makeClient({ requestTimeoutMs: 10, deadlineMs: 300, retryBaseMs: 200, retryMaxMs: 200, random: () => 0.99 });
      const err = await rejectionOf(client.getSystem());
      expect(err).to.be.instanceOf(TimeoutError);
      expect(err.code).to.equal('DATERA_TIMEOUT');
    });

    it('a reset on an idempotent PUT is retried', async () => {
      dat.pool
        .intercept({ path: `${V}/app_instances/pvc-1`, method: 'PUT' })
        .replyWithError(withCode('other side closed', 'UND_ERR_SOCKET'));
      dat.on('PUT', '/app_instances/pvc-1', { status: 200, data: envelope(ai('pvc-1')) });
      const got = await makeClient().setAdminState('pvc-1', 'online');
      expect(got.name).to.equal('pvc-1');
      expect(sleeps).to.have.length(1);
    });

    it('an unknown transport failure is final', async () => {
      dat.pool
        .intercept({ path: `${V}/system`, method: 'GET' })
        .replyWithError(withCode('self-signed certificate', 'DEPTH_ZERO_SELF_SIGNED_CERT'));
      const err = await rejectionOf(makeClient().getSystem());
      expect(err).to.be.instanceOf(ConnectionError);
      expect(sleeps).to.deep.equal([]);
    });
  });

  describe('initiators and ACL', () => {
    const IQN = 'iqn.1993-08.org.debian:01:node-a';
    beforeEach(() => dat.acceptLogins());

    it('creates an initiator with id, name and force', async () => {
      dat.on('POST', '/initiators', (req) => ({ status: 200, data: envelope({ path: `/initiators/${IQN}`, ...(req.body as object) }) }));
      const ini = await makeClient().createInitiator(IQN, 'node-a', true);
      expect(dat.calls('POST')[0]?.body).to.deep.equal({ id: IQN, name: 'node-a', force: true });
      expect(ini.id).to.equal(IQN);
    });

    it('an initiator 409 resolves to the existing initiator', async () => {
      dat.on('POST', '/initiators', { status: 409, data: datErr(409, 'ConflictError', 'initiator exists') });
      dat.on('GET', `/initiators/${IQN}`, {
        status: 200,
        data: envelope({ path: `/initiators/${IQN}`, id: IQN, name: 'older', tenant: '/root' }),
      });
      const ini = await makeClient().createInitiator(IQN, 'node-a');
      expect(ini.name).to.equal('older');
    });

    it('ACL add sends op "add" with the initiator path; 409 (already a member) is success', async () => {
      dat.on('PUT', '/app_instances/pvc-1/storage_instances/storage-1/acl_policy/initiators', {
        status: 409,
        data: datErr(409, 'ConflictError', 'already in acl'),
      });
      await makeClient().addAclInitiator('pvc-1', 'storage-1', IQN);
      expect(dat.calls('PUT')[0]?.body).to.deep.equal({ op: 'add', path: `/initiators/${IQN}` });
    });

    it('ACL remove sends op "remove"; 404 (not a member) is success', async () => {
      dat.on('PUT', '/app_instances/pvc-1/storage_instances/storage-1/acl_policy/initiators', {
        status: 404,
        data: datErr(404, 'NotFoundError', 'not found'),
      });
      await makeClient().removeAclInitiator('pvc-1', 'storage-1', IQN);
      expect(dat.calls('PUT')[0]?.body).to.deep.equal({ op: 'remove', path: `/initiators/${IQN}` });
    });

    it('ACL remove still reports other failures', async () => {
      dat.on('PUT', '/app_instances/pvc-1/storage_instances/storage-1/acl_policy/initiators', {
        status: 422,
        data: datErr(422, 'ValidationFailedError', 'op must be add or remove'),
      });
      const err = await rejectionOf(makeClient().removeAclInitiator('pvc-1', 'storage-1', IQN));
      expect(err).to.be.instanceOf(ValidationFailedError);
    });
  });

  describe('cancellation', () => {
    beforeEach(() => dat.acceptLogins());

    it('an already aborted signal rejects without sending anything', async () => {
      const err = await rejectionOf(makeClient().getSystem({ signal: AbortSignal.abort() }));
      expect(err).to.be.instanceOf(TimeoutError);
      expect(dat.seen).to.have.length(0);
    });

    it('aborting during a slow request rejects at once and does not retry', async () => {
      dat.pool
        .intercept({ path: `${V}/system`, method: 'GET' })
        .reply(200, envelope({ name: 'slow' }))
        .delay(5_000);
      const ac = new AbortController();
      const client = makeClient();
      await client.getSystem({ signal: AbortSignal.abort() }).catch(() => undefined);
      const p = client.getSystem({ signal: ac.signal });
      setTimeout(() => ac.abort(), 10);
      const err = await rejectionOf(p);
      expect(err).to.be.instanceOf(TimeoutError);
      expect(err.message).to.contain('aborted');
      expect(sleeps).to.deep.equal([]);
    });
  });

  describe('secrets', () => {
    beforeEach(() => dat.acceptLogins());

    it('errors and log lines never contain the password, the session key or CHAP secrets', async () => {
      const { logger, lines } = capturingLogger();
      dat.on('GET', '/system', { status: 200, data: envelope({ name: 'dat' }) });
      // A server that echoes what it was sent, secrets included.
      dat.on('POST', '/app_instances', (req) => ({
        status: 422,
        data: datErr(422, 'ValidationFailedError', `bad request from ${req.headers['auth-token']} with ${PASSWORD}`, [
          `auth.target_pswd: value chap-secret-123 is too long`,
        ]),
      }));
      const client = makeClient({ logger });
      await client.getSystem();

      const err = await rejectionOf(
        client.createAppInstance({
          name: 'pvc-1',
          storage_instances: [{ name: 'storage-1', auth: { type: 'chap', target_user_name: 'u', target_pswd: 'chap-secret-123' } }],
        }),
      );
      // An unmatched mock request: undici's message quotes every request header.
      const err2 = await rejectionOf(client.getAppInstance('no-mock-for-this'));
      logger.error('call failed', { err });
      logger.error('call failed', { err: err2 });

      expect(err).to.be.instanceOf(ValidationFailedError);
      expect(err2).to.be.instanceOf(ConnectionError);
      const texts = [
        err.message,
        JSON.stringify(err),
        String(err.stack),
        err2.message,
        JSON.stringify(err2),
        String((err2.cause as Error).message),
        ...lines,
      ];
      expect(lines.some((l) => l.includes('datera request'))).to.equal(true);
      for (const t of texts) {
        expect(t).to.not.contain(PASSWORD);
        expect(t).to.not.contain('sess-1');
        expect(t).to.not.contain('chap-secret-123');
      }
      expect(err.message).to.contain('[REDACTED]');
    });

    it('insecureSkipTlsVerify logs one warning per client', async () => {
      const { logger, lines } = capturingLogger();
      dat.on('GET', '/system', { status: 200, data: envelope({ name: 'dat' }) }, 2);
      const client = makeClient({ logger, insecureSkipTlsVerify: true });
      await client.getSystem();
      await client.getSystem();
      const warnings = lines.filter((l) => JSON.parse(l).level === 'warn');
      expect(warnings).to.have.length(1);
      expect(warnings[0]).to.contain('insecureSkipTlsVerify');

      const { logger: quiet, lines: none } = capturingLogger();
      makeClient({ logger: quiet });
      expect(none.filter((l) => JSON.parse(l).level === 'warn')).to.have.length(0);
    });
  });
});

describe('resolveEndpoint', () => {
  const cases: [string, string, string][] = [
    ['https://10.0.0.5:7718', 'https://10.0.0.5:7718', ''],
    ['http://127.0.0.1:7717/', 'http://127.0.0.1:7717', ''],
    ['10.0.0.5:7717', 'http://10.0.0.5:7717', ''],
    ['10.0.0.5:7718', 'https://10.0.0.5:7718', ''],
    ['datera.example', 'https://datera.example:7718', ''],
    ['https://h:7718/v2.2', 'https://h:7718', ''],
    ['https://h/proxy/datera/', 'https://h', '/proxy/datera'],
  ];
  for (const [input, origin, basePath] of cases) {
    it(`${input} -> ${origin}${basePath}`, () => {
      const r = resolveEndpoint(input);
      expect(r.origin).to.equal(origin);
      expect(r.basePath).to.equal(basePath);
    });
  }

  it('rejects garbage', () => {
    expect(() => resolveEndpoint('')).to.throw(InvalidRequestError);
    expect(() => resolveEndpoint('ftp://h')).to.throw(InvalidRequestError);
  });
});
