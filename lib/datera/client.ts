// SPDX-License-Identifier: Apache-2.0
// The production Datera REST client (API v2.2) over an injectable undici Dispatcher.
//
// Contract, for every public method:
// - resolves with the unwrapped `data`, or rejects with a DateraError subclass (errors.ts);
// - logs in lazily, and after a 401 logs in again once (single-flight across concurrent calls)
//   and resends once;
// - retries 503, 500 "still initializing", refused connections, and (for idempotent calls and
//   the create POSTs) broken connections and per-request timeouts, with capped exponential
//   backoff and full jitter, until the call's overall deadline; then rejects with the last error;
// - never puts the password, the session key, CHAP secrets or request bodies into errors or logs.
import { readFileSync } from 'node:fs';
import { Agent, type Dispatcher } from 'undici';
import {
  type Envelope,
  errorFromReply,
  itemsOf,
  parseBody,
  scrubSecrets,
  secretValues,
  totalOf,
  unwrapEnvelope,
} from './envelope.js';
import {
  AuthError,
  ConflictError,
  ConnectionError,
  DateraError,
  InternalError,
  InvalidRequestError,
  NotFoundError,
  ResponseTooLargeError,
  TimeoutError,
  UnavailableError,
  ValidationFailedError,
} from './errors.js';
import { backoffDelay, classifyTransportError, type Delivery, sleep as defaultSleep, transportCode } from './retry.js';
import type {
  AdminState,
  AppInstance,
  AppInstanceCreate,
  AppTemplate,
  CallOptions,
  DateraApi,
  Initiator,
  ListOptions,
  Page,
  SystemInfo,
  Volume,
} from './types.js';
import { type Logger, nullLogger } from '../observability/logger.js';

export interface DateraClientOptions {
  /** Base URL without version, e.g. "https://10.0.0.5:7718"; also "host:port" (http for 7717, https otherwise). */
  endpoint: string;
  username: string;
  password: string;
  /** LDAP server name, sent as `remote_server` on login. */
  ldapServer?: string;
  /** Sent as the `tenant` header on every call but login. Default "/root". */
  tenant?: string;
  /** Default "2.2", giving paths /v2.2/... */
  apiVersion?: string;
  /** Injected dispatcher (tests pass a MockAgent); the client then never closes it. */
  dispatcher?: Dispatcher;
  /** Max connections per endpoint for the default dispatcher. Default 16. */
  connections?: number;
  /** Per request, headers and body together. Default 30000. */
  requestTimeoutMs?: number;
  /** Overall deadline of one call including login, retries and paging. Default 120000. */
  deadlineMs?: number;
  /**
   * Largest reply body read, in bytes (DEFAULT_MAX_RESPONSE_BYTES). Past it the client stops
   * reading, closes the connection and rejects with ResponseTooLargeError.
   */
  maxResponseBytes?: number;
  /** Ceiling of the first backoff wait. Default 250. */
  retryBaseMs?: number;
  /** Ceiling of every backoff wait. Default 10000. */
  retryMaxMs?: number;
  /** PEM bundle to verify the endpoint against instead of the default CAs. */
  caBundle?: string;
  /** Explicit opt-out of TLS verification; logs one warning per client. */
  insecureSkipTlsVerify?: boolean;
  /** `Datera-Driver` header. Default "datera-k8s-provisioner-<version>". */
  driverId?: string;
  logger?: Logger;
  /** Metrics hook, called once per HTTP exchange (login included). `route` is a template. */
  observe?: (o: { method: string; route: string; status: number | 'error'; seconds: number }) => void;
  /** Backoff sleep; injectable for tests. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Jitter source in [0, 1). Default Math.random. */
  random?: () => number;
  /** Monotonic clock in ms that the deadline is measured on; injectable for tests. Default performance.now. */
  now?: () => number;
}

/** Version of this package, for the default `Datera-Driver` header. */
export const PROVISIONER_VERSION = packageVersion();
export const DEFAULT_DRIVER_ID = `datera-k8s-provisioner-${PROVISIONER_VERSION}`;

