// SPDX-License-Identifier: Apache-2.0
// A list+watch cache that keeps itself alive.
//
// Built on a streaming watch (lib/kube/rest.ts; one GET per watch), replacing client-node's
// `ListWatch`, which in 1.4.0 stops for good on any error other than 410, never bounds a watch,
// has no watchdog for half-open connections and no resync. Guarantees:
// - `start()` resolves once the initial list is in the cache; it keeps retrying a failing list
//   with backoff and rejects only if `stop()` comes first.
// - Every watch is bounded (`timeoutSeconds`, jittered) and asks for bookmarks. A clean end
//   re-watches from the last resourceVersion without a relist.
// - 410 Gone (HTTP or ERROR event) relists; the relist is diffed against the cache, emitting
//   `add`/`update` for new or changed objects and `delete` for vanished ones.
// - Any other failure (HTTP 5xx, network, list failure, silent stream) restarts with capped
//   exponential backoff (1 s -> 30 s, +-20 %, lib/backoff.ts). The informer never gives up
//   until `stop()`.
// - Every `resyncPeriodMs` each cached object is re-delivered as `update(obj, obj)`.
// Hazards: a `delete` can be missed only in the sense that it arrives as a relist diff, never
// dropped; handlers run synchronously on the event path, so they must be cheap (enqueue a key).
// Objects are the parsed JSON from the server, shared with the cache: treat them as read-only.
// Objects from the list carry `Date` timestamps; objects from watches carry strings. Read
// timestamps with `toDate`/`creationTime`.
import type { KubernetesObject } from '@kubernetes/client-node';
import { type Backoff, backoffDelay, sleep } from '../backoff.js';
import { nullLogger, type Logger } from '../observability/logger.js';
import { describeError, isGone, statusOf } from './errors.js';

export type InformerEvent = 'add' | 'update' | 'delete';

/** A streaming watch with the contract of client-node's `Watch.watch` (KubeRest's, or `Watch` in specs). */
export interface WatchLike {
  watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- client-node's Watch declares these any; specs pass it as is
    callback: (phase: string, apiObj: any, watchObj?: any) => void,
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- as above
    done: (err: any) => void,
  ): Promise<AbortController>;
}

export interface InformerOptions<T> {
  /** Collection path to watch, e.g. '/api/v1/persistentvolumeclaims'. */
  path: string;
  /** Lists the collection; must apply the same selectors as `fieldSelector`/`labelSelector`. */
  list: () => Promise<{ items: T[]; metadata?: { resourceVersion?: string } }>;
  fieldSelector?: string;
  labelSelector?: string;
  /** Re-deliver every cached object as `update` this often. Default 15 min; 0 disables. */
  resyncPeriodMs?: number;
  /** Server-side bound of each watch, before jitter (up to +25 %). Default 300. */
  watchTimeoutSeconds?: number;
  logger?: Logger;
  /** Used in logs, e.g. 'pvc'. */
  name: string;

  /** The watch transport (KubeRest in the process). */
  watch: WatchLike;
  /** First retry delay after a failure. Default 1000. */
  backoffInitialMs?: number;
  /** Cap of the retry delay. Default 30 000. */
  backoffMaxMs?: number;
  /** A watch with no event and no (re)connect for this long is restarted. Default: the
   * watch's own timeoutSeconds + 30 s. */
  stallTimeoutMs?: number;
  /** Random source for jitter (tests). Default Math.random. */
  random?: () => number;
  /** Wall clock for `lastSyncAt` (ms). Default Date.now. */
  now?: () => number;
  /**
   * Applied to every object before it enters the cache (list items and watch events), like
   * client-go's SetTransform: drop what the handlers never read (managedFields) to save memory.
   * Must keep metadata (name, namespace, uid, resourceVersion).
   */
  transform?: (obj: T) => T;
  /** Called for each failure that causes a retry (metrics). Never for a clean watch end. */
  onError?: (err: unknown, phase: 'list' | 'watch') => void;
}

