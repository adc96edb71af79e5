// SPDX-License-Identifier: Apache-2.0
// Every setting of the provisioner in one typed, validated object.
//
// Sources, later ones win: built-in defaults < config file (YAML or JSON, `--config`, env
// DATERA_PROVISIONER_CONFIG) < environment variables < command-line flags. Datera credentials
// come from a mounted Secret directory (files `username`, `password`, `server`, optional
// `tenant`, `ldapServer`) or from the DAT_* environment variables Datera's other drivers use.
// The README's "Configuration" table lists every key; keep the two in step.
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadYaml } from '@kubernetes/client-node';

export interface DateraSettings {
  /** Management endpoint: `host:port` (7717 = http, otherwise https) or a URL. */
  endpoint: string;
  username: string;
  password: string;
  tenant: string;
  ldapServer?: string;
  apiVersion: string;
  caBundleFile?: string;
  insecureSkipTlsVerify: boolean;
  requestTimeoutMs: number;
  deadlineMs: number;
  connections: number;
  /** Largest Datera reply body read (bytes); past it the call fails with DATERA_RESPONSE_TOO_LARGE. Default 16 MiB. */
  maxResponseBytes?: number;
}

export interface Config {
  /** StorageClass.provisioner we serve. */
  provisionerName: string;
  /** Further names we also serve (migrations from an older deployment). */
  extraProvisionerNames: string[];
  /** Namespace of the provisioner: ConfigMap, Lease and credentials Secret live here. */
  namespace: string;
  /** Identity for the Lease and events (pod name). */
  identity: string;
  templatesConfigMap: string;
  templatesKey: string;
  /** Secret (type datera/iscsi) written into every PV's flexVolume.secretRef unless the class names another. */
  credentialsSecret: { name: string; namespace: string };
  /** Directory where that Secret is mounted; its files supply the Datera credentials. */
  credentialsDir: string;
  datera: DateraSettings;
  workers: number;
  kubeApiQps: number;
  kubeApiBurst: number;
  /** Events have their own client-side budget so that they never delay PV writes. */
  eventQps: number;
  eventBurst: number;
  kubeconfig?: string;
  retryInitialMs: number;
  retryMaxMs: number;
  /** Retry period for final errors (bad parameters) until the class or templates change. */
  finalErrorRetryMs: number;
  resyncPeriodMs: number;
  /** A `Provisioning` event is written only when a provision attempt runs longer than this, or is a retry. */
  provisioningEventDelayMs: number;
  leaderElection: { enabled: boolean; leaseName: string; leaseDurationMs: number; renewDeadlineMs: number; retryPeriodMs: number };
  httpAddress: string;
  httpPort: number;
  logLevel: string;
  defaultFsType: 'xfs' | 'ext4';
  /**
   * PetSet-era claims with only `volume.alpha.kubernetes.io/storage-class`: value -> one of our classes.
   * The key `*` matches any value. Empty (the default) means alpha claims are left alone.
   */
  legacyAlphaClasses: Record<string, string>;
  /**
   * Identity of this cluster recorded on every Datera volume (`k8s-cluster-id`) and required to
   * match before a delete. Empty (the default): the uid of the `kube-system` namespace, read once at
   * start-up. Set it where that read is not allowed, and give each cluster that shares a Datera
   * tenant its own value (a cluster restored from an etcd backup keeps the old namespace uid).
   */
  clusterId: string;
  /** The orphan sweep: `delete` (default), `report` (log, event, metric only) or `off`. */
  orphanSweep: 'delete' | 'report' | 'off';
  /** Pause between two sweeps. */
  orphanSweepIntervalMs: number;
  /** An app instance younger than this is never treated as an orphan. */
  orphanSweepGraceMs: number;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

type Raw = Record<string, unknown>;

/** Documented defaults (README "Configuration"). */
export function defaults(): Config {
  return {
    provisionerName: 'datera.io/provisioner-datera',
    extraProvisionerNames: [],
    namespace: 'datera-system',
    identity: '',
    templatesConfigMap: 'datera-templates',
    templatesKey: 'templates.yaml',
    credentialsSecret: { name: 'datera-credentials', namespace: '' },
    credentialsDir: '/etc/datera/credentials',
    datera: {
      endpoint: '',
      username: '',
      password: '',
      tenant: '/root',
      apiVersion: '2.2',
      insecureSkipTlsVerify: false,
      requestTimeoutMs: 30_000,
      deadlineMs: 120_000,
      connections: 32,
      maxResponseBytes: 16 * 1024 * 1024,
    },
    workers: 32,
    kubeApiQps: 200,
    kubeApiBurst: 400,
    eventQps: 50,
    eventBurst: 200,
    retryInitialMs: 1_000,
    retryMaxMs: 300_000,
    finalErrorRetryMs: 300_000,
    resyncPeriodMs: 900_000,
    provisioningEventDelayMs: 2_000,
    leaderElection: { enabled: true, leaseName: '', leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 },
    httpAddress: '0.0.0.0',
    httpPort: 8080,
    logLevel: 'info',
    defaultFsType: 'xfs',
    legacyAlphaClasses: {},
    clusterId: '',
    orphanSweep: 'delete',
    orphanSweepIntervalMs: 600_000,
    orphanSweepGraceMs: 600_000,
  };
}

/** Flag name -> config path and kind. Flags are `--name value` or `--name=value`. */
const FLAGS: Record<string, { path: string; kind: 'string' | 'int' | 'float' | 'bool' | 'duration' | 'list' | 'map' }> = {
  'provisioner-name': { path: 'provisionerName', kind: 'string' },
  'extra-provisioner-names': { path: 'extraProvisionerNames', kind: 'list' },
  namespace: { path: 'namespace', kind: 'string' },
  identity: { path: 'identity', kind: 'string' },
  'templates-configmap': { path: 'templatesConfigMap', kind: 'string' },
  'credentials-secret': { path: 'credentialsSecret.name', kind: 'string' },
  'credentials-secret-namespace': { path: 'credentialsSecret.namespace', kind: 'string' },
  'credentials-dir': { path: 'credentialsDir', kind: 'string' },
  'datera-endpoint': { path: 'datera.endpoint', kind: 'string' },
  'datera-tenant': { path: 'datera.tenant', kind: 'string' },
  'datera-api-version': { path: 'datera.apiVersion', kind: 'string' },
  'datera-ca-bundle': { path: 'datera.caBundleFile', kind: 'string' },
  'datera-insecure-skip-tls-verify': { path: 'datera.insecureSkipTlsVerify', kind: 'bool' },
  'datera-request-timeout': { path: 'datera.requestTimeoutMs', kind: 'duration' },
  'datera-deadline': { path: 'datera.deadlineMs', kind: 'duration' },
  'datera-connections': { path: 'datera.connections', kind: 'int' },
  'datera-max-response-bytes': { path: 'datera.maxResponseBytes', kind: 'int' },
  workers: { path: 'workers', kind: 'int' },
  'kube-api-qps': { path: 'kubeApiQps', kind: 'float' },
  'kube-api-burst': { path: 'kubeApiBurst', kind: 'int' },
  'event-qps': { path: 'eventQps', kind: 'float' },
  'event-burst': { path: 'eventBurst', kind: 'int' },
  kubeconfig: { path: 'kubeconfig', kind: 'string' },
  'retry-initial': { path: 'retryInitialMs', kind: 'duration' },
  'retry-max': { path: 'retryMaxMs', kind: 'duration' },
  'final-error-retry': { path: 'finalErrorRetryMs', kind: 'duration' },
  'resync-period': { path: 'resyncPeriodMs', kind: 'duration' },
  'provisioning-event-delay': { path: 'provisioningEventDelayMs', kind: 'duration' },
  'leader-elect': { path: 'leaderElection.enabled', kind: 'bool' },
  'leader-elect-lease-name': { path: 'leaderElection.leaseName', kind: 'string' },
  'leader-elect-lease-duration': { path: 'leaderElection.leaseDurationMs', kind: 'duration' },
  'leader-elect-renew-deadline': { path: 'leaderElection.renewDeadlineMs', kind: 'duration' },
  'leader-elect-retry-period': { path: 'leaderElection.retryPeriodMs', kind: 'duration' },
  'http-address': { path: 'httpAddress', kind: 'string' },
  'http-port': { path: 'httpPort', kind: 'int' },
  'log-level': { path: 'logLevel', kind: 'string' },
  'default-fs-type': { path: 'defaultFsType', kind: 'string' },
  'legacy-alpha-classes': { path: 'legacyAlphaClasses', kind: 'map' },
  'cluster-id': { path: 'clusterId', kind: 'string' },
  'orphan-sweep': { path: 'orphanSweep', kind: 'string' },
  'orphan-sweep-interval': { path: 'orphanSweepIntervalMs', kind: 'duration' },
  'orphan-sweep-grace': { path: 'orphanSweepGraceMs', kind: 'duration' },
};

/** Environment variable -> flag name. */
const ENV: Record<string, string> = {
  DATERA_PROVISIONER_NAME: 'provisioner-name',
  DATERA_EXTRA_PROVISIONER_NAMES: 'extra-provisioner-names',
  POD_NAMESPACE: 'namespace',
  POD_NAME: 'identity',
  DATERA_TEMPLATES_CONFIGMAP: 'templates-configmap',
  DATERA_CREDENTIALS_SECRET: 'credentials-secret',
  DATERA_CREDENTIALS_DIR: 'credentials-dir',
  DAT_MGMT: 'datera-endpoint',
  DAT_TENANT: 'datera-tenant',
  DAT_API: 'datera-api-version',
  DATERA_CA_BUNDLE: 'datera-ca-bundle',
  DATERA_INSECURE_SKIP_TLS_VERIFY: 'datera-insecure-skip-tls-verify',
  DATERA_WORKERS: 'workers',
  KUBE_API_QPS: 'kube-api-qps',
  KUBE_API_BURST: 'kube-api-burst',
  KUBECONFIG: 'kubeconfig',
  DATERA_LEADER_ELECT: 'leader-elect',
  DATERA_HTTP_PORT: 'http-port',
  LOG_LEVEL: 'log-level',
  DATERA_LEGACY_ALPHA_CLASSES: 'legacy-alpha-classes',
  DATERA_CLUSTER_ID: 'cluster-id',
  DATERA_ORPHAN_SWEEP: 'orphan-sweep',
};

/** Parses "1500ms", "2s", "5m", "1h" or a bare number of milliseconds. */
export function parseDuration(v: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(v.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  const mult = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 'ms') as 'ms' | 's' | 'm' | 'h'];
  return Math.round(n * mult);
}

