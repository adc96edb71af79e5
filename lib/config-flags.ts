// SPDX-License-Identifier: Apache-2.0
// The flag table: the single description of every setting of the provisioner (flag, environment
// variable, config-file key, type, default, one-line description), the external-provisioner
// flag names accepted as aliases, and the conversion of a raw value of each type. `loadConfig`,
// `--help` and README's configuration table (lib/config-doc.ts) are all derived from it, so a
// setting added here is a flag, a config-file key and a documented row at once.
import type { Config, DateraSettings } from './config.js';

/** How a raw value (flag, environment, config file) is read. */
export type Kind = 'string' | 'int' | 'float' | 'bool' | 'duration' | 'list' | 'map';

type Nested = 'datera' | 'credentialsSecret' | 'leaderElection';
/** Datera fields that only the credentials (mounted Secret or DAT_* variables) supply. */
type CredentialField = 'username' | 'password' | 'ldapServer';

/** Config-file key of a setting: its path in `Config`, dotted for nested objects. */
export type SettingKey =
  | Exclude<keyof Config, Nested>
  | `datera.${Exclude<keyof DateraSettings, CredentialField>}`
  | `credentialsSecret.${keyof Config['credentialsSecret']}`
  | `leaderElection.${keyof Config['leaderElection']}`;

/** The type of the value at a setting key. */
type ValueAt<K extends SettingKey> = K extends `${infer A}.${infer B}`
  ? A extends keyof Config
    ? B extends keyof Config[A]
      ? Config[A][B]
      : never
    : never
  : K extends keyof Config
    ? Config[K]
    : never;

export interface Setting {
  key: SettingKey;
  /** Flag name without the leading `--`. */
  flag: string;
  /** Environment variable, where one exists (names kept from earlier releases). */
  env?: string;
  kind: Kind;
  default: unknown;
  /** Shown instead of `default` when the real default is computed at start-up. */
  defaultText?: string;
  /** One line, for `--help` and README. */
  help: string;
  /** README only: what does not fit in one line. */
  details?: string;
}

function setting<K extends SettingKey>(s: Omit<Setting, 'key' | 'default'> & { key: K; default: ValueAt<K> }): Setting {
  return s;
}

const DURATION_RANGE_NOTE = 'at least `1m` unless the sweep is off';

