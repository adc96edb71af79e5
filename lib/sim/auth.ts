// SPDX-License-Identifier: Apache-2.0
// Users, session keys and tenants. A key lives for a fixed time from login (activity does not
// extend it); an unknown or expired key is 401 with the cluster's message. A user bound to a
// tenant may use that tenant and its sub-tenants only.
import type { IncomingMessage } from 'node:http';
import { randomUUID } from 'node:crypto';
import { INVALID_SESSION_MESSAGE, SimError, invalid, validationFailed } from './errors.js';
import { type Json, ROOT_TENANT, validTenantPath } from './model.js';
import { bodySchema } from './schemas.js';
import type { SimCall } from './server.js';
import { show, validate } from './validate.js';

export interface SimUser {
  name: string;
  password: string;
  /** The user's tenant: the default when a request has no `tenant` header, and the subtree it may use. */
  tenant?: string;
}

export interface Session {
  user: SimUser;
  expiresAt: number;
}

export class Sessions {
  private readonly byKey = new Map<string, Session>();

  constructor(
    private readonly users: SimUser[],
    private readonly ttlMs: number,
  ) {}

  get size(): number {
    return this.byKey.size;
  }

  /**
   * PUT /login: a new key for a known name and password. A bad body is 422; wrong credentials
   * are 401 AuthFailedError (the name, when a string, still goes into the call log).
   */
  login(body: Json, version: string, call: SimCall): { key: string; version: string; request_time: number } {
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
    this.byKey.set(key, { user, expiresAt: Date.now() + this.ttlMs });
    call.user = user.name;
    return { key, version, request_time: 0 };
  }

  /** The session of the request's Auth-Token; 401 when there is none or it has expired. */
  authenticate(req: IncomingMessage): Session {
    const key = req.headers['auth-token'];
    const session = typeof key === 'string' ? this.byKey.get(key) : undefined;
    if (!session || session.expiresAt <= Date.now()) {
      if (session && typeof key === 'string') this.byKey.delete(key);
      throw new SimError('AuthFailedError', INVALID_SESSION_MESSAGE);
    }
    return session;
  }

  logout(key: string): void {
    this.byKey.delete(key);
  }

  /** Every key becomes invalid. */
  clear(): void {
    this.byKey.clear();
  }
}

/**
 * The `tenant` header (default: the user's tenant, else /root). "root/x" is read as "/root/x".
 * 400 for a malformed path, 403 PermissionDeniedError outside the user's tenant.
 */
export function tenantOf(req: IncomingMessage, user: SimUser): string {
  const raw = req.headers['tenant'];
  let t = (Array.isArray(raw) ? raw[0] : raw)?.trim() ?? '';
  if (t === '') t = user.tenant ?? ROOT_TENANT;
  if (!t.startsWith('/')) t = `/${t}`;
  t = t.replace(/\/+$/, '') || ROOT_TENANT;
  if (!validTenantPath(t)) throw invalid(`tenant: ${show(t)} is not a tenant path such as /root or /root/<name>`);
  if (user.tenant && t !== user.tenant && !t.startsWith(`${user.tenant}/`)) {
    throw new SimError('PermissionDeniedError', `User ${user.name} may not access tenant ${t}`);
  }
  return t;
}
