// SPDX-License-Identifier: Apache-2.0
// manifests/monitoring: the rules file and the PrometheusRule hold the same alerts, and every
// metric their PromQL and the Grafana dashboard's queries name is one the provisioner's /metrics
// endpoint exports (read from a real scrape of lib/observability/http.ts: its # TYPE lines, with
// the _bucket/_sum/_count series of histograms and summaries).
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseYaml } from '../../lib/yaml.js';
import { startHttp } from '../../lib/observability/http.js';
import { Metrics } from '../../lib/observability/metrics.js';

const dir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'manifests/monitoring');

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface Groups {
  groups: Array<{ name: string; rules: Rule[] }>;
}

const FUNCTIONS_AND_KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset', 'inf', 'nan']);

/**
 * Metric names a PromQL expression reads: identifiers outside strings, label matchers `{...}`,
 * ranges `[...]` and grouping lists (`by (...)` etc.), that are neither functions (followed by
 * `(`), keywords nor numbers. Grafana's `label_values(metric, label)` counts too.
 */
function metricNames(expr: string): string[] {
  const lv = /label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,/.exec(expr);
  if (lv) return [lv[1]!];
  let e = expr.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""');
  e = e.replace(/\{[^}]*\}/g, ' ').replace(/\[[^\]]*\]/g, ' ');
  e = e.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const out = new Set<string>();
  const re = /[a-zA-Z_:][a-zA-Z0-9_:]*/g;
  for (let m = re.exec(e); m; m = re.exec(e)) {
    const word = m[0];
    if (FUNCTIONS_AND_KEYWORDS.has(word.toLowerCase())) continue;
    if (/^\s*\(/.test(e.slice(m.index + word.length))) continue; // a function call
    if (m.index > 0 && /[0-9.]/.test(e[m.index - 1]!)) continue; // the unit of a number, e.g. 1e3
    out.add(word);
  }
  return [...out].sort();
}

/** Every series name /metrics exports, from a scrape of the real endpoint. */
async function exportedNames(): Promise<Set<string>> {
  const metrics = new Metrics();
  const ok = () => ({ ok: true, detail: 'test' });
  const http = await startHttp('127.0.0.1', 0, metrics, { healthy: ok, ready: ok, leaderHealthy: ok });
  try {
    const text = await (await fetch(`${http.url}/metrics`)).text();
    const names = new Set<string>();
    for (const line of text.split('\n')) {
      const m = /^# TYPE (\S+) (\S+)$/.exec(line);
      if (!m) continue;
      const [, name, type] = m as unknown as [string, string, string];
      names.add(name);
      if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(name + s);
      if (type === 'summary') for (const s of ['_sum', '_count']) names.add(name + s);
    }
    return names;
  } finally {
    await new Promise<void>((r) => http.close(() => r()));
  }
}

interface Panel {
  type: string;
  title?: string;
  id?: number;
  targets?: Array<{ expr?: string }>;
  panels?: Panel[];
}

function dashboard(): { panels: Panel[]; templating: { list: Array<{ query?: string | { query?: string } }> } } {
  return JSON.parse(readFileSync(join(dir, 'grafana-dashboard.json'), 'utf8')) as ReturnType<typeof dashboard>;
}

function dashboardExprs(): Array<{ where: string; expr: string }> {
  const d = dashboard();
  const out: Array<{ where: string; expr: string }> = [];
  const walk = (ps: Panel[]) => {
    for (const p of ps) {
      for (const t of p.targets ?? []) if (t.expr) out.push({ where: `panel "${p.title}"`, expr: t.expr });
      walk(p.panels ?? []);
    }
  };
  walk(d.panels);
  for (const v of d.templating.list) {
    const q = typeof v.query === 'string' ? v.query : v.query?.query;
    if (q && q.includes('(')) out.push({ where: 'templating', expr: q });
  }
  return out;
}

function rulesFile(): Groups {
  return parseYaml(readFileSync(join(dir, 'prometheus-rules.yaml'), 'utf8')) as Groups;
}

/** `where: name` for every metric an expression names that /metrics does not export. */
function unexported(exprs: Array<{ where: string; expr: string }>, exported: Set<string>): string[] {
  return exprs.flatMap((e) => metricNames(e.expr).filter((n) => !exported.has(n)).map((n) => `${e.where}: ${n}`));
}

