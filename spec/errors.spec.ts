// SPDX-License-Identifier: Apache-2.0
import { expect } from 'chai';
import { ApiException } from '@kubernetes/client-node';
import {
  AuthError,
  ConflictError,
  ConnectionError,
  DateraError,
  InternalError,
  InvalidRequestError,
  NotFoundError,
  ResponseTooLargeError,
  TimeoutError,
  UnavailableError,
  ValidationFailedError,
  isDateraConflict,
  isDateraNotFound,
} from '../lib/datera/errors.js';
import { isFinal } from '../lib/errors.js';
import { isKubeConflict, isKubeNotFound } from '../lib/kube/errors.js';
import { CredentialsError } from '../lib/provision/credentials.js';

const kube = (code: number, reason: string) =>
  new ApiException(code, reason, JSON.stringify({ kind: 'Status', code, reason, message: reason }), {});

describe('isFinal', () => {
  const table: [string, unknown, boolean][] = [
    ['Datera 400 InvalidRequestError', new InvalidRequestError('bad route'), true],
    ['Datera 422 ValidationFailedError', new ValidationFailedError('bad ip pool'), true],
    ['a base DateraError with the validation code', new DateraError('DATERA_VALIDATION_FAILED', 'x'), true],
    ['a base DateraError with the invalid-request code', new DateraError('DATERA_INVALID_REQUEST', 'x'), true],
    ['CredentialsError (Secret missing, unreadable or incomplete)', new CredentialsError('no Secret'), true],
    ['Datera 401 AuthError', new AuthError('login refused'), false],
    ['Datera 404 NotFoundError', new NotFoundError('gone'), false],
    ['Datera 409 ConflictError', new ConflictError('exists'), false],
    ['Datera 503 UnavailableError', new UnavailableError('busy'), false],
    ['Datera TimeoutError', new TimeoutError('slow'), false],
    ['Datera ConnectionError', new ConnectionError('refused'), false],
    ['Datera 5xx InternalError', new InternalError('boom'), false],
    ['Datera ResponseTooLargeError', new ResponseTooLargeError('too big'), false],
    ['a Kubernetes 403', kube(403, 'Forbidden'), false],
    ['a Kubernetes 422', kube(422, 'Invalid'), false],
    ['a plain Error', new Error('boom'), false],
    ['an Error whose final is not exactly true', Object.assign(new Error('x'), { final: 'yes' }), false],
    ['a non-Error object claiming final', { final: true }, false],
    ['undefined', undefined, false],
  ];
  for (const [what, err, want] of table) {
    it(`${what} -> ${want}`, () => expect(isFinal(err)).to.equal(want));
  }

  it('final is not an own property, so a logged error keeps the fields it had', () => {
    expect(Object.keys(new ValidationFailedError('x'))).to.not.include('final');
    expect(Object.keys(new CredentialsError('x'))).to.not.include('final');
  });

  it('every final Datera error is also not retryable by the client', () => {
    for (const e of [new InvalidRequestError('x'), new ValidationFailedError('x')]) expect(e.retryable).to.equal(false);
  });
});

describe('not-found and conflict predicates, one per error family', () => {
  it('the Datera predicates answer only for Datera errors', () => {
    expect(isDateraNotFound(new NotFoundError('gone'))).to.equal(true);
    expect(isDateraConflict(new ConflictError('exists'))).to.equal(true);
    expect(isDateraNotFound(kube(404, 'NotFound'))).to.equal(false);
    expect(isDateraConflict(kube(409, 'Conflict'))).to.equal(false);
    expect(isDateraConflict(kube(409, 'AlreadyExists'))).to.equal(false);
  });

  it('the Kubernetes predicates answer only for Kubernetes API errors', () => {
    expect(isKubeNotFound(kube(404, 'NotFound'))).to.equal(true);
    expect(isKubeConflict(kube(409, 'Conflict'))).to.equal(true);
    expect(isKubeNotFound(new NotFoundError('gone'))).to.equal(false);
    expect(isKubeConflict(new ConflictError('exists'))).to.equal(false);
  });
});
