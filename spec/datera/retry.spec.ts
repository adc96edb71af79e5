// SPDX-License-Identifier: Apache-2.0
import { expect } from 'chai';
import { classifyTransportError, transportCode } from '../../lib/datera/retry.js';

const withCode = (code: string, cause?: unknown): Error => Object.assign(new Error(code, { cause }), { code });

describe('classifyTransportError', () => {
  const table: [string, Error, string][] = [
    ['refused', withCode('ECONNREFUSED'), 'not-sent'],
    ['connect timeout', withCode('UND_ERR_CONNECT_TIMEOUT'), 'not-sent'],
    ['reset', withCode('ECONNRESET'), 'maybe-sent'],
    ['broken pipe', withCode('EPIPE'), 'maybe-sent'],
    ['undici socket error wrapping a reset', withCode('UND_ERR_SOCKET', withCode('ECONNRESET')), 'maybe-sent'],
    ['headers timeout', withCode('UND_ERR_HEADERS_TIMEOUT'), 'maybe-sent'],
    ['TLS verification', withCode('DEPTH_ZERO_SELF_SIGNED_CERT'), 'final'],
    ['unknown host', withCode('ENOTFOUND'), 'final'],
    ['no code', new Error('boom'), 'final'],
  ];
  for (const [what, err, want] of table) {
    it(`${what} -> ${want}`, () => expect(classifyTransportError(err)).to.equal(want));
  }

  it('prefers a known code deeper in the cause chain', () => {
    expect(transportCode(withCode('UND_ERR_WHATEVER', withCode('ECONNREFUSED')))).to.equal('ECONNREFUSED');
    expect(transportCode(withCode('UND_ERR_WHATEVER'))).to.equal('UND_ERR_WHATEVER');
  });
});
