// SPDX-License-Identifier: Apache-2.0
// The production Datera REST client (API v2.2): the typed operations of DateraApi, the client
// options with their defaults, and list paging. Every method resolves with the unwrapped `data`
// or rejects with a DateraError subclass (errors.ts); logging in, retries, deadlines and the
// scrubbing of secrets are the transport's contract (transport.ts, session.ts), and where it
// connects is endpoint.ts's.
import type { Dispatcher } from 'undici';
import { DEFAULT_REQUEST_TIMEOUT_MS, createDefaultDispatcher, resolveEndpoint } from './endpoint.js';
import { itemsOf, totalOf } from './envelope.js';
import { ConflictError, InvalidRequestError, NotFoundError, ValidationFailedError, isDateraNotFound } from './errors.js';
import { sleep as defaultSleep } from '../backoff.js';
import { DateraTransport, type ExchangeObserver } from './transport.js';
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
  PerformancePolicy,
  SystemInfo,
  Tenant,
  Volume,
} from './types.js';
import { type Logger, nullLogger } from '../observability/logger.js';
import { VERSION } from '../version.js';


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
  observe?: ExchangeObserver;
  /** Backoff sleep; injectable for tests. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Jitter source in [0, 1). Default Math.random. */
  random?: () => number;
  /** Monotonic clock in ms that the deadline is measured on; injectable for tests. Default performance.now. */
  now?: () => number;
}

/** Version of this package, for the default `Datera-Driver` header. */
export const DEFAULT_DRIVER_ID = `datera-k8s-provisioner-${VERSION}`;

/** Page size used when a list call fetches every page. */
const LIST_PAGE_SIZE = 100;

/**
 * Default cap on one reply body: 16 MiB. The largest replies are list pages of LIST_PAGE_SIZE app
 * instances; a fully populated app instance (storage instance, volume, ACL, snapshot policies) is
 * a few KiB, so a page is around 1 MiB and this leaves an order of magnitude to spare.
 */
export const DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024;

const DEFAULTS = {
  tenant: '/root',
  apiVersion: '2.2',
  requestTimeoutMs: DEFAULT_REQUEST_TIMEOUT_MS,
  deadlineMs: 120_000,
  retryBaseMs: 250,
  retryMaxMs: 10_000,
} as const;

