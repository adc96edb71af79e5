// SPDX-License-Identifier: Apache-2.0
// `datera-provisioner audit`: its command line, reading the cluster the way the provisioner does
// (same settings, kubeconfig or in-cluster config, credentials), the table and JSON output, and
// the exit code for monitoring. What is compared and how orphans are deleted is
// lib/admin/audit-scan.ts's.
//
// EXIT CODES: 0 nothing found; 1 findings (orphans not deleted, PVs whose app instance is
// missing, drift; app instances of other clusters or provisioners are listed but are not
// findings); 2 the audit could not finish or is incomplete (bad flags or settings, the cluster or
// a tenant could not be read, a delete failed).
import type { V1ConfigMap, V1PersistentVolume, V1PersistentVolumeClaim, V1StorageClass } from '@kubernetes/client-node';
import { ConfigError, loadConfig, type Config } from '../config.js';
import { formatDuration, parseDuration } from '../config-flags.js';
import { isKubeNotFound } from '../kube/errors.js';
import type { KubeRest } from '../kube/rest.js';
import { nullLogger } from '../observability/logger.js';
import { Metrics } from '../observability/metrics.js';
import { parseTemplates, type TemplateSet } from '../provision/app-templates.js';
import { dateraConnections, kubeClient, resolveClusterId } from '../wiring.js';
import { Audit, formatAge, hasFindings, type AuditReport, type ClusterView } from './audit-scan.js';

/**
 * What the command uses of its surroundings: the part of the admin commands' CommandIo
 * (lib/admin/commands.ts) it needs; the Kubernetes client is the provisioner's own (wiring.ts).
 */
interface AuditIo {
  stdout(text: string): void;
  stderr(text: string): void;
  env: NodeJS.ProcessEnv;
}

const EXIT_CLEAN = 0;
const EXIT_FINDINGS = 1;
const EXIT_ERROR = 2;

/** Below this, --older-than would race claims being provisioned (the sweep's grace has the same floor). */
const MIN_OLDER_THAN_MS = 60_000;

const HELP = `Usage: datera-provisioner audit [options] [provisioner settings]

Compares Datera with the cluster and reports:
  orphans   app instances of THIS cluster and provisioner with no PV and no claim, with their age
  missing   PVs of this provisioner whose app instance is gone
  drift     size, replicas or QoS of an app instance that differ from what its class and the
            AppTemplates would make today for the PV's size and the claim's annotations
  foreign   app instances of other clusters or provisioners, or untagged (listed, never touched)
It looks in every tenant the provisioner's credentials reach: the default tenant and its
sub-tenants, the tenants and Secrets of this provisioner's StorageClasses and templates, and
those of its PVs. Nothing is changed unless --delete-orphans and --yes are both given.

Options:
  -o, --output table|json   output format (default table)
      --delete-orphans      delete orphans (not retained ones) at least --older-than old; a dry
                            run unless --yes. Each delete re-checks ownership first: this
                            cluster's id, this provisioner, no PV and no claim
      --older-than DURATION minimum age by the k8s-created-at metadata, e.g. 24h, 7d is 168h
                            (required with --delete-orphans; at least 1m)
      --yes                 really delete (with --delete-orphans)
      --progress            progress lines on stderr also with -o json (always on for tables)
  -h, --help                this help

Provisioner settings (--kubeconfig, --namespace, --provisioner-name, --cluster-id, --config,
--datera-endpoint, DAT_MGMT/DAT_USER/DAT_PASS, the credentials directory ...) are read exactly
as the provisioner reads them; see datera-provisioner --help.

Exit codes: 0 clean; 1 findings (orphans, missing app instances, drift); 2 error or incomplete
audit (bad flags or settings, something could not be read, a delete failed).

Examples:
  # inside the running provisioner (its settings and credentials are all there)
  kubectl -n datera-system exec deploy/datera-provisioner -- datera-provisioner audit
  # from a workstation
  DAT_MGMT=10.0.0.5:7718 DAT_USER=admin DAT_PASS=... datera-provisioner audit --kubeconfig ~/.kube/config --namespace datera-system
  # for monitoring or scripts
  datera-provisioner audit -o json | jq '.orphans[] | select(.ageSeconds > 86400)'
  # what would be deleted, then delete it
  datera-provisioner audit --delete-orphans --older-than 24h
  datera-provisioner audit --delete-orphans --older-than 24h --yes
`;

interface AuditArgs {
  output: 'table' | 'json';
  deleteOrphans: boolean;
  olderThanMs?: number;
  yes: boolean;
  progress: boolean;
  help: boolean;
  /** Everything else: the provisioner's settings. */
  rest: string[];
  problems: string[];
}

