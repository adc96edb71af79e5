// SPDX-License-Identifier: Apache-2.0
// Prometheus metrics. The controller_* names and labels are those of
// sig-storage-lib-external-provisioner, so existing dashboards work unchanged.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

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

export class Metrics {
  readonly registry = new Registry();

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
  readonly queueDepth = new Gauge({
    name: 'workqueue_depth',
    help: 'Keys waiting or in progress in the work queue',
    labelNames: ['name'] as const,
    registers: [this.registry],
  });
  readonly queueDelayed = new Gauge({
    name: 'workqueue_delayed',
    help: 'Keys waiting for a backoff or a slow retry',
    labelNames: ['name'] as const,
    registers: [this.registry],
  });
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

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
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
