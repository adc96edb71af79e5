// SPDX-License-Identifier: Apache-2.0
// Test helpers for the FlexVolume driver: a temp "host root" with fake host tools on PATH
// (spec/flex/fakes), and a runner that spawns the real driver entry the way kubelet does and
// checks the kubelet contract on every call (stdout is one JSON object, stderr is empty).
//
// With DATERA_FLEX_IN_PROCESS=1 (set by `make mutation`) a call-out runs in this process instead:
// runCallout with the context lib/flex/main.ts builds, from the host's environment. Mutation
// testing sees only code that runs in its own process; the spawned mode stays the default
// because it is the contract kubelet relies on (argv, stdout, exit code, nothing on stderr).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { configFromEnv } from '../../lib/flex/config.js';
import { defaultClientFactory, type ClientFactory } from '../../lib/flex/datera.js';
import { runCallout } from '../../lib/flex/driver.js';
import { createHostRunner } from '../../lib/flex/host.js';
import { createFileLogger } from '../../lib/flex/log.js';
import { exitCodeOf, failure, type Reply } from '../../lib/flex/reply.js';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '../..');
export const fakesBin = path.join(here, 'fakes', 'bin');
const driverEntry = path.join(repoRoot, 'lib/flex/main.ts');

/** Run call-outs in this process (see the top of this file); otherwise spawn the driver entry. */
const IN_PROCESS = process.env.DATERA_FLEX_IN_PROCESS === '1';

export const NODE_IQN = 'iqn.1994-05.com.redhat:node-1';

/** kubelet's FlexVolume calls merge stdout and stderr: these must never show up in either. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  reply: Reply;
}

export interface FakeCall {
  tool: string;
  args: string[];
}

/** See spec/flex/fakes/fake-host.mjs, fake/luns/<iqn>.json. */
export interface PlantedLun {
  fs?: string;
  data?: 'junk' | 'unreadable';
  blkid?: { code: number; stdout?: string; stderr?: string };
}

export class FakeHost {
  readonly root: string;
  /** Strings that must never appear in the driver's log or replies (passwords). */
  readonly secrets = new Set<string>();
  private readonly env: NodeJS.ProcessEnv;

  /** This node's iSCSI initiator name (etc/iscsi/initiatorname.iscsi). */
  readonly iqn: string;

  /**
   * `initiator`: the node's IQN (two hosts with different IQNs play two nodes). `simUrl`: the
   * fake iscsiadm reports logins/logouts to this simulator's /_sim/iscsi/* (active_initiators).
   * `disksFile`: filesystems are kept in this file, so hosts sharing it see the same LUNs.
   */
  constructor(
    opts: { settings?: Record<string, unknown>; env?: NodeJS.ProcessEnv; initiator?: string; simUrl?: string; disksFile?: string } = {},
  ) {
    this.root = fs.mkdtempSync(path.join(os.tmpdir(), 'datera-flex-'));
    for (const f of fs.readdirSync(fakesBin)) fs.chmodSync(path.join(fakesBin, f), 0o755);
    this.iqn = opts.initiator ?? NODE_IQN;
    this.write('etc/iscsi/initiatorname.iscsi', `## DO NOT EDIT\nInitiatorName=${this.iqn}\n`);
    this.write('proc/mounts', 'proc /proc proc rw,relatime 0 0\n');
    fs.mkdirSync(this.path('dev/disk/by-path'), { recursive: true });
    if (opts.settings) this.writeSettings(opts.settings);
    this.env = {
      ...process.env,
      PATH: [fakesBin, path.dirname(process.execPath), '/usr/bin', '/bin'].join(':'),
      DATERA_FLEX_ROOT: this.root,
      DATERA_FLEX_POLL_MS: '20',
      DATERA_FLEX_DEVICE_TIMEOUT_MS: '2000',
      DATERA_FLEX_ONLINE_TIMEOUT_MS: '5000',
      DATERA_FLEX_MULTIPATH_TIMEOUT_MS: '300',
      DATERA_FLEX_LOCK_TIMEOUT_MS: '10000',
      ...(opts.simUrl ? { FAKE_ISCSI_SIM_URL: opts.simUrl } : {}),
      ...(opts.disksFile ? { FAKE_DISKS_FILE: opts.disksFile } : {}),
      ...opts.env,
    };
  }

  path(rel: string): string {
    return path.join(this.root, rel);
  }

  /** Adds variables to the driver's environment (and so its tools'), e.g. paths under this root. */
  setEnv(extra: NodeJS.ProcessEnv): void {
    Object.assign(this.env, extra);
  }