function convert(name: string, kind: (typeof FLAGS)[string]['kind'], v: unknown, problems: string[]): unknown {
  const s = typeof v === 'string' ? v : undefined;
  switch (kind) {
    case 'string':
      if (typeof v === 'string') return v;
      break;
    case 'int':
    case 'float': {
      const n = typeof v === 'number' ? v : s !== undefined && s.trim() !== '' ? Number(s) : NaN;
      if (Number.isFinite(n) && (kind === 'float' || Number.isInteger(n))) return n;
      problems.push(`${name}: expected ${kind === 'int' ? 'an integer' : 'a number'}, got ${JSON.stringify(v)}`);
      return undefined;
    }
    case 'bool':
      if (typeof v === 'boolean') return v;
      if (s !== undefined && /^(true|1|yes)$/i.test(s)) return true;
      if (s !== undefined && /^(false|0|no)$/i.test(s)) return false;
      problems.push(`${name}: expected true or false, got ${JSON.stringify(v)}`);
      return undefined;
    case 'duration': {
      if (typeof v === 'number') return v;
      const d = s === undefined ? undefined : parseDuration(s);
      if (d !== undefined) return d;
      problems.push(`${name}: expected a duration such as 500ms, 2s, 5m, got ${JSON.stringify(v)}`);
      return undefined;
    }
    case 'list':
      if (Array.isArray(v)) return v.map(String);
      if (s !== undefined) return s.split(',').map((x) => x.trim()).filter(Boolean);
      break;
    case 'map':
      if (v && typeof v === 'object' && !Array.isArray(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, String(x)]));
      if (s !== undefined) {
        const out: Record<string, string> = {};
        for (const pair of s.split(',').map((x) => x.trim()).filter(Boolean)) {
          const i = pair.indexOf('=');
          if (i <= 0) {
            problems.push(`${name}: expected key=value pairs separated by commas, got ${JSON.stringify(pair)}`);
            return undefined;
          }
          out[pair.slice(0, i)] = pair.slice(i + 1);
        }
        return out;
      }
      break;
  }
  problems.push(`${name}: unexpected value ${JSON.stringify(v)}`);
  return undefined;
}

