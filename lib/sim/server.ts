// SPDX-License-Identifier: Apache-2.0
// The Datera simulator: the cluster's REST API (/v2.1 and /v2.2) over node:http, with the call
// log and the request pipeline (faults, version, login, authentication, tenant, route, schema,
// operation, envelope). The parts live beside it: auth.ts (users, session keys, tenants),
// faults.ts, paging.ts (collection reads), control.ts (the unauthenticated /_sim/ endpoint),
// routes.ts and ops/ (the operations), state.ts (the records). See lib/sim/README.md for the
// behaviour and the decisions taken where the real cluster's behaviour is unknown.
import { type Server, type IncomingMessage, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { AppInstance, AppTemplate } from '../datera/types.js';
import { type Logger, nullLogger } from '../observability/logger.js';
import { type SimUser, Sessions, tenantOf } from './auth.js';
import { apiDescription } from './api-schema.js';
import { BackingStore } from './backing.js';
import { type ControlTarget, handleControl } from './control.js';
import { SimError, notFound, validationFailed } from './errors.js';
import { Answered, Drop, type SimFaults, checkFaults, injectFaults } from './faults.js';
import { type Answer, parseBody, readRaw, send } from './http.js';
import { type IscsiSession, iscsiDrop, iscsiSessions } from './iscsi.js';
import { type Json, Listing, type OpContext, validTenantPath } from './model.js';
import { seedTemplate } from './ops/templates.js';
import { checkReadQuery, page } from './paging.js';
import { type RouteDef, matchRoute } from './routes.js';
import { bodySchema } from './schemas.js';
import { loadSeedFile } from './seed.js';
import { SimState } from './state.js';
import { validate } from './validate.js';

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
const VERSIONS = ['v2.1', 'v2.2'];

function isLoopbackOrPrivate(host: string): boolean {
  return /^(127\.|10\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.|::1$|localhost$|fd|fc)/i.test(host);
}

export class DateraSimulator {
  private readonly state: SimState;
  private readonly sessions: Sessions;
  private readonly random: () => number;
  private readonly logger: Logger;
  private readonly defaultLimit: number;
  private readonly control: boolean;
  private readonly maxCalls: number;
  private readonly seedFile: string | undefined;
  private seeded = false;
  private faults: SimFaults;
  private log: SimCall[] = [];
  private seq = 0;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private baseUrl = '';
  private readonly backing: BackingStore | undefined;
  /** The simulator as the /_sim/ endpoint sees it. */
  private readonly controlTarget: ControlTarget;

  constructor(opts: SimOptions = {}) {
    const users = (opts.users ?? [{ name: 'admin', password: 'password' }]).map((u) => ({ ...u }));
    if (users.length === 0) throw new Error('simulator: at least one user is required');
    for (const u of users) {
      if (u.tenant !== undefined && !validTenantPath(u.tenant)) throw new Error(`simulator: user ${u.name}: bad tenant ${u.tenant}`);
    }
    this.sessions = new Sessions(users, opts.sessionTtlMs ?? DEFAULT_TTL_MS);
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
    for (const t of opts.templates ?? []) seedTemplate(this.state, t);
    this.seedFile = opts.seedFile;
    this.controlTarget = {
      state: this.state,
      sessionCount: () => this.sessions.size,
      callCount: () => this.log.length,
      calls: () => this.calls(),
      clearCalls: () => this.clearCalls(),
      getFaults: () => this.getFaults(),
      setFaults: (f) => this.setFaults(f),
      expireSessions: () => this.expireSessions(),
      reset: () => this.reset(),
    };
  }

  /** Listens (port 0 = any free port) and resolves to the base URL, e.g. "http://127.0.0.1:40123". */
  async start(port = 0, host = '127.0.0.1'): Promise<string> {
    if (this.server) throw new Error('simulator already started');
    if (this.seedFile && !this.seeded) {
      const seed = await loadSeedFile(this.seedFile);
      for (const p of seed.ip_pools ?? []) this.state.addIpPool(p);
      for (const p of seed.placement_policies ?? []) this.state.addPlacementPolicy(p);
      for (const t of seed.templates ?? []) seedTemplate(this.state, t);
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
    return iscsiSessions(this.state);
  }

  /** Plays the target timing out every session of `initiator` (a dead node); returns how many ended. */
  dropIscsiSessions(initiator: string, target?: string): number {
    return iscsiDrop(this.state, { initiator, ...(target ? { target } : {}) }).removed;
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
      if (!this.control) send(res, { status: 404, body: notFound(`Route ${url.pathname}`).body() });
      else await handleControl(this.controlTarget, req, res, url, method);
      return;
    }
    const call: SimCall = { at: started, method, path: url.pathname, route: '?', status: 0, ms: 0, seq: ++this.seq };
    try {
      const answer = await this.answer(req, url, method, call);
      send(res, answer);
      call.status = answer.status;
    } catch (err) {
      if (err instanceof Drop) {
        call.fault = err.fault;
        req.socket.destroy();
      } else {
        this.logger.error('simulator failure', { err, method, path: url.pathname });
        const body = new SimError('InternalError', 'Internal error in the simulator').body();
        send(res, { status: 500, body });
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

  private async answer(req: IncomingMessage, url: URL, method: string, call: SimCall): Promise<Answer> {
    let dropAfter: boolean;
    try {
      ({ dropAfter } = await injectFaults(this.faults, this.random));
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
      return { status: 200, body: this.sessions.login(parseBody(raw, req), version, call) };
    }

    const bare = apiPath.replace(/\/+$/, '') || '/';
    const special = bare === '/logout' || bare === '/api' ? bare : undefined;
    const match = special ? undefined : matchRoute(method, apiPath);
    call.route = special ?? match?.route ?? '?';

    // Authentication comes first: without a valid key nothing else about the request is revealed.
    const session = this.sessions.authenticate(req);
    call.user = session.user.name;
    const tenant = tenantOf(req, session.user);
    this.state.tenant(tenant); // tenants are created on first use
    call.tenant = tenant;
    const envelope = (data: unknown, metadata?: Json): Answer => ({
      status: 200,
      body: { data, path: apiPath, tenant, version, ...(metadata ? { metadata } : {}), request_time: 0 },
    });

    if (special === '/logout') {
      if (method !== 'PUT') throw new SimError('InvalidRequestError', `${method} is not allowed on /logout`, { status: 405 });
      this.sessions.logout(String(req.headers['auth-token']));
      return envelope({});
    }
    if (special === '/api') {
      if (method !== 'GET') throw new SimError('InvalidRequestError', `${method} is not allowed on /api`, { status: 405 });
      return { status: 200, body: apiDescription(version) };
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
    validateRequest(def, ctx, method);
    const result = def.run(this.state, ctx);
    if (result instanceof Listing) {
      const { data, metadata } = page(result.items, url.searchParams, version, this.defaultLimit);
      return envelope(data, metadata);
    }
    return envelope(result);
  }
}

/** 422 for a body (or a collection read's query) its route's schema rejects. */
function validateRequest(def: RouteDef, ctx: OpContext, method: string): void {
  if (method === 'GET') {
    if (def.schema === 'read') checkReadQuery(ctx.query);
    return;
  }
  if (!def.schema) return;
  const errors = validate(bodySchema(def.route, def.schema), ctx.body);
  if (errors.length) throw validationFailed(errors);
}
