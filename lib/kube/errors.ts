// SPDX-License-Identifier: Apache-2.0
// Classifying errors from the Kubernetes API (KubeRest and @kubernetes/client-node 1.4.0).
// `isKubeNotFound` and `isKubeConflict` are named for Kubernetes because lib/datera/errors.ts has
// predicates for Datera's 404 and 409 (whose 409 means what `isAlreadyExists` means here).
// Kubernetes API errors are never final (lib/errors.ts): a failed request is retried with backoff
// (credentials.ts turns a 403 on a credentials Secret into a final CredentialsError).
//
// Contract: every helper accepts `unknown` and never throws. In 1.4.0 a non-2xx reply from a
// typed call throws `ApiException` whose `body` is the raw response text (a JSON `Status`, or
// undefined for some 401s); `Watch` reports a non-200 reply as a plain `Error` with a numeric
// `statusCode`; transport failures are node-fetch `FetchError` (type 'system') or `AbortError`
// (also what a request timeout looks like).
import { ApiException } from '@kubernetes/client-node';

/** What callers and logs need from a failed API request. Never includes response headers. */
export interface ApiStatus {
  /** HTTP status code. */
  code: number;
  /** `Status.reason`, e.g. 'NotFound', 'AlreadyExists', 'Conflict', 'Expired'. */
  reason?: string;
  /** `Status.message`, human readable. */
  message?: string;
}

interface StatusLike {
  code?: unknown;
  reason?: unknown;
  message?: unknown;
}

function parseStatusBody(body: unknown): StatusLike | undefined {
  if (typeof body === 'string') {
    if (body.length === 0 || body[0] !== '{') return undefined;
    try {
      const parsed: unknown = JSON.parse(body);
      return parsed !== null && typeof parsed === 'object' ? (parsed as StatusLike) : undefined;
    } catch {
      return undefined;
    }
  }
  if (body !== null && typeof body === 'object') return body as StatusLike;
  return undefined;
}

function isApiException(err: unknown): err is ApiException<unknown> {
  if (err instanceof ApiException) return true;
  // Duck-typed so that a second copy of the package (or a re-thrown clone) still classifies.
  if (err === null || typeof err !== 'object') return false;
  const e = err as Record<string, unknown>;
  return typeof e.code === 'number' && 'body' in e && 'headers' in e;
}

/**
 * The HTTP status of a failed Kubernetes request, or undefined for anything that is not an HTTP
 * reply (transport errors, programming errors).
 *
 * Understands `ApiException` (body parsed from its raw string), `Watch` errors
 * (`{statusCode}`), and a `V1Status` object itself (as delivered by a watch ERROR event).
 */
export function statusOf(err: unknown): ApiStatus | undefined {
  if (err === null || typeof err !== 'object') return undefined;
  if (isApiException(err)) {
    const s = parseStatusBody(err.body);
    return compact(err.code, s);
  }
  const e = err as Record<string, unknown>;
  if (typeof e.statusCode === 'number') {
    // Watch: `Error(statusText)` with statusCode and no body; the informer adds `reason` for
    // watch ERROR events.
    return compact(e.statusCode, { reason: e.reason, message: e.message });
  }
  if (e.kind === 'Status' && typeof e.code === 'number') {
    return compact(e.code, e as StatusLike);
  }
  return undefined;
}

function compact(code: number, s: StatusLike | undefined): ApiStatus {
  const out: ApiStatus = { code };
  if (typeof s?.reason === 'string' && s.reason) out.reason = s.reason;
  if (typeof s?.message === 'string' && s.message) out.message = s.message;
  return out;
}

/** 404: the object (or the namespace) does not exist. */
export function isKubeNotFound(err: unknown): boolean {
  return statusOf(err)?.code === 404;
}

/** 409 AlreadyExists: a create hit an existing object with the same name. */
export function isAlreadyExists(err: unknown): boolean {
  const s = statusOf(err);
  return s?.code === 409 && s.reason === 'AlreadyExists';
}

/**
 * 409 Conflict: an update carried a stale resourceVersion (optimistic concurrency lost).
 * A 409 without a parseable reason is treated as a conflict too, because that is what every
 * write with a resourceVersion means by it; creates should test `isAlreadyExists` first.
 */
export function isKubeConflict(err: unknown): boolean {
  const s = statusOf(err);
  return s?.code === 409 && s.reason !== 'AlreadyExists';
}

/** 410 Gone / reason Expired: the resourceVersion is too old; a watch must relist. */
export function isGone(err: unknown): boolean {
  const s = statusOf(err);
  return s?.code === 410 || s?.reason === 'Expired' || s?.reason === 'Gone';
}

const TRANSIENT_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EHOSTDOWN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ERR_STREAM_PREMATURE_CLOSE',
]);

/**
 * True when retrying the same request later may succeed: 5xx, 429 Too Many Requests, request
 * timeouts (which surface as AbortError / TimeoutError) and network errors. 4xx other than 429
 * (including 409) are not transient: the request itself must change.
 */
export function isTransient(err: unknown): boolean {
  const s = statusOf(err);
  if (s) return s.code >= 500 || s.code === 429;
  if (err === null || typeof err !== 'object') return false;
  const e = err as Record<string, unknown>;
  if (e.name === 'AbortError' || e.name === 'TimeoutError') return true;
  if (e.name === 'FetchError') {
    // node-fetch: 'system' (socket errors), 'request-timeout', 'body-timeout' are transport-level.
    return e.type === 'system' || e.type === 'request-timeout' || e.type === 'body-timeout';
  }
  if (typeof e.code === 'string' && TRANSIENT_CODES.has(e.code)) return true;
  const cause = e.cause;
  if (cause && cause !== err && typeof cause === 'object') return isTransient(cause);
  return false;
}

/**
 * A compact, header-free description of an error for structured logs (`ApiException.message`
 * embeds every response header, so never log it directly).
 */
export function describeError(err: unknown): Record<string, unknown> {
  const s = statusOf(err);
  if (s) return { ...s };
  if (err instanceof Error) {
    const e = err as Error & { code?: unknown; type?: unknown };
    const out: Record<string, unknown> = { name: e.name, message: e.message };
    if (e.code !== undefined) out.code = e.code;
    if (e.type !== undefined) out.type = e.type;
    return out;
  }
  return { message: String(err) };
}