function setPath(obj: Raw, path: string, value: unknown): void {
  const parts = path.split('.');
  let cur: Raw = obj;
  for (const p of parts.slice(0, -1)) {
    if (typeof cur[p] !== 'object' || cur[p] === null) cur[p] = {};
    cur = cur[p] as Raw;
  }
  cur[parts[parts.length - 1]!] = value;
}

/** Flattens a config-file object into `path -> value` pairs for the known keys; unknown keys are problems. */
function fileEntries(obj: Raw, problems: string[], prefix = ''): Array<[string, unknown]> {
  const known = new Set(Object.values(FLAGS).map((f) => f.path));
  const out: Array<[string, unknown]> = [];
  for (const [k, v] of Object.entries(obj)) {
    const path = prefix ? `${prefix}.${k}` : k;
    if (known.has(path)) out.push([path, v]);
    else if (v && typeof v === 'object' && !Array.isArray(v) && [...known].some((p) => p.startsWith(path + '.')))
      out.push(...fileEntries(v as Raw, problems, path));
    else problems.push(`config file: unknown key "${path}"`);
  }
  return out;
}

export interface LoadOptions {
  argv?: string[];
  env?: NodeJS.ProcessEnv;
  /** Reads files (config file, credentials); injectable for tests. */
  readFile?: (path: string) => string | undefined;
}

