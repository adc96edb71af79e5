// SPDX-License-Identifier: Apache-2.0
// A keyed work queue with N workers: a key is handled by at most one worker at a time; adding a
// key that is queued already is a no-op; adding a key that is being handled marks it dirty so it
// runs once more afterwards. Each key has its own exponential backoff (lib/backoff.ts). Reports
// client-go's workqueue metrics through an optional observer and `state()`.
import { backoffDelay } from '../backoff.js';
import type { QueueObserver, QueueState } from '../observability/metrics.js';

/** What a handler asks for next. */
export type Outcome =
  /** Finished; forget the key's failures. */
  | { kind: 'done' }
  /** Failed; retry after the key's next backoff step (base doubling to max, with jitter). */
  | { kind: 'retry'; error?: unknown }
  /** Check again after a fixed delay, without counting a failure (e.g. final errors, waiting). */
  | { kind: 'requeueAfter'; ms: number };

export interface QueueOptions {
  workers: number;
  baseMs: number;
  maxMs: number;
  handler: (key: string) => Promise<Outcome>;
  /** Called when a handler throws; the key is then retried with backoff. */
  onError?: (key: string, err: unknown) => void;
  random?: () => number;
  /** Told of adds, starts, finishes and retries (metrics). */
  observer?: QueueObserver;
  /** Monotonic clock in ms for wait and work durations (tests). Default performance.now. */
  now?: () => number;
}

export class WorkQueue {
  readonly #opts: QueueOptions;
  readonly #pending: string[] = [];
  #head = 0;
  readonly #queued = new Set<string>();
  /** Keys being handled -> when their handler started (`now()` ms). */
  readonly #active = new Map<string, number>();
  readonly #dirty = new Set<string>();
  /** Keys waiting (queued or dirty) -> when they started waiting (`now()` ms). */
  readonly #addedAt = new Map<string, number>();
  readonly #now: () => number;
  readonly #failures = new Map<string, number>();
  readonly #timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  #running = 0;
  #started = false;
  #stopped = false;
  #idleWaiters: Array<() => void> = [];

  constructor(opts: QueueOptions) {
    this.#opts = opts;
    this.#now = opts.now ?? (() => performance.now());
  }

  /** Keys waiting for a worker: queued ones, and ones in progress marked to run again (client-go's depth; delayed keys do not count). */
  get depth(): number {
    return this.#queued.size + this.#dirty.size;
  }
  get delayed(): number {
    return this.#timers.size;
  }
  failures(key: string): number {
    return this.#failures.get(key) ?? 0;
  }

  /** The state the metrics read at scrape time. */
  state(): QueueState {
    const now = this.#now();
    let unfinished = 0;
    let longest = 0;
    for (const started of this.#active.values()) {
      const running = Math.max(0, (now - started) / 1000);
      unfinished += running;
      if (running > longest) longest = running;
    }
    return { depth: this.depth, delayed: this.delayed, unfinishedSeconds: unfinished, longestRunningSeconds: longest };
  }

  add(key: string): void {
    this.#add(key, true);
  }

  /** `fresh`: false when re-queueing a key whose add was counted when it was marked dirty. */
  #add(key: string, fresh: boolean): void {
    if (this.#stopped) {
      this.#addedAt.delete(key);
      return;
    }
    const t = this.#timers.get(key);
    if (t) {
      clearTimeout(t.timer);
      this.#timers.delete(key);
    }
    if (this.#active.has(key)) {
      if (!this.#dirty.has(key)) {
        this.#dirty.add(key);
        this.#added(key);
      }
      return;
    }
    if (this.#queued.has(key)) return;
    if (fresh) this.#added(key);
    this.#queued.add(key);
    this.#pending.push(key);
    this.#pump();
  }

