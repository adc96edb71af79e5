// SPDX-License-Identifier: Apache-2.0
// The Datera simulator: the cluster's REST API (/v2.1 and /v2.2) over node:http with in-memory
// state, session keys with a lifetime, per-tenant state, schema validation, a call log, and
// fault injection (latency, 503, "still initializing", dropped connections before or after the
// operation). See lib/sim/README.md for the behaviour and the decisions taken where the real
// cluster's behaviour is unknown.
//
// The /_sim/ control endpoint has no authentication: listen on loopback or a private network only.
import { randomUUID } from 'node:crypto';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { AppInstance, AppTemplate } from '../datera/types.js';
import { type Logger, nullLogger } from '../observability/logger.js';
import { BackingStore } from './backing.js';
import { INVALID_SESSION_MESSAGE, SimError, invalid, notFound, validationFailed } from './errors.js';
import { type RouteDef, matchRoute } from './routes.js';
import { apiDescription, bodySchema } from './schemas.js';
import { loadSeedFile } from './seed.js';
import { type IscsiSession, Listing, type OpContext, ROOT_TENANT, SimState, validTenantPath } from './state.js';
import { show, validate } from './validate.js';

export interface SimUser {
  name: string;
  password: string;
  /** The user's tenant: the default when a request has no `tenant` header, and the subtree it may use. */
  tenant?: string;
}

export interface SimFaults {
  /** Added to every call. */
  latencyMs?: number;
  /** Up to this much more, uniformly. */
  latencyJitterMs?: number;
  /** 0..1: answer 503 NotConnectedError before doing anything. */
  rate503?: number;
  /** With rate503: answer 503 with an empty body, as a proxy in front of the cluster would. */
  minimal503?: boolean;
  /** 0..1: destroy the socket without answering (before doing anything). */
  dropRate?: number;
  /** 0..1: perform the operation, then destroy the socket (the "lost response" case). */
  dropAfterRate?: number;
  /** 0..1 of calls delayed by slowMs (on top of latencyMs). */
  slowRate?: number;
  slowMs?: number;
  /** 0..1: 500 "REST server is still initializing". */
  initializingRate?: number;
}

export interface SimOptions {
  /** Default [{name: 'admin', password: 'password'}]. */
  users?: SimUser[];
  /** Default 15 min, counted from login (activity does not extend it); expired keys get 401. */
  sessionTtlMs?: number;
  /** Raw capacity in GiB (volumes use size × replica_count). Creates beyond it: 400 InvalidRequestError. Default 1 PiB. */
  capacityGiB?: number;
  /** Default true: DELETE of an online app instance is refused unless force:true or it is offline. */
  requireOfflineForDelete?: boolean;
  /** App templates seeded into /root. */
  templates?: AppTemplate[];
  /** YAML or JSON seed file ({templates, ip_pools, placement_policies}); loaded by start(). */
  seedFile?: string;
  faults?: SimFaults;
  logger?: Logger;
  /** Seedable randomness for faults. Default Math.random. */
  random?: () => number;
  /** Default "iqn.2013-05.com.daterainc:tc:01:sn:"; 16 hex digits are appended per storage instance. */
  iqnPrefix?: string;
  /** The two access IPs every storage instance reports. Default ["172.28.41.9", "172.28.42.9"]. */
  accessIps?: [string, string];
  /** Page size when a collection read gives no `limit`. Default 100. */
  defaultLimit?: number;
  /** Serve the unauthenticated /_sim/ control endpoint. Default true. */
  control?: boolean;
  /** Keep at most this many calls in the log (oldest dropped first). Default 100000. */
  maxCalls?: number;
  /**
   * Keep a sparse file per volume here (created, grown and removed with the volume), so that a
   * stand-in initiator can attach volumes as loop devices; `/_sim/iscsi/login` then answers the
   * files as `luns`. Created when missing. Default: none (nothing is written anywhere).
   */
  backingDir?: string;
}