/** Every setting, in the order `--help` and README list them. */
export const SETTINGS: readonly Setting[] = [
  setting({ key: 'provisionerName', flag: 'provisioner-name', env: 'DATERA_PROVISIONER_NAME', kind: 'string', default: 'datera.io/provisioner-datera', help: '`StorageClass.provisioner` value served' }),
  setting({ key: 'extraProvisionerNames', flag: 'extra-provisioner-names', env: 'DATERA_EXTRA_PROVISIONER_NAMES', kind: 'list', default: [], defaultText: 'none', help: 'further provisioner names served (migrations), comma separated' }),
  setting({ key: 'namespace', flag: 'namespace', env: 'POD_NAMESPACE', kind: 'string', default: 'datera-system', help: "namespace of the template ConfigMap, the Lease and the credentials Secret; a class's `secretName` without `secretNamespace` is looked up here" }),
  setting({ key: 'identity', flag: 'identity', env: 'POD_NAME', kind: 'string', default: '', defaultText: '`<hostname>_<pid>`', help: 'Lease holder identity and reporting instance of events' }),
  setting({ key: 'templatesConfigMap', flag: 'templates-configmap', env: 'DATERA_TEMPLATES_CONFIGMAP', kind: 'string', default: 'datera-templates', help: 'ConfigMap holding the AppTemplates, in the namespace' }),
  setting({ key: 'templatesKey', flag: 'templates-key', env: 'DATERA_TEMPLATES_KEY', kind: 'string', default: 'templates.yaml', help: 'key of that ConfigMap holding the AppTemplates (YAML)' }),
  setting({ key: 'credentialsSecret.name', flag: 'credentials-secret', env: 'DATERA_CREDENTIALS_SECRET', kind: 'string', default: 'datera-credentials', help: "Secret written into every PV's flexVolume `secretRef` unless the class names another" }),
  setting({ key: 'credentialsSecret.namespace', flag: 'credentials-secret-namespace', kind: 'string', default: '', defaultText: 'the namespace', help: 'namespace of that Secret' }),
  setting({ key: 'credentialsDir', flag: 'credentials-dir', env: 'DATERA_CREDENTIALS_DIR', kind: 'string', default: '/etc/datera/credentials', help: 'where the credentials Secret is mounted: files `username`, `password`, `server`, optional `tenant`, `ldapServer`' }),
  setting({ key: 'datera.endpoint', flag: 'datera-endpoint', env: 'DAT_MGMT', kind: 'string', default: '', defaultText: 'the `server` file', help: 'Datera management endpoint: `host:7717` (http), `host:7718` (https) or a URL' }),
  setting({ key: 'datera.tenant', flag: 'datera-tenant', env: 'DAT_TENANT', kind: 'string', default: '/root', help: 'Datera tenant path, `/root` or `/root/<name>`; the `tenant` file of the credentials Secret wins over the config file' }),
  setting({ key: 'datera.apiVersion', flag: 'datera-api-version', env: 'DAT_API', kind: 'string', default: '2.2', help: 'Datera API version: `2.2`, `2.1` or `2.3`' }),
  setting({ key: 'datera.caBundleFile', flag: 'datera-ca-bundle', env: 'DATERA_CA_BUNDLE', kind: 'string', default: undefined, defaultText: 'system CAs', help: 'PEM file of the CAs that verify the Datera certificate' }),
  setting({ key: 'datera.insecureSkipTlsVerify', flag: 'datera-insecure-skip-tls-verify', env: 'DATERA_INSECURE_SKIP_TLS_VERIFY', kind: 'bool', default: false, help: 'do not verify the Datera certificate (explicit opt-out; logs a warning)' }),
  setting({ key: 'datera.requestTimeoutMs', flag: 'datera-request-timeout', kind: 'duration', default: 30_000, help: 'timeout of each Datera request' }),
  setting({ key: 'datera.deadlineMs', flag: 'datera-deadline', kind: 'duration', default: 120_000, help: 'deadline of each Datera call, retries included' }),
  setting({ key: 'datera.connections', flag: 'datera-connections', kind: 'int', default: 32, help: 'keep-alive connections per Datera endpoint' }),
  setting({ key: 'datera.maxResponseBytes', flag: 'datera-max-response-bytes', kind: 'int', default: 16 * 1024 * 1024, defaultText: '`16777216` (16 MiB)', help: 'largest Datera reply body read; past it the call fails with `DATERA_RESPONSE_TOO_LARGE` (not retried)', details: 'The client closes the connection. A list page of 100 app instances is about 1 MiB.' }),
  setting({ key: 'workers', flag: 'workers', env: 'DATERA_WORKERS', kind: 'int', default: 32, help: 'concurrent operations (1-1000)' }),
  setting({ key: 'kubeApiQps', flag: 'kube-api-qps', env: 'KUBE_API_QPS', kind: 'float', default: 200, help: 'client-side limit of Kubernetes PV and Secret calls per second (0 disables the limit)' }),
  setting({ key: 'kubeApiBurst', flag: 'kube-api-burst', env: 'KUBE_API_BURST', kind: 'int', default: 400, help: 'burst of that limit' }),
  setting({ key: 'eventQps', flag: 'event-qps', kind: 'float', default: 50, help: 'separate limit of event writes per second, so that events never delay PV writes' }),
  setting({ key: 'eventBurst', flag: 'event-burst', kind: 'int', default: 200, help: 'burst of the event limit' }),
  setting({ key: 'kubeconfig', flag: 'kubeconfig', env: 'KUBECONFIG', kind: 'string', default: undefined, defaultText: 'in-cluster', help: "kubeconfig file; without one, the pod's service account" }),
  setting({ key: 'retryInitialMs', flag: 'retry-initial', kind: 'duration', default: 1_000, help: 'first retry delay of a failed operation (per-object exponential backoff)' }),
  setting({ key: 'retryMaxMs', flag: 'retry-max', kind: 'duration', default: 300_000, help: 'longest retry delay of a failed operation' }),
  setting({ key: 'finalErrorRetryMs', flag: 'final-error-retry', kind: 'duration', default: 300_000, help: 'retry period of final errors (bad parameters) until the class or templates change' }),
  setting({ key: 'resyncPeriodMs', flag: 'resync-period', kind: 'duration', default: 900_000, help: 'period of the in-memory resync of every cached object' }),
  setting({ key: 'qosUpdatesPerSecond', flag: 'qos-updates-per-second', kind: 'float', default: 5, help: 'most performance-policy changes of existing volumes started per second (template edits with `applyToExisting: [qos]`, claim QoS annotations)' }),
  setting({ key: 'provisioningEventDelayMs', flag: 'provisioning-event-delay', kind: 'duration', default: 2_000, help: 'a `Provisioning` event is written only for a retry or an attempt slower than this' }),
  setting({ key: 'leaderElection.enabled', flag: 'leader-elect', env: 'DATERA_LEADER_ELECT', kind: 'bool', default: true, help: 'one active replica, elected through a Lease' }),
  setting({ key: 'leaderElection.leaseName', flag: 'leader-elect-lease-name', kind: 'string', default: '', defaultText: 'from the provisioner name', help: 'Lease name; by default the provisioner name with `/` as `-` (e.g. `datera.io-provisioner-datera`)' }),
  setting({ key: 'leaderElection.namespace', flag: 'leader-elect-namespace', kind: 'string', default: '', defaultText: 'the namespace', help: 'namespace of the Lease (the Role of manifests/base grants leases in the namespace only)' }),
  setting({ key: 'leaderElection.leaseDurationMs', flag: 'leader-elect-lease-duration', kind: 'duration', default: 15_000, help: 'how long a standby waits before it takes over a Lease that is not renewed' }),
  setting({ key: 'leaderElection.renewDeadlineMs', flag: 'leader-elect-renew-deadline', kind: 'duration', default: 10_000, help: 'the leader exits when it could not renew for this long' }),
  setting({ key: 'leaderElection.retryPeriodMs', flag: 'leader-elect-retry-period', kind: 'duration', default: 2_000, help: 'pause between renewals, and between attempts to acquire' }),
  setting({ key: 'httpAddress', flag: 'http-address', kind: 'string', default: '0.0.0.0', help: 'listen address of `/metrics`, `/healthz`, `/readyz`, `/healthz/leader-election`' }),
  setting({ key: 'httpPort', flag: 'http-port', env: 'DATERA_HTTP_PORT', kind: 'int', default: 8080, help: 'port of those endpoints (0: any free port)' }),
  setting({ key: 'logLevel', flag: 'log-level', env: 'LOG_LEVEL', kind: 'string', default: 'info', help: '`error`, `warn`, `info` or `debug` (JSON lines)' }),
  setting({ key: 'defaultFsType', flag: 'default-fs-type', kind: 'string', default: 'xfs', help: 'filesystem when neither the class nor the template names one: `xfs` or `ext4`' }),
  setting({ key: 'legacyAlphaClasses', flag: 'legacy-alpha-classes', env: 'DATERA_LEGACY_ALPHA_CLASSES', kind: 'map', default: {}, defaultText: '`{}` (off)', help: 'claims with only the PetSet-era alpha storage-class annotation: value (or `*`) -> class, e.g. `*=datera-standard`' }),
  setting({
    key: 'clusterId', flag: 'cluster-id', env: 'DATERA_CLUSTER_ID', kind: 'string', default: '', defaultText: '`""`: the uid of namespace `kube-system`, read once at start-up',
    help: "this cluster's identity, written on every Datera volume as `k8s-cluster-id`; every delete requires it to match",
    details: '1-128 letters, digits, `.`, `_`, `-`, starting and ending with a letter or digit. Set it when the provisioner may not read `namespaces/kube-system`, give each cluster that shares a Datera tenant its own value, and set a new one on a cluster restored from an etcd backup while the original still runs (the restore keeps the namespace uid). Keep it stable: volumes made under an old id are no longer reclaimed (`VolumeFailedDelete`) or swept.',
  }),
  setting({ key: 'orphanSweep', flag: 'orphan-sweep', env: 'DATERA_ORPHAN_SWEEP', kind: 'string', default: 'delete', help: '`delete`: remove orphans; `report`: log line, event and metrics only; `off`: no sweep' }),
  setting({ key: 'orphanSweepIntervalMs', flag: 'orphan-sweep-interval', kind: 'duration', default: 600_000, help: `pause between the end of one sweep and the start of the next; ${DURATION_RANGE_NOTE}` }),
  setting({ key: 'orphanSweepDelayMs', flag: 'orphan-sweep-delay', kind: 'duration', default: 60_000, help: 'wait after becoming leader before the first sweep, so that start-up and failover make no Datera calls; `0` sweeps at once' }),
  setting({ key: 'orphanSweepGraceMs', flag: 'orphan-sweep-grace', kind: 'duration', default: 600_000, help: `an app instance younger than this (by \`k8s-created-at\`) is never an orphan; ${DURATION_RANGE_NOTE}` }),
];