type Handler<T> = (obj: T, old?: T) => void;

/**
 * What a consumer reads from an informer: the cache and its events. `Informer` implements it;
 * specs pass a fake fed by the test. Objects are shared with the cache: read-only.
 */
export interface InformerLike<T> {
  /** The cached object, by name (and namespace for namespaced kinds). */
  get(name: string, namespace?: string): T | undefined;
  /** All cached objects, or those of one namespace. */
  list(namespace?: string): T[];
  /** Registers a handler; `update` receives (new, old). Handlers run on the event path: keep them cheap. */
  on(ev: InformerEvent, fn: (obj: T, old?: T) => void): void;
}

/** Rejection of `start()` when `stop()` is called before the first list succeeded. */
export class InformerStoppedError extends Error {
  readonly code = 'INFORMER_STOPPED';
  constructor(name: string) {
    super(`informer ${name} stopped before its initial list completed`);
    this.name = 'InformerStoppedError';
  }
}

/** The watch delivered nothing for longer than its stall timeout. Retryable. */
export class WatchStalledError extends Error {
  readonly code = 'WATCH_STALLED';
  constructor(name: string, idleMs: number) {
    super(`informer ${name}: watch silent for ${Math.round(idleMs)} ms`);
    this.name = 'WatchStalledError';
  }
}

/** A watch ERROR event, carrying the Status so `statusOf`/`isGone` classify it. */
class WatchEventError extends Error {
  readonly code = 'WATCH_ERROR_EVENT';
  readonly statusCode: number;
  readonly reason: string | undefined;
  constructor(status: { code: number; reason?: string | undefined; message?: string | undefined }) {
    super(`watch ERROR event: ${status.code} ${status.reason ?? ''} ${status.message ?? ''}`.trim());
    this.name = 'WatchEventError';
    this.statusCode = status.code;
    this.reason = status.reason;
  }
}

/** A timestamp field from the cache as a Date (list objects hold Dates, watch objects strings). */
export function toDate(value: Date | string | undefined | null): Date | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const d = value instanceof Date ? value : new Date(value);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

/** `metadata.creationTimestamp` as a Date; the epoch when absent or unparseable. */
export function creationTime(obj: KubernetesObject): Date {
  return toDate(obj.metadata?.creationTimestamp as Date | string | undefined) ?? new Date(0);
}

/** Cache key: 'namespace/name' for namespaced objects, 'name' otherwise. */
function objectKey(obj: KubernetesObject): string {
  const ns = obj.metadata?.namespace;
  const name = obj.metadata?.name ?? '';
  return ns ? `${ns}/${name}` : name;
}

interface WatchOutcome {
  events: number;
  durationMs: number;
}

let sharedNullLogger: Logger | undefined;

/**
 * `p`, or undefined as soon as `signal` aborts (a hung list must not delay `stop()`); a later
 * rejection of `p` is swallowed.
 */
function untilAborted<R>(p: Promise<R>, signal: AbortSignal): Promise<R | undefined> {
  p.catch(() => undefined);
  if (signal.aborted) return Promise.resolve(undefined);
  return new Promise<R | undefined>((resolve, reject) => {
    const onAbort = () => resolve(undefined);
    signal.addEventListener('abort', onAbort, { once: true });
    p.finally(() => signal.removeEventListener('abort', onAbort)).then(resolve, reject);
  });
}

export class Informer<T extends KubernetesObject> implements InformerLike<T> {
  readonly name: string;
  readonly #opts: InformerOptions<T>;
  readonly #watch: WatchLike;
  readonly #log: Logger;
  readonly #random: () => number;
  /** Waits between failed lists and watches. */
  readonly #retry: Backoff;
  readonly #now: () => number;
  readonly #handlers: Record<InformerEvent, Handler<T>[]> = { add: [], update: [], delete: [] };

  #cache = new Map<string, T>();
  #rv: string | undefined;
  #synced = false;
  #lastSyncAt = 0;
  #failures = 0;

