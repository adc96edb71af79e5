#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// `datera-sim`: runs the Datera simulator until SIGTERM/SIGINT. Prints exactly one line on
// stdout, "datera-sim listening on <url>"; logs (JSON) go to stderr. Exit status 2 on bad flags,
// 1 when it cannot start (port in use, bad seed file).
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import winston from 'winston';
import { createLogger } from '../observability/logger.js';
import type { SimUser } from './auth.js';
import type { SimFaults } from './faults.js';
import { DateraSimulator, type SimOptions } from './server.js';

export const USAGE = `Usage: datera-sim [options]

  --port <n>               port to listen on (default 7717; 0 = any free port)
  --host <addr>            address to listen on (default 127.0.0.1). The /_sim/ control
                           endpoint has no authentication: use loopback or a private network
  --users <list>           name:password[:tenant],... (default admin:password)
  --seed <file>            YAML or JSON file with {templates: [...], ip_pools?, placement_policies?}
  --session-ttl <dur>      session key lifetime, e.g. 15m, 10s, 500ms (default 15m)
  --capacity-gib <n>       raw capacity in GiB (size x replica_count); creates beyond it fail
  --allow-online-delete    DELETE of an online app instance succeeds without force
  --latency-ms <n>         added to every call
  --latency-jitter-ms <n>  up to this much more, at random
  --rate-503 <0..1>        share of calls answered 503 before doing anything
  --drop-rate <0..1>       share of calls whose connection is dropped before doing anything
  --drop-after-rate <0..1> share of calls performed, then dropped without an answer
  --slow-rate <0..1>       share of calls delayed by --slow-ms (default 2000)
  --slow-ms <n>
  --initializing-rate <0..1> share of calls answered 500 "REST server is still initializing"
  --iqn-prefix <iqn>       target IQN prefix (default iqn.2013-05.com.daterainc:tc:01:sn:)
  --access-ips <ip,ip>     the two access IPs of every storage instance
  --no-control             do not serve the /_sim/ control endpoint
  --backing-dir <dir>      keep a sparse file per volume in <dir> (created if missing), the
                           size of the volume, for a loop-device stand-in of the node's
                           iSCSI initiator; /_sim/iscsi/login then answers the files
  --log-level <level>      error, warn, info (default), debug (one line per call)
  -h, --help               this text
`;

export class UsageError extends Error {}

/** "15m", "10s", "500ms", "1h"; a bare number is milliseconds. */
export function parseDuration(v: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(v.trim());
  if (!m) throw new UsageError(`${flag}: ${JSON.stringify(v)} is not a duration such as 15m, 10s or 500ms`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 'ms') as 'ms' | 's' | 'm' | 'h'];
  return Math.round(Number(m[1]) * unit);
}

function num(v: string | undefined, flag: string, min: number, max = Number.POSITIVE_INFINITY): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
    throw new UsageError(`${flag}: ${JSON.stringify(v)} must be a number${max === Number.POSITIVE_INFINITY ? ` >= ${min}` : ` from ${min} to ${max}`}`);
  }
  return n;
}

export function parseUsers(v: string): SimUser[] {
  return v.split(',').map((entry) => {
    const [name, password, tenant, ...rest] = entry.trim().split(':');
    if (!name || !password || rest.length > 0) {
      throw new UsageError(`--users: ${JSON.stringify(entry)} is not name:password or name:password:/root/tenant`);
    }
    return tenant ? { name, password, tenant } : { name, password };
  });
}

export interface CliConfig {
  port: number;
  host: string;
  logLevel: string;
  options: SimOptions;
}