describe('manifests/monitoring', () => {
  let exported: Set<string>;
  before(async () => {
    exported = await exportedNames();
  });

  describe('metricNames (the PromQL reader of this spec)', () => {
    const rows: Array<[string, string[]]> = [
      ['sum by (class) (increase(a_total{namespace="x", class=~"gold|b"}[15m])) >= 3', ['a_total']],
      ['(max(leader_status{n="y"}) or vector(0)) < 1', ['leader_status']],
      ['histogram_quantile(0.99, sum by (le, route) (rate(d_seconds_bucket[$__rate_interval]))) > 5', ['d_seconds_bucket']],
      ['sum(rate(c_count{status=~"5..|error"}[10m])) / sum(rate(c_count[10m] offset 1h)) > 0.05', ['c_count']],
      ['a / on (pod) group_left (node) b unless c > bool 1e3', ['a', 'b', 'c']],
      ['label_values(leader_election_master_status, namespace)', ['leader_election_master_status']],
    ];
    for (const [expr, want] of rows) it(`${expr} -> ${want.join(', ')}`, () => expect(metricNames(expr)).to.deep.equal(want));

    it('the check names a metric /metrics does not export, and passes one it does', () => {
      expect(unexported([{ where: 'x', expr: 'rate(no_such_metric_total[5m]) + datera_orphans' }], exported)).to.deep.equal(['x: no_such_metric_total']);
    });
  });

  it('the scrape exports the provisioner metrics with histogram series (the reference the checks below use)', () => {
    for (const n of ['controller_persistentvolumeclaim_provision_failed_total', 'datera_request_duration_seconds_bucket', 'datera_request_duration_seconds_count', 'leader_election_master_status', 'process_resident_memory_bytes'])
      expect(exported.has(n), n).to.equal(true);
  });

  it('the PrometheusRule holds exactly the groups of the rules file', () => {
    const cr = parseYaml(readFileSync(join(dir, 'prometheusrule.yaml'), 'utf8')) as { apiVersion: string; kind: string; spec: Groups };
    expect([cr.apiVersion, cr.kind]).to.deep.equal(['monitoring.coreos.com/v1', 'PrometheusRule']);
    expect(cr.spec).to.deep.equal(rulesFile());
  });

  it('has an alert for provisioning failures, failing deletes, no leader, invalid templates, Datera latency, Datera errors and orphans, each with for, severity, summary and description', () => {
    const rules = rulesFile().groups.flatMap((g) => g.rules);
    const byName = new Map(rules.map((r) => [r.alert, r]));
    const want: Array<[string, string]> = [
      ['DateraProvisioningFailing', 'controller_persistentvolumeclaim_provision_failed_total'],
      ['DateraDeletesFailing', 'controller_persistentvolume_delete_failed_total'],
      ['DateraProvisionerNoLeader', 'leader_election_master_status'],
      ['DateraTemplatesInvalid', 'datera_templates_config_valid'],
      ['DateraApiLatencyHigh', 'datera_request_duration_seconds_bucket'],
      ['DateraApiErrorsHigh', 'datera_request_duration_seconds_count'],
      ['DateraOrphansFound', 'datera_orphans'],
    ];
    for (const [alert, metric] of want) {
      const r = byName.get(alert);
      expect(r, alert).to.not.equal(undefined);
      expect(metricNames(r!.expr), alert).to.include(metric);
      expect(r!.for, alert).to.match(/^\d+[smh]$/);
      expect(['critical', 'warning', 'info'], alert).to.include(r!.labels?.severity);
      expect(r!.annotations?.summary, alert).to.be.a('string').and.not.equal('');
      expect(r!.annotations?.description, alert).to.be.a('string').and.not.equal('');
    }
  });

  it('every metric the alerts use is exported by /metrics', () => {
    const exprs = rulesFile().groups.flatMap((g) => g.rules.map((r) => ({ where: `alert ${r.alert ?? r.record}`, expr: r.expr })));
    expect(exprs.length).to.be.greaterThan(6);
    expect(unexported(exprs, exported)).to.deep.equal([]);
  });

  it('every metric the Grafana dashboard queries (panels and variables) is exported by /metrics', () => {
    const exprs = dashboardExprs();
    expect(exprs.length).to.be.greaterThan(10);
    expect(unexported(exprs, exported)).to.deep.equal([]);
  });

  it('the dashboard panels have unique ids and every query panel a query', () => {
    const panels = dashboard().panels;
    const ids = panels.map((p) => p.id);
    expect(new Set(ids).size).to.equal(ids.length);
    for (const p of panels.filter((x) => x.type !== 'row')) expect(p.targets?.length ?? 0, p.title).to.be.greaterThan(0);
  });
});