/** Environment variable naming the config file (the `--config` flag wins). */
export const CONFIG_FILE_ENV = 'DATERA_PROVISIONER_CONFIG';

/** Datera credentials from the environment, used when the credentials directory lacks the file. */
export const CREDENTIAL_ENV = { username: 'DAT_USER', password: 'DAT_PASS', ldapServer: 'DAT_LDAP' } as const;

/** Setting values an alias stands for, in order, or a problem naming what is allowed. */
type Expansion = Array<[SettingKey, string]> | { problem: string };

/**
 * A second flag name: either a plain second name of one setting (`target`, same value rules), or
 * a flag whose value `expand` turns into setting values (or a problem).
 */
export type Alias = {
  /** Flag name without the leading `--`. */
  flag: string;
  /** One-letter form (`-v`), if any. */
  short?: string;
  /** What it maps to here, for `--help` and README. */
  mapsTo: string;
} & ({ target: SettingKey } | { expand: (value: string) => Expansion; /** Name of the value in `--help`. */ valueName: string });

/** The command-line flag of a setting, by key, as code (`--name`). */
function flagOf(key: SettingKey): string {
  return `\`--${SETTINGS.find((s) => s.key === key)!.flag}\``;
}

/** klog verbosity -> log level: klog's 0-3 are what operators run with, 4 and above is debug output. */
function logLevelForVerbosity(value: string): Expansion {
  if (!/^\d+$/.test(value.trim())) return { problem: `expected a klog verbosity 0, 1, 2, ... (0-3: info, 4 and above: debug), got ${JSON.stringify(value)}` };
  return [['logLevel', Number(value) >= 4 ? 'debug' : 'info']];
}

