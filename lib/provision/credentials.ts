// SPDX-License-Identifier: Apache-2.0
// Which Datera endpoint and credentials a volume uses, and one client per (endpoint, user, tenant).
//
// The provisioner's own credentials come from its mounted Secret (config). A StorageClass may name
// another Secret (`secretName`/`secretNamespace`, type datera/iscsi); that reference is written into
// the PV's flexVolume.secretRef, so kubelet hands the same credentials to the node driver and the
// delete path finds them after the class is gone.
//
// TRUST: only cluster admins (StorageClass and PV authors) choose a Datera server and credentials.
// A class `secretName` without `secretNamespace` is resolved in the provisioner's own namespace
// (`homeNamespace`), never in the claim's: otherwise any tenant could create a Secret of that name
// in their namespace and point the provisioner (and, on detach, the node driver) at a server of
// their choosing. A Secret in any other namespace is read only where the admin granted `get` on it
// to the provisioner's ServiceAccount; a refused read is a final CredentialsError that says so.
import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { V1PersistentVolume } from '@kubernetes/client-node';
import { resolveEndpoint } from '../datera/endpoint.js';
import type { DateraApi } from '../datera/types.js';
import type { DateraSettings } from '../config.js';
import type { MaybeFinal } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { statusOf } from '../kube/errors.js';
import { FLEX_DRIVER } from './volume.js';

export interface SecretRef {
  name: string;
  namespace: string;
}

export interface DateraCredentials {
  endpoint: string;
  username: string;
  password: string;
  tenant: string;
  ldapServer?: string;
}

export interface Connection {
  client: DateraApi;
  endpoint: string;
  tenant: string;
  secretRef: SecretRef;
}

/** Whether two endpoints reach the same Datera server as the client connects (`h:7718` = `https://h:7718/v2.2`). */
export function sameEndpoint(a: string, b: string): boolean {
  try {
    const x = resolveEndpoint(a);
    const y = resolveEndpoint(b);
    return x.origin === y.origin && x.basePath === y.basePath;
  } catch {
    return false;
  }
}

/** Thrown when a referenced Secret is missing or incomplete. Final (isFinal) until the Secret changes. */
export class CredentialsError extends Error implements MaybeFinal {
  constructor(message: string) {
    super(message);
    this.name = 'CredentialsError';
  }
  get final(): boolean {
    return true;
  }
}

export interface ConnectionsOptions {
  defaults: DateraSettings;
  defaultSecret: SecretRef;
  /**
   * The provisioner's own namespace: where a class `secretName` without `secretNamespace` is
   * looked up. Default: `defaultSecret.namespace`.
   */
  homeNamespace?: string;
  /** Reads a Secret's decoded data, or undefined when it does not exist. */
  readSecret: (namespace: string, name: string) => Promise<{ type?: string; data: Record<string, string> } | undefined>;
  makeClient: (c: DateraCredentials) => DateraApi & { close?: () => Promise<void> };
  logger: Logger;
  /** How long a read Secret is trusted (ms). */
  secretTtlMs?: number;
}

/**
 * The credentials Secret a new volume uses: the class's `secretName` (in `secretNamespace`, else
 * the provisioner's own namespace, never the claim's), or the provisioner's own Secret.
 */
export function provisionSecretRef(cls: { secretName?: string | undefined; secretNamespace?: string | undefined }, defaultSecret: SecretRef, homeNamespace: string): SecretRef {
  return cls.secretName ? { name: cls.secretName, namespace: cls.secretNamespace ?? homeNamespace } : { ...defaultSecret };
}

export class DateraConnections {
  readonly #o: ConnectionsOptions;
  readonly #clients: LRUCache<string, DateraApi & { close?: () => Promise<void> }>;
  readonly #secrets: LRUCache<string, DateraCredentials, { ns: string; name: string }>;