  #stop: AbortController | undefined;
  #startPromise: Promise<void> | undefined;
  #settleStart: { resolve: () => void; reject: (err: unknown) => void } | undefined;
  #resyncTimer: NodeJS.Timeout | undefined;
  #loop: Promise<void> | undefined;

  constructor(opts: InformerOptions<T>) {
    this.#opts = opts;
    this.name = opts.name;
    this.#watch = opts.watch;
    this.#log = (opts.logger ?? (sharedNullLogger ??= nullLogger())).child({ informer: opts.name });
    this.#random = opts.random ?? Math.random;
    this.#retry = { initialMs: opts.backoffInitialMs ?? 1000, maxMs: opts.backoffMaxMs ?? 30_000, jitter: 0.2, random: this.#random };
    this.#now = opts.now ?? Date.now;
  }

  /** Registers a handler. `update` receives (new, old); resync calls it with (obj, obj). */
  on(ev: InformerEvent, fn: (obj: T, old?: T) => void): void {
    this.#handlers[ev].push(fn);
  }

  /**
   * Starts list+watch. Resolves once the first list is in the cache (retrying failures with
   * backoff); rejects with `InformerStoppedError` if `stop()` comes first. Idempotent while
   * running. After `stop()`, a new `start()` relists and diffs against the kept cache.
   */
  start(): Promise<void> {
    if (this.#startPromise) return this.#startPromise;
    const stop = new AbortController();
    this.#stop = stop;
    this.#startPromise = new Promise<void>((resolve, reject) => {
      this.#settleStart = { resolve, reject };
    });
    // A caller that does not await start() must not crash the process on stop-before-sync.
    this.#startPromise.catch(() => undefined);
    const period = this.#opts.resyncPeriodMs ?? 15 * 60_000;
    if (period > 0) {
      this.#resyncTimer = setInterval(() => this.#resync(), period);
      this.#resyncTimer.unref?.();
    }
    this.#loop = this.#run(stop.signal).catch((err: unknown) => {
      // #run handles its own errors; this is a bug guard.
      this.#log.error('informer loop crashed', { err });
    });
    return this.#startPromise;
  }

  /** Stops watching. Leaves no timer or socket behind; the cache is kept but `synced` is false. */
  stop(): void {
    if (!this.#stop) return;
    this.#stop.abort();
    this.#stop = undefined;
    if (this.#resyncTimer) clearInterval(this.#resyncTimer);
    this.#resyncTimer = undefined;
    if (!this.#synced) this.#settleStart?.reject(new InformerStoppedError(this.name));
    this.#settleStart = undefined;
    this.#startPromise = undefined;
    this.#synced = false;
  }

  /** Resolves when the run loop of the last `start()` has fully exited (tests, shutdown). */
  async stopped(): Promise<void> {
    await this.#loop;
  }

  get(name: string, namespace?: string): T | undefined {
    return this.#cache.get(namespace ? `${namespace}/${name}` : name);
  }

  /** All cached objects. A fresh array; the objects are shared. */
  list(): T[] {
    return Array.from(this.#cache.values());
  }

  get size(): number {
    return this.#cache.size;
  }

  /** True once the initial list is cached, until `stop()`. */
  get synced(): boolean {
    return this.#synced;
  }

  /**
   * Wall-clock ms of the last sign that the cache is current: a successful list, a watch
   * (re)connect, event or bookmark, or a clean watch end. 0 before the first list. For
   * readiness: unhealthy if this is older than a few watch timeouts.
   */
  get lastSyncAt(): number {
    return this.#lastSyncAt;
  }

  /** The resourceVersion the next watch resumes from. */
  get resourceVersion(): string | undefined {
    return this.#rv;
  }

  // ---- the loop ------------------------------------------------------------------------------

  async #run(stop: AbortSignal): Promise<void> {
    let needList = true;
    let consecutiveGone = 0;
    while (!stop.aborted) {
      let phase: 'list' | 'watch' = needList ? 'list' : 'watch';
      try {
        if (needList) {
          await this.#relist(stop);
          if (stop.aborted) return;
          needList = false;
          this.#failures = 0;
        }
        phase = 'watch';
        const outcome = await this.#watchOnce(stop);
        if (stop.aborted) return;
        this.#touch();
        consecutiveGone = 0;
        if (outcome.events > 0 || outcome.durationMs >= 1000) {
          this.#failures = 0;
          this.#log.debug('watch ended; resuming', { resourceVersion: this.#rv, events: outcome.events });
          continue;
        }
        // Closed at once with nothing delivered: do not spin.
        await this.#backoff(stop, 'watch closed immediately');
      } catch (err) {
        if (stop.aborted) return;
        if (isGone(err)) {
          // Our resourceVersion is older than the server's history: relist. Repeated 410s right
          // after a relist (misbehaving server) get backoff instead of a tight loop.
          this.#log.info('resourceVersion expired; relisting', { resourceVersion: this.#rv });
          this.#rv = undefined;
          needList = true;
          if (++consecutiveGone > 1) await this.#backoff(stop, 'repeated 410 Gone', err, phase);
          continue;
        }
        await this.#backoff(stop, `${phase} failed`, err, phase);
      }
    }
  }

  /** Waits out the next step of the informer's backoff (+-20 % jitter); returns early on `stop`. */
  async #backoff(stop: AbortSignal, why: string, err?: unknown, phase?: 'list' | 'watch'): Promise<void> {
    const delay = backoffDelay(++this.#failures, this.#retry);
    if (err !== undefined) {
      this.#log.warn(`${why}; retrying`, { err: describeError(err), delayMs: delay, failures: this.#failures });
      if (this.#opts.onError && phase) {
        try {
          this.#opts.onError(err, phase);
        } catch {
          // metrics hook must not break the loop
        }
      }
    } else {
      this.#log.debug(`${why}; retrying`, { delayMs: delay });
    }
    await sleep(delay, stop).catch(() => undefined);
  }

  async #relist(stop: AbortSignal): Promise<void> {
    const res = await untilAborted(this.#opts.list(), stop);
    if (stop.aborted || !res) return;
    const items = res.items ?? [];
    const next = new Map<string, T>();
    const transform = this.#opts.transform;
    for (const item of items) {
      const obj = transform ? transform(item) : item;
      next.set(objectKey(obj), obj);
    }
    const old = this.#cache;
    this.#cache = next;
    this.#rv = res.metadata?.resourceVersion || undefined;
    if (!this.#rv) this.#log.warn('list returned no resourceVersion; the watch will replay current state');
    const firstSync = !this.#synced;
    this.#synced = true;
    this.#touch();
    this.#log.debug('listed', { count: next.size, resourceVersion: this.#rv });
    // Deliver after the cache is consistent, so handlers that read it see the new state.
    for (const [key, obj] of next) {
      const prev = old.get(key);
      if (prev === undefined) this.#emit('add', obj);
      else if (prev.metadata?.resourceVersion !== obj.metadata?.resourceVersion) this.#emit('update', obj, prev);
    }
    if (old.size > 0) {
      for (const [key, prev] of old) if (!next.has(key)) this.#emit('delete', prev);
    }
    if (firstSync) {
      this.#settleStart?.resolve();
    }
  }

  #watchOnce(stop: AbortSignal): Promise<WatchOutcome> {
    const base = this.#opts.watchTimeoutSeconds ?? 300;
    const timeoutSeconds = Math.max(1, Math.round(base * (1 + 0.25 * this.#random())));
    const stallMs = this.#opts.stallTimeoutMs ?? timeoutSeconds * 1000 + 30_000;
    const query: Record<string, string | number | boolean | undefined> = {
      allowWatchBookmarks: true,
      timeoutSeconds,
      resourceVersion: this.#rv,
      fieldSelector: this.#opts.fieldSelector,
      labelSelector: this.#opts.labelSelector,
    };
    return new Promise<WatchOutcome>((resolve, reject) => {
      const started = performance.now();
      let lastActivity = started;
      let events = 0;
      let settled = false;
      let controller: AbortController | undefined;
      let watchdog: NodeJS.Timeout | undefined;

      const finish = (err?: unknown) => {
        if (settled) return;
        settled = true;
        if (watchdog) clearTimeout(watchdog);
        stop.removeEventListener('abort', onStop);
        controller?.abort();
        if (err) reject(err as Error); // as the watch reported it (statusCode/reason are read by statusOf)
        else resolve({ events, durationMs: performance.now() - started });
      };
      const onStop = () => finish();
      const check = () => {
        if (settled) return;
        const idle = performance.now() - lastActivity;
        if (idle >= stallMs) {
          this.#log.warn('watch silent; restarting', { idleMs: Math.round(idle), resourceVersion: this.#rv });
          finish(new WatchStalledError(this.name, idle));
          return;
        }
        watchdog = setTimeout(check, stallMs - idle);
      };

      stop.addEventListener('abort', onStop, { once: true });
      watchdog = setTimeout(check, stallMs);

      this.#watch
        .watch(
          this.#opts.path,
          query,
          (type: string, obj: unknown) => {
            if (settled) return;
            lastActivity = performance.now();
            events++;
            try {
              this.#onWatchEvent(type, obj);
            } catch (err) {
              finish(err);
            }
          },
          (err: unknown) => finish(err ?? undefined),
        )
        .then(
          (ctrl) => {
            if (settled) {
              ctrl.abort(); // abandoned (stopped or stalled while connecting)
              return;
            }
            controller = ctrl;
            lastActivity = performance.now();
            this.#touch();
          },
          (err: unknown) => finish(err ?? new Error('watch failed')),
        );
    });
  }

  #onWatchEvent(type: string, raw: unknown): void {
    const transform = this.#opts.transform;
    const obj = transform && (type === 'ADDED' || type === 'MODIFIED' || type === 'DELETED') && raw ? transform(raw as T) : (raw as T);
    switch (type) {
      case 'ADDED':
      case 'MODIFIED': {
        const key = objectKey(obj);
        const prev = this.#cache.get(key);
        this.#cache.set(key, obj);
        this.#advance(obj);
        if (prev === undefined) this.#emit('add', obj);
        else this.#emit('update', obj, prev);
        return;
      }
      case 'DELETED': {
        const key = objectKey(obj);
        const prev = this.#cache.get(key);
        this.#cache.delete(key);
        this.#advance(obj);
        // The event carries the final state; fall back to the cached one if it is bare.
        this.#emit('delete', obj?.metadata ? obj : (prev ?? obj));
        return;
      }
      case 'BOOKMARK':
        this.#advance(obj);
        return;
      case 'ERROR': {
        const st = statusOf(raw) ?? { code: 500, message: 'watch ERROR event without a Status' };
        throw new WatchEventError(st);
      }
      default:
        this.#log.debug('ignoring watch event', { type });
    }
  }

  #advance(obj: KubernetesObject | undefined): void {
    const rv = obj?.metadata?.resourceVersion;
    if (rv) this.#rv = rv;
    this.#touch();
  }

  #touch(): void {
    this.#lastSyncAt = this.#now();
  }

  #resync(): void {
    if (!this.#synced) return;
    const handlers = this.#handlers.update;
    if (handlers.length === 0) return;
    this.#log.debug('resync', { count: this.#cache.size });
    // Snapshot: a handler may (wrongly) trigger cache changes; iteration stays well-defined.
    for (const obj of Array.from(this.#cache.values())) this.#emit('update', obj, obj);
  }

  #emit(ev: InformerEvent, obj: T, old?: T): void {
    for (const fn of this.#handlers[ev]) {
      try {
        fn(obj, old);
      } catch (err) {
        this.#log.error('informer handler threw', { event: ev, key: objectKey(obj), err });
      }
    }
  }
}
