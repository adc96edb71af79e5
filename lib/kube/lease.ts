// SPDX-License-Identifier: Apache-2.0
// Leader election on a coordination.k8s.io/v1 Lease, with client-go `tools/leaderelection`
// semantics (client-node has no elector).
//
// Contract:
// - A candidate takes the Lease when it does not exist (create; a 409 means another candidate
//   won), when it has no holder (released), or when the holder's record has not changed for
//   `leaseDuration` as measured by OUR monotonic clock from the moment WE observed the change.
//   Clocks of different nodes are never compared.
// - Writes replace the object read, carrying its resourceVersion, so two candidates cannot both
//   win: the loser gets 409 Conflict. A takeover increments `leaseTransitions`.
// - The leader renews every `retryPeriod`. If no renewal succeeds for `renewDeadline`, or a read
//   shows another valid holder, it stops leading: `onStoppedLeading('lost')` is called and
//   `run()` returns. The caller must then stop all guarded work, normally by exiting.
// - When the `run()` signal aborts, the elector stops renewing and calls
//   `onStoppedLeading('cancelled')`; the Lease stays held until it expires unless
//   `releaseOnCancel` is set or the caller calls `release()` after draining its work.
// - `release()` clears `holderIdentity` (and sets a 1 s duration), so a standby takes over on
//   its next retry instead of waiting out the lease.
import type { V1Lease, V1LeaseSpec, V1MicroTime } from '@kubernetes/client-node';
import { sleep } from '../backoff.js';
import { nullLogger, type Logger } from '../observability/logger.js';
import { describeError, isAlreadyExists, isKubeConflict, isKubeNotFound } from './errors.js';

/** The Lease calls the elector makes (KubeRest's, or client-node's CoordinationV1Api in specs). */
export interface LeaseApi {
  readNamespacedLease(a: { name: string; namespace: string }): Promise<V1Lease>;
  createNamespacedLease(a: { namespace: string; body: V1Lease }): Promise<V1Lease>;
  replaceNamespacedLease(a: { name: string; namespace: string; body: V1Lease }): Promise<V1Lease>;
}

/**
 * The default bound of one Lease request: a hung connection must neither stall a campaign nor
 * eat the renew deadline. min(renewDeadline, max(1 s, 2 × retryPeriod)).
 */
export function leaseRequestTimeoutMs(t: { renewDeadlineMs: number; retryPeriodMs: number }): number {
  return Math.min(t.renewDeadlineMs, Math.max(1000, 2 * t.retryPeriodMs));
}

/** A Lease request that did not answer within the elector's request timeout. */
class LeaseRequestTimeoutError extends Error {
  readonly code = 'LEASE_REQUEST_TIMEOUT';
  constructor(ms: number) {
    super(`lease request did not answer within ${ms} ms`);
    this.name = 'LeaseRequestTimeoutError';
  }
}

/** Why leadership ended. */
export type StopReason = 'lost' | 'cancelled' | 'released';

export interface LeaderElectorOptions {
  /** Unthrottled (not behind the controller's rate limiter), so renewals are never starved. */
  api: LeaseApi;
  /** Lease name; see `leaseNameFor`. */
  name: string;
  namespace: string;
  /** Unique per process (the `identity` setting). */
  identity: string;
  /** Default 15 000. Must exceed renewDeadlineMs. */
  leaseDurationMs?: number;
  /** Default 10 000. Must exceed 1.2 × retryPeriodMs. */
  renewDeadlineMs?: number;
  /** Default 2 000. */
  retryPeriodMs?: number;
  /** Timeout of each Lease request, so that a hung connection cannot stall a campaign or eat
   * the renew deadline. Default min(renewDeadline, max(1 s, 2 × retryPeriod)). */
  requestTimeoutMs?: number;
  onStartedLeading?: () => void;
  /** Called once per term. On 'lost' the caller should exit the process. */
  onStoppedLeading?: (reason: StopReason) => void;
  /** Called when the observed holder changes (undefined = nobody). */
  onNewLeader?: (identity: string | undefined) => void;
  /** Release the lease when the run() signal aborts. Default false: call release() yourself
   * once the guarded work has stopped, so two leaders never overlap. */
  releaseOnCancel?: boolean;
  logger?: Logger;
  /** Monotonic clock in ms (default performance.now). Used for every expiry decision. */
  now?: () => number;
  /** Wall clock for the acquireTime/renewTime fields only (default new Date()). */
  wallClock?: () => Date;
  /** Waits between attempts (default lib/backoff.ts `sleep`); receives the stop signal. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Jitter source for acquire retries (default Math.random). */
  random?: () => number;
}

