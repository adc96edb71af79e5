// SPDX-License-Identifier: Apache-2.0
// Every setting of the provisioner in one typed, validated object.
//
// Sources, later ones win: built-in defaults < config file (YAML or JSON, `--config`, env
// DATERA_PROVISIONER_CONFIG) < environment variables < command-line flags. Datera credentials
// come from a mounted Secret directory (files `username`, `password`, `server`, optional
// `tenant`, `ldapServer`) or from the DAT_* environment variables Datera's other drivers use.
// Which settings exist, with their flags, variables, keys, types and defaults, is the flag table
// in lib/config-flags.ts; README's "Configuration" table is generated from it (lib/config-doc.ts).
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseYaml } from './yaml.js';
import { readCommandLine } from './config-argv.js';
import { CONFIG_FILE_ENV, CREDENTIAL_ENV, SETTINGS, convert, setKey, type Kind } from './config-flags.js';
import { TENANT_PATH_RE, TENANT_PATH_RULE } from './datera/names.js';
import { leaseNameFor } from './kube/lease.js';
import { ORPHAN_SWEEP_MODES, type OrphanSweepMode } from './provision/orphans.js';
import { FS_TYPES, type FsType } from './provision/values.js';

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
  /** Performance-policy changes of existing volumes started per second (qos-updates.ts). */
  qosUpdatesPerSecond: number;
  /** A `Provisioning` event is written only when a provision attempt runs longer than this, or is a retry. */
  provisioningEventDelayMs: number;
  leaderElection: {
    enabled: boolean;
    leaseName: string;
    /** Namespace of the Lease; empty in the table means the provisioner's namespace. */
    namespace: string;
    leaseDurationMs: number;
    renewDeadlineMs: number;
    retryPeriodMs: number;
  };
  httpAddress: string;
  httpPort: number;
  logLevel: string;
  defaultFsType: FsType;
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
  orphanSweep: OrphanSweepMode;
  /** Pause between two sweeps. */
  orphanSweepIntervalMs: number;
  /** An app instance younger than this is never treated as an orphan. */
  orphanSweepGraceMs: number;
  /** Wait after becoming leader before the first sweep. */
  orphanSweepDelayMs: number;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

type Raw = Record<string, unknown>;

/** The defaults of the flag table as a Config; credentials empty until loadConfig reads them. */
function defaults(): Config {
  const cfg: Raw = { datera: { username: '', password: '' } };
  for (const s of SETTINGS) if (s.default !== undefined) setKey(cfg, s.key, structuredClone(s.default));
  return cfg as unknown as Config;
}

/** Flattens a config-file object into `path -> value` pairs for the known keys; unknown keys are problems. */
function fileEntries(obj: Raw, problems: string[], prefix = ''): Array<[string, unknown]> {
  const known = new Set<string>(SETTINGS.map((f) => f.key));
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

  const cl = readCommandLine(argv);
  problems.push(...cl.problems);
  const kinds = new Map<string, Kind>(SETTINGS.map((f) => [f.key, f.kind]));

  const configPath = cl.configFile ?? env[CONFIG_FILE_ENV];
  if (configPath) {
    const text = readFile(configPath);
    if (text === undefined) problems.push(`config file ${configPath} does not exist`);
    else {
      try {
        const parsed = parseYaml(text);
        if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) {
          for (const [path, v] of fileEntries(parsed as Raw, problems)) {
            const value = convert(`config file key "${path}"`, kinds.get(path)!, v, problems);
            if (value !== undefined) setKey(cfg, path, value);
          }
        } else if (parsed != null) problems.push(`config file ${configPath}: expected a mapping at the top level`);
      } catch (e) {
        problems.push(`config file ${configPath}: ${(e as Error).message.split('\n')[0]}`);
      }
    }
  }

  for (const f of SETTINGS) {
    const v = f.env === undefined ? undefined : env[f.env];
    if (v === undefined || v === '') continue;
    const value = convert(`environment ${f.env}`, f.kind, v, problems);
    if (value !== undefined) setKey(cfg, f.key, value);
  }
  for (const { key, raw, flag } of cl.values) {
    const value = convert(flag, kinds.get(key)!, raw, problems);
    if (value !== undefined) setKey(cfg, key, value);
  }

  const c = cfg as unknown as Config;

  // Credentials: the mounted Secret directory, then DAT_USER/DAT_PASS. The endpoint may also come from `server`.
  const cred = (file: string) => readFile(join(c.credentialsDir, file))?.trim();
  c.datera.username = cred('username') ?? env[CREDENTIAL_ENV.username] ?? c.datera.username;
  c.datera.password = cred('password') ?? env[CREDENTIAL_ENV.password] ?? c.datera.password;
  if (!c.datera.endpoint) c.datera.endpoint = cred('server') ?? '';
  // The Secret's tenant wins over the config file, not over DAT_TENANT or a flag.
  const tenantFile = cred('tenant');
  if (tenantFile && !env.DAT_TENANT && !cl.values.some((v) => v.key === 'datera.tenant')) c.datera.tenant = tenantFile;
  c.datera.ldapServer = cred('ldapServer') ?? env[CREDENTIAL_ENV.ldapServer] ?? c.datera.ldapServer;

  if (!c.credentialsSecret.namespace) c.credentialsSecret.namespace = c.namespace;
  if (!c.leaderElection.namespace) c.leaderElection.namespace = c.namespace;
  if (!c.identity) c.identity = `${env.HOSTNAME ?? 'datera-provisioner'}_${process.pid}`;
  if (!c.leaderElection.leaseName) {
    try {
      c.leaderElection.leaseName = leaseNameFor(c.provisionerName);
    } catch {
      // no Lease name from an invalid provisioner name; validate() reports the name itself
    }
  }

  validate(c, problems);
  if (problems.length) throw new ConfigError(problems);
  return c;
}

