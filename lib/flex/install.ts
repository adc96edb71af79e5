// SPDX-License-Identifier: Apache-2.0
// Installs the datera/iscsi FlexVolume driver on a node; run by the datera-flex DaemonSet with
// the host's kubelet plugin dir, /etc/datera and /etc/multipath mounted. Idempotent: files
// that are already right are left alone (kubelet re-probes the plugin dir on every change).
//
//   <plugin dir>/datera~iscsi/iscsi            POSIX sh shim kubelet executes (written last)
//   <plugin dir>/datera~iscsi/.bin/node        the Node.js runtime of this image
//   <plugin dir>/datera~iscsi/.bin/driver.mjs  the bundled driver (npm run build:flex)
//   <config file>                              node settings from the mounted Secret, mode 0600
//   <multipath dest>                           Datera multipath settings, when asked
//
// Every file is written to a temp file in the same directory and renamed into place, so
// kubelet never runs a half-copied file. With --watch the installer repeats every N seconds,
// picking up a rotated Secret or an edited multipath ConfigMap, and exits 0 on SIGTERM.
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseNodeSettings, type NodeSettings } from './config.js';

export const DRIVER_DIR = 'datera~iscsi';
export const DRIVER_NAME = 'iscsi';

/** The executable kubelet runs. It must not print anything but the driver's JSON reply. */
export const SHIM = `#!/bin/sh
# datera/iscsi FlexVolume driver, installed by the datera-flex DaemonSet; do not edit.
# Runs the bundled driver with the Node.js runtime copied next to it, so the node needs no Node.js.
dir=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd -P)
if [ ! -x "$dir/.bin/node" ] || [ ! -f "$dir/.bin/driver.mjs" ]; then
  printf '{"status":"Failure","message":"datera/iscsi: %s/.bin is incomplete; is the datera-flex DaemonSet running on this node?"}\\n' "$dir"
  exit 1
fi
unset NODE_OPTIONS
NODE_NO_WARNINGS=1 exec "$dir/.bin/node" --no-warnings "$dir/.bin/driver.mjs" "$@"
`;

/** Whether file `a` holds exactly `b` (a buffer, or another file compared chunk by chunk). */
function sameContent(a: string, b: Buffer | { file: string }): boolean {
  const sa = fs.statSync(a, { throwIfNoEntry: false });
  if (!sa?.isFile()) return false;
  if (Buffer.isBuffer(b)) return sa.size === b.length && fs.readFileSync(a).equals(b);
  if (sa.size !== fs.statSync(b.file).size) return false;
  const CHUNK = 1 << 20;
  const ba = Buffer.alloc(CHUNK);
  const bb = Buffer.alloc(CHUNK);
  const fa = fs.openSync(a, 'r');
  const fb = fs.openSync(b.file, 'r');
  try {
    for (;;) {
      const n = fs.readSync(fa, ba, 0, CHUNK, null);
      const m = fs.readSync(fb, bb, 0, CHUNK, null);
      if (n !== m || !ba.subarray(0, n).equals(bb.subarray(0, m))) return false;
      if (n === 0) return true;
    }
  } finally {
    fs.closeSync(fa);
    fs.closeSync(fb);
  }
}

/**
 * Puts `content` (a buffer, a string, or a source file) at `dest` with `mode`, via a temp file
 * in the same directory and a rename, unless `dest` already has exactly that content (then
 * only the mode is corrected). Returns whether it wrote. Files are compared in chunks, so
 * shipping the ~100 MB node binary every minute costs no memory.
 */
