// SPDX-License-Identifier: Apache-2.0
// Prometheus metrics. The controller_* names and labels are those of
// sig-storage-lib-external-provisioner, and the workqueue_* and rest_client_* ones those of
// client-go, so existing dashboards work unchanged. Gauges that describe current state are read
// at scrape time (collect callbacks), so they cannot go stale between events.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, exponentialBuckets } from 'prom-client';

/**
 * The `source` label of the provision metrics. The claim's data source kind is written by the claim
 * author, so it is mapped onto a fixed set (no label cardinality for users to inflate):
 * "" (no data source), "PersistentVolumeClaim" (a clone), "other" (anything else, refused).
 */
export type SourceLabel = '' | 'PersistentVolumeClaim' | 'other';

export function sourceLabel(kind: string | undefined): SourceLabel {
  if (kind === undefined || kind === '') return '';
  return kind === 'PersistentVolumeClaim' ? 'PersistentVolumeClaim' : 'other';
}

/**
 * What a work queue reports as it runs (client-go's workqueue metrics, as events). Durations are
 * in seconds. Implementations must not throw.
 */
export interface QueueObserver {
  /** A key started waiting: newly queued, or marked to run again while a worker has it. */
  added(): void;
  /** A worker took a key that had waited `waitedSeconds` since it was added. */
  started(waitedSeconds: number): void;
  /** A worker finished a key after `workedSeconds`, whatever the outcome. */
  finished(workedSeconds: number): void;
  /** A failed key was scheduled to run again after its backoff. */
  retried(): void;
}

/** A work queue's state now; read at every scrape. */
export interface QueueState {
  /** Keys waiting for a worker (client-go's depth: keys in progress count only when marked to run again). */
  depth: number;
  /** Keys waiting for a backoff or a delayed re-check (not in `depth`). */
  delayed: number;
  /** Sum of how long the keys in progress have been running, in seconds. */
  unfinishedSeconds: number;
  /** How long the longest-running key in progress has been running, in seconds (0 when none). */
  longestRunningSeconds: number;
}

/** client-go's buckets for both workqueue duration histograms: 10 ns to 10 s, by factors of 10. */
const WORKQUEUE_BUCKETS = exponentialBuckets(10e-9, 10, 10);

export class Metrics {
  readonly registry = new Registry();
  /** Work queues by their `name` label, read by the workqueue gauges at scrape time. */
  readonly #queues = new Map<string, () => QueueState>();