  /** Adds the key after `ms`; an earlier pending delay for the key wins. */
  addAfter(key: string, ms: number): void {
    if (this.#stopped) return;
    if (ms <= 0) return this.add(key);
    if (this.#queued.has(key)) return;
    const at = Date.now() + ms;
    const existing = this.#timers.get(key);
    if (existing && existing.at <= at) return;
    if (existing) clearTimeout(existing.timer);
    const timer = setTimeout(() => {
      this.#timers.delete(key);
      this.add(key);
    }, ms);
    timer.unref?.();
    this.#timers.set(key, { at, timer });
  }

  /** Forgets a key's failures and any delayed retry (the object is gone). */
  forget(key: string): void {
    this.#failures.delete(key);
    const t = this.#timers.get(key);
    if (t) {
      clearTimeout(t.timer);
      this.#timers.delete(key);
    }
  }

  #added(key: string): void {
    if (!this.#addedAt.has(key)) this.#addedAt.set(key, this.#now());
    this.#opts.observer?.added();
  }

  /** Starts handling keys (keys added before are kept). */
  start(): void {
    this.#started = true;
    this.#pump();
  }

  /** Stops taking keys, cancels delayed ones, and waits for handlers in progress. */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const t of this.#timers.values()) clearTimeout(t.timer);
    this.#timers.clear();
    await this.idle();
  }

  /** Resolves when no handler is running and nothing is queued (delayed keys do not count). */
  idle(): Promise<void> {
    if (this.#running === 0 && (this.#stopped || this.#queued.size === 0 || !this.#started)) return Promise.resolve();
    return new Promise((r) => this.#idleWaiters.push(r));
  }

  /**
   * Backoff for the n-th consecutive failure (1-based): base * 2^(n-1), capped, with +-20% jitter
   * (client-go's per-item exponential failure rate limiter, plus the jitter).
   */
  backoff(n: number): number {
    return backoffDelay(n, { initialMs: this.#opts.baseMs, maxMs: this.#opts.maxMs, jitter: 0.2, random: this.#opts.random });
  }

  #pump(): void {
    while (this.#started && !this.#stopped && this.#running < this.#opts.workers && this.#head < this.#pending.length) {
      const key = this.#pending[this.#head++]!;
      if (this.#head > 1024 && this.#head * 2 > this.#pending.length) {
        this.#pending.splice(0, this.#head);
        this.#head = 0;
      }
      this.#queued.delete(key);
      const now = this.#now();
      const since = this.#addedAt.get(key);
      if (since !== undefined) {
        this.#addedAt.delete(key);
        this.#opts.observer?.started(Math.max(0, (now - since) / 1000));
      }
      this.#active.set(key, now);
      this.#running++;
      void this.#run(key);
    }
    if (this.#running === 0 && (this.#queued.size === 0 || this.#stopped)) {
      const w = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const r of w) r();
    }
  }

  async #run(key: string): Promise<void> {
    let outcome: Outcome;
    try {
      outcome = await this.#opts.handler(key);
    } catch (err) {
      this.#opts.onError?.(key, err);
      outcome = { kind: 'retry', error: err };
    }
    const started = this.#active.get(key)!;
    this.#active.delete(key);
    this.#running--;
    this.#opts.observer?.finished(Math.max(0, (this.#now() - started) / 1000));
    const dirty = this.#dirty.delete(key);
    switch (outcome.kind) {
      case 'done':
        this.#failures.delete(key);
        if (dirty) this.#add(key, false);
        break;
      case 'retry': {
        const n = (this.#failures.get(key) ?? 0) + 1;
        this.#failures.set(key, n);
        // A change that arrived meanwhile is handled by the retry; no immediate rerun (that would defeat backoff).
        if (dirty) this.#addedAt.delete(key);
        this.#opts.observer?.retried();
        this.addAfter(key, this.backoff(n));
        break;
      }
      case 'requeueAfter':
        if (dirty) this.#add(key, false);
        else this.addAfter(key, outcome.ms);
        break;
    }
    this.#pump();
  }
}
