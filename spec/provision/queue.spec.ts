// SPDX-License-Identifier: Apache-2.0
import { expect } from 'chai';
import { WorkQueue, type Outcome } from '../../lib/provision/queue.js';

function queue(handler: (k: string) => Promise<Outcome>, workers = 2) {
  return new WorkQueue({ workers, baseMs: 5, maxMs: 40, handler, random: () => 0.5 });
}

describe('work queue', () => {
  it('handles a key at most once at a time and re-runs it once when it changed meanwhile', async () => {
    let running = 0;
    let maxRunning = 0;
    let runs = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const q = queue(async () => {
      running++;
      runs++;
      maxRunning = Math.max(maxRunning, running);
      if (runs === 1) await gate;
      running--;
      return { kind: 'done' };
    });
    q.start();
    q.add('k');
    await new Promise((r) => setImmediate(r));
    q.add('k');
    q.add('k');
    release();
    await new Promise((r) => setTimeout(r, 20));
    await q.idle();
    expect(maxRunning).to.equal(1);
    expect(runs).to.equal(2);
    await q.stop();
  });

  it('deduplicates queued keys and runs up to `workers` keys in parallel', async () => {
    let running = 0;
    let maxRunning = 0;
    const seen: string[] = [];
    const q = queue(async (k) => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      seen.push(k);
      await new Promise((r) => setTimeout(r, 5));
      running--;
      return { kind: 'done' };
    }, 3);
    for (const k of ['a', 'b', 'a', 'c', 'd', 'b', 'e']) q.add(k);
    q.start();
    await new Promise((r) => setTimeout(r, 50));
    await q.idle();
    expect(seen.sort()).to.deep.equal(['a', 'b', 'c', 'd', 'e']);
    expect(maxRunning).to.equal(3);
    await q.stop();
  });

  it('retries with growing, capped backoff and forgets failures after success', async () => {
    const q = queue(async () => ({ kind: 'done' }));
    expect([1, 2, 3, 4, 5].map((n) => q.backoff(n))).to.deep.equal([5, 10, 20, 40, 40]);
    let n = 0;
    const q2 = queue(async () => (++n < 3 ? { kind: 'retry' } : { kind: 'done' }));
    q2.start();
    q2.add('x');
    await new Promise((r) => setTimeout(r, 100));
    expect(n).to.equal(3);
    expect(q2.failures('x')).to.equal(0);
    await q2.stop();
  });

  it('a handler that throws is retried, not lost', async () => {
    let n = 0;
    const errors: unknown[] = [];
    const q = new WorkQueue({ workers: 1, baseMs: 1, maxMs: 2, random: () => 0.5, onError: (_k, e) => errors.push(e), handler: async () => {
      if (++n === 1) throw new Error('boom');
      return { kind: 'done' };
    } });
    q.start();
    q.add('x');
    await new Promise((r) => setTimeout(r, 30));
    expect(n).to.equal(2);
    expect(errors).to.have.length(1);
    await q.stop();
  });

  /** Waits (up to about 2 s) until `seen` holds `key`; the caller asserts what it holds then. */
  async function handled(seen: string[], key: string): Promise<void> {
    for (let i = 0; i < 400 && !seen.includes(key); i++) await new Promise((r) => setTimeout(r, 5));
  }

  it('addAfter: of two pending delays for a key the earlier wins, in either order of the calls', async () => {
    const seen: string[] = [];
    const q = queue(async (k) => {
      seen.push(k);
      return { kind: 'done' };
    });
    q.start();
    q.addAfter('short-then-long', 5);
    q.addAfter('short-then-long', 600_000);
    q.addAfter('long-then-short', 600_000);
    q.addAfter('long-then-short', 5);
    await handled(seen, 'short-then-long');
    await handled(seen, 'long-then-short');
    const delayed = q.delayed;
    await q.stop();
    expect([...seen].sort(), 'both keys ran after the short delay').to.deep.equal(['long-then-short', 'short-then-long']);
    expect(delayed, 'no timer is left behind').to.equal(0);
  });

  it('add() cuts a delayed retry short; stop() cancels delayed keys', async () => {
    let n = 0;
    const q = new WorkQueue({ workers: 1, baseMs: 10_000, maxMs: 10_000, handler: async () => (++n === 1 ? { kind: 'requeueAfter', ms: 10_000 } : { kind: 'done' }) });
    q.start();
    q.add('x');
    await new Promise((r) => setTimeout(r, 10));
    expect(q.delayed).to.equal(1);
    q.add('x');
    await new Promise((r) => setTimeout(r, 10));
    expect(n).to.equal(2);
    q.addAfter('y', 10_000);
    await q.stop();
    expect(q.delayed).to.equal(0);
  });
});