function defaultReadFile(path: string): string | undefined {
  return existsSync(path) ? readFileSync(path, 'utf8') : undefined;
}

/**
 * Builds and validates the configuration. Throws ConfigError listing every problem at once,
 * each naming the setting and what is allowed. Never includes secret values in messages.
 */
export function loadConfig(opts: LoadOptions = {}): Config {
  const argv = opts.argv ?? process.argv.slice(2);
  const env = opts.env ?? process.env;
  const readFile = opts.readFile ?? defaultReadFile;
  const problems: string[] = [];
  const cfg = defaults() as unknown as Raw;

  // Flags first pass: find --config and --help.
  const flagValues: Array<[string, string]> = [];
  let configPath = env.DATERA_PROVISIONER_CONFIG;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) {
      problems.push(`unexpected argument "${a}"`);
      continue;
    }
    const eq = a.indexOf('=');
    const name = eq > 0 ? a.slice(2, eq) : a.slice(2);
    let value = eq > 0 ? a.slice(eq + 1) : undefined;
    if (value === undefined) {
      const next = argv[i + 1];
      const isBool = FLAGS[name]?.kind === 'bool';
      if (next !== undefined && !next.startsWith('--') && (!isBool || /^(true|false)$/.test(next))) {
        value = next;
        i++;
      } else value = isBool ? 'true' : undefined;
    }
    if (name === 'config') {
      configPath = value;
      continue;
    }
    if (!FLAGS[name]) {
      problems.push(`unknown flag --${name} (see --help)`);
      continue;
    }
    if (value === undefined) {
      problems.push(`flag --${name} needs a value`);
      continue;
    }
    flagValues.push([name, value]);
  }

  if (configPath) {
    const text = readFile(configPath);
    if (text === undefined) problems.push(`config file ${configPath} does not exist`);
    else {
      try {
        const parsed = loadYaml(text) as unknown;
        if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) {
          const kinds = new Map(Object.values(FLAGS).map((f) => [f.path, f.kind]));
          for (const [path, v] of fileEntries(parsed as Raw, problems)) {
            const value = convert(`config file key "${path}"`, kinds.get(path) ?? 'string', v, problems);
            if (value !== undefined) setPath(cfg, path, value);
          }
        } else if (parsed != null) problems.push(`config file ${configPath}: expected a mapping at the top level`);
      } catch (e) {
        problems.push(`config file ${configPath}: ${(e as Error).message.split('\n')[0]}`);
      }
    }
  }

  for (const [envName, flag] of Object.entries(ENV)) {
    const v = env[envName];
    if (v === undefined || v === '') continue;
    const f = FLAGS[flag]!;
    const value = convert(`environment ${envName}`, f.kind, v, problems);
    if (value !== undefined) setPath(cfg, f.path, value);
  }
  for (const [name, v] of flagValues) {
    const f = FLAGS[name]!;
    const value = convert(`--${name}`, f.kind, v, problems);
    if (value !== undefined) setPath(cfg, f.path, value);
  }

  const c = cfg as unknown as Config;

  // Credentials: the mounted Secret directory, then DAT_USER/DAT_PASS. The endpoint may also come from `server`.
  const cred = (file: string) => readFile(join(c.credentialsDir, file))?.trim();
  c.datera.username = cred('username') ?? env.DAT_USER ?? c.datera.username;
  c.datera.password = cred('password') ?? env.DAT_PASS ?? c.datera.password;
  if (!c.datera.endpoint) c.datera.endpoint = cred('server') ?? '';
  const tenantFile = cred('tenant');
  if (tenantFile && !env.DAT_TENANT && !flagValues.some(([n]) => n === 'datera-tenant')) c.datera.tenant = tenantFile;
  c.datera.ldapServer = cred('ldapServer') ?? env.DAT_LDAP ?? c.datera.ldapServer;

  if (!c.credentialsSecret.namespace) c.credentialsSecret.namespace = c.namespace;
  if (!c.identity) c.identity = `${env.HOSTNAME ?? 'datera-provisioner'}_${process.pid}`;
  if (!c.leaderElection.leaseName) c.leaderElection.leaseName = leaseNameFor(c.provisionerName);

  validate(c, problems);
  if (problems.length) throw new ConfigError(problems);
  return c;
}