  constructor(o: ConnectionsOptions) {
    this.#o = o;
    this.#clients = new LRUCache({
      max: 64,
      dispose: (c) => void c.close?.().catch(() => undefined),
    });
    this.#secrets = new LRUCache<string, DateraCredentials, { ns: string; name: string }>({
      max: 256,
      ttl: o.secretTtlMs ?? 60_000,
      fetchMethod: async (_k, _stale, { context }) => this.#loadSecret(context.ns, context.name),
    });
  }

  #isDefault(ref: SecretRef): boolean {
    return ref.name === this.#o.defaultSecret.name && ref.namespace === this.#o.defaultSecret.namespace;
  }

  get homeNamespace(): string {
    return this.#o.homeNamespace ?? this.#o.defaultSecret.namespace;
  }

  async #loadSecret(ns: string, name: string): Promise<DateraCredentials> {
    let s: Awaited<ReturnType<ConnectionsOptions['readSecret']>>;
    try {
      s = await this.#o.readSecret(ns, name);
    } catch (err) {
      // 403: RBAC, not a transient fault; the fix is an admin's grant, so say exactly which.
      if (statusOf(err)?.code === 403) {
        throw new CredentialsError(
          `credentials Secret ${ns}/${name} may not be read by the provisioner (403 Forbidden): its ServiceAccount can get Secrets ` +
            `only in its own namespace ${this.homeNamespace} unless an admin grants more. Move the Secret to ${this.homeNamespace}, ` +
            `or grant "get" on this one Secret: a Role in namespace ${ns} with rules [{apiGroups: [""], resources: [secrets], ` +
            `resourceNames: [${name}], verbs: [get]}] bound to the provisioner's ServiceAccount`,
        );
      }
      throw err;
    }
    if (!s) throw new CredentialsError(`credentials Secret ${ns}/${name} does not exist`);
    if (s.type && s.type !== FLEX_DRIVER)
      throw new CredentialsError(`credentials Secret ${ns}/${name} has type "${s.type}"; kubelet passes only Secrets of type "${FLEX_DRIVER}" to the ${FLEX_DRIVER} driver`);
    const missing = ['username', 'password'].filter((k) => !s.data[k]);
    if (missing.length) throw new CredentialsError(`credentials Secret ${ns}/${name} lacks key(s) ${missing.join(', ')} (needs username, password, server)`);
    return {
      endpoint: s.data.server ?? this.#o.defaults.endpoint,
      username: s.data.username!,
      password: s.data.password!,
      tenant: s.data.tenant ?? this.#o.defaults.tenant,
      ...(s.data.ldapServer ? { ldapServer: s.data.ldapServer } : {}),
    };
  }

  async #credentials(ref: SecretRef): Promise<DateraCredentials> {
    if (this.#isDefault(ref)) {
      const d = this.#o.defaults;
      return { endpoint: d.endpoint, username: d.username, password: d.password, tenant: d.tenant, ...(d.ldapServer ? { ldapServer: d.ldapServer } : {}) };
    }
    const c = await this.#secrets.fetch(`${ref.namespace}/${ref.name}`, { context: { ns: ref.namespace, name: ref.name } });
    if (!c) throw new CredentialsError(`credentials Secret ${ref.namespace}/${ref.name} could not be read`);
    return c;
  }

  #client(c: DateraCredentials): DateraApi {
    const key = [c.endpoint, c.username, c.tenant, c.ldapServer ?? '', createHash('sha256').update(c.password).digest('hex').slice(0, 16)].join('|');
    let client = this.#clients.get(key);
    if (!client) {
      client = this.#o.makeClient(c);
      this.#clients.set(key, client);
    }
    return client;
  }

  /**
   * The connection for a new volume: the class's Secret (or ours) and its tenant (or the class's).
   * A `secretName` without `secretNamespace` means the provisioner's own namespace. The claim's
   * namespace is never used to find credentials (`claimNamespace` is accepted for callers' sake
   * and ignored): a claim author must not be able to choose the Datera server.
   */
  async forProvision(opts: { secretName?: string | undefined; secretNamespace?: string | undefined; tenant?: string | undefined; claimNamespace?: string }): Promise<Connection> {
    const ref = provisionSecretRef(opts, this.#o.defaultSecret, this.homeNamespace);
    const c = await this.#credentials(ref);
    const tenant = opts.tenant ?? c.tenant;
    return { client: this.#client({ ...c, tenant }), endpoint: c.endpoint, tenant, secretRef: ref };
  }

  /** The connection for an existing PV: everything from the PV itself (class may be gone). */
  async forVolume(pv: V1PersistentVolume): Promise<Connection> {
    const flex = pv.spec?.flexVolume;
    const ref: SecretRef = flex?.secretRef?.name
      ? { name: flex.secretRef.name, namespace: flex.secretRef.namespace ?? this.#o.defaultSecret.namespace }
      : { ...this.#o.defaultSecret };
    const c = await this.#credentials(ref);
    // Credentials go only to the server their own Secret (or the provisioner's settings) names:
    // a PV whose options name another server is refused, never followed.
    const named = flex?.options?.backstoreServer;
    if (named && !sameEndpoint(named, c.endpoint)) {
      throw new CredentialsError(
        `PersistentVolume ${pv.metadata?.name ?? '?'} names Datera server "${named}" (options.backstoreServer), but its credentials (Secret ${ref.namespace}/${ref.name}) are for "${c.endpoint}"; refusing to send them to a server their Secret does not name`,
      );
    }
    const endpoint = c.endpoint;
    const tenant = flex?.options?.tenant ?? c.tenant;
    return { client: this.#client({ ...c, endpoint, tenant }), endpoint, tenant, secretRef: ref };
  }

  /** Drops cached Secret contents (a Secret changed). */
  invalidate(ref?: SecretRef): void {
    if (ref) this.#secrets.delete(`${ref.namespace}/${ref.name}`);
    else this.#secrets.clear();
  }

  async close(): Promise<void> {
    const all = [...this.#clients.values()];
    this.#clients.clear();
    await Promise.all(all.map((c) => c.close?.().catch(() => undefined)));
  }
}
