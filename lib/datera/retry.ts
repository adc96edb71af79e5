// SPDX-License-Identifier: Apache-2.0
// Retry policy of the Datera client: whether a failed exchange may be repeated at all. Pure
// functions; the transport owns the loop, and its waits come from lib/backoff.ts.

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