/** Turns argv into the simulator's settings; throws UsageError with a message naming the flag. */
export function parseCli(argv: string[]): CliConfig | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        port: { type: 'string' },
        host: { type: 'string' },
        users: { type: 'string' },
        seed: { type: 'string' },
        'session-ttl': { type: 'string' },
        'capacity-gib': { type: 'string' },
        'allow-online-delete': { type: 'boolean' },
        'latency-ms': { type: 'string' },
        'latency-jitter-ms': { type: 'string' },
        'rate-503': { type: 'string' },
        'drop-rate': { type: 'string' },
        'drop-after-rate': { type: 'string' },
        'slow-rate': { type: 'string' },
        'slow-ms': { type: 'string' },
        'initializing-rate': { type: 'string' },
        'iqn-prefix': { type: 'string' },
        'access-ips': { type: 'string' },
        'no-control': { type: 'boolean' },
        'backing-dir': { type: 'string' },
        'log-level': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const v = parsed.values;
  if (v.help) return 'help';

  const port = num(v.port, '--port', 0, 65535) ?? 7717;
  if (!Number.isInteger(port)) throw new UsageError(`--port: ${v.port} must be an integer`);
  const faults: SimFaults = {};
  const set = (key: keyof SimFaults, value: number | undefined): void => {
    if (value !== undefined) (faults as Record<string, number>)[key] = value;
  };
  set('latencyMs', num(v['latency-ms'], '--latency-ms', 0));
  set('latencyJitterMs', num(v['latency-jitter-ms'], '--latency-jitter-ms', 0));
  set('rate503', num(v['rate-503'], '--rate-503', 0, 1));
  set('dropRate', num(v['drop-rate'], '--drop-rate', 0, 1));
  set('dropAfterRate', num(v['drop-after-rate'], '--drop-after-rate', 0, 1));
  set('slowRate', num(v['slow-rate'], '--slow-rate', 0, 1));
  set('slowMs', num(v['slow-ms'], '--slow-ms', 0) ?? (faults.slowRate !== undefined ? 2000 : undefined));
  set('initializingRate', num(v['initializing-rate'], '--initializing-rate', 0, 1));

  const options: SimOptions = { faults, requireOfflineForDelete: !v['allow-online-delete'], control: !v['no-control'] };
  if (v.users !== undefined) options.users = parseUsers(v.users);
  if (v.seed !== undefined) options.seedFile = v.seed;
  if (v['session-ttl'] !== undefined) options.sessionTtlMs = parseDuration(v['session-ttl'], '--session-ttl');
  const cap = num(v['capacity-gib'], '--capacity-gib', 1);
  if (cap !== undefined) options.capacityGiB = cap;
  if (v['iqn-prefix'] !== undefined) options.iqnPrefix = v['iqn-prefix'];
  if (v['backing-dir'] !== undefined) {
    if (v['backing-dir'].trim() === '') throw new UsageError('--backing-dir: needs a directory');
    options.backingDir = v['backing-dir'];
  }
  if (v['access-ips'] !== undefined) {
    const ips = v['access-ips'].split(',').map((s) => s.trim());
    if (ips.length !== 2 || ips.some((ip) => !/^\d{1,3}(\.\d{1,3}){3}$/.test(ip))) {
      throw new UsageError(`--access-ips: ${JSON.stringify(v['access-ips'])} must be two IPv4 addresses separated by a comma`);
    }
    options.accessIps = [ips[0]!, ips[1]!];
  }
  const logLevel = v['log-level'] ?? 'info';
  if (!['error', 'warn', 'info', 'debug'].includes(logLevel)) throw new UsageError(`--log-level: ${logLevel} is not error, warn, info or debug`);
  return { port, host: v.host ?? '127.0.0.1', logLevel, options };
}

async function main(): Promise<void> {
  let cfg: CliConfig | 'help';
  try {
    cfg = parseCli(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`datera-sim: ${(err as Error).message}\nRun "datera-sim --help" for the options.\n`);
    process.exit(2);
  }
  if (cfg === 'help') {
    process.stdout.write(USAGE);
    return;
  }
  const logger = createLogger({
    level: cfg.logLevel,
    component: 'datera-sim',
    transports: [new winston.transports.Console({ stderrLevels: ['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly'] })],
  });
  let sim: DateraSimulator;
  let url: string;
  try {
    sim = new DateraSimulator({ ...cfg.options, logger });
    url = await sim.start(cfg.port, cfg.host);
  } catch (err) {
    process.stderr.write(`datera-sim: cannot start: ${(err as Error).message}\n`);
    process.exit(1);
  }
  process.stdout.write(`datera-sim listening on ${url}\n`);
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info('stopping', { signal });
    sim.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

function invokedDirectly(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (invokedDirectly()) void main();