  write(rel: string, text: string): void {
    fs.mkdirSync(path.dirname(this.path(rel)), { recursive: true });
    fs.writeFileSync(this.path(rel), text);
  }

  writeSettings(settings: Record<string, unknown>): void {
    if (typeof settings.password === 'string') this.secrets.add(settings.password);
    if (typeof settings.chapPassword === 'string') this.secrets.add(settings.chapPassword);
    this.write('etc/datera/flex.json', JSON.stringify(settings));
    fs.chmodSync(this.path('etc/datera/flex.json'), 0o600);
  }

  /** A pod's volume directory, as kubelet passes it to mount/unmount. */
  podDir(pv: string, podUid = 'pod-a'): string {
    return this.path(`var/lib/kubelet/pods/${podUid}/volumes/datera~iscsi/${pv}`);
  }

  /** Runs one call-out through the real entry and checks the kubelet output contract. */
  async run(...argv: string[]): Promise<RunResult> {
    const { code, stdout, stderr } = IN_PROCESS ? await this.runInProcess(argv) : await this.spawnDriver(argv);
    expect(stderr, `stderr of ${argv[0]}`).to.equal('');
    let reply: Reply;
    try {
      reply = JSON.parse(stdout) as Reply;
    } catch {
      throw new Error(`stdout of ${argv[0]} is not one JSON object: ${JSON.stringify(stdout)}`);
    }
    expect(stdout.trim().startsWith('{') && stdout.trim().endsWith('}'), 'one JSON object').to.equal(true);
    expect(reply).to.be.an('object');
    expect(code, `exit code of ${argv[0]} (${stdout.trim()})`).to.equal(reply.status === 'Failure' ? 1 : 0);
    this.expectNoSecrets(stdout, `stdout of ${argv[0]}`);
    this.expectNoSecrets(this.log(), 'driver log');
    return { code, stdout, stderr, reply };
  }

  private async spawnDriver(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    const child = spawn(process.execPath, ['--import', 'tsx', driverEntry, ...argv], {
      cwd: repoRoot,
      env: this.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? -1)));
    return { code, stdout, stderr };
  }

  /**
   * What lib/flex/main.ts does, in this process and with this host's environment: the same
   * config, file logger, host runner (its tools get this host's environment) and client
   * factory; the reply printed as main prints it. The clients are closed afterwards, as the
   * process exit would.
   */
  private async runInProcess(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    const made: { close?: () => Promise<void> }[] = [];
    const clients: ClientFactory = (conn, logger) => {
      const api = defaultClientFactory(conn, logger);
      made.push(api as { close?: () => Promise<void> });
      return api;
    };
    let reply: Reply;
    try {
      const cfg = configFromEnv(this.env);
      const log = createFileLogger(cfg.logFile, this.env.LOG_LEVEL ?? 'info');
      const run = createHostRunner({ path: cfg.commandPath, timeoutMs: cfg.commandTimeoutMs, logger: log, env: this.env });
      reply = await runCallout({ cfg, log, run, clients }, argv);
    } catch (err) {
      reply = failure((err as Error).message);
    }
    await Promise.all(made.map((c) => c.close?.()));
    // Let the logger's last lines reach the file before the caller reads it.
    await new Promise((r) => setImmediate(r));
    return { code: exitCodeOf(reply), stdout: `${JSON.stringify(reply)}\n`, stderr: '' };
  }

  /** Like run, but expects Success and returns the reply. */
  async ok(...argv: string[]): Promise<Reply> {
    const r = await this.run(...argv);
    expect(r.reply.status, `${argv[0]}: ${r.reply.message ?? ''}`).to.equal('Success');
    return r.reply;
  }

  expectNoSecrets(text: string, where: string): void {
    for (const s of this.secrets) expect(text.includes(s), `${where} contains a secret`).to.equal(false);
  }

  log(): string {
    try {
      return fs.readFileSync(this.path('var/log/datera-flex.log'), 'utf8');
    } catch {
      return '';
    }
  }

  calls(tool?: string): FakeCall[] {
    let text: string;
    try {
      text = fs.readFileSync(this.path('fake/calls.jsonl'), 'utf8');
    } catch {
      return [];
    }
    const all = text
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as FakeCall);
    return tool ? all.filter((c) => c.tool === tool) : all;
  }

  clearCalls(): void {
    fs.rmSync(this.path('fake/calls.jsonl'), { force: true });
  }

  /** iscsiadm calls with a given flag (e.g. '-l' login, '-u' logout). */
  iscsi(flag: string): FakeCall[] {
    return this.calls('iscsiadm').filter((c) => c.args.includes(flag));
  }

  mounts(): string[][] {
    return fs
      .readFileSync(this.path('proc/mounts'), 'utf8')
      .split('\n')
      .filter((l) => l && !l.startsWith('proc '))
      .map((l) => l.split(' '));
  }

  sessions(): { iqn: string; portal: string; sd: string }[] {
    try {
      return (JSON.parse(fs.readFileSync(this.path('fake/state.json'), 'utf8')) as { sessions: { iqn: string; portal: string; sd: string }[] }).sessions;
    } catch {
      return [];
    }
  }

  portalDown(ip: string, down = true): void {
    if (down) this.write(`fake/portal-down/${ip}`, '');
    else fs.rmSync(this.path(`fake/portal-down/${ip}`), { force: true });
  }

  /**
   * Plants what a LUN (by target IQN) holds before the driver sees it: an existing filesystem,
   * device bytes that are junk or unreadable, or the exact `blkid -p` answer ({dev} = device).
   */
  plantLun(iqn: string, lun: PlantedLun): void {
    this.write(`fake/luns/${iqn}.json`, JSON.stringify(lun));
  }

  failTool(tool: string, message: string | undefined): void {
    if (message === undefined) fs.rmSync(this.path(`fake/fail/${tool}`), { force: true });
    else this.write(`fake/fail/${tool}`, message);
  }

  /** A node reboot: sessions, devices and mounts are gone; /etc and /var/lib survive. */
  reboot(): void {
    const state = JSON.parse(fs.readFileSync(this.path('fake/state.json'), 'utf8')) as Record<string, unknown>;
    state.sessions = [];
    state.dms = {};
    fs.writeFileSync(this.path('fake/state.json'), JSON.stringify(state));
    for (const d of ['dev', 'sys']) fs.rmSync(this.path(d), { recursive: true, force: true });
    fs.mkdirSync(this.path('dev/disk/by-path'), { recursive: true });
    this.write('proc/mounts', 'proc /proc proc rw,relatime 0 0\n');
  }

  cleanup(): void {
    fs.rmSync(this.root, { recursive: true, force: true });
  }
}

