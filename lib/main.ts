#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
// The provisioner process: run() puts the parts from lib/wiring.ts together (config -> client ->
// caches -> health -> cluster id -> controller -> leader lease) and main() owns the process
// (arguments, exit codes, signals).
import { command as audit } from './admin/audit.js';
import { ConfigError, describeConfig, loadConfig, type Config } from './config.js';
import { helpOrVersion } from './config-doc.js';
import type { LeaderElector } from './kube/lease.js';
import { startHttp } from './observability/http.js';
import { createLogger, type Logger } from './observability/logger.js';
import { Metrics } from './observability/metrics.js';
import type { ProvisionController } from './provision/controller.js';
import { VERSION } from './version.js';
import { caches, controller, dateraConnections, eventRecorder, healthPolicy, kubeClient, leaderElector, resolveClusterId } from './wiring.js';

export interface Running {
  stop(): Promise<void>;
  controller: ProvisionController;
  httpUrl: string;
  isLeader(): boolean;
}

/** Process-level effects of run(), injectable for tests. */
export interface RunHooks {
  /** Ends the process; called when the leader lease is lost (default process.exit). */
  exit?: (code: number) => void;
}

/**
 * Starts the provisioner; resolves once caches are synced. The HTTP endpoint listens from the
 * start: /healthz answers during the initial list, /readyz only once every cache has synced.
 */
export async function run(config: Config, logger: Logger, hooks: RunHooks = {}): Promise<Running> {
  const exit = hooks.exit ?? ((code: number) => process.exit(code));
  const metrics = new Metrics();
  const rest = kubeClient(config, metrics);
  const cached = caches(config, rest, logger);
  const recorder = eventRecorder(config, rest, logger);
  const connections = dateraConnections(config, rest, metrics, logger);
  let elector: LeaderElector | undefined;

  // Health endpoints before the caches: a slow initial list must not fail the liveness probe
  // (/healthz), while /readyz says "not synced" until it is done.
  const http = await startHttp(config.httpAddress, config.httpPort, metrics, healthPolicy(config, cached.all, () => elector));
  logger.info('health endpoints listening', { http: http.url });
  const closeHttp = () => new Promise<void>((r) => http.close(() => r()));

  // After the health endpoints: a slow API server at start-up must not fail the liveness probe.
  let clusterId: string;
  try {
    clusterId = await resolveClusterId(config, rest, logger);
  } catch (err) {
    await closeHttp();
    throw err;
  }
  const ctl = controller(config, clusterId, { rest, caches: cached, recorder, connections, metrics, logger });

  // Caches first, on every replica: a standby keeps them warm so a failover starts at once.
  const t0 = performance.now();
  try {
    await Promise.all(cached.all.map((i) => i.start()));
  } catch (err) {
    for (const i of cached.all) i.stop();
    await closeHttp();
    throw err;
  }
  logger.info('caches synced', { ms: Math.round(performance.now() - t0), claims: cached.claims.size, volumes: cached.volumes.size, classes: cached.classes.size });

  const electionAbort = new AbortController();
  let stopping = false;
  if (config.leaderElection.enabled) {
    elector = leaderElector(config, rest, metrics, logger, {
      started: () => ctl.start(),
      lost: (reason) => {
        // Two leaders must never work at once: stop now, also while draining after SIGTERM (the
        // drain waits for in-flight work, which must not go on writing once another replica may
        // lead), and let the Deployment restart us as a standby.
        logger.error('lost the leader lease; exiting so that only one replica provisions', { reason, draining: stopping });
        exit(1);
      },
    });
    void elector.run(electionAbort.signal).catch((err: unknown) => logger.error('leader election stopped', { err }));
  } else {
    ctl.start();
  }

  logger.info('provisioner running', { http: http.url, provisioner: config.provisionerName, identity: config.identity });

  return {
    controller: ctl,
    httpUrl: http.url,
    isLeader: () => (elector ? elector.isLeader : true),
    async stop() {
      stopping = true;
      await ctl.stop(); // in-flight operations finish (the lease is still renewed meanwhile)
      if (elector) await elector.release(); // only writes if we hold it; a standby takes over at once
      electionAbort.abort();
      for (const i of cached.all) i.stop();
      await recorder.flush();
      await rest.close();
      await connections.close();
      await closeHttp();
    },
  };
}

async function main(): Promise<void> {
  // Admin subcommands (local registration; the subcommand dispatcher of lib/admin replaces it on merge).
  if (process.argv[2] === 'audit') {
    process.exitCode = await audit.run(process.argv.slice(3), { stdout: (t) => void process.stdout.write(t), stderr: (t) => void process.stderr.write(t), env: process.env });
    return;
  }
  const info = helpOrVersion(process.argv.slice(2));
  if (info !== undefined) {
    process.stdout.write(info);
    return;
  }
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`datera-provisioner: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const logger = createLogger({ level: config.logLevel, component: 'datera-provisioner' });
  logger.info('starting', { version: VERSION, config: describeConfig(config) });
  process.on('unhandledRejection', (err) => logger.error('unhandled rejection', { err }));
  let running: Running;
  try {
    running = await run(config, logger);
  } catch (err) {
    logger.error('start-up failed', { err });
    process.exit(1);
  }
  let shuttingDown = false;
  const shutdown = (signal: string) => {
    if (shuttingDown) return;
    shuttingDown = true;
    logger.info('shutting down', { signal });
    const force = setTimeout(() => process.exit(1), 25_000);
    force.unref();
    running.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error('shutdown failed', { err });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('/main.ts') || process.argv[1]?.endsWith('/main.js')) {
  void main();
}