export interface SimCall {
  at: number;
  method: string;
  path: string;
  /** Route template, e.g. "/app_instances/:id"; "?" when no route matched. */
  route: string;
  /** HTTP status sent; 0 when the connection was dropped instead. */
  status: number;
  user?: string;
  tenant?: string;
  ms: number;
  /** Injected fault, if any: "503", "initializing", "drop", "dropAfter" (operation performed). */
  fault?: string;
  /** Increasing sequence number of the call. */
  seq: number;
}

const DEFAULT_TTL_MS = 15 * 60 * 1000;
const DEFAULT_CAPACITY_GIB = 1024 * 1024;
const MAX_BODY_BYTES = 1024 * 1024;
const VERSIONS = ['v2.1', 'v2.2'];
const READ_QUERY_SCHEMA = bodySchema('/app_instances', 'read');

type Json = Record<string, unknown>;

interface Session {
  user: SimUser;
  expiresAt: number;
}

interface Answer {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

/** Thrown inside request handling to drop the connection instead of answering. */
class Drop {
  constructor(readonly fault: string) {}
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function rate(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? Math.min(1, Math.max(0, v)) : 0;
}

/** Checks a faults object (from setFaults or PUT /_sim/faults); throws with the offending field. */
export function checkFaults(f: unknown): SimFaults {
  if (f === null || typeof f !== 'object' || Array.isArray(f)) throw new Error('faults must be an object');
  const rates = ['rate503', 'dropRate', 'dropAfterRate', 'slowRate', 'initializingRate'];
  const durations = ['latencyMs', 'latencyJitterMs', 'slowMs'];
  for (const [k, v] of Object.entries(f)) {
    if (rates.includes(k)) {
      if (typeof v !== 'number' || !(v >= 0 && v <= 1)) throw new Error(`${k}: ${show(v)} must be a number from 0 to 1`);
    } else if (durations.includes(k)) {
      if (typeof v !== 'number' || !(v >= 0)) throw new Error(`${k}: ${show(v)} must be a number of milliseconds >= 0`);
    } else if (k === 'minimal503') {
      if (typeof v !== 'boolean') throw new Error(`${k}: ${show(v)} must be a boolean`);
    } else {
      throw new Error(`${k}: unknown fault`);
    }
  }
  return { ...(f as SimFaults) };
}

function isLoopbackOrPrivate(host: string): boolean {
  return /^(127\.|10\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.|::1$|localhost$|fd|fc)/i.test(host);
}

export class DateraSimulator {
  private readonly users: SimUser[];
  private readonly sessionTtlMs: number;
  private readonly state: SimState;
  private readonly random: () => number;
  private readonly logger: Logger;
  private readonly defaultLimit: number;
  private readonly control: boolean;
  private readonly maxCalls: number;
  private readonly seedFile: string | undefined;
  private readonly seedTemplates: AppTemplate[];
  private seeded = false;
  private faults: SimFaults;
  private sessions = new Map<string, Session>();
  private log: SimCall[] = [];
  private seq = 0;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private baseUrl = '';
  private readonly backing: BackingStore | undefined;