/** A prom-client-free snapshot for gauges and health endpoints. */
export interface LeaderState {
  identity: string;
  isLeader: boolean;
  /** Holder seen in the last read or write; undefined when none. */
  holder: string | undefined;
  leaseTransitions: number | undefined;
  /** Monotonic ms of the last successful renewal while leading. */
  lastRenewAt: number | undefined;
}

/** client-go's JitterFactor for acquire retries. */
const JITTER_FACTOR = 1.2;

/**
 * The Lease name for a provisioner name: `/` becomes `-` (the name the Go provisioner library
 * uses), then the result is made a valid DNS-1123 subdomain (lower case; other characters become
 * `-`; every dot-separated label starts and ends with a letter or digit; at most 253 characters).
 * Throws when nothing of the name is left; a provisioner name that passed configuration checks
 * always yields a name.
 */
export function leaseNameFor(provisionerName: string): string {
  const labels = provisionerName
    .toLowerCase()
    .replace(/\//g, '-')
    .replace(/[^a-z0-9.-]/g, '-')
    .split('.')
    .map((label) => label.replace(/^-+|-+$/g, ''))
    .filter(Boolean);
  const name = labels.join('.').slice(0, 253).replace(/[.-]+$/, '');
  if (!name) throw new Error(`cannot derive a Lease name from ${JSON.stringify(provisionerName)}`);
  return name;
}

/** MicroTime as the API server writes it: RFC 3339 with microseconds. */
export function microTime(d: Date): string {
  return d.toISOString().replace(/Z$/, '000Z');
}

interface Observed {
  key: string;
  holder: string | undefined;
  leaseDurationMs: number;
  /** Our monotonic time when this record was first seen. */
  at: number;
}

export class LeaderElector {
  readonly identity: string;
  readonly name: string;
  readonly namespace: string;
  readonly #api: LeaseApi;
  readonly #leaseDurationMs: number;
  readonly #renewDeadlineMs: number;
  readonly #retryPeriodMs: number;
  readonly #opts: LeaderElectorOptions;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #wall: () => Date;
  readonly #sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  readonly #random: () => number;
  readonly #timeoutMs: number;

  #observed: Observed | undefined;
  /** The Lease as last read or written (carries the resourceVersion for the next replace). */
  #lease: V1Lease | undefined;
  #leading = false;
  #lastRenewAt: number | undefined;
  #halt: AbortController | undefined;
  #busy: Promise<boolean> | undefined;

  constructor(opts: LeaderElectorOptions) {
    this.#opts = opts;
    this.#api = opts.api;
    this.name = opts.name;
    this.namespace = opts.namespace;
    this.identity = opts.identity;
    this.#leaseDurationMs = opts.leaseDurationMs ?? 15_000;
    this.#renewDeadlineMs = opts.renewDeadlineMs ?? 10_000;
    this.#retryPeriodMs = opts.retryPeriodMs ?? 2_000;
    if (!opts.identity) throw new Error('leader election: identity is required');
    if (!opts.name || !opts.namespace) throw new Error('leader election: lease name and namespace are required');
    if (this.#leaseDurationMs <= this.#renewDeadlineMs) {
      throw new Error('leader election: leaseDuration must be greater than renewDeadline');
    }
    if (this.#renewDeadlineMs <= JITTER_FACTOR * this.#retryPeriodMs) {
      throw new Error('leader election: renewDeadline must be greater than retryPeriod*1.2');
    }
    if (this.#retryPeriodMs < 1) throw new Error('leader election: retryPeriod must be positive');
    this.#log = (opts.logger ?? nullLogger()).child({ lease: `${opts.namespace}/${opts.name}`, identity: opts.identity });
    this.#now = opts.now ?? (() => performance.now());
    this.#wall = opts.wallClock ?? (() => new Date());
    this.#sleep = opts.sleep ?? sleep;
    this.#random = opts.random ?? Math.random;
    this.#timeoutMs = opts.requestTimeoutMs ?? leaseRequestTimeoutMs({ renewDeadlineMs: this.#renewDeadlineMs, retryPeriodMs: this.#retryPeriodMs });
  }

  /** `p`, or a LeaseRequestTimeoutError after the request timeout (the request is abandoned). */
  #bounded<T>(p: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new LeaseRequestTimeoutError(this.#timeoutMs)), this.#timeoutMs);
    });
    return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
  }

  get isLeader(): boolean {
    return this.#leading;
  }

  /** Holder seen in the last read or write of the Lease. */
  get holder(): string | undefined {
    return this.#observed?.holder;
  }

  state(): LeaderState {
    return {
      identity: this.identity,
      isLeader: this.#leading,
      holder: this.#observed?.holder,
      leaseTransitions: this.#lease?.spec?.leaseTransitions,
      lastRenewAt: this.#lastRenewAt,
    };
  }

  /**
   * Campaigns until leading, then renews until leadership is lost or `signal` aborts.
   * Resolves (never rejects) when it stops; `onStoppedLeading` has run by then if it led.
   */
  async run(signal: AbortSignal): Promise<void> {
    if (this.#halt) throw new Error('leader election: run() is already active');
    const halt = new AbortController();
    this.#halt = halt;
    const stop = AbortSignal.any([signal, halt.signal]);
    try {
      // Campaign.
      this.#log.info('waiting to acquire the lease');
      for (;;) {
        if (stop.aborted) return;
        if (await this.#attempt()) break;
        await this.#pause(this.#retryPeriodMs * (1 + JITTER_FACTOR * this.#random()), stop);
      }
      if (stop.aborted) {
        // Acquired just as we were told to stop: give it back if asked to.
        if (this.#opts.releaseOnCancel) await this.#releaseLease();
        return;
      }
      this.#lastRenewAt = this.#now();
      this.#setLeading(true);

      // Renew.
      let reason: StopReason = 'lost';
      for (;;) {
        await this.#pause(this.#retryPeriodMs, stop);
        if (stop.aborted) {
          reason = halt.signal.aborted ? 'released' : 'cancelled';
          break;
        }
        const remaining = this.#renewDeadlineMs - (this.#now() - (this.#lastRenewAt ?? 0));
        const ok = remaining > 0 && (await this.#withDeadline(this.#attempt(), remaining));
        if (ok) {
          this.#lastRenewAt = this.#now();
          continue;
        }
        const holder = this.#observed?.holder;
        if (holder && holder !== this.identity) {
          this.#log.warn('lease taken by another candidate', { holder });
          break;
        }
        if (this.#now() - (this.#lastRenewAt ?? 0) >= this.#renewDeadlineMs) {
          this.#log.error('failed to renew the lease within the renew deadline', { renewDeadlineMs: this.#renewDeadlineMs });
          break;
        }
      }
      if (reason === 'cancelled' && this.#opts.releaseOnCancel) {
        await this.#releaseLease();
        reason = 'released';
      }
      this.#setLeading(false, reason); // no-op if release() already ended the term
    } finally {
      if (this.#halt === halt) this.#halt = undefined;
    }
  }

  /**
   * Gives up the lease at once: stops a running `run()` and clears `holderIdentity`, so a
   * standby acquires on its next retry. Safe to call at any time; resolves true if the Lease
   * was written. Never rejects.
   */
  async release(): Promise<boolean> {
    this.#halt?.abort();
    const wasLeading = this.#leading;
    const ok = await this.#releaseLease();
    if (wasLeading && this.#leading) this.#setLeading(false, 'released');
    return ok;
  }

  /**
   * One acquire-or-renew step; true when we hold the lease afterwards. Exposed for tests and
   * for callers that drive their own loop. Never rejects.
   */
  tryAcquireOrRenew(): Promise<boolean> {
    return this.#attempt();
  }

  // ---- internals ---------------------------------------------------------------------------

  #attempt(): Promise<boolean> {
    const p = this.#tryAcquireOrRenew().catch((err: unknown) => {
      this.#log.warn('lease attempt failed', { err: describeError(err) });
      return false;
    });
    this.#busy = p;
    return p;
  }

  async #tryAcquireOrRenew(): Promise<boolean> {
    const stamp = microTime(this.#wall()) as unknown as V1MicroTime;
    const leaseDurationSeconds = Math.ceil(this.#leaseDurationMs / 1000);
    const { name, namespace } = this;

    // Fast path (client-go does the same): while our lease is valid, renew from the cached
    // object without reading first. On any failure fall back to read-then-write.
    if (this.#lease && this.#observed?.holder === this.identity && this.#valid()) {
      const spec: V1LeaseSpec = { ...this.#lease.spec, holderIdentity: this.identity, leaseDurationSeconds, renewTime: stamp };
      try {
        const updated = await this.#bounded(this.#api.replaceNamespacedLease({ name, namespace, body: { ...this.#lease, spec } }));
        this.#observe(updated);
        return true;
      } catch (err) {
        this.#log.debug('renew from cache failed; re-reading the lease', { err: describeError(err) });
      }
    }

    let current: V1Lease;
    try {
      current = await this.#bounded(this.#api.readNamespacedLease({ name, namespace }));
    } catch (err) {
      if (!isKubeNotFound(err)) {
        this.#log.warn('cannot read the lease', { err: describeError(err) });
        return false;
      }
      const body: V1Lease = {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name, namespace },
        spec: { holderIdentity: this.identity, leaseDurationSeconds, acquireTime: stamp, renewTime: stamp, leaseTransitions: 0 },
      };
      try {
        const created = await this.#bounded(this.#api.createNamespacedLease({ namespace, body }));
        this.#observe(created);
        this.#log.info('acquired the lease (created)');
        return true;
      } catch (err2) {
        if (isAlreadyExists(err2) || isKubeConflict(err2)) this.#log.debug('another candidate created the lease first');
        else this.#log.warn('cannot create the lease', { err: describeError(err2) });
        return false;
      }
    }

    this.#observe(current);
    const spec = current.spec ?? {};
    const holder = spec.holderIdentity || undefined;
    const mine = holder === this.identity;
    if (holder && !mine && this.#valid()) {
      this.#log.debug('lease held by another candidate', { holder });
      return false;
    }
    const transitions = spec.leaseTransitions ?? 0;
    const next: V1LeaseSpec = {
      ...spec,
      holderIdentity: this.identity,
      leaseDurationSeconds,
      renewTime: stamp,
      acquireTime: mine ? (spec.acquireTime ?? stamp) : stamp,
      leaseTransitions: mine ? transitions : transitions + 1,
    };
    try {
      const updated = await this.#bounded(this.#api.replaceNamespacedLease({ name, namespace, body: { ...current, spec: next } }));
      this.#observe(updated);
      if (!mine) this.#log.info('acquired the lease', { previousHolder: holder ?? null, leaseTransitions: next.leaseTransitions });
      return true;
    } catch (err) {
      if (isKubeConflict(err)) this.#log.debug('lost the race to update the lease');
      else this.#log.warn('cannot update the lease', { err: describeError(err) });
      return false;
    }
  }

  /** Records what the Lease says; the expiry clock restarts only when the record changed. */
  #observe(lease: V1Lease): void {
    this.#lease = lease;
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity || undefined;
    const key = `${lease.metadata?.resourceVersion ?? ''}|${holder ?? ''}|${String(spec.renewTime ?? '')}`;
    if (this.#observed?.key === key) return;
    const previous = this.#observed?.holder;
    this.#observed = {
      key,
      holder,
      leaseDurationMs: (spec.leaseDurationSeconds ?? this.#leaseDurationMs / 1000) * 1000,
      at: this.#now(),
    };
    if (holder !== previous && this.#opts.onNewLeader) {
      try {
        this.#opts.onNewLeader(holder);
      } catch (err) {
        this.#log.error('onNewLeader threw', { err });
      }
    }
  }

  /** The observed record is younger than its lease duration, by our own clock. */
  #valid(): boolean {
    const o = this.#observed;
    return o !== undefined && o.at + o.leaseDurationMs > this.#now();
  }

  async #releaseLease(): Promise<boolean> {
    // Let an in-flight renewal land first, or our write would race it on resourceVersion.
    if (this.#busy) await this.#busy;
    const lease = this.#lease;
    if (!lease || (lease.spec?.holderIdentity || undefined) !== this.identity) return false;
    const stamp = microTime(this.#wall()) as unknown as V1MicroTime;
    const spec: V1LeaseSpec = {
      ...lease.spec,
      holderIdentity: '',
      leaseDurationSeconds: 1,
      acquireTime: stamp,
      renewTime: stamp,
    };
    try {
      const updated = await this.#bounded(this.#api.replaceNamespacedLease(
        { name: this.name, namespace: this.namespace, body: { ...lease, spec } },
      ));
      this.#observe(updated);
      this.#log.info('released the lease');
      return true;
    } catch (err) {
      this.#log.warn('cannot release the lease', { err: describeError(err) });
      return false;
    }
  }

  #setLeading(leading: boolean, reason: StopReason = 'lost'): void {
    if (this.#leading === leading) return;
    this.#leading = leading;
    try {
      if (leading) {
        this.#log.info('started leading');
        this.#opts.onStartedLeading?.();
      } else {
        this.#log.info('stopped leading', { reason });
        this.#opts.onStoppedLeading?.(reason);
      }
    } catch (err) {
      this.#log.error('leader election callback threw', { err });
    }
  }

  async #pause(ms: number, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return;
    try {
      await this.#sleep(ms, signal);
    } catch {
      // aborted
    }
  }

  /** `p`, or false once `ms` pass first (a hung request must not outlive the deadline). */
  async #withDeadline(p: Promise<boolean>, ms: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), ms);
      timer.unref?.();
    });
    try {
      return await Promise.race([p, deadline]);
    } finally {
      clearTimeout(timer);
    }
  }
}
