// SPDX-License-Identifier: Apache-2.0
// The benchmark driver's own Kubernetes client: plain REST over undici with keep-alive, so the
// driver spends as little CPU as possible on the 2 cores it shares with the control plane and the
// contenders. It is not the provisioner's client (lib/kube) on purpose: the driver must not
// inherit the behaviour it measures.
import { Agent, type Dispatcher, request } from 'undici';

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    annotations?: Record<string, string>;
    finalizers?: string[];
    deletionTimestamp?: string;
    [k: string]: unknown;
  };
  spec?: any;
  status?: any;
  [k: string]: unknown;
}

export class KubeError extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
    what: string,
  ) {
    super(`${what}: HTTP ${status}: ${body.slice(0, 300)}`);
    this.name = 'KubeError';
  }
}

export class Kube {
  readonly #server: string;
  readonly #token: string;
  readonly #agent: Dispatcher;

  constructor(server: string, token: string, connections = 64) {
    this.#server = server;
    this.#token = token;
    this.#agent = new Agent({
      connections,
      keepAliveTimeout: 60_000,
      connect: { rejectUnauthorized: false }, // loopback test plane with a self-signed certificate
      headersTimeout: 0,
      bodyTimeout: 0,
    });
  }

  async close(): Promise<void> {
    await this.#agent.close();
  }

  /** One request; JSON in and out. Throws KubeError for a status outside 2xx. */
  async req<T = any>(method: string, path: string, body?: unknown, contentType = 'application/json', timeoutMs = 60_000): Promise<T> {
    const res = await request(this.#server + path, {
      method: method as Dispatcher.HttpMethod,
      dispatcher: this.#agent,
      headers: {
        authorization: `Bearer ${this.#token}`,
        accept: 'application/json',
        'user-agent': 'datera-bench-driver',
        ...(body !== undefined ? { 'content-type': contentType } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.body.text();
    if (res.statusCode < 200 || res.statusCode >= 300) throw new KubeError(res.statusCode, text, `${method} ${path}`);
    if (!text) return undefined as T;
    return (/^\s*[[{]/.test(text) ? JSON.parse(text) : text) as T; // /readyz answers plain "ok"
  }

  /** Lists a collection in pages; returns the items and the list's resourceVersion. */
  async list<T = KubeObject>(path: string, query = ''): Promise<{ items: T[]; resourceVersion: string }> {
    const items: T[] = [];
    let cont = '';
    let rv: string;
    do {
      const q = new URLSearchParams(query);
      q.set('limit', '2000');
      if (cont) q.set('continue', cont);
      const page = await this.req<{ items: T[]; metadata: { continue?: string; resourceVersion: string } }>('GET', `${path}?${q}`);
      items.push(...page.items);
      cont = page.metadata.continue ?? '';
      rv = page.metadata.resourceVersion;
    } while (cont);
    return { items, resourceVersion: rv };
  }

  /**
   * One watch from `resourceVersion` until the server ends it, `signal` aborts, or a transport
   * error. Resolves with the last resourceVersion seen; rejects with KubeError(410) when the
   * version is too old.
   */
  async watchOnce(path: string, resourceVersion: string, onEvent: (type: string, obj: KubeObject) => void, signal: AbortSignal, query = ''): Promise<string> {
    const q = new URLSearchParams(query);
    q.set('watch', 'true');
    q.set('allowWatchBookmarks', 'true');
    q.set('resourceVersion', resourceVersion);
    q.set('timeoutSeconds', '600');
    const res = await request(`${this.#server}${path}?${q}`, {
      method: 'GET',
      dispatcher: this.#agent,
      headers: { authorization: `Bearer ${this.#token}`, accept: 'application/json', 'user-agent': 'datera-bench-driver' },
      signal,
    });
    if (res.statusCode !== 200) throw new KubeError(res.statusCode, await res.body.text(), `watch ${path}`);
    let rv = resourceVersion;
    let buf = '';
    for await (const chunk of res.body) {
      buf += (chunk as Buffer).toString('utf8');
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (!line.trim()) continue;
        const ev = JSON.parse(line) as { type: string; object: KubeObject & { code?: number } };
        if (ev.type === 'ERROR') {
          throw new KubeError(ev.object.code ?? 500, JSON.stringify(ev.object), `watch ${path}`);
        }
        rv = ev.object.metadata?.resourceVersion ?? rv;
        if (ev.type !== 'BOOKMARK') onEvent(ev.type, ev.object);
      }
    }
    return rv;
  }
}

/**
 * A list+watch mirror of one collection that survives API server restarts: on any watch failure
 * it relists (emitting every listed object as an upsert and the vanished ones as deletes) and
 * watches again. `onUpsert`/`onDelete` run on the event path.
 */
export class Mirror {
  readonly objects = new Map<string, KubeObject>();
  readonly #abort = new AbortController();
  #running: Promise<void> | undefined;
  #synced!: Promise<void>;
  restarts = 0;

  constructor(
    private readonly kube: Kube,
    private readonly path: string,
    private readonly handlers: { onUpsert?: (o: KubeObject) => void; onDelete?: (o: KubeObject) => void } = {},
    private readonly query = '',
  ) {}

  /** Starts; resolves once the first list is in. */
  start(): Promise<void> {
    let syncedResolve!: () => void;
    this.#synced = new Promise((r) => (syncedResolve = r));
    this.#running = this.#loop(syncedResolve);
    return this.#synced;
  }

  async #relist(): Promise<string> {
    const { items, resourceVersion } = await this.kube.list(this.path, this.query);
    const seen = new Set<string>();
    for (const o of items) {
      seen.add(o.metadata.name);
      this.objects.set(o.metadata.name, o);
      this.handlers.onUpsert?.(o);
    }
    for (const [name, o] of this.objects) {
      if (!seen.has(name)) {
        this.objects.delete(name);
        this.handlers.onDelete?.(o);
      }
    }
    return resourceVersion;
  }

  async #loop(synced: () => void): Promise<void> {
    let rv = '';
    let first = true;
    while (!this.#abort.signal.aborted) {
      try {
        if (!rv) {
          rv = await this.#relist();
          if (first) synced();
          first = false;
        }
        rv = await this.kube.watchOnce(
          this.path,
          rv,
          (type, o) => {
            if (type === 'DELETED') {
              this.objects.delete(o.metadata.name);
              this.handlers.onDelete?.(o);
            } else {
              this.objects.set(o.metadata.name, o);
              this.handlers.onUpsert?.(o);
            }
          },
          this.#abort.signal,
          this.query,
        );
      } catch {
        if (this.#abort.signal.aborted) return;
        this.restarts++;
        rv = ''; // relist: covers 410 Gone and everything missed while the server was away
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    await this.#running?.catch(() => undefined);
  }
}

/** Runs `fn` over `items` with at most `limit` in flight; resolves when all are done. */
export async function pool<T>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** Retries `fn` on transport errors and 5xx/429 (API server restarting) until it succeeds or `ms` pass. */
export async function retrying<T>(fn: () => Promise<T>, ms = 120_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const status = err instanceof KubeError ? err.status : 0;
      const retryable = status === 0 || status === 429 || status >= 500;
      if (!retryable || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, Math.min(2000, 100 * 2 ** attempt)));
    }
  }
}