const QUALIFIED_NAME = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function validate(c: Config, problems: string[]): void {
  for (const n of [c.provisionerName, ...c.extraProvisionerNames]) {
    if (!QUALIFIED_NAME.test(n)) problems.push(`provisioner name "${n}" is not a qualified name like datera.io/provisioner-datera`);
    if (n.startsWith('kubernetes.io/')) problems.push(`provisioner name "${n}" must not start with kubernetes.io/ (reserved for in-tree plugins)`);
  }
  if (!c.datera.endpoint) problems.push(`Datera endpoint is not set: set DAT_MGMT, --datera-endpoint, or the "server" key of the credentials Secret mounted at ${c.credentialsDir}`);
  if (!c.datera.username) problems.push(`Datera username is not set: mount the credentials Secret at ${c.credentialsDir} (key "username") or set DAT_USER`);
  if (!c.datera.password) problems.push(`Datera password is not set: mount the credentials Secret at ${c.credentialsDir} (key "password") or set DAT_PASS`);
  if (!TENANT_PATH_RE.test(c.datera.tenant)) problems.push(`datera tenant "${c.datera.tenant}" must be ${TENANT_PATH_RULE}`);
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
  if (!(c.qosUpdatesPerSecond > 0)) problems.push(`qos updates per second must be positive, got ${c.qosUpdatesPerSecond}`);
  if (c.workers > 1000) problems.push(`workers must be at most 1000, got ${c.workers}`);
  if (c.kubeApiBurst < 1 && c.kubeApiQps > 0) problems.push(`kube api burst must be at least 1, got ${c.kubeApiBurst}`);
  if (c.retryMaxMs < c.retryInitialMs) problems.push(`retry max (${c.retryMaxMs} ms) must not be below retry initial (${c.retryInitialMs} ms)`);
  const le = c.leaderElection;
  if (le.enabled && !(le.leaseDurationMs > le.renewDeadlineMs && le.renewDeadlineMs > le.retryPeriodMs && le.retryPeriodMs > 0))
    problems.push('leader election timings must satisfy lease duration > renew deadline > retry period > 0');
  if (le.leaseName && !(le.leaseName.length <= 253 && DNS_SUBDOMAIN.test(le.leaseName)))
    problems.push(`leader election lease name "${le.leaseName}" must be a DNS-1123 subdomain (lower-case letters, digits, "-" and ".", at most 253 characters)`);
  if (!(c.httpPort >= 0 && c.httpPort < 65536)) problems.push(`http port must be 0..65535, got ${c.httpPort}`);
  if (!['error', 'warn', 'info', 'debug'].includes(c.logLevel)) problems.push(`log level "${c.logLevel}" is not one of error, warn, info, debug`);
  if (!(FS_TYPES as readonly string[]).includes(c.defaultFsType)) problems.push(`default fs type "${c.defaultFsType}" is not one of ${FS_TYPES.join(', ')}`);
  if (!(ORPHAN_SWEEP_MODES as readonly string[]).includes(c.orphanSweep)) problems.push(`orphan sweep "${c.orphanSweep}" is not one of ${ORPHAN_SWEEP_MODES.join(', ')}`);
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