/** Go's `host:port` (`:8080` = every interface, `[::1]:8080` for IPv6) -> address and port. */
function splitHostPort(value: string): Expansion {
  const m = /^(?:\[([^\]]*)\]|([^:[\]]*)):(\d+)$/.exec(value.trim());
  if (!m) return { problem: `expected host:port such as :8080 or 127.0.0.1:8080, got ${JSON.stringify(value)}` };
  const host = m[1] ?? m[2] ?? '';
  return [['httpAddress', host === '' ? '0.0.0.0' : host], ['httpPort', m[3]!]];
}

/** An alias whose only accepted value is what this provisioner always does. */
function onlyValue(allowed: string, why: string): (value: string) => Expansion {
  return (value) => (value === allowed ? [] : { problem: `only ${JSON.stringify(allowed)} is supported (${why}), got ${JSON.stringify(value)}` });
}

/** external-provisioner's flag names, so that its admins' habits and manifests carry over. */
export const ALIASES: readonly Alias[] = [
  { flag: 'leader-election', target: 'leaderElection.enabled', mapsTo: flagOf('leaderElection.enabled') },
  { flag: 'leader-election-namespace', target: 'leaderElection.namespace', mapsTo: flagOf('leaderElection.namespace') },
  { flag: 'leader-election-lease-duration', target: 'leaderElection.leaseDurationMs', mapsTo: flagOf('leaderElection.leaseDurationMs') },
  { flag: 'leader-election-renew-deadline', target: 'leaderElection.renewDeadlineMs', mapsTo: flagOf('leaderElection.renewDeadlineMs') },
  { flag: 'leader-election-retry-period', target: 'leaderElection.retryPeriodMs', mapsTo: flagOf('leaderElection.retryPeriodMs') },
  { flag: 'http-endpoint', expand: splitHostPort, valueName: 'host:port', mapsTo: `${flagOf('httpAddress')} and ${flagOf('httpPort')} (\`:8080\`: every interface); health and metrics share it` },
  { flag: 'metrics-path', expand: onlyValue('/metrics', 'metrics are served at /metrics'), valueName: 'path', mapsTo: 'accepted only as `/metrics`, where metrics are served' },
  { flag: 'worker-threads', target: 'workers', mapsTo: flagOf('workers') },
  { flag: 'retry-interval-start', target: 'retryInitialMs', mapsTo: flagOf('retryInitialMs') },
  { flag: 'retry-interval-max', target: 'retryMaxMs', mapsTo: flagOf('retryMaxMs') },
  { flag: 'default-fstype', target: 'defaultFsType', mapsTo: flagOf('defaultFsType') },
  { flag: 'timeout', target: 'datera.requestTimeoutMs', mapsTo: `${flagOf('datera.requestTimeoutMs')}: bounds each request to the storage backend, as external-provisioner's bounds each call to its driver (the whole call with retries is ${flagOf('datera.deadlineMs')})` },
  { flag: 'v', short: 'v', expand: logLevelForVerbosity, valueName: 'N', mapsTo: `${flagOf('logLevel')}: klog verbosity 0-3 is \`info\`, 4 and above \`debug\` (\`warn\` and \`error\` only through ${flagOf('logLevel')})` },
  { flag: 'logging-format', expand: onlyValue('json', 'logs are JSON lines'), valueName: 'format', mapsTo: 'accepted only as `json`: logs are always JSON lines' },
];