/** Page size used when a list call fetches every page. */
export const LIST_PAGE_SIZE = 100;

/**
 * Default cap on one reply body: 16 MiB. The largest replies are list pages of LIST_PAGE_SIZE app
 * instances; a fully populated app instance (storage instance, volume, ACL, snapshot policies) is
 * a few KiB, so a page is around 1 MiB and this leaves an order of magnitude to spare.
 */
export const DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024;

const DEFAULTS = {
  tenant: '/root',
  apiVersion: '2.2',
  connections: 16,
  requestTimeoutMs: 30_000,
  deadlineMs: 120_000,
  retryBaseMs: 250,
  retryMaxMs: 10_000,
} as const;

/** Stop following pages after this many, whatever total_count says (a server ignoring offset). */
const MAX_PAGES = 10_000;

type Method = 'GET' | 'PUT' | 'POST' | 'DELETE';

/** One logical call; the retry loop may send it several times. */
interface Call {
  method: Method;
  /** Below the version prefix, segments already encoded: "/app_instances/pvc-1". */
  path: string;
  /** Template for metrics and logs: "/app_instances/:id". */
  route: string;
  query?: Record<string, string | number | undefined>;
  body?: unknown;
  signal?: AbortSignal;
  /** Absolute deadline on the client's clock; shared by the pages of a list and by 409 lookups. */
  deadline?: number;
  /**
   * For create POSTs: where the object lives once created. A POST whose response was lost
   * (reset, timeout) is resent, and a 409 on the resend means the lost attempt created the
   * object: it is then read from here and returned.
   */
  createdAt?: { path: string; route: string };
  /** Login: no session key, no tenant header, and a 401 is final. */
  anonymous?: boolean;
}

type Attempt =
  | { kind: 'reply'; status: number; body: unknown }
  | { kind: 'failed'; delivery: Delivery | 'aborted'; error: DateraError };

/** Resolved base URL: origin for the dispatcher plus an optional path prefix. */
export interface ResolvedEndpoint {
  origin: string;
  basePath: string;
  https: boolean;
}

/**
 * Accepts "https://h:7718", "http://h:7717/", or a bare "h:port" / "h" (http on 7717, https
 * otherwise, 7718 when no port). A trailing "/vX.Y" is dropped: the version comes from apiVersion.
 */
export function resolveEndpoint(endpoint: string): ResolvedEndpoint {
  const raw = endpoint.trim();
  if (raw === '') throw new InvalidRequestError('Datera endpoint is empty');
  let url: URL;
  try {
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(raw)) {
      url = new URL(raw);
    } else {
      const probe = new URL(`http://${raw}`);
      const scheme = probe.port === '7717' ? 'http' : 'https';
      url = new URL(`${scheme}://${raw}`);
      if (url.port === '' && scheme === 'https') url.port = '7718';
    }
  } catch (err) {
    throw new InvalidRequestError(`Datera endpoint is not a valid URL or host:port: ${raw}`, { cause: err });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new InvalidRequestError(`Datera endpoint must be http or https: ${raw}`);
  }
  const basePath = url.pathname.replace(/\/+$/, '').replace(/\/v\d+(\.\d+)?$/, '');
  return { origin: url.origin, basePath, https: url.protocol === 'https:' };
}

/**
 * The dispatcher the client uses when none is injected: one keep-alive Agent, at most
 * `connections` sockets per endpoint, TLS verified unless explicitly disabled.
 */
export function createDefaultDispatcher(
  opts: Pick<DateraClientOptions, 'connections' | 'caBundle' | 'insecureSkipTlsVerify' | 'requestTimeoutMs'>,
  https: boolean,
): Agent {
  const timeout = opts.requestTimeoutMs ?? DEFAULTS.requestTimeoutMs;
  return new Agent({
    connections: opts.connections ?? DEFAULTS.connections,
    keepAliveTimeout: 30_000,
    keepAliveMaxTimeout: 300_000,
    // The client runs its own timer over headers and body; these are a backstop.
    headersTimeout: timeout,
    bodyTimeout: timeout,
    ...(https
      ? {
          connect: {
            rejectUnauthorized: opts.insecureSkipTlsVerify !== true,
            ...(opts.caBundle !== undefined ? { ca: opts.caBundle } : {}),
          },
        }
      : {}),
  });
}

