// SPDX-License-Identifier: Apache-2.0
// The single way the driver runs host tools (iscsiadm, mkfs.*, mount, umount, blkid,
// multipath, xfs_growfs, resize2fs, chgrp). Tools are looked up on the configured PATH, so
// tests put fakes first. A non-zero exit is a result, not an exception: callers know which
// codes mean "already done".
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { FlexError } from './reply.js';
import type { Logger } from './log.js';

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface HostRunner {
  run(cmd: string, args: readonly string[]): Promise<CommandResult>;
}

/** True when `cmd` is an executable file in one of the directories of `searchPath` (a PATH value). */
export function commandOnPath(searchPath: string, cmd: string): boolean {
  return searchPath
    .split(':')
    .filter((d) => d !== '')
    .some((d) => {
      const file = path.join(d, cmd);
      try {
        fs.accessSync(file, fs.constants.X_OK);
        return fs.statSync(file).isFile();
      } catch {
        return false;
      }
    });
}

/** `iscsiadm ... -n node.session.auth.password -v <secret>`: hide the value that follows. */
export function redactArgs(args: readonly string[]): string[] {
  return args.map((a, i) => (i >= 2 && args[i - 1] === '-v' && /password/i.test(args[i - 2] ?? '') ? '[REDACTED]' : a));
}

/** First line of stderr (or stdout), for Failure messages. */
export function outputSummary(r: CommandResult): string {
  const text = (r.stderr.trim() || r.stdout.trim()).split('\n')[0] ?? '';
  return text.length > 300 ? `${text.slice(0, 300)}...` : text;
}

/** Throws a FlexError naming the command unless it exited 0 (or with one of `ok`). */
export function checkResult(cmd: string, r: CommandResult, ok: readonly number[] = [0]): CommandResult {
  if (!ok.includes(r.code)) throw new FlexError(`${cmd} failed (exit ${r.code}): ${outputSummary(r) || 'no output'}`);
  return r;
}

/**
 * Runs tools with `env` (default: this process's environment), PATH replaced by `path` and a C
 * locale, so their output parses the same on every node.
 */
export function createHostRunner(opts: { path: string; timeoutMs: number; logger: Logger; env?: NodeJS.ProcessEnv }): HostRunner {
  const env = { ...(opts.env ?? process.env), PATH: opts.path, LC_ALL: 'C' };
  return {
    run(cmd, args) {
      const started = Date.now();
      return new Promise((resolve, reject) => {
        const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
        child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
        const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
        child.on('error', (err: NodeJS.ErrnoException) => {
          clearTimeout(timer);
          if (err.code === 'ENOENT') reject(new FlexError(`${cmd} not found on PATH (${opts.path}); is it installed on this node?`));
          else reject(new FlexError(`cannot run ${cmd}: ${err.message}`));
        });
        child.on('close', (code, signal) => {
          clearTimeout(timer);
          const result = { code: code ?? (signal ? 128 : 1), stdout, stderr };
          if (signal) result.stderr += `\nkilled by ${signal} after ${Date.now() - started} ms`;
          opts.logger.info('host command', {
            cmd,
            args: redactArgs(args),
            code: result.code,
            ms: Date.now() - started,
            stderr: result.stderr.trim().slice(0, 500) || undefined,
          });
          resolve(result);
        });
      });
    },
  };
}
