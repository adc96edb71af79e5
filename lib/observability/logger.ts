// SPDX-License-Identifier: Apache-2.0
// winston JSON logger. Secrets are redacted by key name at any depth, and Errors keep their
// message and stack when nested in metadata.
import winston from 'winston';

export type Logger = winston.Logger;

const SECRET_KEY =
  /^(password|passwd|pswd|serverpasswd|token|auth-token|authorization|secret|secret_key|client-key-data|key|initiator_pswd|target_pswd|node\.session\.auth\.password(_in)?)$/i;

/** JSON.stringify replacer used for every log line. Exported for tests. */
export function redact(key: string, value: unknown): unknown {
  if (key && SECRET_KEY.test(key) && value !== undefined && value !== null && value !== '') return '[REDACTED]';
  if (value instanceof Error) {
    const extra: Record<string, unknown> = {};
    for (const k of Object.keys(value)) extra[k] = (value as unknown as Record<string, unknown>)[k];
    return { name: value.name, message: value.message, ...extra, stack: value.stack };
  }
  return value;
}

export interface LoggerOptions {
  level?: string;
  component?: string;
  /** Defaults to stdout. The node driver passes a file transport (kubelet parses its stdout). */
  transports?: winston.transport[];
  silent?: boolean;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  return winston.createLogger({
    level: opts.level ?? process.env.LOG_LEVEL ?? 'info',
    silent: opts.silent ?? false,
    defaultMeta: { component: opts.component ?? 'datera-provisioner' },
    format: winston.format.combine(winston.format.timestamp(), winston.format.json({ replacer: redact })),
    transports: opts.transports ?? [new winston.transports.Console()],
  });
}

/** A logger that drops everything: the default for library code and tests. */
export function nullLogger(): Logger {
  return createLogger({ silent: true });
}