/** Encodes one path segment; ':' and '@' stay literal (valid in paths, and IQNs are full of ':'). */
function segment(value: string, what: string): string {
  if (typeof value !== 'string' || value === '') throw new InvalidRequestError(`${what} must be a non-empty string`);
  return encodeURIComponent(value).replace(/%3A/gi, ':').replace(/%40/gi, '@');
}

function stringifyValue(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v === null || v === undefined) return '';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

function stringMap(data: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (data !== null && typeof data === 'object' && !Array.isArray(data)) {
    for (const [k, v] of Object.entries(data as Record<string, unknown>)) out[k] = stringifyValue(v);
  }
  return out;
}

/** Removal of an ACL member that is not there: some servers say so with a 400/422 message. */
const NOT_PRESENT = /\bnot (present|found|a member)\b|\bdoes not exist\b|\bno such\b/i;

export class DateraClient implements DateraApi {
  private readonly endpoint: ResolvedEndpoint;
  private readonly versionPrefix: string;
  private readonly dispatcher: Dispatcher;
  private readonly ownsDispatcher: boolean;
  private readonly username: string;
  private readonly password: string;
  private readonly ldapServer: string | undefined;
  private readonly tenant: string;
  private readonly driverId: string;
  private readonly requestTimeoutMs: number;
  private readonly deadlineMs: number;
  private readonly maxResponseBytes: number;
  private readonly backoff: { baseMs: number; maxMs: number; random: () => number };
  private readonly log: Logger;
  private readonly observeHook: DateraClientOptions['observe'];
  private readonly sleepFn: (ms: number, signal?: AbortSignal) => Promise<void>;
  private readonly now: () => number;

  /** Current session key; undefined before the first login and while a new one is fetched. */
  private sessionKey: string | undefined;
  /** Keys this client has held, to scrub from anything the server or undici echo back. */
  private readonly issuedKeys: string[] = [];
  /** The one login in progress, shared by every call that needs a session. */
  private loginInFlight: Promise<string> | undefined;
  private closed = false;

  constructor(opts: DateraClientOptions) {
    this.endpoint = resolveEndpoint(opts.endpoint);
    this.versionPrefix = `${this.endpoint.basePath}/v${(opts.apiVersion ?? DEFAULTS.apiVersion).replace(/^v/i, '')}`;
    this.username = opts.username;
    this.password = opts.password;
    this.ldapServer = opts.ldapServer === '' ? undefined : opts.ldapServer;
    this.tenant = opts.tenant ?? DEFAULTS.tenant;
    this.driverId = opts.driverId ?? DEFAULT_DRIVER_ID;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? DEFAULTS.requestTimeoutMs;
    this.deadlineMs = opts.deadlineMs ?? DEFAULTS.deadlineMs;
    this.maxResponseBytes = opts.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
    this.backoff = {
      baseMs: opts.retryBaseMs ?? DEFAULTS.retryBaseMs,
      maxMs: opts.retryMaxMs ?? DEFAULTS.retryMaxMs,
      random: opts.random ?? Math.random,
    };
    this.log = opts.logger ?? nullLogger();
    this.observeHook = opts.observe;
    this.sleepFn = opts.sleep ?? defaultSleep;
    this.now = opts.now ?? (() => performance.now());
    if (opts.insecureSkipTlsVerify === true) {
      this.log.warn('TLS certificate verification of the Datera endpoint is disabled (insecureSkipTlsVerify)', {
        endpoint: this.endpoint.origin,
      });
    }
    if (opts.dispatcher !== undefined) {
      this.dispatcher = opts.dispatcher;
      this.ownsDispatcher = false;
    } else {
      this.dispatcher = createDefaultDispatcher(opts, this.endpoint.https);
      this.ownsDispatcher = true;
    }
  }

