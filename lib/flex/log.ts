// SPDX-License-Identifier: Apache-2.0
// The driver's diagnostics: JSON lines appended synchronously to a file, so a line is on disk
// before the process exits and nothing reaches stdout/stderr (kubelet parses those as the
// reply). Uses the project's redaction plus the names flex adds (CHAP, kubelet secret keys).
import fs from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import winston from 'winston';
import { redact, type Logger } from '../observability/logger.js';

export type { Logger };

/** Keys the project-wide redactor does not know: CHAP settings and `kubernetes.io/secret/<key>`. */
const FLEX_SECRET_KEY = /(^kubernetes\.io\/secret\/)|chap|password|passwd|secret/i;

export function flexRedact(key: string, value: unknown): unknown {
  if (key && FLEX_SECRET_KEY.test(key) && typeof value === 'string' && value !== '') return '[REDACTED]';
  return redact(key, value);
}

/** Rotate at start-up once the file passes this size; one old generation is kept. */
const ROTATE_BYTES = 10 * 1024 * 1024;

/** A Writable that appends each chunk with a blocking write: nothing is lost at process.exit. */
function appendSync(file: string): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      try {
        fs.appendFileSync(file, chunk, { mode: 0o640 });
      } catch {
        // A log that cannot be written must not turn into a failed mount.
      }
      done();
    },
  });
}

export function createFileLogger(file: string, level = process.env.LOG_LEVEL ?? 'info'): Logger {
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const size = fs.statSync(file, { throwIfNoEntry: false })?.size ?? 0;
    if (size > ROTATE_BYTES) fs.renameSync(file, `${file}.1`);
  } catch {
    // Same as above: diagnostics are best effort.
  }
  return winston.createLogger({
    level,
    defaultMeta: { component: 'datera-flex', pid: process.pid },
    format: winston.format.combine(winston.format.timestamp(), winston.format.json({ replacer: flexRedact })),
    transports: [new winston.transports.Stream({ stream: appendSync(file) })],
  });
}