  constructor(opts: SimOptions = {}) {
    this.users = (opts.users ?? [{ name: 'admin', password: 'password' }]).map((u) => ({ ...u }));
    if (this.users.length === 0) throw new Error('simulator: at least one user is required');
    for (const u of this.users) {
      if (u.tenant !== undefined && !validTenantPath(u.tenant)) throw new Error(`simulator: user ${u.name}: bad tenant ${u.tenant}`);
    }
    this.sessionTtlMs = opts.sessionTtlMs ?? DEFAULT_TTL_MS;
    this.random = opts.random ?? Math.random;
    this.logger = opts.logger ?? nullLogger();
    this.defaultLimit = opts.defaultLimit ?? 100;
    this.control = opts.control ?? true;
    this.maxCalls = opts.maxCalls ?? 100_000;
    this.faults = checkFaults(opts.faults ?? {});
    this.backing = opts.backingDir === undefined ? undefined : new BackingStore(opts.backingDir);
    this.state = new SimState({
      capacityGiB: opts.capacityGiB ?? DEFAULT_CAPACITY_GIB,
      requireOfflineForDelete: opts.requireOfflineForDelete ?? true,
      iqnPrefix: opts.iqnPrefix ?? 'iqn.2013-05.com.daterainc:tc:01:sn:',
      accessIps: opts.accessIps ?? ['172.28.41.9', '172.28.42.9'],
      backing: this.backing,
    });
    this.seedTemplates = opts.templates ?? [];
    for (const t of this.seedTemplates) this.state.seedTemplate(t);
    this.seedFile = opts.seedFile;
  }

  /** Listens (port 0 = any free port) and resolves to the base URL, e.g. "http://127.0.0.1:40123". */
  async start(port = 0, host = '127.0.0.1'): Promise<string> {
    if (this.server) throw new Error('simulator already started');
    if (this.seedFile && !this.seeded) {
      const seed = await loadSeedFile(this.seedFile);
      for (const p of seed.ip_pools ?? []) this.state.addIpPool(p);
      for (const p of seed.placement_policies ?? []) this.state.addPlacementPolicy(p);
      for (const t of seed.templates ?? []) this.state.seedTemplate(t);
      this.seeded = true;
    }
    const server = createServer((req, res) => void this.handle(req, res));
    server.keepAliveTimeout = 30_000;
    server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    const addr = server.address() as AddressInfo;
    const h = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
    this.baseUrl = `http://${h}:${addr.port}`;
    if (this.control && !isLoopbackOrPrivate(addr.address)) {
      this.logger.warn('the /_sim/ control endpoint has no authentication; listen on loopback or a private network', {
        host: addr.address,
      });
    }
    this.logger.info('datera simulator listening', { url: this.baseUrl });
    return this.baseUrl;
  }

  /** Closes the listener and every open connection. */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    await closed;
    this.baseUrl = '';
  }

  get url(): string {
    if (!this.baseUrl) throw new Error('simulator not started');
    return this.baseUrl;
  }

  /** Replaces the fault settings ({} turns every fault off). */
  setFaults(f: SimFaults): void {
    this.faults = checkFaults(f);
    this.logger.info('faults set', { faults: this.faults });
  }

  getFaults(): SimFaults {
    return { ...this.faults };
  }

  /** Every current session key becomes invalid: the next call with it gets 401. */
  expireSessions(): void {
    this.sessions.clear();
  }

  calls(): SimCall[] {
    return this.log.map((c) => ({ ...c }));
  }

  clearCalls(): void {
    this.log = [];
  }

  /** Deep copies of the app instances of one tenant (e.g. "/root"), or of all tenants when omitted. */
  appInstances(tenant?: string): AppInstance[] {
    return this.state.appInstances(tenant);
  }

  /** The absolute directory of the volumes' backing files, or undefined without SimOptions.backingDir. */
  get backingDir(): string | undefined {
    return this.backing?.dir;
  }

  /** Live iSCSI sessions (fed by POST /_sim/iscsi/login and /logout); see lib/sim/README.md. */
  iscsiSessions(): IscsiSession[] {
    return this.state.iscsiSessions();
  }

  /** Plays the target timing out every session of `initiator` (a dead node); returns how many ended. */
  dropIscsiSessions(initiator: string, target?: string): number {
    return this.state.iscsiDrop({ initiator, ...(target ? { target } : {}) }).removed;
  }

  /** Clears app instances, initiators, sessions and the call log; keeps users, templates and faults. */
  reset(): void {
    this.state.reset();
    this.sessions.clear();
    this.log = [];
  }

