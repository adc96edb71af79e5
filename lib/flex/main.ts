// SPDX-License-Identifier: Apache-2.0
// Entry point kubelet runs (through the `iscsi` shim): `<callout> [args...]`. Prints exactly one
// JSON reply on stdout and exits 1 on Failure. kubelet merges stdout and stderr before parsing,
// so console output and process warnings are diverted to the log file.
import { configFromEnv } from './config.js';
import { defaultClientFactory } from './datera.js';
import { runCallout } from './driver.js';
import { createHostRunner } from './host.js';
import { createFileLogger, type Logger } from './log.js';
import { exitCodeOf, failure, type Reply } from './reply.js';

let replied = false;

function reply(r: Reply): void {
  if (replied) return;
  replied = true;
  process.stdout.write(`${JSON.stringify(r)}\n`, () => process.exit(exitCodeOf(r)));
}

let log: Logger | undefined;

function divertOutput(): void {
  const toLog =
    (level: 'info' | 'warn' | 'error') =>
    (...args: unknown[]) =>
      log?.log(level, args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a, (_k, v: unknown) => v))).join(' '), { source: 'console' });
  console.log = console.info = console.debug = toLog('info');
  console.warn = toLog('warn');
  console.error = toLog('error');
  // Node prints warnings to stderr from a listener installed at start-up; replace it.
  process.removeAllListeners('warning');
  process.on('warning', (w) => log?.warn('node warning', { name: w.name, message: w.message }));
  process.on('uncaughtException', (err) => {
    log?.error('uncaught exception', { err });
    reply(failure(`unexpected error: ${err.message}`));
  });
  process.on('unhandledRejection', (err) => {
    log?.error('unhandled rejection', { err });
    reply(failure(`unexpected error: ${(err as Error)?.message ?? String(err)}`));
  });
}

async function main(): Promise<void> {
  divertOutput();
  try {
    const cfg = configFromEnv();
    log = createFileLogger(cfg.logFile);
    const run = createHostRunner({ path: cfg.commandPath, timeoutMs: cfg.commandTimeoutMs, logger: log });
    reply(await runCallout({ cfg, log, run, clients: defaultClientFactory }, process.argv.slice(2)));
  } catch (err) {
    reply(failure((err as Error).message));
  }
}

void main();