/** Lease name derived from the provisioner name, as the Go library does (`/` -> `-`), sanitised to a DNS subdomain. */
export function leaseNameFor(provisionerName: string): string {
  return provisionerName.replace(/\//g, '-').toLowerCase().replace(/[^a-z0-9.-]/g, '-');
}

const QUALIFIED_NAME = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

function validate(c: Config, problems: string[]): void {
  for (const n of [c.provisionerName, ...c.extraProvisionerNames]) {
    if (!QUALIFIED_NAME.test(n)) problems.push(`provisioner name "${n}" is not a qualified name like datera.io/provisioner-datera`);
    if (n.startsWith('kubernetes.io/')) problems.push(`provisioner name "${n}" must not start with kubernetes.io/ (reserved for in-tree plugins)`);
  }
  if (!c.datera.endpoint) problems.push(`Datera endpoint is not set: set DAT_MGMT, --datera-endpoint, or the "server" key of the credentials Secret mounted at ${c.credentialsDir}`);
  if (!c.datera.username) problems.push(`Datera username is not set: mount the credentials Secret at ${c.credentialsDir} (key "username") or set DAT_USER`);
  if (!c.datera.password) problems.push(`Datera password is not set: mount the credentials Secret at ${c.credentialsDir} (key "password") or set DAT_PASS`);
  if (!/^\/root(\/[A-Za-z0-9_.-]+)*$/.test(c.datera.tenant)) problems.push(`datera tenant "${c.datera.tenant}" must look like /root or /root/<name>`);
  if (!['2.1', '2.2', '2.3'].includes(c.datera.apiVersion)) problems.push(`datera api version "${c.datera.apiVersion}" is not supported (allowed: 2.2, 2.1, 2.3)`);
  const positive: Array<[string, number]> = [
    ['workers', c.workers],
    ['datera connections', c.datera.connections],
    ['datera request timeout', c.datera.requestTimeoutMs],
    ['datera deadline', c.datera.deadlineMs],
    ['datera max response bytes', c.datera.maxResponseBytes ?? 1],
    ['retry initial', c.retryInitialMs],
    ['retry max', c.retryMaxMs],
    ['resync period', c.resyncPeriodMs],
  ];
  for (const [name, v] of positive) if (!(v > 0)) problems.push(`${name} must be positive, got ${v}`);
  if (c.workers > 1000) problems.push(`workers must be at most 1000, got ${c.workers}`);
  if (c.kubeApiBurst < 1 && c.kubeApiQps > 0) problems.push(`kube api burst must be at least 1, got ${c.kubeApiBurst}`);
  if (c.retryMaxMs < c.retryInitialMs) problems.push(`retry max (${c.retryMaxMs} ms) must not be below retry initial (${c.retryInitialMs} ms)`);
  const le = c.leaderElection;
  if (le.enabled && !(le.leaseDurationMs > le.renewDeadlineMs && le.renewDeadlineMs > le.retryPeriodMs && le.retryPeriodMs > 0))
    problems.push('leader election timings must satisfy lease duration > renew deadline > retry period > 0');
  if (!(c.httpPort >= 0 && c.httpPort < 65536)) problems.push(`http port must be 0..65535, got ${c.httpPort}`);
  if (!['error', 'warn', 'info', 'debug'].includes(c.logLevel)) problems.push(`log level "${c.logLevel}" is not one of error, warn, info, debug`);
  if (!['xfs', 'ext4'].includes(c.defaultFsType)) problems.push(`default fs type "${c.defaultFsType}" is not one of xfs, ext4`);
  if (!['delete', 'report', 'off'].includes(c.orphanSweep)) problems.push(`orphan sweep "${c.orphanSweep}" is not one of delete, report, off`);
  if (c.orphanSweep !== 'off') {
    if (!(c.orphanSweepIntervalMs >= 60_000)) problems.push(`orphan sweep interval must be at least 1m, got ${c.orphanSweepIntervalMs} ms`);
    if (!(c.orphanSweepGraceMs >= 60_000)) problems.push(`orphan sweep grace must be at least 1m (a volume being provisioned must never look orphaned), got ${c.orphanSweepGraceMs} ms`);
  }
  if (c.clusterId && !/^[A-Za-z0-9]([A-Za-z0-9._-]{0,126}[A-Za-z0-9])?$/.test(c.clusterId))
    problems.push(`cluster id "${c.clusterId}" must be 1-128 letters, digits, '.', '_' or '-', starting and ending with a letter or digit`);
  if (c.datera.caBundleFile && c.datera.insecureSkipTlsVerify)
    problems.push('datera CA bundle and insecure-skip-tls-verify are both set: choose one');
}

/** The configuration as safe to log: no password. */
export function describeConfig(c: Config): Record<string, unknown> {
  return { ...c, datera: { ...c.datera, password: c.datera.password ? '[set]' : '[missing]' } };
}

export const HELP = `datera-provisioner: dynamic provisioner of Datera volumes (flexVolume datera/iscsi)

Usage: datera-provisioner [--config FILE] [--flag value ...]

Flags (environment variable in brackets; see README "Configuration" for defaults):
${Object.entries(FLAGS)
  .map(([n, f]) => {
    const envName = Object.entries(ENV).find(([, fl]) => fl === n)?.[0];
    return `  --${n.padEnd(32)} ${f.kind}${envName ? ` [${envName}]` : ''}`;
  })
  .join('\n')}
  --config FILE                      YAML or JSON file with the same keys [DATERA_PROVISIONER_CONFIG]

Credentials: files username, password, server (, tenant, ldapServer) in --credentials-dir, or DAT_USER, DAT_PASS, DAT_MGMT.
`;