  // ------------------------------------------------------------------------------ HTTP

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = Date.now();
    const url = new URL(req.url ?? '/', 'http://sim');
    const method = (req.method ?? 'GET').toUpperCase();
    if (url.pathname.startsWith('/_sim/') || url.pathname === '/_sim') {
      await this.handleControl(req, res, url, method);
      return;
    }
    const call: SimCall = { at: started, method, path: url.pathname, route: '?', status: 0, ms: 0, seq: ++this.seq };
    try {
      const answer = await this.answer(req, url, method, call);
      this.send(res, answer);
      call.status = answer.status;
    } catch (err) {
      if (err instanceof Drop) {
        call.fault = err.fault;
        req.socket.destroy();
      } else {
        this.logger.error('simulator failure', { err, method, path: url.pathname });
        const body = new SimError('InternalError', 'Internal error in the simulator').body();
        this.send(res, { status: 500, body });
        call.status = 500;
      }
    }
    call.ms = Date.now() - started;
    this.record(call);
  }

  private record(call: SimCall): void {
    this.log.push(call);
    if (this.log.length > this.maxCalls) this.log.splice(0, this.log.length - this.maxCalls);
    this.logger.debug('call', { method: call.method, path: call.path, status: call.status, ms: call.ms, fault: call.fault });
  }

  private send(res: ServerResponse, a: Answer): void {
    const text = a.body === undefined ? '' : JSON.stringify(a.body);
    res.writeHead(a.status, {
      'content-type': a.body === undefined ? 'text/plain' : 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(text),
      ...a.headers,
    });
    res.end(text);
  }

  /** Decides the fault of this call (draws only for rates that are set, in a fixed order). */
  private async injectFaults(): Promise<{ dropAfter: boolean }> {
    const f = this.faults;
    const hit = (r: number | undefined): boolean => rate(r) > 0 && this.random() < rate(r);
    let delay = f.latencyMs ?? 0;
    if ((f.latencyJitterMs ?? 0) > 0) delay += this.random() * (f.latencyJitterMs ?? 0);
    if (hit(f.slowRate)) delay += f.slowMs ?? 0;
    const drop = hit(f.dropRate);
    const unavailable = !drop && hit(f.rate503);
    const initializing = !drop && !unavailable && hit(f.initializingRate);
    const dropAfter = !drop && !unavailable && !initializing && hit(f.dropAfterRate);
    if (delay > 0) await sleep(delay);
    if (drop) throw new Drop('drop');
    if (unavailable) {
      throw new Answered('503', {
        status: 503,
        body: f.minimal503
          ? undefined
          : new SimError('NotConnectedError', 'The REST server is not connected to the cluster; retry later').body(),
        headers: { 'retry-after': '1' },
      });
    }
    if (initializing) {
      throw new Answered('initializing', {
        status: 500,
        body: new SimError('InternalError', 'REST server is still initializing').body(),
      });
    }
    return { dropAfter };
  }

  private async answer(req: IncomingMessage, url: URL, method: string, call: SimCall): Promise<Answer> {
    let dropAfter = false;
    try {
      ({ dropAfter } = await this.injectFaults());
    } catch (err) {
      if (err instanceof Answered) {
        call.fault = err.fault;
        return err.answer;
      }
      throw err;
    }
    const started = call.at;
    let answer: Answer;
    try {
      answer = await this.dispatch(req, url, method, call);
    } catch (err) {
      if (!(err instanceof SimError)) throw err;
      answer = { status: err.status, body: err.body() };
    }
    if (answer.body && typeof answer.body === 'object' && 'request_time' in answer.body) {
      (answer.body as Json)['request_time'] = Date.now() - started;
    }
    if (dropAfter) throw new Drop('dropAfter');
    return answer;
  }

