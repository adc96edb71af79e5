// SPDX-License-Identifier: Apache-2.0
// Where the node driver finds the host: paths, timeouts and the node-local Datera settings.
// Defaults are the real host paths; tests (and unusual hosts) move all of them under one
// directory with DATERA_FLEX_ROOT, or override single paths with the variables below.
import fs from 'node:fs';
import path from 'node:path';
import { FlexError } from './reply.js';

/** Host paths and timing. Every path is absolute. */
export interface FlexConfig {
  /** `/dev`: by-path links and block devices live under it. */
  devDir: string;
  /** `/sys`: `block/dm-*\/slaves/<sdX>` tells which multipath map holds a path. */
  sysDir: string;
  /** `/proc/mounts`: what is mounted where. */
  procMounts: string;
  /** open-iscsi's `InitiatorName=` file. */
  initiatorNameFile: string;
  /** Node-local Datera settings written by the installer (see NodeSettings). */
  settingsFile: string;
  /** Per-volume attachment records and locks (no secrets). Survives reboots on purpose. */
  stateDir: string;
  /** Diagnostics; never stdout (kubelet parses stdout+stderr as the reply). */
  logFile: string;
  /** Presence of either file means multipathd manages Datera paths: wait for the dm map. */
  multipathConfFiles: string[];
  /** PATH used to find iscsiadm, mkfs.*, mount, ...: the caller's PATH, then the usual sbin dirs. */
  commandPath: string;
  /** How long to wait for the storage instance to become available after onlining it. */
  onlineTimeoutMs: number;
  /** How long to wait for `/dev/disk/by-path/...` after an iSCSI login. */
  deviceTimeoutMs: number;
  /** How long to wait for multipathd to build a map over a new path. */
  multipathTimeoutMs: number;
  /** How long a call-out waits for another call-out on the same volume to finish. */
  lockTimeoutMs: number;
  /** Poll interval for all of the waits above. */
  pollMs: number;
  /** Timeout of a single host command (mkfs of a large volume is the slow one). */
  commandTimeoutMs: number;
}

/** Environment variables read by `configFromEnv`, documented in lib/flex/README.md. */
const ENV = {
  root: 'DATERA_FLEX_ROOT',
  settings: 'DATERA_FLEX_CONFIG',
  log: 'DATERA_FLEX_LOG',
  state: 'DATERA_FLEX_STATE_DIR',
  initiator: 'DATERA_FLEX_INITIATOR_FILE',
  onlineTimeout: 'DATERA_FLEX_ONLINE_TIMEOUT_MS',
  deviceTimeout: 'DATERA_FLEX_DEVICE_TIMEOUT_MS',
  multipathTimeout: 'DATERA_FLEX_MULTIPATH_TIMEOUT_MS',
  lockTimeout: 'DATERA_FLEX_LOCK_TIMEOUT_MS',
  poll: 'DATERA_FLEX_POLL_MS',
  commandTimeout: 'DATERA_FLEX_COMMAND_TIMEOUT_MS',
} as const;

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

function msFromEnv(env: NodeJS.ProcessEnv, key: string, dflt: number): number {
  const raw = env[key];
  if (raw === undefined || raw === '') return dflt;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new FlexError(`${key}=${raw} is not a number of milliseconds`);
  return n;
}

export function configFromEnv(env: NodeJS.ProcessEnv = process.env): FlexConfig {
  const root = path.resolve(env[ENV.root] || '/');
  const host = (p: string) => path.join(root, p);
  return {
    devDir: host('/dev'),
    sysDir: host('/sys'),
    procMounts: host('/proc/mounts'),
    initiatorNameFile: env[ENV.initiator] || host('/etc/iscsi/initiatorname.iscsi'),
    settingsFile: env[ENV.settings] || host('/etc/datera/flex.json'),
    stateDir: env[ENV.state] || host('/var/lib/datera/flex'),
    logFile: env[ENV.log] || host('/var/log/datera-flex.log'),
    multipathConfFiles: [host('/etc/multipath.conf'), host('/etc/multipath/conf.d/datera.conf')],
    // kubelet's PATH may lack the sbin directories where iscsiadm and mkfs live: append them.
    commandPath: [env.PATH, DEFAULT_PATH].filter(Boolean).join(':'),
    onlineTimeoutMs: msFromEnv(env, ENV.onlineTimeout, 60_000),
    deviceTimeoutMs: msFromEnv(env, ENV.deviceTimeout, 30_000),
    multipathTimeoutMs: msFromEnv(env, ENV.multipathTimeout, 10_000),
    lockTimeoutMs: msFromEnv(env, ENV.lockTimeout, 120_000),
    pollMs: msFromEnv(env, ENV.poll, 500),
    commandTimeoutMs: msFromEnv(env, ENV.commandTimeout, 10 * 60_000),
  };
}

