// SPDX-License-Identifier: Apache-2.0
// The provisioner's one path to the Kubernetes API: every call it makes (PV create/patch/delete,
// the confirming reads, events, informer lists and watches, Secrets, the Lease) as plain JSON
// over one keep-alive undici connection pool.
//
// Why not client-node's typed calls: each one serialises the body through the generated model
// serialiser, deserialises the whole response into model objects nobody reads, re-reads the CA,
// certificate and key files, and builds a new https agent; and importing them loads every
// generated model (about 60 MB of resident memory). Here the body is JSON.stringify'd once,
// write responses are drained unread, and connections are reused.
//
// Contract: every request except watches waits for the rate limiter, is reported to
// `onRequest` (and its answer to `onResponse`), and is bounded by `timeoutMs` (for the response
// headers, and for each pause in the body). A non-2xx reply rejects with `KubeApiError`, which
// `statusOf`/`isKubeNotFound`/`isAlreadyExists`/`isKubeConflict` (errors.ts) read like an
// ApiException; transport failures reject with undici's errors (see `isTransient`).
// Credentials come from the KubeConfig (client-node's authenticators, so exec plugins, token files
// and client certificates keep working), re-read at most every `credentialsTtlMs`. A kubeconfig
// `proxy-url` with an http or https scheme is honoured (undici's ProxyAgent); socks proxies are
// refused with a KubeConfigError at start-up.
import http from 'node:http';
import https from 'node:https';
import type { KubeConfig, V1PersistentVolume, V1PersistentVolumeClaim, CoreV1Event, V1Lease, V1Namespace, V1Secret } from '@kubernetes/client-node';
import { Agent, ProxyAgent, type Dispatcher } from 'undici';
import { DEFAULT_REQUEST_TIMEOUT_MS, KubeConfigError } from './kubeconfig.js';
import type { RateLimiter } from './ratelimit.js';
import { describeRequest } from './request-names.js';

/** A non-2xx reply. `statusCode`, `reason` and `message` come from the Status body when there is one. */
export class KubeApiError extends Error {
  readonly code = 'KUBE_API_ERROR';
  readonly statusCode: number;
  readonly reason: string | undefined;
  constructor(method: string, path: string, statusCode: number, status: { reason?: unknown; message?: unknown } | undefined) {
    const msg = typeof status?.message === 'string' && status.message ? status.message : `HTTP ${statusCode}`;
    super(msg);
    this.name = 'KubeApiError';
    this.statusCode = statusCode;
    this.reason = typeof status?.reason === 'string' && status.reason ? status.reason : undefined;
    // The request line helps operators; it holds no credentials (names only).
    Object.defineProperty(this, 'request', { value: `${method} ${path}`, enumerable: false });
  }
}

export interface KubeRestOptions {
  limiter?: RateLimiter | undefined;
  /** Per-request timeout in ms, after the limiter admits the request. Default 30 000. */
  timeoutMs?: number | undefined;
  userAgent?: string | undefined;
  onRequest?: ((verb: string, resource: string) => void) | undefined;
  /**
   * Called once per request and per watch when the status line arrives, or when the request failed
   * without one (`code` "<error>"), with the HTTP method and the server's host:port (client-go's
   * rest_client_requests_total labels). Must not throw.
   */
  onResponse?: ((code: string, method: string, host: string) => void) | undefined;
  /** How long derived credentials (headers, TLS material) are reused. Default 10 000 ms. */
  credentialsTtlMs?: number;
  /** Connections kept to the API server. Default 64. */
  connections?: number;
  /** Injected dispatcher (tests); used as it is, without TLS settings from the KubeConfig. */
  dispatcher?: Dispatcher;
}

interface Credentials {
  at: number;
  headers: Record<string, string>;
  dispatcher: Dispatcher;
  tlsKey: string;
}

type PatchBody = object;

/**
 * The subset of CoreV1Api the controller and the event recorder call, same argument shapes.
 * `patch*` sends a JSON patch (RFC 6902) when the body is an array, a JSON merge patch otherwise;
 * the second argument (client-node call options) is accepted for compatibility and ignored.
 */
export class KubeRest {
  readonly #t: Transport;
  readonly #o: KubeRestOptions;

