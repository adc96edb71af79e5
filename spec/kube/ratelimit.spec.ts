// SPDX-License-Identifier: Apache-2.0
import { expect } from 'chai';
import { RateLimiter } from '../../lib/kube/ratelimit.js';
import { FakeClock } from './helpers.js';

describe('kube/ratelimit', () => {
  describe('RateLimiter (token bucket, fake clock)', () => {
    it('allows `burst` requests at once, then spaces them 1/qps apart', async () => {
      const clock = new FakeClock();
      const rl = new RateLimiter(5, 10, clock.now, clock.sleep);
      for (let i = 0; i < 10; i++) await rl.acquire();
      expect(clock.sleeps).to.deep.equal([]);
      await rl.acquire(); // bucket empty: waits for one token at 5/s
      expect(clock.sleeps).to.deep.equal([200]);
      await rl.acquire();
      expect(clock.sleeps).to.deep.equal([200, 200]);
    });

    it('queues concurrent waiters in arrival order (reservations)', async () => {
      const clock = new FakeClock();
      const waits: number[] = [];
      const rl = new RateLimiter(10, 1, clock.now, async (ms) => {
        waits.push(ms);
      });
      await Promise.all([rl.acquire(), rl.acquire(), rl.acquire(), rl.acquire()]);
      // first from the bucket, the others reserve the 1st, 2nd and 3rd future tokens
      expect(waits.map((w) => Math.round(w))).to.deep.equal([100, 200, 300]);
    });

    it('refills at qps up to burst while idle', async () => {
      const clock = new FakeClock();
      const rl = new RateLimiter(2, 4, clock.now, clock.sleep);
      for (let i = 0; i < 4; i++) await rl.acquire();
      expect(rl.tokens).to.equal(0);
      clock.advance(1000);
      expect(rl.tokens).to.equal(2);
      clock.advance(60_000);
      expect(rl.tokens).to.equal(4); // capped at burst
    });

    it('qps <= 0 disables limiting', async () => {
      const clock = new FakeClock();
      const rl = new RateLimiter(0, 1, clock.now, clock.sleep);
      for (let i = 0; i < 100; i++) await rl.acquire();
      expect(clock.sleeps).to.deep.equal([]);
      expect(rl.enabled).to.equal(false);
    });

    it('an aborted wait rejects and gives its reservation back', async () => {
      const clock = new FakeClock();
      const rl = new RateLimiter(1, 1, clock.now, () => new Promise<void>(() => undefined));
      await rl.acquire();
      const ac = new AbortController();
      const p = rl.acquire(ac.signal);
      expect(rl.tokens).to.equal(-1);
      ac.abort(new Error('cancelled'));
      let caught: unknown;
      await p.catch((e: unknown) => (caught = e));
      expect((caught as Error).message).to.equal('cancelled');
      expect(rl.tokens).to.equal(0);
    });
  });
});