/** Splits argv into the audit's own flags and the provisioner settings; every problem at once. */
function readArgs(argv: readonly string[]): AuditArgs {
  const a: AuditArgs = { output: 'table', deleteOrphans: false, yes: false, progress: false, help: false, rest: [], problems: [] };
  let olderThan: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.indexOf('=');
    const name = arg.startsWith('--') && eq > 0 ? arg.slice(0, eq) : arg;
    const inline = arg.startsWith('--') && eq > 0 ? arg.slice(eq + 1) : undefined;
    const value = (): string | undefined => {
      if (inline !== undefined) return inline;
      const next = argv[i + 1];
      if (next === undefined || next.startsWith('-')) {
        a.problems.push(`flag ${name} needs a value`);
        return undefined;
      }
      i++;
      return next;
    };
    const flag = (): boolean => {
      if (inline === undefined || inline === 'true') return true;
      if (inline === 'false') return false;
      a.problems.push(`${name}: expected true or false, got ${JSON.stringify(inline)}`);
      return false;
    };
    if (name === '-h' || name === '--help') a.help = true;
    else if (name === '-o' || name === '--output' || /^-o./.test(arg)) {
      const v = /^-o./.test(arg) ? arg.slice(2).replace(/^=/, '') : value();
      if (v === undefined) continue;
      if (v === 'table' || v === 'json') a.output = v;
      else a.problems.push(`--output "${v}" is not one of table, json`);
    } else if (name === '--delete-orphans') a.deleteOrphans = flag();
    else if (name === '--yes') a.yes = flag();
    else if (name === '--progress') a.progress = flag();
    else if (name === '--older-than') olderThan = value() ?? olderThan;
    else a.rest.push(arg);
  }
  if (olderThan !== undefined) {
    const ms = parseDuration(olderThan.endsWith('d') && /^\d+d$/.test(olderThan) ? `${Number(olderThan.slice(0, -1)) * 24}h` : olderThan);
    if (ms === undefined) a.problems.push(`--older-than: expected a duration such as 24h, 90m or 7d, got ${JSON.stringify(olderThan)}`);
    else if (ms < MIN_OLDER_THAN_MS) a.problems.push(`--older-than must be at least 1m (a volume being provisioned must never look orphaned), got ${olderThan}`);
    else a.olderThanMs = ms;
    if (!a.deleteOrphans) a.problems.push('--older-than applies only with --delete-orphans');
  }
  if (a.deleteOrphans && olderThan === undefined) a.problems.push('--delete-orphans needs --older-than (the minimum age of what it deletes, e.g. --older-than 24h)');
  if (a.yes && !a.deleteOrphans) a.problems.push('--yes applies only with --delete-orphans');
  return a;
}

/** The command: parses argv, audits, prints, returns the exit code. Never throws for bad input or unreachable servers. */
async function run(argv: readonly string[], io: AuditIo): Promise<number> {
  const args = readArgs(argv);
  if (args.help) {
    io.stdout(HELP);
    return EXIT_CLEAN;
  }
  let config: Config | undefined;
  try {
    config = loadConfig({ argv: args.rest, env: io.env });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    args.problems.push(...err.problems);
  }
  if (args.problems.length > 0 || !config) {
    io.stderr(`datera-provisioner audit: invalid arguments:\n  - ${args.problems.join('\n  - ')}\n(see datera-provisioner audit --help)\n`);
    return EXIT_ERROR;
  }
  const progress = args.output === 'table' || args.progress ? (line: string) => io.stderr(`audit: ${line}\n`) : undefined;
  const metrics = new Metrics({ defaultMetrics: false });
  const logger = nullLogger();
  const rest = kubeClient(config, metrics);
  const connections = dateraConnections(config, rest, metrics, logger);
  try {
    progress?.('reading the cluster');
    const cluster = await readCluster(config, rest);
    const audit = new Audit(cluster, { connections, ...(progress ? { progress } : {}) });
    const report = await audit.run();
    if (args.deleteOrphans) await audit.deleteOrphans(report, { olderThanMs: args.olderThanMs!, yes: args.yes });
    io.stdout(args.output === 'json' ? `${JSON.stringify(report, null, 2)}\n` : renderTable(report, args));
    if (report.errors.length > 0) return EXIT_ERROR;
    return hasFindings(report) ? EXIT_FINDINGS : EXIT_CLEAN;
  } catch (err) {
    io.stderr(`datera-provisioner audit: ${(err as Error).message}\n`);
    return EXIT_ERROR;
  } finally {
    await connections.close();
    await rest.close();
  }
}

