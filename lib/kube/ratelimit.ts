// SPDX-License-Identifier: Apache-2.0
// Client-side pacing of Kubernetes requests: client-go's token bucket (QPS/burst). Every non-watch
// request to the API server waits here first.
import { sleep as defaultSleep } from '../backoff.js';

/**
 * Token bucket with the semantics of client-go's `flowcontrol.NewTokenBucketRateLimiter`
 * (golang.org/x/time/rate): the bucket holds at most `burst` tokens and refills at `qps`
 * tokens per second; each request takes one token, and when none is left the request reserves
 * the next one and waits for it, so waiters are served in arrival order. `qps <= 0` disables
 * limiting.
 */
export class RateLimiter {
  readonly qps: number;
  readonly burst: number;
  readonly #now: () => number;
  readonly #sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  #tokens: number;
  #last: number;

  /**
   * @param now monotonic clock in ms (default performance.now)
   * @param sleep wait function (default lib/backoff.ts `sleep`; a fake in tests)
   */
  constructor(
    qps: number,
    burst: number,
    now: () => number = () => performance.now(),
    sleep: (ms: number, signal?: AbortSignal) => Promise<void> = defaultSleep,
  ) {
    this.qps = qps;
    this.burst = Math.max(1, Math.floor(burst));
    this.#now = now;
    this.#sleep = sleep;
    this.#tokens = this.burst;
    this.#last = now();
  }

  get enabled(): boolean {
    return this.qps > 0;
  }

  /** Tokens available now (negative when requests are queued). For tests and metrics. */
  get tokens(): number {
    this.#advance();
    return this.#tokens;
  }

  /**
   * Resolves when the caller may send one request. Rejects with the signal's reason if `signal`
   * aborts first, returning the reserved token.
   */
  async acquire(signal?: AbortSignal): Promise<void> {
    if (this.qps <= 0) return;
    signal?.throwIfAborted();
    this.#advance();
    this.#tokens -= 1;
    if (this.#tokens >= 0) return;
    const waitMs = (-this.#tokens / this.qps) * 1000;
    try {
      await raceSignal(this.#sleep(waitMs, signal), signal);
    } catch (err) {
      this.#advance();
      this.#tokens = Math.min(this.burst, this.#tokens + 1);
      throw err;
    }
  }

  #advance(): void {
    const t = this.#now();
    const elapsed = t - this.#last;
    if (elapsed > 0) {
      this.#tokens = Math.min(this.burst, this.#tokens + (elapsed / 1000) * this.qps);
      this.#last = t;
    }
  }
}

/** Resolves/rejects with `p`, or rejects when `signal` aborts first (for sleeps that ignore signals). */
function raceSignal(p: Promise<void>, signal?: AbortSignal): Promise<void> {
  if (!signal) return p;
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      () => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

