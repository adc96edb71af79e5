// SPDX-License-Identifier: Apache-2.0
import { expect } from 'chai';
import { backoffDelay, classifyTransportError, sleep, transportCode } from '../../lib/datera/retry.js';

const withCode = (code: string, cause?: unknown): Error => Object.assign(new Error(code, { cause }), { code });

describe('backoffDelay', () => {
  it('doubles the ceiling per retry, caps it at maxMs, and scales it by the jitter draw', () => {
    const top = { baseMs: 250, maxMs: 10_000, random: () => 0.999999 };
    expect([1, 2, 3, 4, 5, 6, 7, 40].map((n) => backoffDelay(n, top))).to.deep.equal([
      249, 499, 999, 1999, 3999, 7999, 9999, 9999,
    ]);
    expect(backoffDelay(3, { baseMs: 250, maxMs: 10_000, random: () => 0 })).to.equal(0);
  });

  it('tolerates a jitter source outside [0, 1)', () => {
    expect(backoffDelay(1, { baseMs: 100, maxMs: 1_000, random: () => 7 })).to.equal(100);
    expect(backoffDelay(1, { baseMs: 100, maxMs: 1_000, random: () => Number.NaN })).to.equal(0);
  });
});

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

describe('sleep', () => {
  it('rejects with the abort reason', async () => {
    const ac = new AbortController();
    const p = sleep(60_000, ac.signal);
    ac.abort(new Error('stop'));
    const err = await p.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((err as Error).message).to.equal('stop');
  });
});