  constructor(kc: KubeConfig, opts: KubeRestOptions = {}, transport?: Transport) {
    this.#t = transport ?? new Transport(kc, opts);
    this.#o = opts;
  }

  /** The same connections and credentials with another rate limiter (e.g. events on their own budget). */
  withLimiter(limiter: RateLimiter | undefined): KubeRest {
    return new KubeRest(this.#t.kc, { ...this.#o, limiter }, this.#t);
  }

  /** The same connections and credentials with other per-view settings (e.g. the Lease: no limiter, its own timeout). */
  with(opts: Pick<KubeRestOptions, 'limiter' | 'timeoutMs'>): KubeRest {
    return new KubeRest(this.#t.kc, { ...this.#o, ...opts }, this.#t);
  }

  // ---- the calls -------------------------------------------------------------------------------

  async createPersistentVolume(a: { body: V1PersistentVolume }): Promise<unknown> {
    return this.request('POST', '/api/v1/persistentvolumes', a.body);
  }

  async deletePersistentVolume(a: { name: string; body?: object }): Promise<unknown> {
    return this.request('DELETE', `/api/v1/persistentvolumes/${enc(a.name)}`, a.body);
  }

  async patchPersistentVolume(a: { name: string; body: PatchBody }, _options?: unknown): Promise<unknown> {
    return this.request('PATCH', `/api/v1/persistentvolumes/${enc(a.name)}`, a.body);
  }

  async readPersistentVolume(a: { name: string }): Promise<V1PersistentVolume> {
    return (await this.request('GET', `/api/v1/persistentvolumes/${enc(a.name)}`, undefined, true)) as V1PersistentVolume;
  }

  async readNamespacedPersistentVolumeClaim(a: { name: string; namespace: string }): Promise<V1PersistentVolumeClaim> {
    return (await this.request('GET', `/api/v1/namespaces/${enc(a.namespace)}/persistentvolumeclaims/${enc(a.name)}`, undefined, true)) as V1PersistentVolumeClaim;
  }

  /** Merge patch of a claim's status subresource (the resizer's progress); resolves to the updated claim. */
  async patchNamespacedPersistentVolumeClaimStatus(a: { name: string; namespace: string; body: object }): Promise<V1PersistentVolumeClaim> {
    return (await this.request('PATCH', `/api/v1/namespaces/${enc(a.namespace)}/persistentvolumeclaims/${enc(a.name)}/status`, a.body, true)) as V1PersistentVolumeClaim;
  }

  async createNamespacedEvent(a: { namespace: string; body: CoreV1Event }): Promise<unknown> {
    return this.request('POST', `/api/v1/namespaces/${enc(a.namespace)}/events`, a.body);
  }

  async patchNamespacedEvent(a: { name: string; namespace: string; body: PatchBody }, _options?: unknown): Promise<unknown> {
    return this.request('PATCH', `/api/v1/namespaces/${enc(a.namespace)}/events/${enc(a.name)}`, a.body);
  }

  async readNamespace(a: { name: string }): Promise<V1Namespace> {
    return (await this.request('GET', `/api/v1/namespaces/${enc(a.name)}`, undefined, true)) as V1Namespace;
  }

  /** The Secret as the API server sends it: `data` values base64, as in the typed client's model. */
  async readNamespacedSecret(a: { name: string; namespace: string }): Promise<V1Secret> {
    return (await this.request('GET', `/api/v1/namespaces/${enc(a.namespace)}/secrets/${enc(a.name)}`, undefined, true)) as V1Secret;
  }

  // Leases: the elector compares and writes whole objects (resourceVersion is the precondition),
  // so these return what the server stored. Time fields stay RFC 3339 strings with microseconds.
  async readNamespacedLease(a: { name: string; namespace: string }, _options?: unknown): Promise<V1Lease> {
    return (await this.request('GET', `/apis/coordination.k8s.io/v1/namespaces/${enc(a.namespace)}/leases/${enc(a.name)}`, undefined, true)) as V1Lease;
  }

  async createNamespacedLease(a: { namespace: string; body: V1Lease }, _options?: unknown): Promise<V1Lease> {
    return (await this.request('POST', `/apis/coordination.k8s.io/v1/namespaces/${enc(a.namespace)}/leases`, a.body, true)) as V1Lease;
  }

  async replaceNamespacedLease(a: { name: string; namespace: string; body: V1Lease }, _options?: unknown): Promise<V1Lease> {
    return (await this.request('PUT', `/apis/coordination.k8s.io/v1/namespaces/${enc(a.namespace)}/leases/${enc(a.name)}`, a.body, true)) as V1Lease;
  }

  /**
   * Lists a collection as plain JSON, page by page (`limit` + `continue`), for informers: the
   * same shape as what watches deliver. `transform` runs per item as each page arrives, so a
   * whole unslimmed list is never held at once. Each page is one limited, counted request.
   */
  async list<T>(
    path: string,
    opts: { fieldSelector?: string | undefined; labelSelector?: string | undefined; pageSize?: number } = {},
    transform?: (obj: T) => T,
  ): Promise<{ items: T[]; metadata: { resourceVersion?: string } }> {
    const items: T[] = [];
    let cont: string | undefined;
    let resourceVersion: string | undefined;
    do {
      const q = new URLSearchParams({ limit: String(opts.pageSize ?? 500) });
      if (opts.fieldSelector) q.set('fieldSelector', opts.fieldSelector);
      if (opts.labelSelector) q.set('labelSelector', opts.labelSelector);
      if (cont) q.set('continue', cont);
      const page = (await this.request('GET', `${path}?${q}`, undefined, true)) as {
        items?: T[] | null;
        metadata?: { resourceVersion?: string; continue?: string };
      };
      for (const item of page.items ?? []) items.push(transform ? transform(item) : item);
      resourceVersion = page.metadata?.resourceVersion ?? resourceVersion;
      cont = page.metadata?.continue || undefined;
    } while (cont);
    return { items, metadata: resourceVersion ? { resourceVersion } : {} };
  }

  /**
   * A watch stream, with the contract of client-node's `Watch.watch` (the informer's WatchLike):
   * resolves with a controller that ends the stream once the server answered 200; `callback`
   * gets each event line (unparseable lines are skipped); `done` is called once, with the error
   * (a non-200 reply carries `statusCode` and `reason`), or null when the stream ends or is
   * aborted. Not rate limited and not reported to `onRequest` (watches are long-lived), but its
   * status line is reported to `onResponse` as client-go counts watches; no body timeout (the
   * informer's watchdog restarts a silent watch).
   */
  async watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: (type: string, object: unknown, event: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    const controller = new AbortController();
    let ended = false;
    const finish = (err: unknown) => {
      if (ended) return;
      ended = true;
      controller.abort();
      done(err);
    };
    const q = new URLSearchParams({ watch: 'true' });
    for (const [k, v] of Object.entries(queryParams)) if (v !== undefined) q.set(k, String(v));
    try {
      const creds = await this.#t.credentials();
      const headers: Record<string, string> = { ...creds.headers, accept: 'application/json' };
      if (this.#o.userAgent) headers['user-agent'] = this.#o.userAgent;
      const fullPath = `${this.#t.basePath}${path}?${q}`;
      const res = await creds.dispatcher.request({
        origin: this.#t.origin,
        path: fullPath,
        method: 'GET',
        headers,
        signal: controller.signal,
        headersTimeout: this.#o.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
        bodyTimeout: 0,
      }).catch((err: unknown) => Promise.reject(this.#answered('GET', '<error>', err)));
      this.#answered('GET', String(res.statusCode));
      if (res.statusCode !== 200) {
        const text = await res.body.text().catch(() => '');
        let status: { reason?: unknown; message?: unknown } | undefined;
        try {
          status = JSON.parse(text) as typeof status;
        } catch {
          /* not JSON */
        }
        throw new KubeApiError('GET', `${this.#t.basePath}${path}`, res.statusCode, status);
      }
      res.body.setEncoding('utf8');
      let pending = '';
      res.body.on('data', (chunk: string) => {
        // One event per line; a chunk can hold many lines and a line can span chunks. Lines are
        // cut by position and the unfinished tail kept once per chunk (no copy per line).
        const text = pending + chunk;
        let start = 0;
        let nl: number;
        while ((nl = text.indexOf('\n', start)) >= 0) {
          const line = text.slice(start, nl);
          start = nl + 1;
          if (line.trim() === '') continue;
          let ev: { type?: unknown; object?: unknown };
          try {
            ev = JSON.parse(line) as typeof ev;
          } catch {
            continue;
          }
          if (ended) return;
          try {
            callback(String(ev.type), ev.object, ev);
          } catch (err) {
            finish(err); // a handler bug ends this watch (the informer restarts it), never the process
            return;
          }
        }
        pending = start === 0 ? text : text.slice(start);
      });
      res.body.on('end', () => finish(null));
      res.body.on('close', () => finish(null));
      res.body.on('error', (err: unknown) => finish(controller.signal.aborted ? null : err));
    } catch (err) {
      finish(controller.signal.aborted ? null : err);
    }
    return controller;
  }

  /** Closes the connections opened for this client and those sharing its transport (not an injected dispatcher). */
  async close(): Promise<void> {
    await this.#t.close();
  }

  /**
   * One request. `parse`: return the response body as JSON (reads); otherwise the body is drained
   * unread and the call resolves to undefined (writes: nothing here reads what the server echoes).
   */
  async request(method: string, path: string, body?: unknown, parse = false): Promise<unknown> {
    const { limiter, onRequest, userAgent } = this.#o;
    const timeoutMs = this.#o.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    if (limiter) await limiter.acquire();
    if (onRequest) {
      try {
        const { verb, resource } = describeRequest(method, path);
        onRequest(verb, resource);
      } catch {
        // metrics must never break a request
      }
    }
    const creds = await this.#t.credentials();
    const headers: Record<string, string> = { ...creds.headers, accept: 'application/json' };
    if (userAgent) headers['user-agent'] = userAgent;
    let payload: string | undefined;
    if (body !== undefined) {
      payload = JSON.stringify(body);
      headers['content-type'] = method === 'PATCH' ? (Array.isArray(body) ? 'application/json-patch+json' : 'application/merge-patch+json') : 'application/json';
    }
    const fullPath = this.#t.basePath + path;
    const res = await creds.dispatcher.request({
      origin: this.#t.origin,
      path: fullPath,
      method: method as Dispatcher.HttpMethod,
      headers,
      // undici closes the connection after any DELETE with a body (DeleteOptions carry the uid
      // precondition), guarding against servers that do not expect one; the API server reads it
      // (Content-Length is sent). Without this every reclaimed PV costs a TLS handshake, and the
      // pool kept opening connections for the requests after it.
      reset: false,
      ...(payload !== undefined ? { body: payload } : {}),
      // undici's own timers (no AbortSignal.timeout per request: a timer, a signal and listeners
      // each, which showed up in the N=1000 profile): headers within timeoutMs, and no pause of
      // timeoutMs inside the body.
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    }).catch((err: unknown) => Promise.reject(this.#answered(method, '<error>', err)));
    this.#answered(method, String(res.statusCode));
    if (res.statusCode >= 300) {
      const text = await res.body.text().catch(() => '');
      let status: { reason?: unknown; message?: unknown } | undefined;
      try {
        const parsed: unknown = JSON.parse(text);
        if (parsed && typeof parsed === 'object') status = parsed as typeof status;
      } catch {
        /* not JSON */
      }
      throw new KubeApiError(method, fullPath, res.statusCode, status);
    }
    if (!parse) {
      await res.body.dump({ limit: Infinity });
      return undefined;
    }
    return res.body.json();
  }

  /** Reports an answer (or its absence) to `onResponse`; returns `err` for the caller to rethrow. */
  #answered(method: string, code: string, err?: unknown): unknown {
    try {
      this.#o.onResponse?.(code, method, this.#t.host);
    } catch {
      // metrics must never break a request
    }
    return err;
  }
}

/** Connections and credentials shared by the KubeRest views of one cluster. */
class Transport {
  readonly kc: KubeConfig;
  readonly origin: string;
  /** host:port as the metrics name the server. */
  readonly host: string;
  readonly basePath: string;
  readonly proxyUrl: string | undefined;
  readonly #o: KubeRestOptions;
  #creds: Credentials | undefined;
  #pending: Promise<Credentials> | undefined;
  readonly #owned = new Set<Dispatcher>();

  constructor(kc: KubeConfig, opts: KubeRestOptions) {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new KubeConfigError('kubeconfig has no current cluster');
    let u: URL;
    try {
      u = new URL(cluster.server);
    } catch {
      throw new KubeConfigError(`the kubeconfig's cluster server is not a URL`);
    }
    if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new KubeConfigError(`the kubeconfig's cluster server must be https:// (or http:// with insecure-skip-tls-verify), not ${u.protocol}//`);
    if (u.protocol === 'http:' && !cluster.skipTLSVerify) throw new KubeConfigError('HTTP protocol is not allowed when skipTLSVerify is not set or false');
    this.proxyUrl = undefined;
    if (cluster.proxyUrl) {
      let p: URL | undefined;
      try {
        p = new URL(cluster.proxyUrl);
      } catch {
        p = undefined;
      }
      // The proxy URL may hold credentials: never echo it.
      if (!p || (p.protocol !== 'http:' && p.protocol !== 'https:')) {
        throw new KubeConfigError(`the kubeconfig's proxy-url must be an http:// or https:// URL${p ? ` (socks and other schemes are not supported; got ${p.protocol}//)` : ''}`);
      }
      this.proxyUrl = cluster.proxyUrl;
    }
    this.kc = kc;
    this.origin = u.origin;
    this.host = u.host;
    this.basePath = u.pathname.replace(/\/+$/, '');
    this.#o = opts;
  }

  async close(): Promise<void> {
    const owned = [...this.#owned];
    this.#owned.clear();
    this.#creds = undefined;
    await Promise.all(owned.map((d) => d.close().catch(() => undefined)));
  }

  /** Headers and a dispatcher for the current credentials; derived at most every credentialsTtlMs. */
  async credentials(): Promise<Credentials> {
    const c = this.#creds;
    const ttl = this.#o.credentialsTtlMs ?? 10_000;
    if (c && performance.now() - c.at < ttl) return c;
    // One derivation at a time: concurrent requests share it.
    this.#pending ??= this.#derive().finally(() => (this.#pending = undefined));
    return this.#pending;
  }

  async #derive(): Promise<Credentials> {
    const opts: https.RequestOptions = {};
    await this.kc.applyToHTTPSOptions(opts);
    // client-node builds an agent here for its own use; ours is undici's.
    (opts.agent as http.Agent | undefined)?.destroy();
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(opts.headers ?? {})) if (v !== undefined) headers[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : String(v);
    if (opts.auth) headers.authorization = `Basic ${Buffer.from(opts.auth).toString('base64')}`;
    let dispatcher: Dispatcher;
    let tlsKey = '';
    if (this.#o.dispatcher) dispatcher = this.#o.dispatcher;
    else {
      const tls = {
        ...(opts.ca ? { ca: opts.ca as Buffer } : {}),
        ...(opts.cert ? { cert: opts.cert as Buffer } : {}),
        ...(opts.key ? { key: opts.key as Buffer } : {}),
        ...(opts.rejectUnauthorized !== undefined ? { rejectUnauthorized: opts.rejectUnauthorized } : {}),
        ...(opts.servername ? { servername: opts.servername } : {}),
      };
      tlsKey = [tls.ca, tls.cert, tls.key].map((b) => (b ? b.toString('base64') : '')).join('|') + `|${String(tls.rejectUnauthorized)}|${tls.servername ?? ''}`;
      const prev = this.#creds;
      if (prev && prev.tlsKey === tlsKey) dispatcher = prev.dispatcher;
      else {
        // New TLS material (first use, or a rotated certificate): new connections; the old pool
        // finishes its requests in flight and closes.
        dispatcher = this.proxyUrl
          ? new ProxyAgent({ uri: this.proxyUrl, requestTls: tls, connections: this.#o.connections ?? 64, keepAliveTimeout: 30_000 })
          : new Agent({ connect: tls, connections: this.#o.connections ?? 64, keepAliveTimeout: 30_000 });
        this.#owned.add(dispatcher);
        if (prev && prev.dispatcher !== this.#o.dispatcher) {
          this.#owned.delete(prev.dispatcher);
          void prev.dispatcher.close().catch(() => undefined);
        }
      }
    }
    this.#creds = { at: performance.now(), headers, dispatcher, tlsKey };
    return this.#creds;
  }
}

function enc(s: string): string {
  return encodeURIComponent(s);
}