  /** Closes the dispatcher the client created (an injected one belongs to the caller). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.ownsDispatcher) await this.dispatcher.close();
  }

  // ---------------------------------------------------------------- app instances

  /**
   * POST /app_instances. A clean 409 on the first attempt rejects with ConflictError (the
   * caller decides whether the existing object is theirs); a 409 after a lost response
   * resolves to the object that lost attempt created.
   */
  async createAppInstance(body: AppInstanceCreate, opts: CallOptions = {}): Promise<AppInstance> {
    const name = segment(body?.name, 'app instance name');
    const env = await this.call({
      method: 'POST',
      path: '/app_instances',
      route: '/app_instances',
      body,
      signal: opts.signal,
      createdAt: { path: `/app_instances/${name}`, route: '/app_instances/:id' },
    });
    return env.data as AppInstance;
  }

  async getAppInstance(nameOrId: string, opts: CallOptions = {}): Promise<AppInstance> {
    const env = await this.call({
      method: 'GET',
      path: `/app_instances/${segment(nameOrId, 'app instance name or id')}`,
      route: '/app_instances/:id',
      signal: opts.signal,
    });
    return env.data as AppInstance;
  }

  listAppInstances(opts: ListOptions = {}): Promise<Page<AppInstance>> {
    return this.list<AppInstance>('/app_instances', opts);
  }

  async setAdminState(nameOrId: string, state: AdminState, force = false, opts: CallOptions = {}): Promise<AppInstance> {
    const env = await this.call({
      method: 'PUT',
      path: `/app_instances/${segment(nameOrId, 'app instance name or id')}`,
      route: '/app_instances/:id',
      body: { admin_state: state, force },
      signal: opts.signal,
    });
    return env.data as AppInstance;
  }

  async deleteAppInstance(nameOrId: string, force = false, opts: CallOptions = {}): Promise<void> {
    await this.call({
      method: 'DELETE',
      path: `/app_instances/${segment(nameOrId, 'app instance name or id')}`,
      route: '/app_instances/:id',
      ...(force ? { body: { force: true } } : {}),
      signal: opts.signal,
    });
  }

  async resizeVolume(ai: string, si: string, vol: string, sizeGiB: number, opts: CallOptions = {}): Promise<Volume> {
    const env = await this.call({
      method: 'PUT',
      path:
        `/app_instances/${segment(ai, 'app instance')}/storage_instances/${segment(si, 'storage instance')}` +
        `/volumes/${segment(vol, 'volume')}`,
      route: '/app_instances/:id/storage_instances/:si/volumes/:vol',
      body: { size: sizeGiB },
      signal: opts.signal,
    });
    return env.data as Volume;
  }

  /** Metadata values come back as strings even when the server typed them (booleans, numbers). */
  async getMetadata(ai: string, opts: CallOptions = {}): Promise<Record<string, string>> {
    const env = await this.call({
      method: 'GET',
      path: `/app_instances/${segment(ai, 'app instance')}/metadata`,
      route: '/app_instances/:id/metadata',
      signal: opts.signal,
    });
    return stringMap(env.data);
  }

  async putMetadata(ai: string, md: Record<string, string>, opts: CallOptions = {}): Promise<Record<string, string>> {
    const env = await this.call({
      method: 'PUT',
      path: `/app_instances/${segment(ai, 'app instance')}/metadata`,
      route: '/app_instances/:id/metadata',
      body: md,
      signal: opts.signal,
    });
    return env.data === undefined || env.data === null ? { ...md } : stringMap(env.data);
  }

  // ---------------------------------------------------------------- initiators and ACL

