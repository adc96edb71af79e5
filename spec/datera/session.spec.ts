// SPDX-License-Identifier: Apache-2.0
// One login per session expiry: a call whose 401 arrives after another call already logged in
// again reuses the new session key instead of logging in once more.
import { expect } from 'chai';
import { DateraClient } from '../../lib/datera/client.js';
import { datErr, envelope, MockDatera, ORIGIN, V } from './mock-datera.js';

describe('DateraClient session renewal', () => {
  let dat: MockDatera;
  let client: DateraClient;

  beforeEach(() => {
    dat = new MockDatera();
    client = new DateraClient({ endpoint: ORIGIN, username: 'admin', password: 'Sess10n_pw.x', dispatcher: dat.agent, random: () => 0.5 });
  });
  afterEach(async () => {
    await client.close();
    await dat.close();
  });

  const ai = (name: string) => ({ name, id: name, storage_instances: [] });

  it('a 401 that arrives after another call renewed the session reuses the new key: no second login', async () => {
    dat.acceptLogins();
    dat.on('GET', '/system', { status: 200, data: envelope({ name: 'dat' }) });
    await client.getSystem(); // sess-1
    dat.expireSessions();
    // "late" is refused like "early", but its 401 arrives only after "early" has logged in again.
    dat.pool
      .intercept({ path: `${V}/app_instances/late`, method: 'GET' })
      .reply(401, datErr(401, 'AuthFailedError', 'The key provided with the request does not correspond to a valid session.'))
      .delay(150);
    dat.on('GET', (p) => p.startsWith(`${V}/app_instances/`), (req) => ({ status: 200, data: envelope(ai(req.path.split('/').pop()!)) }), 'persist');

    const [early, late] = await Promise.all([client.getAppInstance('early'), client.getAppInstance('late')]);

    expect([early.name, late.name]).to.deep.equal(['early', 'late']);
    expect(dat.logins, 'the warm-up login and one renewal').to.equal(2);
    const lateTokens = dat.seen.filter((r) => r.path === `${V}/app_instances/late`).map((r) => r.headers['auth-token']);
    expect(lateTokens.at(-1), 'the late call was resent with the renewed key').to.equal('sess-2');
  });
});
