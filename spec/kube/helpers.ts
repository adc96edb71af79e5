// SPDX-License-Identifier: Apache-2.0
// Shared fixtures for the kube specs: a KubeConfig pointing at a nock host, NDJSON watch
// bodies, and polling without wall-clock assertions.
import { PassThrough } from 'node:stream';
import { KubeConfig } from '@kubernetes/client-node';

export const SERVER = 'https://k8s.test';

export function testKubeConfig(server = SERVER): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'test', server, skipTLSVerify: true }],
    users: [{ name: 'test', token: 'test-token' }],
    contexts: [{ name: 'test', cluster: 'test', user: 'test' }],
    currentContext: 'test',
  });
  return kc;
}

/** One NDJSON watch line. */
export function watchLine(type: string, object: unknown): string {
  return `${JSON.stringify({ type, object })}\n`;
}

/** A watch body that stays open until `end()` (or the client aborts). */
export class OpenWatch {
  readonly stream = new PassThrough();
  constructor() {
    // Headers reach the client only with the first body chunk under nock; a blank line is
    // ignored by the Watch parser and makes the watch "connected".
    this.stream.write('\n');
  }
  send(type: string, object: unknown): void {
    this.stream.write(watchLine(type, object));
  }
  end(): void {
    this.stream.end();
  }
}

/** Polls `cond` every few ms; rejects with `what` after `ms` (a safety net, not an assertion). */
export async function waitFor(cond: () => boolean, what: string, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A fake monotonic clock whose sleeps advance time instantly. */
export class FakeClock {
  t = 0;
  readonly sleeps: number[] = [];
  now = (): number => this.t;
  sleep = async (ms: number, signal?: AbortSignal): Promise<void> => {
    signal?.throwIfAborted();
    this.sleeps.push(ms);
    this.t += ms;
    // Yield so that concurrent work interleaves like it would with real timers.
    await new Promise((r) => setImmediate(r));
    signal?.throwIfAborted();
  };
  advance(ms: number): void {
    this.t += ms;
  }
}