/** Stop following pages after this many, whatever total_count says (a server ignoring offset). */
const MAX_PAGES = 10_000;


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
  private readonly transport: DateraTransport;

  constructor(opts: DateraClientOptions) {
    const endpoint = resolveEndpoint(opts.endpoint);
    const log = opts.logger ?? nullLogger();
    if (opts.insecureSkipTlsVerify === true) {
      log.warn('TLS certificate verification of the Datera endpoint is disabled (insecureSkipTlsVerify)', {
        endpoint: endpoint.origin,
      });
    }
    this.transport = new DateraTransport({
      endpoint,
      apiVersion: opts.apiVersion ?? DEFAULTS.apiVersion,
      username: opts.username,
      password: opts.password,
      ldapServer: opts.ldapServer === '' ? undefined : opts.ldapServer,
      tenant: opts.tenant ?? DEFAULTS.tenant,
      driverId: opts.driverId ?? DEFAULT_DRIVER_ID,
      requestTimeoutMs: opts.requestTimeoutMs ?? DEFAULTS.requestTimeoutMs,
      deadlineMs: opts.deadlineMs ?? DEFAULTS.deadlineMs,
      maxResponseBytes: opts.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES,
      backoff: {
        initialMs: opts.retryBaseMs ?? DEFAULTS.retryBaseMs,
        maxMs: opts.retryMaxMs ?? DEFAULTS.retryMaxMs,
        jitter: 'full',
        random: opts.random ?? Math.random,
      },
      log,
      observe: opts.observe,
      sleep: opts.sleep ?? defaultSleep,
      now: opts.now ?? (() => performance.now()),
      dispatcher: opts.dispatcher ?? createDefaultDispatcher(opts, endpoint.https),
      ownsDispatcher: opts.dispatcher === undefined,
    });
  }

  /** Closes the dispatcher the client created (an injected one belongs to the caller). */
  close(): Promise<void> {
    return this.transport.close();
  }

  // ---------------------------------------------------------------- app instances

  /**
   * POST /app_instances. A clean 409 on the first attempt rejects with ConflictError (the
   * caller decides whether the existing object is theirs); a 409 after a lost response
   * resolves to the object that lost attempt created.
   */
  async createAppInstance(body: AppInstanceCreate, opts: CallOptions = {}): Promise<AppInstance> {
    const name = segment(body?.name, 'app instance name');
    const env = await this.transport.call({
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
    const env = await this.transport.call({
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
    const env = await this.transport.call({
      method: 'PUT',
      path: `/app_instances/${segment(nameOrId, 'app instance name or id')}`,
      route: '/app_instances/:id',
      body: { admin_state: state, force },
      signal: opts.signal,
    });
    return env.data as AppInstance;
  }

  async deleteAppInstance(nameOrId: string, force = false, opts: CallOptions = {}): Promise<void> {
    await this.transport.call({
      method: 'DELETE',
      path: `/app_instances/${segment(nameOrId, 'app instance name or id')}`,
      route: '/app_instances/:id',
      ...(force ? { body: { force: true } } : {}),
      signal: opts.signal,
    });
  }

  async resizeVolume(ai: string, si: string, vol: string, sizeGiB: number, opts: CallOptions = {}): Promise<Volume> {
    const env = await this.transport.call({
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

  /**
   * Makes the volume's performance policy exactly `policy`: every one of the six keys is sent
   * (0 = unlimited for a key `policy` leaves out), PUT on the existing policy, POST when the
   * volume has none. An empty `policy` removes it (absent already counts as done). Idempotent.
   */
  async setPerformancePolicy(ai: string, si: string, vol: string, policy: PerformancePolicy, opts: CallOptions = {}): Promise<void> {
    const path =
      `/app_instances/${segment(ai, 'app instance')}/storage_instances/${segment(si, 'storage instance')}` +
      `/volumes/${segment(vol, 'volume')}/performance_policy`;
    const route = '/app_instances/:id/storage_instances/:si/volumes/:vol/performance_policy';
    const keys = Object.keys(policy) as (keyof PerformancePolicy)[];
    if (keys.every((k) => !policy[k])) {
      try {
        await this.transport.call({ method: 'DELETE', path, route, signal: opts.signal });
      } catch (err) {
        if (!isDateraNotFound(err)) throw err;
      }
      return;
    }
    const body: Required<PerformancePolicy> = {
      total_iops_max: policy.total_iops_max ?? 0,
      read_iops_max: policy.read_iops_max ?? 0,
      write_iops_max: policy.write_iops_max ?? 0,
      total_bandwidth_max: policy.total_bandwidth_max ?? 0,
      read_bandwidth_max: policy.read_bandwidth_max ?? 0,
      write_bandwidth_max: policy.write_bandwidth_max ?? 0,
    };
    try {
      await this.transport.call({ method: 'PUT', path, route, body, signal: opts.signal });
    } catch (err) {
      if (!isDateraNotFound(err)) throw err;
      await this.transport.call({ method: 'POST', path, route, body, signal: opts.signal });
    }
  }

  /** Metadata values come back as strings even when the server typed them (booleans, numbers). */
  async getMetadata(ai: string, opts: CallOptions = {}): Promise<Record<string, string>> {
    const env = await this.transport.call({
      method: 'GET',
      path: `/app_instances/${segment(ai, 'app instance')}/metadata`,
      route: '/app_instances/:id/metadata',
      signal: opts.signal,
    });
    return stringMap(env.data);
  }

  async putMetadata(ai: string, md: Record<string, string>, opts: CallOptions = {}): Promise<Record<string, string>> {
    const env = await this.transport.call({
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
      const env = await this.transport.call({
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
    const env = await this.transport.call({
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
    await this.transport.call({
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
    const env = await this.transport.call({
      method: 'GET',
      path: `/app_templates/${segment(name, 'app template name')}`,
      route: '/app_templates/:id',
      signal: opts.signal,
    });
    return env.data as AppTemplate;
  }

  /** Every tenant the user may see (GET /tenants, all pages); not part of DateraApi: only the audit lists tenants. */
  listTenants(opts: ListOptions = {}): Promise<Page<Tenant>> {
    return this.list<Tenant>('/tenants', opts);
  }

  async getSystem(opts: CallOptions = {}): Promise<SystemInfo> {
    const env = await this.transport.call({ method: 'GET', path: '/system', route: '/system', signal: opts.signal });
    return env.data as SystemInfo;
  }

  // ---------------------------------------------------------------- collections

  /**
   * One page when the caller gave limit or offset; otherwise every page (LIST_PAGE_SIZE at a
   * time, following total_count) under one deadline.
   */
  private async list<T>(collection: string, opts: ListOptions): Promise<Page<T>> {
    const deadline = this.transport.deadlineFromNow();
    const fetchPage = (limit: number | undefined, offset: number | undefined) =>
      this.transport.call({
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
}
