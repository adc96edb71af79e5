// SPDX-License-Identifier: Apache-2.0
import { expect } from 'chai';
import { backoffDelay, sleep } from '../lib/backoff.js';

const rejection = (p: Promise<unknown>): Promise<unknown> =>
  p.then(
    () => undefined,
    (e: unknown) => e,
  );

describe('backoffDelay', () => {
  describe('full jitter (the Datera client)', () => {
    it('doubles the ceiling per retry, caps it at maxMs, and scales it by the jitter draw', () => {
      const top = { initialMs: 250, maxMs: 10_000, jitter: 'full' as const, random: () => 0.999999 };
      expect([1, 2, 3, 4, 5, 6, 7, 40].map((n) => backoffDelay(n, top))).to.deep.equal([
        249, 499, 999, 1999, 3999, 7999, 9999, 9999,
      ]);
      expect(backoffDelay(3, { initialMs: 250, maxMs: 10_000, jitter: 'full', random: () => 0 })).to.equal(0);
    });

    it('tolerates a jitter source outside [0, 1)', () => {
      expect(backoffDelay(1, { initialMs: 100, maxMs: 1_000, jitter: 'full', random: () => 7 })).to.equal(100);
      expect(backoffDelay(1, { initialMs: 100, maxMs: 1_000, jitter: 'full', random: () => Number.NaN })).to.equal(0);
    });
  });

  describe('proportional jitter (the work queue and the informer)', () => {
    it('a draw of 0.5 gives the doubling delay itself, capped at maxMs', () => {
      const b = { initialMs: 5, maxMs: 40, jitter: 0.2, random: () => 0.5 };
      expect([1, 2, 3, 4, 5].map((n) => backoffDelay(n, b))).to.deep.equal([5, 10, 20, 40, 40]);
    });

    it('a draw of 0 shortens the delay by the fraction, rounded to whole ms', () => {
      const b = { initialMs: 1_000, maxMs: 30_000, jitter: 0.2, random: () => 0 };
      expect([1, 2, 3, 4, 5, 6, 7].map((n) => backoffDelay(n, b))).to.deep.equal([800, 1_600, 3_200, 6_400, 12_800, 24_000, 24_000]);
      expect(backoffDelay(1, { initialMs: 3, maxMs: 30, jitter: 0.2, random: () => 0 })).to.equal(2); // 2.4 rounds to 2
    });

    it('a draw near 1 lengthens the delay by the fraction but never past maxMs', () => {
      const b = { initialMs: 1_000, maxMs: 30_000, jitter: 0.2, random: () => 0.999999 };
      expect(backoffDelay(1, b)).to.equal(1_200);
      expect(backoffDelay(5, b)).to.equal(19_200);
      expect(backoffDelay(6, b)).to.equal(30_000);
    });
  });

  it('without jitter returns the capped delay and never draws a random number', () => {
    let draws = 0;
    const b = { initialMs: 100, maxMs: 1_000, random: () => ++draws };
    expect([1, 2, 3, 4, 5].map((n) => backoffDelay(n, b))).to.deep.equal([100, 200, 400, 800, 1_000]);
    expect(draws).to.equal(0);
  });

  it('grows by `factor`, counts failures below 1 as the first, and stops growing after 30 steps', () => {
    expect([1, 2, 3].map((n) => backoffDelay(n, { initialMs: 10, maxMs: 1e9, factor: 3 }))).to.deep.equal([10, 30, 90]);
    expect([0, -5].map((n) => backoffDelay(n, { initialMs: 10, maxMs: 1e9 }))).to.deep.equal([10, 10]);
    expect(backoffDelay(1_000, { initialMs: 1, maxMs: Number.POSITIVE_INFINITY })).to.equal(2 ** 30);
  });
});

describe('sleep', () => {
  it('rejects with the abort reason', async () => {
    const ac = new AbortController();
    const p = sleep(60_000, ac.signal);
    ac.abort(new Error('stop'));
    const err = await rejection(p);
    expect((err as Error).message).to.equal('stop');
  });

  it('rejects at once with the reason of a signal that aborted before the call', async () => {
    const ac = new AbortController();
    ac.abort();
    const err = await rejection(sleep(60_000, ac.signal));
    expect(err).to.equal(ac.signal.reason);
  });

  it('resolves with no signal, and with a signal that never aborts', async () => {
    expect(await sleep(1)).to.equal(undefined);
    expect(await sleep(1, new AbortController().signal)).to.equal(undefined);
  });
});