/** The Kind of an alias's value: its target's, or a plain string. */
export function aliasKind(a: Alias): Kind {
  return 'target' in a ? SETTINGS.find((s) => s.key === a.target)!.kind : 'string';
}

// ---------------------------------------------------------------------------------------------
// Values

/** Boolean spellings accepted everywhere (flag, environment, config file), case-insensitive. */
const TRUE_WORDS = ['true', '1', 'yes'];
const FALSE_WORDS = ['false', '0', 'no'];

/** true/false for an accepted spelling, undefined otherwise. */
export function parseBool(v: string): boolean | undefined {
  const s = v.trim().toLowerCase();
  return TRUE_WORDS.includes(s) ? true : FALSE_WORDS.includes(s) ? false : undefined;
}

const UNIT_MS: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 1e-3, 'µs': 1e-3, 'μs': 1e-3, ns: 1e-6 };
const DURATION_PART = /(\d+(?:\.\d*)?|\.\d+)(h|ms|m|s|us|µs|μs|ns)/y;

/**
 * Milliseconds of a duration: a bare number of milliseconds ("1500"), or Go's form, one or more
 * number+unit parts with units h, m, s, ms, us, ns ("500ms", "1.5s", "1m30s", "2h45m").
 * Rounded to whole milliseconds. undefined for anything else, negative values included.
 */
export function parseDuration(v: string): number | undefined {
  const s = v.trim();
  if (/^\d+(?:\.\d+)?$/.test(s)) return Math.round(Number(s));
  if (s === '') return undefined;
  let total = 0;
  for (let i = 0; i < s.length; i = DURATION_PART.lastIndex) {
    DURATION_PART.lastIndex = i;
    const m = DURATION_PART.exec(s);
    if (!m) return undefined;
    total += Number(m[1]) * UNIT_MS[m[2]!]!;
  }
  return Math.round(total);
}

/** Milliseconds in the shortest Go form parseDuration reads back: "30s", "2m", "1m30s", "1s500ms", "0s". */
export function formatDuration(ms: number): string {
  const parts: string[] = [];
  let rest = Math.round(ms);
  for (const [unit, size] of [['h', 3_600_000], ['m', 60_000], ['s', 1000], ['ms', 1]] as const) {
    const n = Math.floor(rest / size);
    if (n > 0) parts.push(`${n}${unit}`);
    rest -= n * size;
  }
  return parts.join('') || '0s';
}

/**
 * Converts a raw value (a string from a flag or the environment, or any YAML value from the
 * config file) to the Kind; on failure records a problem starting with `label` and returns undefined.
 */
export function convert(label: string, kind: Kind, v: unknown, problems: string[]): unknown {
  const s = typeof v === 'string' ? v : undefined;
  switch (kind) {
    case 'string':
      if (typeof v === 'string') return v;
      break;
    case 'int':
    case 'float': {
      const n = typeof v === 'number' ? v : s !== undefined && s.trim() !== '' ? Number(s) : NaN;
      if (Number.isFinite(n) && (kind === 'float' || Number.isInteger(n))) return n;
      problems.push(`${label}: expected ${kind === 'int' ? 'an integer' : 'a number'}, got ${JSON.stringify(v)}`);
      return undefined;
    }
    case 'bool': {
      const b = typeof v === 'boolean' ? v : s === undefined ? undefined : parseBool(s);
      if (b !== undefined) return b;
      problems.push(`${label}: expected true or false (also 1/0, yes/no), got ${JSON.stringify(v)}`);
      return undefined;
    }
    case 'duration': {
      if (typeof v === 'number') return v;
      const d = s === undefined ? undefined : parseDuration(s);
      if (d !== undefined) return d;
      problems.push(`${label}: expected a duration such as 500ms, 2s, 5m, 1m30s, got ${JSON.stringify(v)}`);
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
            problems.push(`${label}: expected key=value pairs separated by commas, got ${JSON.stringify(pair)}`);
            return undefined;
          }
          out[pair.slice(0, i)] = pair.slice(i + 1);
        }
        return out;
      }
      break;
  }
  problems.push(`${label}: unexpected value ${JSON.stringify(v)}`);
  return undefined;
}

/** Sets `obj[a][b]` for key `a.b` (or `obj[a]` for `a`), creating the nested object. */
export function setKey(obj: Record<string, unknown>, key: string, value: unknown): void {
  const parts = key.split('.');
  let cur = obj;
  for (const p of parts.slice(0, -1)) {
    if (typeof cur[p] !== 'object' || cur[p] === null) cur[p] = {};
    cur = cur[p] as Record<string, unknown>;
  }
  cur[parts[parts.length - 1]!] = value;
}
