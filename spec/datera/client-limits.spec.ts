// SPDX-License-Identifier: Apache-2.0
// The client's cap on reply bodies, against a loopback server that sends endless or oversized bodies.
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { expect } from 'chai';
import { DateraClient, DEFAULT_MAX_RESPONSE_BYTES } from '../../lib/datera/client.js';
import { DateraError, ResponseTooLargeError } from '../../lib/datera/errors.js';

type Route = (req: IncomingMessage, res: ServerResponse) => void;

describe('DateraClient: reply body cap (maxResponseBytes)', function () {
  this.timeout(20_000);
  let server: Server;
  let url: string;
  let route: Route;
  let hits: string[];
  /** Resolves when the server sees the client close the connection of the current reply. */
  let closed: Promise<void>;
  let clients: DateraClient[];
  let connections = 0;

  before(async () => {
    server = createServer((req, res) => {
      hits.push(`${req.method} ${req.url}`);
      if (req.url?.endsWith('/login')) {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ key: 'session-key-1', version: 'v2.2' }));
        return;
      }
      closed = new Promise((r) => res.once('close', () => r()));
      route(req, res);
    });
    server.on('connection', () => connections++);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  beforeEach(() => {
    hits = [];
    clients = [];
  });
  afterEach(async () => {
    await Promise.all(clients.map((c) => c.close()));
  });

  const client = (maxResponseBytes?: number) => {
    const c = new DateraClient({
      endpoint: url,
      username: 'admin',
      password: 'pw_secret_1',
      retryBaseMs: 1,
      retryMaxMs: 1,
      requestTimeoutMs: 10_000,
      deadlineMs: 10_000,
      ...(maxResponseBytes !== undefined ? { maxResponseBytes } : {}),
    });
    clients.push(c);
    return c;
  };

  async function rejection(p: Promise<unknown>): Promise<DateraError> {
    try {
      await p;
    } catch (err) {
      expect(err).to.be.instanceOf(DateraError);
      return err as DateraError;
    }
    throw new Error('expected the call to reject');
  }

  it('keeps its connection after a forced delete (a DELETE with a body, which undici would close): login + 10 deletes + 10 reads over at most 2 connections', async () => {
    route = (req, res) => {
      req.resume();
      req.on('end', () => {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ data: req.method === 'DELETE' ? {} : { name: 'ai', id: 'ai' }, tenant: '/root', path: req.url, version: 'v2.2' }));
      });
    };
    const c = client();
    connections = 0;
    for (let i = 0; i < 10; i++) await c.deleteAppInstance(`ai-${i}`, true);
    for (let i = 0; i < 10; i++) await c.getAppInstance(`ai-${i}`);
    expect(hits.filter((h) => h.startsWith('DELETE'))).to.have.length(10);
    expect(connections).to.be.within(1, 2);
  });

  it('defaults to 16 MiB', () => {
    expect(DEFAULT_MAX_RESPONSE_BYTES).to.equal(16 * 1024 * 1024);
  });

  it('an endless chunked body: rejects with DATERA_RESPONSE_TOO_LARGE, closes the connection, does not retry', async () => {
    const chunk = Buffer.alloc(64 * 1024, 'x');
    route = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"data": "');
      const pump = () => {
        while (!res.destroyed && res.write(chunk));
        if (!res.destroyed) res.once('drain', pump);
      };
      pump();
    };
    const err = await rejection(client(1024 * 1024).getSystem());
    expect(err).to.be.instanceOf(ResponseTooLargeError);
    expect(err.code).to.equal('DATERA_RESPONSE_TOO_LARGE');
    expect(err.retryable).to.equal(false);
    expect(err.message).to.equal(
      'GET /system failed: the reply body is larger than 1048576 bytes (the Datera client\'s maxResponseBytes); the connection was closed',
    );
    await closed; // the server saw the connection go away (an endless body never ends otherwise)
    expect(hits.filter((h) => h.startsWith('GET'))).to.have.length(1);
  });

  it('a declared Content-Length above the cap is refused before the body is read', async () => {
    route = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(10 * 1024 * 1024 * 1024) });
      res.write('{"data":');
    };
    const err = await rejection(client(4096).getSystem());
    expect(err.code).to.equal('DATERA_RESPONSE_TOO_LARGE');
    await closed;
  });

  it('a complete reply whose declared Content-Length is above the cap is refused without an uncaught error (regression: the destroyed body raised an unhandled AbortError that would kill the process)', async () => {
    const body = JSON.stringify({ data: { name: 'x'.repeat(10_000) }, metadata: {} });
    route = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) });
      res.end(body);
    };
    const uncaught: unknown[] = [];
    const onUncaught = (err: unknown) => uncaught.push(err);
    const mochaListeners = process.listeners('uncaughtException');
    process.removeAllListeners('uncaughtException');
    process.on('uncaughtException', onUncaught);
    try {
      const err = await rejection(client(4096).getSystem());
      expect(err.code).to.equal('DATERA_RESPONSE_TOO_LARGE');
      // The stray error, if any, surfaces on a later turn of the event loop.
      for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 20));
    } finally {
      process.removeListener('uncaughtException', onUncaught);
      for (const l of mochaListeners) process.on('uncaughtException', l);
    }
    expect(uncaught.map((e) => String(e))).to.deep.equal([]);
  });

  it('an error reply is capped too', async () => {
    route = (_req, res) => {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ name: 'InternalError', message: 'x'.repeat(10_000) }));
    };
    const err = await rejection(client(4096).getSystem());
    expect(err.code).to.equal('DATERA_RESPONSE_TOO_LARGE');
  });

  it('a body exactly at the cap is read normally', async () => {
    const body = JSON.stringify({ data: { name: 'x'.repeat(100) }, metadata: {} });
    route = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(body);
    };
    const sys = await client(Buffer.byteLength(body)).getSystem();
    expect(sys).to.deep.equal({ name: 'x'.repeat(100) });
  });
});