export function writeAtomic(dest: string, content: Buffer | string | { file: string }, mode: number): boolean {
  const data = typeof content === 'string' ? Buffer.from(content) : content;
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  if (sameContent(dest, data)) {
    if ((fs.statSync(dest).mode & 0o7777) !== mode) fs.chmodSync(dest, mode);
    return false;
  }
  const tmp = path.join(path.dirname(dest), `.${path.basename(dest)}.tmp-${process.pid}`);
  try {
    if (Buffer.isBuffer(data)) fs.writeFileSync(tmp, data);
    else fs.copyFileSync(data.file, tmp);
    fs.chmodSync(tmp, mode);
    fs.renameSync(tmp, dest);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  return true;
}

export interface InstallDriverOptions {
  /** kubelet's --volume-plugin-dir as mounted in the pod. */
  pluginDir: string;
  /** The bundled driver (dist/flex/driver.mjs). */
  driverBundle: string;
  /** The Node.js binary to ship; default: the one running the installer. */
  nodeBinary?: string;
}

/** Installs runtime, bundle, then the shim; returns the files it (re)wrote. */
export function installDriver(o: InstallDriverOptions): string[] {
  const dir = path.join(o.pluginDir, DRIVER_DIR);
  for (const f of [o.nodeBinary ?? process.execPath, o.driverBundle]) {
    if (!fs.existsSync(f)) throw new Error(`${f} does not exist (the driver bundle comes from npm run build:flex)`);
  }
  const files: [string, string | { file: string }, number][] = [
    [path.join(dir, '.bin', 'node'), { file: o.nodeBinary ?? process.execPath }, 0o755],
    [path.join(dir, '.bin', 'driver.mjs'), { file: o.driverBundle }, 0o644],
    [path.join(dir, DRIVER_NAME), SHIM, 0o755],
  ];
  return files.filter(([dest, content, mode]) => writeAtomic(dest, content, mode)).map(([dest]) => dest);
}

/** Secret keys (files in the mounted Secret) copied into the node settings. */
const SECRET_KEYS = ['server', 'username', 'password', 'tenant', 'ldapServer', 'caBundle', 'chapUser', 'chapPassword', 'chapUserIn', 'chapPasswordIn'] as const;

/**
 * Node settings from a mounted `datera/iscsi` Secret directory (one file per key). Values
 * lose one trailing newline (as `kubectl create secret --from-file` often adds); the rest
 * is kept. `insecureSkipTlsVerify` is "true"/"false".
 */
export function settingsFromSecretDir(dir: string, extra: { nodeName?: string; attach?: boolean } = {}): NodeSettings {
  const read = (key: string): string | undefined => {
    try {
      return fs.readFileSync(path.join(dir, key), 'utf8').replace(/\r?\n$/, '');
    } catch {
      return undefined;
    }
  };
  const out: Record<string, unknown> = {};
  for (const key of SECRET_KEYS) {
    const v = read(key);
    if (v !== undefined && v !== '') out[key] = v;
  }
  // Comma (or newline) separated endpoints the node credentials may also go to, besides `server`.
  const allowed = read('allowedServers');
  if (allowed !== undefined) {
    const list = allowed.split(/[,\n]/).map((x) => x.trim()).filter(Boolean);
    if (list.length) out.allowedServers = list;
  }
  const insecure = read('insecureSkipTlsVerify');
  if (insecure !== undefined) out.insecureSkipTlsVerify = insecure.trim() === 'true';
  if (extra.nodeName) out.nodeName = extra.nodeName;
  if (extra.attach) out.attach = true;
  return parseNodeSettings(out, `Secret mounted at ${dir}`);
}

/** Writes the node settings (mode 0600, directory 0700); returns whether the file changed. */
export function writeSettings(file: string, settings: NodeSettings): boolean {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  return writeAtomic(file, `${JSON.stringify(settings, null, 2)}\n`, 0o600);
}

export interface InstallOptions extends InstallDriverOptions {
  secretDir?: string;
  configFile?: string;
  nodeName?: string;
  attach?: boolean;
  multipathConf?: string;
  multipathDest?: string;
}

/** One full pass; returns the files written (names only, never contents). */
export function installOnce(o: InstallOptions): string[] {
  const written = installDriver(o);
  if (o.secretDir) {
    if (!o.configFile) throw new Error('--secret-dir needs --config-file');
    const settings = settingsFromSecretDir(o.secretDir, { nodeName: o.nodeName, attach: o.attach });
    if (writeSettings(o.configFile, settings)) written.push(o.configFile);
  }
  if (o.multipathConf || o.multipathDest) {
    if (!o.multipathConf || !o.multipathDest) throw new Error('--multipath-conf and --multipath-dest go together');
    if (writeAtomic(o.multipathDest, { file: o.multipathConf }, 0o644)) written.push(o.multipathDest);
  }
  return written;
}

const USAGE = `usage: install.mjs --plugin-dir DIR [--driver FILE] [--node FILE]
         [--secret-dir DIR --config-file FILE] [--node-name NAME] [--attach]
         [--multipath-conf FILE --multipath-dest FILE] [--watch SECONDS]`;

export interface CliOptions extends InstallOptions {
  watchSeconds?: number;
}

/** `--key value` or `--key=value`; unknown flags are errors. */
export function parseInstallArgs(argv: readonly string[], defaultDriver: string): CliOptions {
  const values: Record<string, string> = {};
  const flags = new Set<string>();
  const known = ['plugin-dir', 'driver', 'node', 'secret-dir', 'config-file', 'node-name', 'multipath-conf', 'multipath-dest', 'watch'];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    if (!m) throw new Error(`unexpected argument ${arg}\n${USAGE}`);
    const name = m[1]!;
    if (name === 'attach') {
      flags.add(name);
      continue;
    }
    if (!known.includes(name)) throw new Error(`unknown option --${name}\n${USAGE}`);
    const value = m[2] ?? argv[++i];
    if (value === undefined) throw new Error(`--${name} needs a value\n${USAGE}`);
    values[name] = value;
  }
  if (!values['plugin-dir']) throw new Error(`--plugin-dir is required\n${USAGE}`);
  const watch = values.watch === undefined ? undefined : Number(values.watch);
  if (watch !== undefined && !(watch > 0)) throw new Error('--watch needs a number of seconds > 0');
  return {
    pluginDir: values['plugin-dir'],
    driverBundle: values.driver ?? defaultDriver,
    nodeBinary: values.node,
    secretDir: values['secret-dir'],
    configFile: values['config-file'],
    nodeName: values['node-name'] || undefined,
    attach: flags.has('attach'),
    multipathConf: values['multipath-conf'],
    multipathDest: values['multipath-dest'],
    watchSeconds: watch,
  };
}

function say(msg: string): void {
  process.stdout.write(`${new Date().toISOString()} datera-flex-install: ${msg}\n`);
}

async function main(argv: readonly string[]): Promise<number> {
  // Next to the bundled installer sits the bundled driver (dist/flex/{install,driver}.mjs).
  const defaultDriver = fileURLToPath(new URL('./driver.mjs', import.meta.url));
  let opts: CliOptions;
  try {
    opts = parseInstallArgs(argv, defaultDriver);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    return 2;
  }
  const stopping = new AbortController();
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => stopping.abort());
  for (;;) {
    try {
      const written = installOnce(opts);
      say(written.length ? `updated ${written.join(', ')}` : 'everything up to date');
    } catch (err) {
      say(`install failed: ${(err as Error).message}`);
      if (opts.watchSeconds === undefined) return 1;
    }
    if (opts.watchSeconds === undefined || stopping.signal.aborted) return 0;
    await sleep(opts.watchSeconds * 1000, undefined, { signal: stopping.signal }).catch(() => undefined);
    if (stopping.signal.aborted) return 0;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(fs.realpathSync(process.argv[1])).href) {
  void main(process.argv.slice(2)).then((code) => process.exit(code));
}