  /** POST /initiators; an initiator that exists already (409) resolves to the existing one. */
  async createInitiator(iqn: string, name: string, force = false, opts: CallOptions = {}): Promise<Initiator> {
    const id = segment(iqn, 'initiator IQN');
    try {
      const env = await this.call({
        method: 'POST',
        path: '/initiators',
        route: '/initiators',
        body: { id: iqn, name, force },
        signal: opts.signal,
        createdAt: { path: `/initiators/${id}`, route: '/initiators/:id' },
      });
      return env.data as Initiator;
    } catch (err) {
      if (!(err instanceof ConflictError)) throw err;
      return this.getInitiator(iqn, opts);
    }
  }

  async getInitiator(iqn: string, opts: CallOptions = {}): Promise<Initiator> {
    const env = await this.call({
      method: 'GET',
      path: `/initiators/${segment(iqn, 'initiator IQN')}`,
      route: '/initiators/:id',
      signal: opts.signal,
    });
    return env.data as Initiator;
  }

  /** Adds the initiator to the SI's ACL; already a member (409) counts as success. */
  async addAclInitiator(ai: string, si: string, iqn: string, opts: CallOptions = {}): Promise<void> {
    try {
      await this.aclOp('add', ai, si, iqn, opts);
    } catch (err) {
      if (!(err instanceof ConflictError)) throw err;
    }
  }

  /** Removes the initiator from the SI's ACL; not a member (404, or a "not present" refusal) counts as success. */
  async removeAclInitiator(ai: string, si: string, iqn: string, opts: CallOptions = {}): Promise<void> {
    try {
      await this.aclOp('remove', ai, si, iqn, opts);
    } catch (err) {
      if (err instanceof NotFoundError) return;
      if ((err instanceof InvalidRequestError || err instanceof ValidationFailedError) && NOT_PRESENT.test(err.message)) {
        return;
      }
      throw err;
    }
  }

  private async aclOp(op: 'add' | 'remove', ai: string, si: string, iqn: string, opts: CallOptions): Promise<void> {
    segment(iqn, 'initiator IQN');
    await this.call({
      method: 'PUT',
      path: `/app_instances/${segment(ai, 'app instance')}/storage_instances/${segment(si, 'storage instance')}/acl_policy/initiators`,
      route: '/app_instances/:id/storage_instances/:si/acl_policy/initiators',
      body: { op, path: `/initiators/${iqn}` },
      signal: opts.signal,
    });
  }

  // ---------------------------------------------------------------- templates and system

  listAppTemplates(opts: ListOptions = {}): Promise<Page<AppTemplate>> {
    return this.list<AppTemplate>('/app_templates', opts);
  }

  async getAppTemplate(name: string, opts: CallOptions = {}): Promise<AppTemplate> {
    const env = await this.call({
      method: 'GET',
      path: `/app_templates/${segment(name, 'app template name')}`,
      route: '/app_templates/:id',
      signal: opts.signal,
    });
    return env.data as AppTemplate;
  }

  async getSystem(opts: CallOptions = {}): Promise<SystemInfo> {
    const env = await this.call({ method: 'GET', path: '/system', route: '/system', signal: opts.signal });
    return env.data as SystemInfo;
  }

  // ---------------------------------------------------------------- collections

