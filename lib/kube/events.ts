// SPDX-License-Identifier: Apache-2.0
// core/v1 Event recorder: what `kubectl describe pvc|pv` shows users.
//
// Contract: `record()` is fire-and-forget. It returns at once, never throws and never rejects;
// a failed write is logged at debug and otherwise ignored (events are best effort, as in
// client-go). Repeats of the same (object uid, type, reason, message) within `dedupeTtlMs` of
// the previous occurrence are folded into one Event by a merge patch of `count` and
// `lastTimestamp`, instead of creating a new Event each time. Writes for one Event are
// serialized, and repeats that arrive while a write is in flight are coalesced into the next
// write. `flush()` waits for every write started so far (tests, graceful shutdown).
import { hostname } from 'node:os';
import { PatchStrategy, setHeaderOptions, type CoreV1Event } from '@kubernetes/client-node';
import { LRUCache } from 'lru-cache';
import { nullLogger, type Logger } from '../observability/logger.js';
import { describeError, isAlreadyExists, isKubeNotFound } from './errors.js';

export type EventType = 'Normal' | 'Warning';

/** The object an event is about. `namespace` absent = cluster-scoped (e.g. a PV). */
export interface EventSubject {
  kind: string;
  apiVersion?: string;
  metadata: { name: string; namespace?: string; uid?: string; resourceVersion?: string };
}

/**
 * The event calls, in CoreV1Api's argument shapes (CoreV1Api fits, and so does KubeRest). Patches
 * are JSON merge patches, sent with client-node's merge-patch header options.
 */
interface EventApi {
  createNamespacedEvent(a: { namespace: string; body: CoreV1Event }): Promise<unknown>;
  patchNamespacedEvent(a: { name: string; namespace: string; body: object }, options?: ReturnType<typeof setHeaderOptions>): Promise<unknown>;
}

export interface EventRecorderOptions {
  core: EventApi;
  /** `source.component`, e.g. 'datera.io/provisioner-datera_<identity>' (see `eventComponent`). */
  component: string;
  /** `reportingComponent`; defaults to `component`. */
  reportingComponent?: string;
  /** `reportingInstance`; defaults to the host name. */
  reportingInstance?: string;
  /** Optional `source.host`. */
  host?: string;
  logger?: Logger;
  /** How long after its last occurrence an event is still folded into. Default 10 min. */
  dedupeTtlMs?: number;
  /** Distinct events remembered for dedupe. Default 4096 (client-go's cache size). */
  maxCached?: number;
  /** Writes allowed in flight; beyond that new events are dropped (logged at debug). Default 1000. */
  maxPending?: number;
  /** Namespace for events about cluster-scoped objects. Default 'default'. */
  clusterNamespace?: string;
  /** Wall clock for timestamps (tests). */
  now?: () => Date;
  /** Monotonic clock for the dedupe TTL (tests). Default performance.now. */
  monotonicNow?: () => number;
}

/** Longest message stored; longer ones are cut (events.k8s.io rejects notes over 1024). */
export const MAX_MESSAGE_LENGTH = 1024;
const MAX_REASON_LENGTH = 128;

interface Series {
  key: string;
  namespace: string;
  name: string;
  base: CoreV1Event;
  first: Date;
  last: Date;
  /** Occurrences recorded. */
  count: number;
  /** Occurrences the server has been told about. */
  written: number;
  created: boolean;
  tail: Promise<void>;
}

let seq = 0;

/** Event name like client-go's `<object>.<hex timestamp>`, unique within this process. */
function eventName(objectName: string, at: Date): string {
  const stamp = (BigInt(at.getTime()) * 1_000_000n + BigInt(seq++ % 1_000_000)).toString(16);
  return `${objectName.slice(0, 253 - stamp.length - 1)}.${stamp}`;
}

/** Cuts `s` to `max` characters, marking the cut, without splitting a surrogate pair. */
function truncateMessage(s: string, max = MAX_MESSAGE_LENGTH): string {
  if (s.length <= max) return s;
  let end = max - 3;
  const c = s.charCodeAt(end - 1);
  if (c >= 0xd800 && c <= 0xdbff) end--;
  return `${s.slice(0, end)}...`;
}

