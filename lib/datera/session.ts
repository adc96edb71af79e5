// SPDX-License-Identifier: Apache-2.0
// The Datera session: the login (PUT /login with the client's credentials) and the session key
// it yields. One login at a time is in flight and every call that needs a key joins it; a caller
// that gives up (its signal aborts) stops waiting without cancelling the login for the others.
// A key met by a 401 is replaced once by whichever call notices first. The password and every
// key held are available to the transport only for scrubbing echoed text (secrets()).
import { AuthError, ConnectionError, DateraError, TimeoutError } from './errors.js';
import type { Envelope } from './envelope.js';
import type { Call } from './transport.js';
import type { Logger } from '../observability/logger.js';

export interface SessionOptions {
  username: string;
  password: string;
  /** LDAP server name, sent as `remote_server`; undefined = local users. */
  ldapServer: string | undefined;
  /** For the debug log line of each login. */
  origin: string;
  tenant: string;
  log: Logger;
  /** Sends the login call through the transport (anonymous: no key, no tenant header, a 401 is final). */
  send: (call: Call) => Promise<Envelope>;
}

/** Keys remembered for scrubbing after they were replaced. */
const REMEMBERED_KEYS = 8;

export class DateraSession {
  /** Current session key; undefined before the first login and while a new one is fetched. */
  private key: string | undefined;
  /** Keys this session has held, to scrub from anything the server or undici echo back. */
  private readonly issuedKeys: string[] = [];
  /** The one login in progress, shared by every call that needs a session. */
  private loginInFlight: Promise<string> | undefined;

  constructor(private readonly opts: SessionOptions) {}

  /** The session key to use now, logging in (once, shared) when there is none. */
  current(signal: AbortSignal | undefined, operation: string): Promise<string> {
    if (this.key !== undefined) return Promise.resolve(this.key);
    return this.joinLogin(signal, operation);
  }

  /**
   * Called after `failedKey` met a 401. If another call already replaced that key, use the new
   * one; otherwise start (or join) the single login.
   */
  renew(failedKey: string, signal: AbortSignal | undefined, operation: string): Promise<string> {
    if (this.key !== undefined && this.key !== failedKey) return Promise.resolve(this.key);
    this.key = undefined;
    return this.joinLogin(signal, operation);
  }

  /** The password and the recent session keys: text to remove from anything echoed back. */
  secrets(): string[] {
    return [this.opts.password, ...this.issuedKeys];
  }

  private joinLogin(signal: AbortSignal | undefined, operation: string): Promise<string> {
    if (this.loginInFlight === undefined) {
      const attempt = this.login().then(
        (key) => {
          this.key = key;
          this.issuedKeys.push(key);
          if (this.issuedKeys.length > REMEMBERED_KEYS) this.issuedKeys.shift();
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
    return raceAbort(this.loginInFlight, signal, () => abortError(operation, signal));
  }

  /** PUT /login. Its reply is a bare `{key, version}`. Runs under its own deadline and no caller signal. */
  private async login(): Promise<string> {
    const { username, password, ldapServer } = this.opts;
    this.opts.log.debug('datera login', { endpoint: this.opts.origin, tenant: this.opts.tenant });
    const env = await this.opts.send({
      method: 'PUT',
      path: '/login',
      route: '/login',
      body: {
        name: username,
        password,
        ...(ldapServer !== undefined ? { remote_server: ldapServer } : {}),
      },
      anonymous: true,
    });
    const key = (env.data as { key?: unknown } | undefined)?.key;
    if (typeof key !== 'string' || key === '') {
      throw new AuthError('PUT /login failed: the reply carried no session key', { operation: 'PUT /login' });
    }
    return key;
  }
}

/** The error a call rejects with when its caller's signal aborts: the signal's DateraError reason, else a TimeoutError. */
export function abortError(operation: string, signal: AbortSignal | undefined): DateraError {
  const reason: unknown = signal?.reason;
  if (reason instanceof DateraError) return reason;
  return new TimeoutError(`${operation} aborted by the caller`, { operation, cause: reason });
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
