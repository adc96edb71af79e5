// SPDX-License-Identifier: Apache-2.0
// Test double for the Datera REST API on an undici MockAgent: records every request, issues
// session keys on login, and answers 401 to stale keys, so specs can script one scenario each.
import { MockAgent, type MockPool } from 'undici';

export const ORIGIN = 'https://datera.test:7718';
export const V = '/v2.2';

export interface SeenRequest {
  method: string;
  path: string;
  /** Header names lower-cased. */
  headers: Record<string, string>;
  body: unknown;
}

export interface Reply {
  status: number;
  data?: unknown;
}

export function envelope(data: unknown, metadata: Record<string, unknown> = {}): Record<string, unknown> {
  return { data, path: '/', tenant: '/root', version: 'v2.2', metadata };
}

export function datErr(http: number, name: string, message: string, errors?: string[]): Record<string, unknown> {
  return { name, code: http * 10, http, message, ...(errors ? { errors } : {}) };
}

export function withCode(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

export class MockDatera {
  readonly agent: MockAgent;
  readonly pool: MockPool;
  readonly seen: SeenRequest[] = [];
  logins = 0;
  /** The key the fake server accepts; undefined means every session is expired. */
  validKey: string | undefined;

  constructor(origin = ORIGIN) {
    this.agent = new MockAgent();
    this.agent.disableNetConnect();
    this.pool = this.agent.get(origin);
  }

  private record(opts: { method: string; path: string; headers?: unknown; body?: unknown }): SeenRequest {
    const headers: Record<string, string> = {};
    const raw = opts.headers;
    if (raw && typeof raw === 'object') {
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) headers[k.toLowerCase()] = String(v);
    }
    let body: unknown;
    if (typeof opts.body === 'string' && opts.body !== '') body = JSON.parse(opts.body);
    const req = { method: opts.method, path: opts.path, headers, body };
    this.seen.push(req);
    return req;
  }

  /** Every PUT /login succeeds and issues a fresh key `sess-<n>`, which becomes the only valid one. */
  acceptLogins(): void {
    this.pool
      .intercept({ path: `${V}/login`, method: 'PUT' })
      .reply((opts) => {
        this.record(opts);
        this.logins++;
        this.validKey = `sess-${this.logins}`;
        return { statusCode: 200, data: { key: this.validKey, version: 'v2.2', request_time: 1 } };
      })
      .persist();
  }

  expireSessions(): void {
    this.validKey = undefined;
  }

  /**
   * Answers `method path` (exact path string, or a predicate) with `reply`; requests with a
   * stale key get the 401 a real server sends. One-shot unless `times` is given or 'persist'.
   */
  on(
    method: string,
    path: string | ((p: string) => boolean),
    reply: Reply | ((req: SeenRequest) => Reply),
    times: number | 'persist' = 1,
  ): void {
    const scope = this.pool.intercept({ path: typeof path === 'string' ? `${V}${path}` : (p) => path(p), method }).reply((opts) => {
      const req = this.record(opts);
      if (req.headers['auth-token'] === undefined || req.headers['auth-token'] !== this.validKey) {
        return {
          statusCode: 401,
          data: datErr(401, 'AuthFailedError', 'The key provided with the request does not correspond to a valid session.'),
        };
      }
      const r = typeof reply === 'function' ? reply(req) : reply;
      return { statusCode: r.status, data: (r.data ?? '') as object };
    });
    if (times === 'persist') scope.persist();
    else if (times > 1) scope.times(times);
  }

  /** Requests other than logins. */
  calls(method?: string, path?: string): SeenRequest[] {
    return this.seen.filter(
      (r) => !r.path.endsWith('/login') && (method === undefined || r.method === method) && (path === undefined || r.path === `${V}${path}`),
    );
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}