  private async dispatch(req: IncomingMessage, url: URL, method: string, call: SimCall): Promise<Answer> {
    const path = url.pathname;
    if (path === '/api_versions' || path === '/api_versions/') {
      call.route = '/api_versions';
      if (method !== 'GET') throw new SimError('InvalidRequestError', `${method} is not allowed on /api_versions`, { status: 405 });
      return { status: 200, body: { api_versions: [...VERSIONS] } };
    }
    const m = /^\/(v\d+(?:\.\d+)?)(\/.*)?$/.exec(path);
    if (!m) throw notFound(`Route ${path}`);
    const version = m[1]!;
    const apiPath = m[2] ?? '/';
    if (!VERSIONS.includes(version)) {
      throw new SimError('UnsupportedVersionError', `API version ${version} is not supported; use one of ${VERSIONS.join(', ')}`);
    }
    const raw = await readRaw(req);

    if (apiPath === '/login' || apiPath === '/login/') {
      call.route = '/login';
      if (method !== 'PUT') throw new SimError('InvalidRequestError', `${method} is not allowed on /login`, { status: 405 });
      return this.login(parseBody(raw, req), version, call);
    }

    const bare = apiPath.replace(/\/+$/, '') || '/';
    const special = bare === '/logout' || bare === '/api' ? bare : undefined;
    const match = special ? undefined : matchRoute(method, apiPath);
    call.route = special ?? match?.route ?? '?';

    // Authentication comes first: without a valid key nothing else about the request is revealed.
    const session = this.authenticate(req);
    call.user = session.user.name;
    const tenant = this.tenantOf(req, session.user);
    call.tenant = tenant;
    const envelope = (data: unknown, metadata?: Json): Answer => ({
      status: 200,
      body: { data, path: apiPath, tenant, version, ...(metadata ? { metadata } : {}), request_time: 0 },
    });

    if (special === '/logout') {
      if (method !== 'PUT') throw new SimError('InvalidRequestError', `${method} is not allowed on /logout`, { status: 405 });
      this.sessions.delete(String(req.headers['auth-token']));
      return envelope({});
    }
    if (special === '/api') {
      if (method !== 'GET') throw new SimError('InvalidRequestError', `${method} is not allowed on /api`, { status: 405 });
      return { status: 200, body: { ...apiDescription(version), version, request_time: 0 } };
    }
    if (!match) throw notFound(`Route ${apiPath}`);
    if (!match.def) {
      throw new SimError('InvalidRequestError', `${method} is not allowed on ${match.route}`, {
        status: 405,
        errors: [`allowed: ${match.allowed.join(', ')}`],
      });
    }
    const def = match.def;
    const ctx: OpContext = { tenant, params: match.params, body: parseBody(raw, req), query: url.searchParams };
    this.validateRequest(def, ctx, method);
    const result = def.run(this.state, ctx);
    if (result instanceof Listing) {
      const { data, metadata } = this.page(result.items, url.searchParams, version);
      return envelope(data, metadata);
    }
    return envelope(result);
  }

  private validateRequest(def: RouteDef, ctx: OpContext, method: string): void {
    if (method === 'GET') {
      if (def.schema !== 'read') return;
      const q: Json = {};
      for (const k of ['limit', 'filter', 'sort']) {
        const v = ctx.query.get(k);
        if (v === null) continue;
        q[k] = k === 'limit' && /^-?\d+$/.test(v) ? Number(v) : v;
      }
      const errors = validate(READ_QUERY_SCHEMA, q);
      const offset = ctx.query.get('offset');
      if (offset !== null && !/^\d+$/.test(offset)) errors.push(`offset: ${show(offset)} is not a non-negative integer`);
      if (errors.length) throw validationFailed(errors);
      return;
    }
    if (!def.schema) return;
    const errors = validate(bodySchema(def.route, def.schema), ctx.body);
    if (errors.length) throw validationFailed(errors);
  }

