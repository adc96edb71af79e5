// SPDX-License-Identifier: Apache-2.0
// What the work queue reports for client-go's workqueue metrics: its observer events and the
// state read at scrape time. Durations come from an injected clock, never from real time.
import { expect } from 'chai';
import type { QueueObserver } from '../../lib/observability/metrics.js';
import { WorkQueue, type Outcome } from '../../lib/provision/queue.js';

/** An observer that records every event, durations included. */
function recording() {
  const events: string[] = [];
  const observer: QueueObserver = {
    added: () => events.push('added'),
    started: (s) => events.push(`started ${s}`),
    finished: (s) => events.push(`finished ${s}`),
    retried: () => events.push('retried'),
  };
  return { events, observer };
}

/** A handler whose runs each wait for `release(key)`, then return what `outcome` says. */
function gated(outcome: (key: string) => Outcome | Error = () => ({ kind: 'done' })) {
  const waiting = new Map<string, () => void>();
  const handler = async (key: string): Promise<Outcome> => {
    await new Promise<void>((r) => waiting.set(key, r));
    waiting.delete(key);
    const o = outcome(key);
    if (o instanceof Error) throw o;
    return o;
  };
  const release = (key: string) => {
    const r = waiting.get(key);
    if (!r) throw new Error(`${key} is not running`);
    r();
  };
  return { handler, release, running: () => [...waiting.keys()].sort() };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('work queue metrics (observer and state)', () => {
  let clock: number;
  const now = () => clock;

  beforeEach(() => {
    clock = 10_000;
  });

  it('counts an add for each key that starts waiting: not for a key already queued, once for a key marked to run again while it runs', async () => {
    const { events, observer } = recording();
    const g = gated();
    const q = new WorkQueue({ workers: 1, baseMs: 5, maxMs: 40, handler: g.handler, observer, now });
    q.add('a');
    q.add('a'); // already queued
    q.add('b');
    expect(events).to.deep.equal(['added', 'added']);
    q.start();
    await tick();
    expect(g.running()).to.deep.equal(['a']);
    q.add('a'); // running: marked to run again
    q.add('a'); // already marked
    expect(events.filter((e) => e === 'added')).to.have.length(3);
    g.release('a');
    await tick();
    // 'a' runs again from its dirty mark without a second count; 'b' was waiting first.
    expect(events.filter((e) => e === 'added')).to.have.length(3);
    g.release('b');
    await tick();
    g.release('a');
    await q.idle();
    expect(events.filter((e) => e.startsWith('started'))).to.have.length(3);
    await q.stop();
  });

  it('reports how long a key waited from its add until a worker took it, and how long its handler ran, on the injected clock', async () => {
    const { events, observer } = recording();
    const g = gated();
    const q = new WorkQueue({ workers: 1, baseMs: 5, maxMs: 40, handler: g.handler, observer, now });
    q.add('a');
    clock += 2_500;
    q.start();
    await tick();
    clock += 750;
    g.release('a');
    await q.idle();
    expect(events).to.deep.equal(['added', 'started 2.5', 'finished 0.75']);
    await q.stop();
  });

  it('reports a retry for each failed run (returned or thrown), none for done or requeueAfter', async () => {
    const { events, observer } = recording();
    const outcomes: Record<string, Outcome | Error> = { ok: { kind: 'done' }, later: { kind: 'requeueAfter', ms: 60_000 }, fail: { kind: 'retry' }, boom: new Error('boom') };
    const g = gated((k) => outcomes[k]!);
    const q = new WorkQueue({ workers: 4, baseMs: 60_000, maxMs: 60_000, handler: g.handler, observer, now });
    q.start();
    for (const k of Object.keys(outcomes)) q.add(k);
    await tick();
    for (const k of Object.keys(outcomes)) g.release(k);
    await q.idle();
    expect(events.filter((e) => e === 'retried')).to.have.length(2);
    expect(events.filter((e) => e.startsWith('finished'))).to.have.length(4);
    expect(q.delayed).to.equal(3); // the two failures wait for their backoff, requeueAfter for its re-check
    await q.stop();
  });

  it('state(): depth counts waiting keys (also one marked to run again) but not running ones; unfinished and longest-running add up and take the maximum of the running keys\' ages', async () => {
    const g = gated();
    const q = new WorkQueue({ workers: 2, baseMs: 5, maxMs: 40, handler: g.handler, now });
    q.add('a');
    expect(q.state()).to.deep.equal({ depth: 1, delayed: 0, unfinishedSeconds: 0, longestRunningSeconds: 0 });
    q.start();
    await tick();
    clock += 3_000;
    q.add('b');
    await tick();
    q.add('c'); // both workers busy: waits
    q.add('a'); // running: marked to run again
    clock += 1_000;
    expect(g.running()).to.deep.equal(['a', 'b']);
    expect(q.state()).to.deep.equal({ depth: 2, delayed: 0, unfinishedSeconds: 4 + 1, longestRunningSeconds: 4 });
    g.release('a');
    g.release('b');
    await tick();
    g.release('a');
    g.release('c');
    await q.idle();
    expect(q.state()).to.deep.equal({ depth: 0, delayed: 0, unfinishedSeconds: 0, longestRunningSeconds: 0 });
    await q.stop();
  });
});