  /**
   * One page when the caller gave limit or offset; otherwise every page (LIST_PAGE_SIZE at a
   * time, following total_count) under one deadline.
   */
  private async list<T>(collection: string, opts: ListOptions): Promise<Page<T>> {
    const deadline = this.now() + this.deadlineMs;
    const fetchPage = (limit: number | undefined, offset: number | undefined) =>
      this.call({
        method: 'GET',
        path: collection,
        route: collection,
        query: { limit, offset, filter: opts.filter },
        signal: opts.signal,
        deadline,
      });

    if (opts.limit !== undefined || opts.offset !== undefined) {
      const env = await fetchPage(opts.limit, opts.offset);
      const data = itemsOf<T>(env.data);
      const offset = typeof env.metadata.offset === 'number' ? env.metadata.offset : (opts.offset ?? 0);
      const limit = typeof env.metadata.limit === 'number' ? env.metadata.limit : (opts.limit ?? data.length);
      return { data, total: totalOf(env.metadata) ?? offset + data.length, offset, limit };
    }

    const all: T[] = [];
    let total: number | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      const env = await fetchPage(LIST_PAGE_SIZE, all.length);
      const data = itemsOf<T>(env.data);
      all.push(...data);
      total = totalOf(env.metadata);
      if (data.length === 0) break;
      if (total !== undefined ? all.length >= total : data.length < LIST_PAGE_SIZE) break;
    }
    return { data: all, total: total ?? all.length, offset: 0, limit: all.length };
  }

  // ---------------------------------------------------------------- session

  /** The session key to use now, logging in (once, shared) when there is none. */
  private currentKey(signal: AbortSignal | undefined, operation: string): Promise<string> {
    if (this.sessionKey !== undefined) return Promise.resolve(this.sessionKey);
    return this.joinLogin(signal, operation);
  }

  /**
   * Called after `failedKey` met a 401. If another call already replaced that key, use the new
   * one; otherwise start (or join) the single login.
   */
  private renewSession(failedKey: string, signal: AbortSignal | undefined, operation: string): Promise<string> {
    if (this.sessionKey !== undefined && this.sessionKey !== failedKey) return Promise.resolve(this.sessionKey);
    this.sessionKey = undefined;
    return this.joinLogin(signal, operation);
  }

  private joinLogin(signal: AbortSignal | undefined, operation: string): Promise<string> {
    if (this.loginInFlight === undefined) {
      const attempt = this.login().then(
        (key) => {
          this.sessionKey = key;
          this.issuedKeys.push(key);
          if (this.issuedKeys.length > 8) this.issuedKeys.shift();
          return key;
        },
      );
      const shared = attempt.finally(() => {
        if (this.loginInFlight === shared) this.loginInFlight = undefined;
      });
      shared.catch(() => undefined); // waiters that gave up must not leave an unhandled rejection
      this.loginInFlight = shared;
    }
    // The login is shared: one caller's abort must not cancel it for the others.
    return raceAbort(this.loginInFlight, signal, () => this.abortError(operation, signal));
  }

  /** PUT /login. Its reply is a bare `{key, version}`. Runs under its own deadline and no caller signal. */
  private async login(): Promise<string> {
    this.log.debug('datera login', { endpoint: this.endpoint.origin, tenant: this.tenant });
    const env = await this.call({
      method: 'PUT',
      path: '/login',
      route: '/login',
      body: {
        name: this.username,
        password: this.password,
        ...(this.ldapServer !== undefined ? { remote_server: this.ldapServer } : {}),
      },
      anonymous: true,
    });
    const key = (env.data as { key?: unknown } | undefined)?.key;
    if (typeof key !== 'string' || key === '') {
      throw new AuthError('PUT /login failed: the reply carried no session key', { operation: 'PUT /login' });
    }
    return key;
  }

  // ---------------------------------------------------------------- the retry loop

  private async call(call: Call): Promise<Envelope> {
    const operation = `${call.method} ${call.path}`;
    const deadline = call.deadline ?? this.now() + this.deadlineMs;
    // A create POST is safe to resend: a duplicate meets 409, which resolves to the object.
    const resendable = call.method !== 'POST' || call.createdAt !== undefined;
    let retries = 0;
    let renewed = false;
    let lostResponse = false;

    for (;;) {
      if (call.signal?.aborted) throw this.abortError(operation, call.signal);
      const key = call.anonymous ? undefined : await this.currentKey(call.signal, operation);
      const attempt = await this.attempt(call, key, deadline, operation);

      let failure: DateraError;
      if (attempt.kind === 'reply') {
        const { status, body } = attempt;
        if (status >= 200 && status < 300) {
          return call.anonymous ? { data: body, metadata: {} } : this.successEnvelope(body, operation, status);
        }
        if (status === 401 && key !== undefined && !renewed) {
          renewed = true;
          this.log.debug('datera session rejected; logging in again', { method: call.method, route: call.route });
          await this.renewSession(key, call.signal, operation);
          continue;
        }
        failure = errorFromReply(status, body, operation, (s) => this.scrub(s, call.body));
        if (failure instanceof ConflictError && lostResponse && call.createdAt !== undefined) {
          this.log.debug('datera create met 409 after a lost response; reading the existing object', {
            method: call.method,
            route: call.route,
          });
          return this.call({
            method: 'GET',
            path: call.createdAt.path,
            route: call.createdAt.route,
            signal: call.signal,
            deadline,
          });
        }
        if (!(failure instanceof UnavailableError)) throw failure;
      } else {
        failure = attempt.error;
        if (attempt.delivery === 'aborted' || attempt.delivery === 'final') throw failure;
        if (attempt.delivery === 'maybe-sent') {
          if (!resendable) throw failure;
          if (call.method === 'POST') lostResponse = true;
        }
      }

      retries++;
      const delay = backoffDelay(retries, this.backoff);
      if (this.now() + delay >= deadline) throw failure;
      this.log.debug('datera retry', {
        method: call.method,
        route: call.route,
        retry: retries,
        delayMs: delay,
        reason: failure.status ?? failure.code,
      });
      try {
        await this.sleepFn(delay, call.signal);
      } catch (err) {
        if (call.signal?.aborted) throw this.abortError(operation, call.signal);
        throw err;
      }
    }
  }

  private successEnvelope(body: unknown, operation: string, status: number): Envelope {
    if (typeof body === 'string') {
      throw new InternalError(`${operation} failed: HTTP ${status} with a body that is not JSON`, {
        status,
        operation,
      });
    }
    return unwrapEnvelope(body);
  }

  /** One HTTP exchange under the per-request timer (capped by what is left of the deadline). */
  private async attempt(call: Call, key: string | undefined, deadline: number, operation: string): Promise<Attempt> {
    const timeoutMs = Math.max(1, Math.min(this.requestTimeoutMs, deadline - this.now()));
    const timer = new AbortController();
    const handle = setTimeout(() => timer.abort(), timeoutMs);
    const signal = call.signal ? AbortSignal.any([call.signal, timer.signal]) : timer.signal;
    const started = performance.now();
    let status: number | 'error' = 'error';
    try {
      const res = await this.dispatcher.request({
        origin: this.endpoint.origin,
        path: this.urlPath(call),
        method: call.method,
        headers: this.headers(key, call.anonymous === true),
        ...(call.body !== undefined ? { body: JSON.stringify(call.body) } : {}),
        // Keep the connection after a DELETE with a body ({"force": true}); undici would close it
        // (see lib/kube/rest.ts). Datera reads DELETE bodies; Content-Length is sent.
        reset: false,
        signal,
      });
      const text = await this.readBody(res, operation);
      status = res.statusCode;
      return { kind: 'reply', status, body: parseBody(text) };
    } catch (err) {
      if (err instanceof ResponseTooLargeError) return { kind: 'failed', delivery: 'final', error: err };
      if (call.signal?.aborted) return { kind: 'failed', delivery: 'aborted', error: this.abortError(operation, call.signal) };
      if (timer.signal.aborted) {
        // The message names the settings, not this attempt's share of the deadline: repeats of the
        // same failure must read the same so that events about it fold into one.
        this.log.debug('datera request timed out', { method: call.method, route: call.route, timeoutMs: Math.round(timeoutMs) });
        return {
          kind: 'failed',
          delivery: 'maybe-sent',
          error: new TimeoutError(
            `${operation} failed: no complete response in time (request timeout ${this.requestTimeoutMs} ms, call deadline ${this.deadlineMs} ms)`,
            { operation },
          ),
        };
      }
      return { kind: 'failed', delivery: classifyTransportError(err), error: this.transportError(err, operation, call.body) };
    } finally {
      clearTimeout(handle);
      const seconds = (performance.now() - started) / 1000;
      this.log.debug('datera request', { method: call.method, route: call.route, status, seconds });
      if (this.observeHook) {
        try {
          this.observeHook({ method: call.method, route: call.route, status, seconds });
        } catch {
          // a broken metrics hook must not break storage calls
        }
      }
    }
  }

  /**
   * The reply body as text, at most `maxResponseBytes` of it. A declared Content-Length over the
   * cap is refused before reading; otherwise reading stops at the first chunk past the cap. In
   * both cases the body stream is destroyed, which closes the connection (no drain of the rest).
   */
  private async readBody(res: Dispatcher.ResponseData, operation: string): Promise<string> {
    const max = this.maxResponseBytes;
    const tooLarge = (): ResponseTooLargeError => {
      // Destroying a body undici has fully received makes it emit an AbortError; with no
      // listener that error would be uncaught and end the process. The call fails below anyway.
      res.body.on('error', () => undefined);
      res.body.destroy();
      return new ResponseTooLargeError(
        `${operation} failed: the reply body is larger than ${max} bytes (the Datera client's maxResponseBytes); the connection was closed`,
        { status: res.statusCode, operation },
      );
    };
    const declared = Number(res.headers['content-length']);
    if (Number.isFinite(declared) && declared > max) throw tooLarge();
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res.body) {
      const buf = chunk as Buffer;
      size += buf.length;
      if (size > max) throw tooLarge();
      chunks.push(buf);
    }
    return Buffer.concat(chunks, size).toString('utf8');
  }

  private urlPath(call: Call): string {
    let path = `${this.versionPrefix}${call.path}`;
    if (call.query) {
      const qs = new URLSearchParams();
      for (const [k, v] of Object.entries(call.query)) if (v !== undefined) qs.set(k, String(v));
      const s = qs.toString();
      if (s !== '') path += `?${s}`;
    }
    return path;
  }

  private headers(key: string | undefined, anonymous: boolean): Record<string, string> {
    const h: Record<string, string> = {
      'Content-Type': 'application/json',
      Accept: 'application/json',
      'Datera-Driver': this.driverId,
    };
    if (!anonymous) {
      if (key !== undefined) h['Auth-Token'] = key;
      h.tenant = this.tenant;
    }
    return h;
  }

  /** A ConnectionError whose message and cause carry the error code and a scrubbed message only. */
  private transportError(err: unknown, operation: string, body: unknown): ConnectionError {
    const code = transportCode(err);
    const raw = err instanceof Error ? err.message : String(err);
    const detail = this.scrub(raw, body);
    const cause = Object.assign(new Error(detail), { name: err instanceof Error ? err.name : 'Error', code });
    return new ConnectionError(`${operation} failed: ${code ?? 'connection error'}${detail !== '' ? `: ${detail}` : ''}`, {
      operation,
      cause,
    });
  }

  private abortError(operation: string, signal: AbortSignal | undefined): DateraError {
    const reason: unknown = signal?.reason;
    if (reason instanceof DateraError) return reason;
    return new TimeoutError(`${operation} aborted by the caller`, { operation, cause: reason });
  }

  /** Removes the password, every session key and the body's secret fields from echoed text. */
  private scrub(text: string, body: unknown): string {
    return scrubSecrets(text, [this.password, ...this.issuedKeys, ...secretValues(body)]);
  }
}

function raceAbort<T>(p: Promise<T>, signal: AbortSignal | undefined, onAbort: () => Error): Promise<T> {
  if (signal === undefined) return p;
  if (signal.aborted) return Promise.reject(onAbort());
  return new Promise<T>((resolve, reject) => {
    const abort = (): void => reject(onAbort());
    signal.addEventListener('abort', abort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', abort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', abort);
        reject(e instanceof Error ? e : new ConnectionError(String(e)));
      },
    );
  });
}

/** Reads this package's version from the nearest package.json (source, dist and bundle layouts). */
function packageVersion(): string {
  for (const rel of ['../../package.json', '../../../package.json', '../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'datera-provisioner' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // try the next layout
    }
  }
  return 'dev';
}