  /** Filter (`name=x`, `<attr>=x`, `match(<attr>,<regex>)`), sort (`attr` or `-attr`), limit/offset. */
  private page(items: Json[], q: URLSearchParams, version: string): { data: Json[]; metadata: Json } {
    let list = items;
    const filter = q.get('filter');
    if (filter) list = list.filter(compileFilter(filter));
    const sort = q.get('sort');
    if (sort) {
      const desc = sort.startsWith('-');
      const key = desc ? sort.slice(1) : sort;
      list = [...list].sort((a, b) => {
        const x = a[key];
        const y = b[key];
        const c = typeof x === 'number' && typeof y === 'number' ? x - y : String(x ?? '').localeCompare(String(y ?? ''));
        return desc ? -c : c;
      });
    }
    const offset = Number(q.get('offset') ?? 0);
    const limitRaw = q.get('limit');
    const limit = limitRaw === null ? this.defaultLimit : Number(limitRaw);
    const data = list.slice(offset, offset + limit);
    const metadata: Json = { total_count: list.length, request_count: data.length, limit, offset };
    if (version === 'v2.1') metadata['total'] = list.length; // what the v2.1 samples carry
    return { data, metadata };
  }

  private login(body: Json, version: string, call: SimCall): Answer {
    const name = body['name'];
    const password = body['password'];
    const user = this.users.find((u) => u.name === name && u.password === password);
    if (!user) {
      const errors = validate(bodySchema('/login', 'update'), body);
      if (errors.length) throw validationFailed(errors);
      call.user = typeof name === 'string' ? name : undefined;
      throw new SimError('AuthFailedError', 'Authentication failed: the user name or password is not valid');
    }
    const key = randomUUID();
    this.sessions.set(key, { user, expiresAt: Date.now() + this.sessionTtlMs });
    call.user = user.name;
    return { status: 200, body: { key, version, request_time: 0 } };
  }

  private authenticate(req: IncomingMessage): Session {
    const key = req.headers['auth-token'];
    const session = typeof key === 'string' ? this.sessions.get(key) : undefined;
    if (!session || session.expiresAt <= Date.now()) {
      if (session && typeof key === 'string') this.sessions.delete(key);
      throw new SimError('AuthFailedError', INVALID_SESSION_MESSAGE);
    }
    return session;
  }

  /**
   * The `tenant` header (default: the user's tenant, else /root). "root/x" is read as "/root/x".
   * Tenants are created on first use. A user bound to a tenant may use it and its sub-tenants only.
   */
  private tenantOf(req: IncomingMessage, user: SimUser): string {
    const raw = req.headers['tenant'];
    let t = (Array.isArray(raw) ? raw[0] : raw)?.trim() ?? '';
    if (t === '') t = user.tenant ?? ROOT_TENANT;
    if (!t.startsWith('/')) t = `/${t}`;
    t = t.replace(/\/+$/, '') || ROOT_TENANT;
    if (!validTenantPath(t)) throw invalid(`tenant: ${show(t)} is not a tenant path such as /root or /root/<name>`);
    if (user.tenant && t !== user.tenant && !t.startsWith(`${user.tenant}/`)) {
      throw new SimError('PermissionDeniedError', `User ${user.name} may not access tenant ${t}`);
    }
    this.state.tenant(t);
    return t;
  }

  // ------------------------------------------------------------------------------ /_sim/

