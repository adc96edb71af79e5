// SPDX-License-Identifier: Apache-2.0
// Error answers of the simulator, shaped like the cluster's: {name, code, http, message, errors}.
//
// Names and HTTP statuses follow datera-api.md §3. The numeric `code` values of the real API are
// not documented except 15 (duplicate snapshot uuid); the others below are the simulator's own
// and stable, so tests may rely on them, but clients must not.

export type SimErrorName =
  | 'InvalidRequestError'
  | 'AuthFailedError'
  | 'PermissionDeniedError'
  | 'NotFoundError'
  | 'ConflictError'
  | 'ValidationFailedError'
  | 'InternalError'
  | 'NotConnectedError'
  | 'UnsupportedVersionError';

const STATUS: Record<SimErrorName, number> = {
  InvalidRequestError: 400,
  AuthFailedError: 401,
  PermissionDeniedError: 403,
  NotFoundError: 404,
  ConflictError: 409,
  ValidationFailedError: 422,
  InternalError: 500,
  NotConnectedError: 503,
  UnsupportedVersionError: 400,
};

const CODE: Record<SimErrorName, number> = {
  InvalidRequestError: 1,
  AuthFailedError: 2,
  PermissionDeniedError: 3,
  NotFoundError: 4,
  ConflictError: 5,
  ValidationFailedError: 6,
  InternalError: 7,
  NotConnectedError: 8,
  UnsupportedVersionError: 9,
};

/** Code the cluster uses for "a snapshot with this uuid exists" (CSI relies on it). */
export const CODE_DUPLICATE_SNAPSHOT_UUID = 15;

/** The exact message clients (PYSDK) expect for a missing or expired session key. */
export const INVALID_SESSION_MESSAGE = 'The key provided with the request does not correspond to a valid session.';

export interface SimErrorBody {
  name: SimErrorName;
  code: number;
  http: number;
  message: string;
  errors: string[];
}

/** Thrown by handlers; the server turns it into the error answer. */
export class SimError extends Error {
  readonly apiName: SimErrorName;
  readonly status: number;
  readonly apiCode: number;
  readonly errors: string[];

  constructor(name: SimErrorName, message: string, opts: { errors?: string[]; code?: number; status?: number } = {}) {
    super(message);
    this.name = 'SimError';
    this.apiName = name;
    this.status = opts.status ?? STATUS[name];
    this.apiCode = opts.code ?? CODE[name];
    this.errors = opts.errors ?? [];
  }

  body(): SimErrorBody {
    return { name: this.apiName, code: this.apiCode, http: this.status, message: this.message, errors: this.errors };
  }
}

export const notFound = (what: string): SimError => new SimError('NotFoundError', `${what} does not exist`);
export const conflict = (what: string): SimError => new SimError('ConflictError', `${what} already exists`);
export const invalid = (message: string, errors: string[] = []): SimError =>
  new SimError('InvalidRequestError', message, { errors });
/** 422 naming the fields: the message is the violations joined, `errors` lists them one by one. */
export const validationFailed = (errors: string[]): SimError =>
  new SimError('ValidationFailedError', errors.join('; '), { errors });
