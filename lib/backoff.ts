// SPDX-License-Identifier: Apache-2.0
// Retry pacing for every loop that waits after a failure: the one capped exponential backoff
// formula (each caller keeps its own numbers) and the one abortable sleep.
//
// Users and their numbers: the work queue (per key; retryInitialMs..retryMaxMs, +-20 % jitter),
// the informer (per watch; 1 s..30 s, +-20 % jitter) and the Datera client (per call; 250 ms..
// 10 s, full jitter).
import { setTimeout as timer } from 'node:timers/promises';

/** Capped exponential backoff: `initialMs * factor^(failures-1)`, capped at `maxMs`, then jittered. */
export interface Backoff {
  /** Delay after the first failure, before jitter (ms). */
  initialMs: number;
  /** Cap of every delay, before and after jitter (ms). */
  maxMs: number;
  /** Growth per further failure. Default 2. */
  factor?: number;
  /**
   * How a draw r from `random` spreads the capped delay d:
   * - absent or 0: exactly d;
   * - a fraction j in (0, 1): d * (1 - j + 2jr), i.e. uniform in [d(1-j), d(1+j)), capped at
   *   `maxMs` again and rounded to whole ms;
   * - 'full': d * r, uniform in [0, d) ("full jitter", r clamped to [0, 1], NaN counts as 0),
   *   floored to whole ms. Spreads a burst of clients that all saw the same failure.
   */
  jitter?: number | 'full';
  /** Uniform source in [0, 1). Default Math.random. */
  random?: () => number;
}

/**
 * The wait before the next attempt after `failures` consecutive failures (1 = the first).
 * Values below 1 count as 1; the exponent stops growing after 30 steps.
 *
 * client-go: without jitter this is workqueue's `ItemExponentialFailureRateLimiter(initial, max)`
 * (which waits `base * 2^n` after the (n+1)-th failure of an item). With a fraction `j` it differs
 * from `wait.Backoff{Duration, Factor, Jitter, Cap}`: client-go's jitter only lengthens the delay
 * (`d + r*j*d`), this one spreads it both ways.
 */
export function backoffDelay(failures: number, b: Backoff): number {
  const steps = Math.min(Math.max(failures - 1, 0), 30);
  const capped = Math.min(b.maxMs, b.initialMs * (b.factor ?? 2) ** steps);
  const jitter = b.jitter ?? 0;
  if (jitter === 0) return capped;
  const r = (b.random ?? Math.random)();
  if (jitter === 'full') {
    const unit = Number.isFinite(r) ? Math.min(Math.max(r, 0), 1) : 0;
    return Math.floor(capped * unit);
  }
  return Math.min(b.maxMs, Math.round(capped * (1 - jitter + 2 * jitter * r)));
}

/**
 * Resolves after `ms`. Rejects with the signal's own reason (not Node's AbortError) as soon as
 * `signal` aborts, at once if it already has; callers tell a stop from a failure by that reason.
 */
export async function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  try {
    await timer(ms, undefined, signal ? { signal } : undefined);
  } catch (err) {
    if (signal?.aborted) throw signal.reason;
    throw err;
  }
}