  readonly provisionTotal = new Counter({
    name: 'controller_persistentvolumeclaim_provision_total',
    help: 'Total number of persistent volumes provisioned successfully',
    labelNames: ['class', 'source'] as const,
    registers: [this.registry],
  });
  readonly provisionFailed = new Counter({
    name: 'controller_persistentvolumeclaim_provision_failed_total',
    help: 'Total number of persistent volume provision attempts that failed',
    labelNames: ['class', 'source'] as const,
    registers: [this.registry],
  });
  readonly provisionDuration = new Histogram({
    name: 'controller_persistentvolumeclaim_provision_duration_seconds',
    help: 'Latency in seconds of successful provision operations',
    labelNames: ['class', 'source'] as const,
    registers: [this.registry],
  });
  readonly deleteTotal = new Counter({
    name: 'controller_persistentvolume_delete_total',
    help: 'Total number of persistent volumes deleted successfully',
    labelNames: ['class'] as const,
    registers: [this.registry],
  });
  readonly deleteFailed = new Counter({
    name: 'controller_persistentvolume_delete_failed_total',
    help: 'Total number of persistent volume delete attempts that failed',
    labelNames: ['class'] as const,
    registers: [this.registry],
  });
  readonly deleteDuration = new Histogram({
    name: 'controller_persistentvolume_delete_duration_seconds',
    help: 'Latency in seconds of successful delete operations',
    labelNames: ['class'] as const,
    registers: [this.registry],
  });
  readonly resizeTotal = new Counter({
    name: 'controller_persistentvolumeclaim_resize_total',
    help: 'Total number of persistent volumes grown successfully (the file system grows on the node afterwards)',
    labelNames: ['class'] as const,
    registers: [this.registry],
  });
  readonly resizeFailed = new Counter({
    name: 'controller_persistentvolumeclaim_resize_failed_total',
    help: 'Total number of persistent volume resize attempts that failed or were refused',
    labelNames: ['class'] as const,
    registers: [this.registry],
  });
  readonly resizeDuration = new Histogram({
    name: 'controller_persistentvolumeclaim_resize_duration_seconds',
    help: 'Latency in seconds of successful resize operations (the controller part: storage, PV and claim)',
    labelNames: ['class'] as const,
    registers: [this.registry],
  });
  /** QoS changes of existing volumes (qos-updates.ts): performance policies changed on the storage. */
  readonly qosUpdateTotal = new Counter({
    name: 'controller_persistentvolume_qos_update_total',
    help: 'Total number of existing persistent volumes whose performance policy was changed successfully',
    labelNames: ['class'] as const,
    registers: [this.registry],
  });
  readonly qosUpdateFailed = new Counter({
    name: 'controller_persistentvolume_qos_update_failed_total',
    help: 'Total number of attempts to change the performance policy of an existing persistent volume that failed',
    labelNames: ['class'] as const,
    registers: [this.registry],
  });
  readonly dateraRequest = new Histogram({
    name: 'datera_request_duration_seconds',
    help: 'Latency of Datera REST calls by method, route template and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly kubeRequests = new Counter({
    name: 'kubernetes_api_requests_total',
    help: 'Requests sent to the Kubernetes API (outside watches) by verb and resource',
    labelNames: ['verb', 'resource'] as const,
    registers: [this.registry],
  });
  /** client-go's `rest_client_requests_total`: every Kubernetes API request once it has an answer (or failed without one). */
  readonly restRequests = new Counter({
    name: 'rest_client_requests_total',
    help: 'Number of HTTP requests to the Kubernetes API, partitioned by status code ("<error>" when there was no reply), method, and host',
    labelNames: ['code', 'method', 'host'] as const,
    registers: [this.registry],
  });
  readonly queueAdds = new Counter({
    name: 'workqueue_adds_total',
    help: 'Total number of adds handled by the work queue',
    labelNames: ['name'] as const,
    registers: [this.registry],
  });
  readonly queueRetries = new Counter({
    name: 'workqueue_retries_total',
    help: 'Total number of retries (failed keys scheduled again after their backoff) handled by the work queue',
    labelNames: ['name'] as const,
    registers: [this.registry],
  });
  readonly queueLatency = new Histogram({
    name: 'workqueue_queue_duration_seconds',
    help: 'How long in seconds a key waits in the work queue before a worker takes it',
    labelNames: ['name'] as const,
    buckets: WORKQUEUE_BUCKETS,
    registers: [this.registry],
  });
  readonly queueWorkDuration = new Histogram({
    name: 'workqueue_work_duration_seconds',
    help: 'How long in seconds handling a key from the work queue takes',
    labelNames: ['name'] as const,
    buckets: WORKQUEUE_BUCKETS,
    registers: [this.registry],
  });
  readonly queueDepth = this.#queueGauge('workqueue_depth', 'Current depth of the work queue: keys waiting for a worker', (s) => s.depth);
  readonly queueDelayed = this.#queueGauge('workqueue_delayed', 'Keys waiting for a backoff or a slow retry', (s) => s.delayed);
  readonly queueUnfinished = this.#queueGauge(
    'workqueue_unfinished_work_seconds',
    'Seconds of work in progress not yet observed by work_duration; large values indicate stuck workers',
    (s) => s.unfinishedSeconds,
  );
  readonly queueLongestRunning = this.#queueGauge(
    'workqueue_longest_running_processor_seconds',
    'How many seconds the longest running worker of the work queue has been handling its key',
    (s) => s.longestRunningSeconds,
  );
  readonly leader = new Gauge({
    name: 'leader_election_master_status',
    help: '1 when this replica holds the lease, else 0',
    labelNames: ['name'] as const,
    registers: [this.registry],
  });
  readonly templatesValid = new Gauge({
    name: 'datera_templates_config_valid',
    help: '1 when the last AppTemplate ConfigMap edit parsed, 0 when it was rejected (last good templates stay in use)',
    registers: [this.registry],
  });
  readonly templatesLoaded = new Gauge({
    name: 'datera_templates_loaded',
    help: 'Number of AppTemplates in use',
    registers: [this.registry],
  });
  readonly orphansFound = new Counter({
    name: 'datera_orphans_found_total',
    help: 'App instances of this cluster and provisioner found with no PV and no claim (each counted once per process)',
    registers: [this.registry],
  });
  readonly orphansRemoved = new Counter({
    name: 'datera_orphans_removed_total',
    help: 'Orphaned app instances the orphan sweep deleted',
    registers: [this.registry],
  });
  readonly orphans = new Gauge({
    name: 'datera_orphans',
    help: 'Orphaned app instances the last sweep found (in report mode, those still waiting for an admin)',
    registers: [this.registry],
  });

  /** The request hooks every Kubernetes client gets (KubeRest, the typed clients, raw lists). */
  readonly kubeHooks = {
    onRequest: (verb: string, resource: string): void => void this.kubeRequests.inc({ verb, resource }),
    onResponse: (code: string, method: string, host: string): void => void this.restRequests.inc({ code, method, host }),
  };

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  /**
   * Registers a work queue under the label `name`: its gauges are read from `state` at every
   * scrape, and the returned observer records its events. Registering a name again replaces the
   * earlier queue's state reader (the counters and histograms continue).
   */
  workQueue(name: string, state: () => QueueState): QueueObserver {
    this.#queues.set(name, state);
    const labels = { name };
    // Every series exists from the start, at 0, as with client-go's named queues.
    this.queueAdds.inc(labels, 0);
    this.queueRetries.inc(labels, 0);
    this.queueLatency.zero(labels);
    this.queueWorkDuration.zero(labels);
    return {
      added: () => this.queueAdds.inc(labels),
      started: (waited) => this.queueLatency.observe(labels, waited),
      finished: (worked) => this.queueWorkDuration.observe(labels, worked),
      retried: () => this.queueRetries.inc(labels),
    };
  }

  /** A gauge with label `name` whose value per registered work queue is read at scrape time. */
  #queueGauge(name: string, help: string, read: (s: QueueState) => number): Gauge<'name'> {
    const queues = this.#queues;
    return new Gauge({
      name,
      help,
      labelNames: ['name'] as const,
      registers: [this.registry],
      collect() {
        for (const [queue, state] of queues) this.set({ name: queue }, read(state()));
      },
    });
  }

  /** Reads a counter's value for tests and benchmarks. */
  async value(name: string, labels: Record<string, string> = {}): Promise<number> {
    const m = await this.registry.getSingleMetric(name)?.get();
    if (!m) return 0;
    return m.values
      .filter((v) => Object.entries(labels).every(([k, x]) => (v.labels as Record<string, unknown>)[k] === x))
      .filter((v) => !('metricName' in v) || !String((v as { metricName?: string }).metricName).endsWith('_bucket'))
      .reduce((s, v) => s + v.value, 0);
  }
}