/**
 * `/etc/datera/flex.json`, mode 0600, written by the installer from the mounted credentials
 * Secret. Used by every call-out that kubelet runs without a secret (all but `mount`).
 */
export interface NodeSettings {
  /** The Datera the node credentials belong to; always on the allow-list. */
  server: string;
  /**
   * Further Datera endpoints the node credentials may be sent to (from the Secret key
   * `allowedServers`, comma-separated). Any other endpoint a PV or an inline volume names is
   * refused before a byte is sent. Compared as the client connects: scheme, host, port, path.
   */
  allowedServers?: string[];
  username: string;
  password: string;
  tenant?: string;
  ldapServer?: string;
  /** PEM bundle (inline) that signs the Datera REST certificate. */
  caBundle?: string;
  insecureSkipTlsVerify?: boolean;
  /** CHAP for call-outs without a secret (waitforattach in attach mode). */
  chapUser?: string;
  chapPassword?: string;
  chapUserIn?: string;
  chapPasswordIn?: string;
  /** This node's Kubernetes name; `attach` refuses calls meant for another node. */
  nodeName?: string;
  /**
   * Answer `init` with attach:true. Only for clusters whose kubelets attach themselves
   * (`--enable-controller-attach-detach=false`); see README.
   */
  attach?: boolean;
}

const STRING_KEYS = [
  'server', 'username', 'password', 'tenant', 'ldapServer', 'caBundle',
  'chapUser', 'chapPassword', 'chapUserIn', 'chapPasswordIn', 'nodeName',
] as const;

/** Validates a parsed settings object; messages name the key, never a value. */
export function parseNodeSettings(raw: unknown, source: string): NodeSettings {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new FlexError(`${source}: not a JSON object`);
  const obj = raw as Record<string, unknown>;
  for (const k of STRING_KEYS) {
    if (obj[k] !== undefined && typeof obj[k] !== 'string') throw new FlexError(`${source}: "${k}" must be a string`);
  }
  for (const k of ['insecureSkipTlsVerify', 'attach'] as const) {
    if (obj[k] !== undefined && typeof obj[k] !== 'boolean') throw new FlexError(`${source}: "${k}" must be true or false`);
  }
  const allowed = obj['allowedServers'];
  if (allowed !== undefined && (!Array.isArray(allowed) || !allowed.every((x) => typeof x === 'string' && x.trim() !== ''))) {
    throw new FlexError(`${source}: "allowedServers" must be a list of Datera endpoints (URL or host:port)`);
  }
  for (const k of ['server', 'username', 'password'] as const) {
    if (!obj[k]) throw new FlexError(`${source}: "${k}" is missing`);
  }
  return obj as unknown as NodeSettings;
}

/** Reads the settings file; `undefined` when it does not exist (callers decide if that is fatal). */
export function readNodeSettings(file: string): NodeSettings | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new FlexError(`cannot read ${file}: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new FlexError(`${file} is not valid JSON`);
  }
  return parseNodeSettings(parsed, file);
}

/** Settings that must exist because no secret came with the call-out. */
export function requireNodeSettings(file: string): NodeSettings {
  const s = readNodeSettings(file);
  if (!s) {
    throw new FlexError(
      `${file} not found: the datera-flex DaemonSet writes it from its credentials Secret; is it running on this node?`,
    );
  }
  return s;
}