  private async handleControl(req: IncomingMessage, res: ServerResponse, url: URL, method: string): Promise<void> {
    if (!this.control) {
      this.send(res, { status: 404, body: notFound(`Route ${url.pathname}`).body() });
      return;
    }
    const route = `${method} ${url.pathname.replace(/\/+$/, '')}`;
    try {
      switch (route) {
        case 'GET /_sim/state': {
          const tenants: Record<string, AppInstance[]> = {};
          for (const t of this.state.tenantPaths()) tenants[t] = this.state.appInstances(t);
          this.send(res, {
            status: 200,
            body: { tenants, sessions: this.sessions.size, calls: this.log.length, faults: this.faults, system: this.state.system() },
          });
          return;
        }
        case 'GET /_sim/calls': {
          const since = Number(url.searchParams.get('since') ?? 0);
          if (!Number.isFinite(since)) throw new Error('since must be a number of milliseconds since the epoch');
          this.send(res, { status: 200, body: { calls: this.log.filter((c) => c.at >= since) } });
          return;
        }
        case 'DELETE /_sim/calls':
          this.clearCalls();
          this.send(res, { status: 200, body: { ok: true } });
          return;
        case 'GET /_sim/faults':
          this.send(res, { status: 200, body: { faults: this.faults } });
          return;
        case 'PUT /_sim/faults': {
          const body = await readBody(req);
          this.setFaults(body as SimFaults);
          this.send(res, { status: 200, body: { faults: this.faults } });
          return;
        }
        case 'POST /_sim/expire-sessions':
          this.expireSessions();
          this.send(res, { status: 200, body: { ok: true } });
          return;
        case 'GET /_sim/iscsi/sessions':
          this.send(res, { status: 200, body: { sessions: this.state.iscsiSessions() } });
          return;
        case 'POST /_sim/iscsi/login': {
          const r = this.state.iscsiLogin(await readBody(req));
          this.send(res, { status: 200, body: r });
          return;
        }
        case 'POST /_sim/iscsi/logout':
          this.send(res, { status: 200, body: this.state.iscsiLogout(await readBody(req)) });
          return;
        case 'POST /_sim/iscsi/drop':
          this.send(res, { status: 200, body: this.state.iscsiDrop(await readBody(req)) });
          return;
        case 'POST /_sim/reset':
          this.reset();
          this.send(res, { status: 200, body: { ok: true } });
          return;
        default:
          this.send(res, { status: 404, body: { error: `unknown control route ${route}` } });
      }
    } catch (err) {
      // SimErrors keep their status (404 unknown target, 403 login refused, 422 bad field).
      const status = err instanceof SimError ? err.status : 400;
      this.send(res, { status, body: { error: (err as Error).message, ...(err instanceof SimError ? { name: err.apiName } : {}) } });
    }
  }
}

/** A fault answered instead of the operation. */
class Answered {
  constructor(
    readonly fault: string,
    readonly answer: Answer,
  ) {}
}

async function readRaw(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw invalid(`Request body is larger than ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8').trim();
}

async function readBody(req: IncomingMessage): Promise<Json> {
  return parseBody(await readRaw(req), req);
}

/** JSON, or form-urlencoded (GOSDK sends the login that way). An empty body is {}. */
function parseBody(text: string, req: IncomingMessage): Json {
  if (text === '') return {};
  const type = String(req.headers['content-type'] ?? '');
  if (type.includes('application/x-www-form-urlencoded') || (!type.includes('json') && !/^[[{]/.test(text))) {
    return Object.fromEntries(new URLSearchParams(text));
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw invalid('Request body is not valid JSON');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw validationFailed([`(body): ${show(parsed)} is not of type 'object'`]);
  }
  return parsed as Json;
}

/** RQL subset: `attr=value`, `match(attr,regex)` (anchored). Anything else is 400. */
function compileFilter(filter: string): (item: Json) => boolean {
  const eq = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(filter);
  if (eq) {
    const [, key, value] = eq as unknown as [string, string, string];
    return (item) => item[key] !== undefined && String(item[key]) === value;
  }
  const match = /^match\(([A-Za-z_][A-Za-z0-9_]*),(.*)\)$/.exec(filter);
  if (match) {
    const [, key, pattern] = match as unknown as [string, string, string];
    let re: RegExp;
    try {
      re = new RegExp(`^(?:${pattern})$`);
    } catch {
      throw invalid(`filter: ${show(pattern)} is not a valid regular expression`);
    }
    return (item) => item[key] !== undefined && re.test(String(item[key]));
  }
  throw invalid(`filter: ${show(filter)} is not supported (use <attr>=<value> or match(<attr>,<regex>))`);
}
