// SPDX-License-Identifier: Apache-2.0
// Reading Datera replies: the success envelope `{data, path, tenant, version, metadata}`, and
// error bodies `{name, code, http, message, errors}` turned into the typed errors of errors.ts.
import {
  AuthError,
  ConflictError,
  type DateraError,
  type DateraErrorBody,
  InternalError,
  InvalidRequestError,
  NotFoundError,
  UnavailableError,
  ValidationFailedError,
} from './errors.js';

/** Collection metadata of a v2.2 envelope (v2.1 only had `total`). */
export interface EnvelopeMetadata {
  total_count?: number;
  total?: number;
  limit?: number;
  offset?: number;
  request_count?: number;
  [key: string]: unknown;
}

export interface Envelope {
  data: unknown;
  metadata: EnvelopeMetadata;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Parses a reply body: JSON when it is JSON, the raw text otherwise, undefined when empty. */
export function parseBody(text: string): unknown {
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/**
 * Splits a success body into `data` and `metadata`. A body without `data` (the pre-v2.1 shape)
 * is taken as the data itself.
 */
export function unwrapEnvelope(body: unknown): Envelope {
  if (isRecord(body) && 'data' in body) {
    const metadata = isRecord(body.metadata) ? (body.metadata as EnvelopeMetadata) : {};
    return { data: body.data, metadata };
  }
  return { data: body, metadata: {} };
}

/** Total size of the collection a page came from, if the server said. */
export function totalOf(metadata: EnvelopeMetadata): number | undefined {
  const t = metadata.total_count ?? metadata.total;
  return typeof t === 'number' && Number.isFinite(t) ? t : undefined;
}

/** Collections are arrays from v2.1 on; v2 answered with objects keyed by name. */
export function itemsOf<T>(data: unknown): T[] {
  if (Array.isArray(data)) return data as T[];
  if (isRecord(data)) return Object.values(data) as T[];
  return [];
}

/** A 500 the server sends while it boots; retried exactly like a 503. */
const STILL_INITIALIZING = /still initializing/i;

type ErrorCtor = new (message: string, opts: ConstructorParameters<typeof DateraError>[2]) => DateraError;

/** Datera error names, mapped before the HTTP status is looked at. */
const BY_NAME: Record<string, ErrorCtor> = {
  AuthFailedError: AuthError,
  InvalidSessionKeyError: AuthError,
  NotFoundError,
  ConflictError,
  InvalidRequestError,
  InvalidRouteError: InvalidRequestError,
  ValidationFailedError,
  NotConnectedError: UnavailableError,
  InternalError,
  DatabaseError: InternalError,
};

function byStatus(status: number): ErrorCtor {
  switch (status) {
    case 401:
      return AuthError;
    case 404:
      return NotFoundError;
    case 409:
      return ConflictError;
    case 400:
    case 403:
    case 405:
      return InvalidRequestError;
    case 422:
      return ValidationFailedError;
    case 503:
      return UnavailableError;
    default:
      return status >= 500 ? InternalError : InvalidRequestError;
  }
}

/**
 * The typed error for a non-2xx reply. `operation` is "METHOD /path" (no version, no query);
 * `scrub` removes secrets from any text the server echoed back (messages may quote a value).
 * The request body is never included.
 */
export function errorFromReply(
  status: number,
  body: unknown,
  operation: string,
  scrub: (s: string) => string,
): DateraError {
  const b: DateraErrorBody = isRecord(body) ? (body as DateraErrorBody) : {};
  const apiName = typeof b.name === 'string' && b.name !== '' ? b.name : undefined;
  let apiMessage = '';
  if (typeof b.message === 'string') apiMessage = scrub(b.message);
  else if (typeof body === 'string') apiMessage = scrub(body.slice(0, 300));
  const details = Array.isArray(b.errors)
    ? b.errors.map((e: unknown) => scrub(typeof e === 'string' ? e : JSON.stringify(e)))
    : [];

  let Ctor: ErrorCtor;
  if (status === 500 && STILL_INITIALIZING.test(apiMessage)) Ctor = UnavailableError;
  else Ctor = (apiName !== undefined ? BY_NAME[apiName] : undefined) ?? byStatus(status);

  let message = `${operation} failed: HTTP ${status}`;
  if (apiName !== undefined) message += ` ${apiName}`;
  if (apiMessage !== '') message += `: ${apiMessage}`;
  if (details.length > 0) message += ` [${details.join('; ')}]`;
  return new Ctor(message, { status, apiName, details, operation });
}

/** Replaces every occurrence of each secret in `text` (secrets shorter than 3 chars are ignored). */
export function scrubSecrets(text: string, secrets: Iterable<string>): string {
  let out = text;
  for (const s of secrets) {
    if (s.length >= 3 && out.includes(s)) out = out.split(s).join('[REDACTED]');
  }
  return out;
}

const SECRET_FIELD = /^(password|passwd|pswd|initiator_pswd|target_pswd|secret|secret_key|access_key|key|token)$/i;

/** String values of secret-looking fields anywhere in a request body (CHAP passwords, keys). */
export function secretValues(body: unknown, out: string[] = [], depth = 0): string[] {
  if (depth > 8 || body === null || typeof body !== 'object') return out;
  for (const [k, v] of Object.entries(body as Record<string, unknown>)) {
    if (typeof v === 'string' && SECRET_FIELD.test(k)) out.push(v);
    else if (v !== null && typeof v === 'object') secretValues(v, out, depth + 1);
  }
  return out;
}
