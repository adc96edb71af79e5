// SPDX-License-Identifier: Apache-2.0
// Retry policy of the Datera client: how long to wait before the next attempt, and whether a
// failed exchange may be repeated at all. Pure functions; the client owns the loop.

/** Capped exponential backoff with full jitter. */
export interface BackoffPolicy {
  /** Ceiling of the first retry's wait. */
  baseMs: number;
  /** Ceiling of every later wait. */
  maxMs: number;
  /** Uniform source in [0, 1). */
  random: () => number;
}

/**
 * Wait before retry number `retry` (1 for the first retry): a uniform draw from
 * [0, min(maxMs, baseMs * 2^(retry-1))). Full jitter spreads a burst of clients that all saw
 * the same 503 instead of having them come back in lock step.
 */
export function backoffDelay(retry: number, policy: BackoffPolicy): number {
  const exponent = Math.min(Math.max(retry - 1, 0), 30);
  const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** exponent);
  const draw = policy.random();
  const unit = Number.isFinite(draw) ? Math.min(Math.max(draw, 0), 1) : 0;
  return Math.floor(ceiling * unit);
}

/** Resolves after `ms`, or rejects with the signal's reason as soon as `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * What a failed exchange (no HTTP status) tells us about the request:
 * - `not-sent`: the connection was never established, so the server cannot have acted on it;
 *   safe to repeat for every method.
 * - `maybe-sent`: the connection broke or stalled after the request may have reached the
 *   server; repeat only idempotent calls (or creates guarded by the 409 lookup).
 * - `final`: repeating will not help (TLS verification failure, unknown host, closed client).
 */
export type Delivery = 'not-sent' | 'maybe-sent' | 'final';

const NOT_SENT = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT']);
const MAYBE_SENT = new Set([
  'ECONNRESET',
  'EPIPE',
  'ECONNABORTED',
  'ETIMEDOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

/** The most telling error code in an error and its `cause` chain (undici wraps socket errors). */
export function transportCode(err: unknown): string | undefined {
  let first: string | undefined;
  let cur: unknown = err;
  for (let depth = 0; depth < 4 && cur !== null && typeof cur === 'object'; depth++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string') {
      if (NOT_SENT.has(code) || MAYBE_SENT.has(code)) return code;
      first ??= code;
    }
    cur = (cur as { cause?: unknown }).cause;
  }
  return first;
}

export function classifyTransportError(err: unknown): Delivery {
  const code = transportCode(err);
  if (code !== undefined && NOT_SENT.has(code)) return 'not-sent';
  if (code !== undefined && MAYBE_SENT.has(code)) return 'maybe-sent';
  return 'final';
}