/** Timestamp as the API server writes metav1.Time: RFC 3339, second precision. */
function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * The `source.component` of our events as sig-storage-lib-external-provisioner writes it:
 * `<provisioner name>_<identity>` (its identity is the lease holder's, host name and a unique id),
 * so `kubectl get events` tells replicas apart and tools that match on the name prefix still work.
 */
export function eventComponent(provisionerName: string, identity: string): string {
  return `${provisionerName}_${identity}`;
}

export class EventRecorder {
  readonly #core: EventRecorderOptions['core'];
  readonly #component: string;
  readonly #reportingComponent: string;
  readonly #reportingInstance: string;
  readonly #host: string | undefined;
  readonly #clusterNamespace: string;
  readonly #maxPending: number;
  readonly #now: () => Date;
  readonly #log: Logger;
  readonly #series: LRUCache<string, Series>;
  readonly #inflight = new Set<Promise<void>>();

  constructor(opts: EventRecorderOptions) {
    this.#core = opts.core;
    this.#component = opts.component;
    this.#reportingComponent = opts.reportingComponent ?? opts.component;
    this.#reportingInstance = opts.reportingInstance ?? hostname();
    this.#host = opts.host;
    this.#clusterNamespace = opts.clusterNamespace ?? 'default';
    this.#maxPending = opts.maxPending ?? 1000;
    this.#now = opts.now ?? (() => new Date());
    this.#log = (opts.logger ?? nullLogger()).child({ subsystem: 'events' });
    const monotonic = opts.monotonicNow;
    this.#series = new LRUCache<string, Series>({
      max: opts.maxCached ?? 4096,
      ttl: opts.dedupeTtlMs ?? 10 * 60_000,
      updateAgeOnGet: false,
      ...(monotonic ? { perf: { now: monotonic }, ttlResolution: 0 } : {}),
    });
  }

  /**
   * Records an event about `obj`. Returns immediately; never throws.
   * @param reason short CamelCase cause, e.g. 'ProvisioningFailed'
   * @param message human readable; cut to 1024 characters
   */
  record(obj: EventSubject, type: EventType, reason: string, message: string): void {
    try {
      const msg = truncateMessage(String(message ?? ''));
      const rsn = String(reason ?? '').slice(0, MAX_REASON_LENGTH);
      const md = obj.metadata;
      const namespace = md.namespace || this.#clusterNamespace;
      const identity = md.uid || `${obj.kind}/${md.namespace ?? ''}/${md.name}`;
      const key = `${identity}\u0000${type}\u0000${rsn}\u0000${msg}`;
      const now = this.#now();
      let s = this.#series.get(key);
      if (s) {
        s.count++;
        s.last = now;
        // Refresh the TTL: the window is measured from the latest occurrence.
        this.#series.set(key, s);
      } else {
        s = {
          key,
          namespace,
          name: eventName(md.name, now),
          base: this.#eventBody(obj, namespace, type, rsn, msg),
          first: now,
          last: now,
          count: 1,
          written: 0,
          created: false,
          tail: Promise.resolve(),
        };
        this.#series.set(key, s);
      }
      if (this.#inflight.size >= this.#maxPending) {
        this.#log.debug('event dropped: too many writes in flight', { reason: rsn, object: md.name });
        return;
      }
      const series = s;
      const p = series.tail.then(() => this.#write(series)).catch((err: unknown) => {
        this.#log.debug('event write failed', { reason: rsn, object: md.name, err: describeError(err) });
      });
      series.tail = p;
      this.#inflight.add(p);
      void p.then(() => this.#inflight.delete(p));
    } catch (err) {
      this.#log.debug('event not recorded', { err: describeError(err) });
    }
  }

  /** Convenience for `record(obj, 'Normal', …)`. */
  normal(obj: EventSubject, reason: string, message: string): void {
    this.record(obj, 'Normal', reason, message);
  }

  /** Convenience for `record(obj, 'Warning', …)`. */
  warning(obj: EventSubject, reason: string, message: string): void {
    this.record(obj, 'Warning', reason, message);
  }

  /** Resolves once every write started before (or during) the call has finished. Never rejects. */
  async flush(): Promise<void> {
    while (this.#inflight.size > 0) await Promise.all(Array.from(this.#inflight));
  }

  /** Writes in flight (metrics, tests). */
  get pending(): number {
    return this.#inflight.size;
  }

  #eventBody(obj: EventSubject, namespace: string, type: EventType, reason: string, message: string): CoreV1Event {
    const md = obj.metadata;
    const involved: CoreV1Event['involvedObject'] = { kind: obj.kind, name: md.name };
    if (obj.apiVersion) involved.apiVersion = obj.apiVersion;
    if (md.namespace) involved.namespace = md.namespace;
    if (md.uid) involved.uid = md.uid;
    if (md.resourceVersion) involved.resourceVersion = md.resourceVersion;
    const source: CoreV1Event['source'] = { component: this.#component };
    if (this.#host) source.host = this.#host;
    return {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name: '', namespace },
      involvedObject: involved,
      type,
      reason,
      message,
      source,
      reportingComponent: this.#reportingComponent,
      reportingInstance: this.#reportingInstance,
    };
  }

  async #write(s: Series): Promise<void> {
    if (s.written >= s.count) return; // a previous write already carried this occurrence
    const count = s.count;
    const last = s.last;
    if (!s.created) {
      await this.#create(s, count, last);
      return;
    }
    try {
      await this.#core.patchNamespacedEvent(
        { name: s.name, namespace: s.namespace, body: { count, lastTimestamp: rfc3339(last) } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
      s.written = Math.max(s.written, count);
    } catch (err) {
      if (!isKubeNotFound(err)) throw err;
      // The server expired the Event (default event TTL 1 h): start a new one.
      s.name = eventName(s.base.involvedObject.name ?? 'object', last);
      s.created = false;
      s.first = last;
      await this.#create(s, count, last);
    }
  }

  async #create(s: Series, count: number, last: Date): Promise<void> {
    const body: CoreV1Event = {
      ...s.base,
      metadata: { name: s.name, namespace: s.namespace },
      count,
      firstTimestamp: s.first,
      lastTimestamp: last,
    };
    try {
      await this.#core.createNamespacedEvent({ namespace: s.namespace, body });
      s.created = true;
      s.written = Math.max(s.written, count);
    } catch (err) {
      if (!isAlreadyExists(err)) throw err; // stays uncreated: the next occurrence retries the create
      s.created = true;
      await this.#core.patchNamespacedEvent(
        { name: s.name, namespace: s.namespace, body: { count, lastTimestamp: rfc3339(last) } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
      s.written = Math.max(s.written, count);
    }
  }
}
