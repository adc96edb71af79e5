// SPDX-License-Identifier: Apache-2.0
// Retries of the same failure must produce the same event text, or the event recorder cannot fold
// them into one Event (count++) and `kubectl describe` fills with near-duplicates.
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { expect } from 'chai';
import { DateraClient } from '../../lib/datera/client.js';
import { DateraError } from '../../lib/datera/errors.js';
import { describeFailure } from '../../lib/provision/report.js';

describe('Datera failures read the same on every retry (event de-duplication)', function () {
  this.timeout(20_000);
  let server: Server;
  let url: string;
  /** The client's clock; a login costs 17 ms of it, as a real first attempt pays for its login. */
  let clock = 0;
  const clients: DateraClient[] = [];

  before(async () => {
    server = createServer((req, res) => {
      if (req.url?.endsWith('/login')) {
        clock += 17;
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ key: 'k1', version: 'v2.2' }));
        return;
      }
      // Every other request hangs: the client's per-request timer ends it.
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  after(async () => {
    for (const c of clients) await c.close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  async function failure(client: DateraClient): Promise<DateraError> {
    try {
      await client.getSystem();
    } catch (err) {
      expect(err).to.be.instanceOf(DateraError);
      return err as DateraError;
    }
    throw new Error('expected a timeout');
  }

  it('two timeouts of the same call, with different shares of the deadline left, give identical messages and event text', async () => {
    const client = new DateraClient({
      endpoint: url,
      username: 'admin',
      password: 'pw_secret_1',
      requestTimeoutMs: 1000,
      deadlineMs: 60,
      // The first backoff already passes the deadline: one attempt per call.
      retryBaseMs: 10_000,
      retryMaxMs: 10_000,
      random: () => 0.99,
      now: () => clock,
      sleep: async () => undefined,
    });
    clients.push(client);
    const first = await failure(client); // logs in first: 43 ms of the deadline left for the attempt
    const second = await failure(client); // session reused: all 60 ms left
    expect(first.code).to.equal('DATERA_TIMEOUT');
    expect(second.code).to.equal('DATERA_TIMEOUT');
    expect(second.message).to.equal(first.message);
    expect(first.message).to.equal('GET /system failed: no complete response in time (request timeout 1000 ms, call deadline 60 ms)');
    expect(describeFailure(second)).to.equal(describeFailure(first));
  });
});
