// SPDX-License-Identifier: Apache-2.0
// Typed Datera errors with stable codes, whether each may be retried (`retryable`, by the client;
// `final`, by anyone: lib/errors.ts), and the predicates callers branch on (`isDateraNotFound`,
// `isDateraConflict`; named for Datera because lib/kube/errors.ts has its own). Messages never
// contain credentials or session keys.
import type { MaybeFinal } from '../errors.js';

export type DateraErrorCode =
  | 'DATERA_AUTH'
  | 'DATERA_NOT_FOUND'
  | 'DATERA_CONFLICT'
  | 'DATERA_INVALID_REQUEST'
  | 'DATERA_VALIDATION_FAILED'
  | 'DATERA_UNAVAILABLE'
  | 'DATERA_TIMEOUT'
  | 'DATERA_CONNECTION'
  | 'DATERA_INTERNAL'
  | 'DATERA_RESPONSE_TOO_LARGE';

/** Body of a Datera error response. */
export interface DateraErrorBody {
  name?: string;
  code?: number;
  http?: number;
  message?: string;
  errors?: string[];
}

export class DateraError extends Error implements MaybeFinal {
  /** Stable machine-readable code. */
  readonly code: DateraErrorCode;
  /** Whether the same call may succeed if repeated later (the client already retried it). */
  readonly retryable: boolean;
  /** HTTP status, when the server answered. */
  readonly status: number | undefined;
  /** Datera error name from the body, e.g. "ValidationFailedError". */
  readonly apiName: string | undefined;
  /** Validation details from the body's `errors`. */
  readonly details: string[];
  /** Method and path of the call (no query, no body). */
  readonly operation: string | undefined;

  constructor(
    code: DateraErrorCode,
    message: string,
    opts: { retryable?: boolean; status?: number; apiName?: string; details?: string[]; operation?: string; cause?: unknown } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = opts.retryable ?? false;
    this.status = opts.status;
    this.apiName = opts.apiName;
    this.details = opts.details ?? [];
    this.operation = opts.operation;
  }

  /**
   * 400 and 422: the request itself is wrong, no retry can succeed until it changes (isFinal).
   * Not the same as `!retryable`: a 401, 404 or 409 is not retried by the client, yet a later
   * attempt of the whole operation may find the world changed.
   */
  get final(): boolean {
    return this.code === 'DATERA_INVALID_REQUEST' || this.code === 'DATERA_VALIDATION_FAILED';
  }
}

/** 401: bad credentials, or a session that could not be renewed. Not retryable without new credentials. */
export class AuthError extends DateraError {
  constructor(message: string, opts: ConstructorParameters<typeof DateraError>[2] = {}) {
    super('DATERA_AUTH', message, { ...opts, retryable: false });
  }
}
/** 404: the object does not exist. */
export class NotFoundError extends DateraError {
  constructor(message: string, opts: ConstructorParameters<typeof DateraError>[2] = {}) {
    super('DATERA_NOT_FOUND', message, { ...opts, retryable: false });
  }
}
/** 409: an object with that name exists already. */
export class ConflictError extends DateraError {
  constructor(message: string, opts: ConstructorParameters<typeof DateraError>[2] = {}) {
    super('DATERA_CONFLICT', message, { ...opts, retryable: false });
  }
}
/** 400: the server refused the request (bad route, bad value). Final (isFinal). */
export class InvalidRequestError extends DateraError {
  constructor(message: string, opts: ConstructorParameters<typeof DateraError>[2] = {}) {
    super('DATERA_INVALID_REQUEST', message, { ...opts, retryable: false });
  }
}
/** 422: the body failed schema validation; `details` names the fields. Final (isFinal). */
export class ValidationFailedError extends DateraError {
  constructor(message: string, opts: ConstructorParameters<typeof DateraError>[2] = {}) {
    super('DATERA_VALIDATION_FAILED', message, { ...opts, retryable: false });
  }
}
/** 503, or 500 "still initializing", after the client's own retries ran out. Retry later. */
export class UnavailableError extends DateraError {
  constructor(message: string, opts: ConstructorParameters<typeof DateraError>[2] = {}) {
    super('DATERA_UNAVAILABLE', message, { ...opts, retryable: true });
  }
}
/** No answer within the per-request timeout or the overall deadline. Retry later; the call may have run. */
export class TimeoutError extends DateraError {
  constructor(message: string, opts: ConstructorParameters<typeof DateraError>[2] = {}) {
    super('DATERA_TIMEOUT', message, { ...opts, retryable: true });
  }
}
/** Connection refused/reset or TLS failure. Retry later; for a non-idempotent call the outcome is unknown. */
export class ConnectionError extends DateraError {
  constructor(message: string, opts: ConstructorParameters<typeof DateraError>[2] = {}) {
    super('DATERA_CONNECTION', message, { ...opts, retryable: true });
  }
}
/** Other 5xx. Retry later. */
export class InternalError extends DateraError {
  constructor(message: string, opts: ConstructorParameters<typeof DateraError>[2] = {}) {
    super('DATERA_INTERNAL', message, { ...opts, retryable: true });
  }
}

/**
 * The reply body was larger than the client's `maxResponseBytes`; the client stopped reading and
 * closed the connection. Not retried (the same call would get the same body); the message names
 * the limit only, so repeats of the failure read the same.
 */
export class ResponseTooLargeError extends DateraError {
  constructor(message: string, opts: ConstructorParameters<typeof DateraError>[2] = {}) {
    super('DATERA_RESPONSE_TOO_LARGE', message, { ...opts, retryable: false });
  }
}

/** Datera 404: the object does not exist. */
export function isDateraNotFound(err: unknown): boolean {
  return err instanceof DateraError && err.code === 'DATERA_NOT_FOUND';
}
/** Datera 409: an object with that name exists already (Kubernetes calls this AlreadyExists, not Conflict). */
export function isDateraConflict(err: unknown): boolean {
  return err instanceof DateraError && err.code === 'DATERA_CONFLICT';
}