export const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

/** Changes to the options of a call-out: PV options added or replaced, `null` removes a key. */
export type OptionChanges = Record<string, string | null>;

function applyChanges(opts: Record<string, string>, changes: OptionChanges | undefined): Record<string, string> {
  for (const [k, v] of Object.entries(changes ?? {})) {
    if (v === null) delete opts[k];
    else opts[k] = v;
  }
  return opts;
}

/** What kubelet and the PV's flexVolume.options put into every call-out's JSON. */
function pvOptions(pv: string, server: string): Record<string, string> {
  return {
    'kubernetes.io/fsType': 'xfs',
    'kubernetes.io/readwrite': 'rw',
    'kubernetes.io/pvOrVolumeName': pv,
    volumeID: pv,
    size: '1',
    replica: '3',
    backstoreServer: server,
    tenant: '/root',
    storageInstance: 'storage-1',
    volume: 'volume-1',
  };
}

/** The options kubelet passes to `mount` for one of our PVs (system keys, pod, PV options, secret). */
export function mountOptions(
  pv: string,
  server: string,
  o: { ro?: boolean; fsGroup?: number; fsType?: string; secret?: Record<string, string>; namespace?: string; options?: OptionChanges } = {},
): string {
  const opts: Record<string, string> = {
    ...pvOptions(pv, server),
    'kubernetes.io/pod.name': 'web-0',
    'kubernetes.io/pod.namespace': o.namespace ?? 'default',
    'kubernetes.io/pod.uid': 'pod-a',
    'kubernetes.io/serviceAccount.name': 'default',
  };
  if (o.fsType) opts['kubernetes.io/fsType'] = o.fsType;
  if (o.ro) opts['kubernetes.io/readwrite'] = 'ro';
  if (o.fsGroup !== undefined) opts['kubernetes.io/mounterArgs.FsGroup'] = String(o.fsGroup);
  for (const [k, v] of Object.entries(o.secret ?? {})) opts[`kubernetes.io/secret/${k}`] = b64(v);
  return JSON.stringify(applyChanges(opts, o.options));
}

/** The options kubelet/KCM pass to attach and the other call-outs without a pod (no secret). */
export function volumeOptions(pv: string, server: string, changes?: OptionChanges): string {
  return JSON.stringify(applyChanges(pvOptions(pv, server), changes));
}