/** One listing of each kind with the provisioner's own client, its cluster id and templates. */
async function readCluster(config: Config, rest: KubeRest): Promise<ClusterView> {
  const lister = rest.with({ timeoutMs: 60_000 });
  const [clusterId, volumes, claims, classes, cm] = await Promise.all([
    resolveClusterId(config, rest, nullLogger()),
    lister.list<V1PersistentVolume>('/api/v1/persistentvolumes'),
    lister.list<V1PersistentVolumeClaim>('/api/v1/persistentvolumeclaims'),
    lister.list<V1StorageClass>('/apis/storage.k8s.io/v1/storageclasses'),
    rest
      .request('GET', `/api/v1/namespaces/${encodeURIComponent(config.namespace)}/configmaps/${encodeURIComponent(config.templatesConfigMap)}`, undefined, true)
      .then((c) => c as V1ConfigMap)
      .catch((e: unknown) => (isKubeNotFound(e) ? undefined : Promise.reject(e))),
  ]);
  // As the controller reads it: no ConfigMap is no templates; an invalid one leaves the provisioner on its last good set.
  let templates: TemplateSet = { templates: new Map() };
  let templatesProblem: string | undefined;
  const where = `ConfigMap ${config.namespace}/${config.templatesConfigMap}`;
  const text = cm?.data?.[config.templatesKey];
  if (text !== undefined) {
    const parsed = parseTemplates(text);
    if (parsed.ok) templates = parsed.set;
    else templatesProblem = `the AppTemplates in ${where} are invalid (${parsed.errors.join('; ')})`;
  } else if (cm) templatesProblem = `${where} has no key "${config.templatesKey}"`;
  return {
    provisionerNames: new Set([config.provisionerName, ...config.extraProvisionerNames]),
    clusterId,
    namespace: config.namespace,
    defaultFsType: config.defaultFsType,
    volumes: volumes.items,
    claims: claims.items,
    classes: classes.items,
    templates,
    ...(templatesProblem !== undefined ? { templatesProblem } : {}),
    readVolume: (name) => rest.readPersistentVolume({ name }).catch((e: unknown) => (isKubeNotFound(e) ? undefined : Promise.reject(e))),
    readClaim: (namespace, name) =>
      rest.readNamespacedPersistentVolumeClaim({ name, namespace }).catch((e: unknown) => (isKubeNotFound(e) ? undefined : Promise.reject(e))),
  };
}

/** Columns padded to their widest cell. */
function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

function renderTable(r: AuditReport, args: AuditArgs): string {
  const out: string[] = [];
  const section = (title: string, header: string[], rows: string[][]) => {
    out.push(`${title}: ${rows.length === 0 ? 'none' : rows.length}\n`);
    if (rows.length > 0) out.push(table(header, rows));
    out.push('\n');
  };
  out.push(`Cluster ${r.clusterId}, provisioner ${r.provisionerNames.join(', ')}, ${r.tenants.length} tenant(s), ${r.tenants.reduce((s, t) => s + t.appInstances, 0)} app instance(s)\n\n`);
  section(
    'ORPHANS (app instances of this cluster with no PV and no claim)',
    ['TENANT', 'APP INSTANCE', 'AGE', 'CLAIM', 'CLASS', 'NOTE'],
    r.orphans.map((o) => [o.tenant, o.appInstance, o.ageSeconds === undefined ? 'unknown' : formatAge(o.ageSeconds), o.claim, o.storageClass, o.retained ? 'reclaim policy Retain: never deleted' : '']),
  );
  section(
    'MISSING (PVs whose app instance is gone)',
    ['PV', 'APP INSTANCE', 'TENANT', 'CLAIM', 'PHASE', 'RECLAIM'],
    r.missing.map((m) => [m.pv, m.appInstance, m.tenant, m.claim, m.phase, m.reclaimPolicy]),
  );
  section('DRIFT (app instance vs what the class and templates make today)', ['PV', 'APP INSTANCE', 'FIELD', 'ACTUAL', 'EXPECTED'], r.drift.map((d) => [d.pv, d.appInstance, d.field, d.actual, d.expected]));
  section(
    'FOREIGN (other clusters or provisioners, untagged: never touched)',
    ['TENANT', 'APP INSTANCE', 'WHY', 'PROVISIONER', 'CLUSTER', 'CLAIM'],
    r.foreign.map((f) => [f.tenant, f.appInstance, f.why, f.provisioner, f.clusterId, f.claim]),
  );
  if (r.deletions) {
    const mode = args.yes ? 'deleting' : 'dry run, nothing deleted';
    section(
      `DELETE ORPHANS older than ${formatDuration(args.olderThanMs ?? 0)} (${mode})`,
      ['TENANT', 'APP INSTANCE', 'ACTION', 'REASON'],
      r.deletions.map((d) => [d.tenant, d.appInstance, d.action, d.reason]),
    );
  }
  for (const n of r.notes) out.push(`note: ${n}\n`);
  for (const e of r.errors) out.push(`error: ${e.where}: ${e.message}\n`);
  return out.join('');
}

/** The command as the admin command registry (lib/admin/commands.ts) loads it. */
export const command = { help: HELP, run: (argv: string[], io: AuditIo): Promise<number> => run(argv, io) };
