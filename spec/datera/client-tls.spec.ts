// SPDX-License-Identifier: Apache-2.0
// TLS behaviour of the client's own dispatcher against a local HTTPS server with a throwaway
// self-signed certificate (made with openssl at run time; skipped when openssl is missing).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { DateraClient, type DateraClientOptions } from '../../lib/datera/client.js';
import { ConnectionError } from '../../lib/datera/errors.js';

describe('DateraClient TLS (local HTTPS server)', function () {
  let dir: string;
  let cert: string;
  let server: Server;
  let endpoint: string;
  let sleeps: number;
  const clients: DateraClient[] = [];

  before(async function () {
    dir = mkdtempSync(join(tmpdir(), 'datera-tls-'));
    try {
      execFileSync(
        'openssl',
        ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
          '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-subj', '/CN=127.0.0.1',
          '-addext', 'subjectAltName=IP:127.0.0.1'],
        { stdio: 'ignore' },
      );
    } catch {
      this.skip(); // reason: openssl is not installed, so no certificate can be made for the TLS server
    }
    cert = readFileSync(join(dir, 'cert.pem'), 'utf8');
    server = createServer({ key: readFileSync(join(dir, 'key.pem')), cert }, (req, res) => {
      req.resume();
      res.setHeader('content-type', 'application/json');
      if (req.url === '/v2.2/login') res.end(JSON.stringify({ key: 'tls-key', version: 'v2.2' }));
      else res.end(JSON.stringify({ data: { name: 'tls-dat' }, metadata: {} }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    endpoint = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  beforeEach(() => {
    sleeps = 0;
  });

  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
  });

  function makeClient(extra: Partial<DateraClientOptions>): DateraClient {
    const c = new DateraClient({
      endpoint,
      username: 'admin',
      password: 'secret_pw',
      sleep: async () => {
        sleeps++;
      },
      ...extra,
    });
    clients.push(c);
    return c;
  }

  it('verifies the certificate by default: a self-signed endpoint fails with ConnectionError, not retried', async () => {
    const err = await makeClient({}).getSystem().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(ConnectionError);
    expect(sleeps).to.equal(0);
  });

  it('trusts the endpoint given its CA bundle', async () => {
    const sys = await makeClient({ caBundle: cert }).getSystem();
    expect(sys.name).to.equal('tls-dat');
  });

  it('connects without verification only when insecureSkipTlsVerify is set', async () => {
    const sys = await makeClient({ insecureSkipTlsVerify: true }).getSystem();
    expect(sys.name).to.equal('tls-dat');
  });
});
