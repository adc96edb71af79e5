// SPDX-License-Identifier: Apache-2.0
// The Datera request path: one logical call (a Call) becomes HTTP exchanges over the Dispatcher,
// with the session key, a per-request timer and a cap on the reply body, retried until the
// call's deadline. The contract every client method inherits:
// - resolves with the envelope of a 2xx reply, or rejects with a DateraError subclass (errors.ts);
// - after a 401 renews the session once (single-flight, session.ts) and resends once;
// - retries 503, 500 "still initializing", refused connections, and (for idempotent calls and
//   the create POSTs) broken connections and per-request timeouts, with capped exponential
//   backoff and full jitter, until the deadline; then rejects with the last error;
// - a create POST whose response was lost and whose resend meets 409 resolves to the object the
//   lost attempt created (read from `createdAt`);
// - never puts the password, session keys, CHAP secrets or request bodies into errors or logs.
import type { Dispatcher } from 'undici';
import type { ResolvedEndpoint } from './endpoint.js';
import { type Envelope, errorFromReply, parseBody, scrubSecrets, secretValues, unwrapEnvelope } from './envelope.js';
import {
  ConflictError,
  ConnectionError,
  DateraError,
  InternalError,
  ResponseTooLargeError,
  TimeoutError,
  UnavailableError,
} from './errors.js';
import { classifyTransportError, type Delivery, transportCode } from './retry.js';
import { DateraSession, abortError } from './session.js';
import { backoffDelay, type Backoff } from '../backoff.js';
import type { Logger } from '../observability/logger.js';

type Method = 'GET' | 'PUT' | 'POST' | 'DELETE';

/** One logical call; the retry loop may send it several times. */
export interface Call {
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

/** Metrics hook: called once per HTTP exchange (login included); `route` is a template, not the path. */
export type ExchangeObserver = (o: { method: string; route: string; status: number | 'error'; seconds: number }) => void;

/** Everything the transport needs, defaults already applied (DateraClient resolves them). */
export interface TransportSettings {
  endpoint: ResolvedEndpoint;
  /** "2.2" or "v2.2": paths are /v2.2/... below the endpoint's base path. */
  apiVersion: string;
  username: string;
  password: string;
  ldapServer: string | undefined;
  tenant: string;
  driverId: string;
  requestTimeoutMs: number;
  deadlineMs: number;
  maxResponseBytes: number;
  /** Waits between attempts: capped exponential with full jitter. */
  backoff: Backoff;
  log: Logger;
  observe: ExchangeObserver | undefined;
  sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  now: () => number;
  dispatcher: Dispatcher;
  /** Whether close() closes the dispatcher (false for an injected one: it belongs to the caller). */
  ownsDispatcher: boolean;
}

export class DateraTransport {
  private readonly endpoint: ResolvedEndpoint;
  private readonly versionPrefix: string;
  private readonly dispatcher: Dispatcher;
  private readonly ownsDispatcher: boolean;
  private readonly tenant: string;
  private readonly driverId: string;
  private readonly requestTimeoutMs: number;
  private readonly deadlineMs: number;
  private readonly maxResponseBytes: number;
  private readonly backoff: TransportSettings['backoff'];
  private readonly log: Logger;
  private readonly observeHook: TransportSettings['observe'];
  private readonly sleepFn: TransportSettings['sleep'];
  private readonly now: () => number;
  private readonly session: DateraSession;
  private closed = false;

  constructor(s: TransportSettings) {
    this.endpoint = s.endpoint;
    this.versionPrefix = `${s.endpoint.basePath}/v${s.apiVersion.replace(/^v/i, '')}`;
    this.dispatcher = s.dispatcher;
    this.ownsDispatcher = s.ownsDispatcher;
    this.tenant = s.tenant;
    this.driverId = s.driverId;
    this.requestTimeoutMs = s.requestTimeoutMs;
    this.deadlineMs = s.deadlineMs;
    this.maxResponseBytes = s.maxResponseBytes;
    this.backoff = s.backoff;
    this.log = s.log;
    this.observeHook = s.observe;
    this.sleepFn = s.sleep;
    this.now = s.now;
    this.session = new DateraSession({
      username: s.username,
      password: s.password,
      ldapServer: s.ldapServer,
      origin: s.endpoint.origin,
      tenant: s.tenant,
      log: s.log,
      send: (call) => this.call(call),
    });
  }

  /** Closes the dispatcher the client created (an injected one belongs to the caller). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.ownsDispatcher) await this.dispatcher.close();
  }

  /** The absolute deadline (on the transport's clock) of a call starting now; pages of one list share it. */
  deadlineFromNow(): number {
    return this.now() + this.deadlineMs;
  }

  async call(call: Call): Promise<Envelope> {
    const operation = `${call.method} ${call.path}`;
    const deadline = call.deadline ?? this.now() + this.deadlineMs;
    // A create POST is safe to resend: a duplicate meets 409, which resolves to the object.
    const resendable = call.method !== 'POST' || call.createdAt !== undefined;
    let retries = 0;
    let renewed = false;
    let lostResponse = false;

    for (;;) {
      if (call.signal?.aborted) throw abortError(operation, call.signal);
      const key = call.anonymous ? undefined : await this.session.current(call.signal, operation);
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
          await this.session.renew(key, call.signal, operation);
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
        if (call.signal?.aborted) throw abortError(operation, call.signal);
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
      if (call.signal?.aborted) return { kind: 'failed', delivery: 'aborted', error: abortError(operation, call.signal) };
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

  /** Removes the password, every session key and the body's secret fields from echoed text. */
  private scrub(text: string, body: unknown): string {
    return scrubSecrets(text, [...this.session.secrets(), ...secretValues(body)]);
  }
}
