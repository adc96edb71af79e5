// SPDX-License-Identifier: Apache-2.0
// The simulator's wire format: reading and parsing request bodies (JSON or form-encoded, at
// most 1 MiB) and writing JSON answers.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { invalid, validationFailed } from './errors.js';
import type { Json } from './model.js';
import { show } from './validate.js';

const MAX_BODY_BYTES = 1024 * 1024;

/** An answer to send: a JSON body, or none (an empty text/plain body). */
export interface Answer {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

export function send(res: ServerResponse, a: Answer): void {
  const text = a.body === undefined ? '' : JSON.stringify(a.body);
  res.writeHead(a.status, {
    'content-type': a.body === undefined ? 'text/plain' : 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    ...a.headers,
  });
  res.end(text);
}

/** The body as trimmed text; 400 InvalidRequestError past MAX_BODY_BYTES. */
export async function readRaw(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw invalid(`Request body is larger than ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8').trim();
}

export async function readBody(req: IncomingMessage): Promise<Json> {
  return parseBody(await readRaw(req), req);
}

/** JSON, or form-urlencoded (GOSDK sends the login that way). An empty body is {}. */
export function parseBody(text: string, req: IncomingMessage): Json {
  if (text === '') return {};
  const type = String(req.headers['content-type'] ?? '');
  if (type.includes('application/x-www-form-urlencoded') || (!type.includes('json') && !/^[[{]/.test(text))) {
    return Object.fromEntries(new URLSearchParams(text));
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw invalid('Request body is not valid JSON');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw validationFailed([`(body): ${show(parsed)} is not of type 'object'`]);
  }
  return parsed as Json;
}
