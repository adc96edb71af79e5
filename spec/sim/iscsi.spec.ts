// SPDX-License-Identifier: Apache-2.0
// The simulator's iSCSI session model: out-of-process logins/logouts through /_sim/iscsi/*,
// shown by the API as the storage instance's active_initiators.
import { expect } from 'chai';
import { SimFixture, aiBody, http } from './helpers.js';

const IQN1 = 'iqn.1993-08.org.debian:01:node1';
const IQN2 = 'iqn.1993-08.org.debian:01:node2';
const SI = '/app_instances/sess-1/storage_instances/storage-1';

describe('simulator: iSCSI sessions and active_initiators', () => {
  let f: SimFixture;
  let target: string;
  let ips: string[];
  const ctl = (route: string, body?: unknown) => http(f.url, body === undefined ? 'GET' : 'POST', `/_sim/iscsi/${route}`, body);
  const active = async () => (await f.get(SI)).body.data.active_initiators as string[];

  beforeEach(async () => {
    f = await new SimFixture().start();
    await f.call('POST', '/app_instances', aiBody('sess-1'));
    for (const [id, name] of [[IQN1, 'k8s_node1'], [IQN2, 'k8s_node2']]) await f.call('POST', '/initiators', { id, name });
    const si = (await f.get(SI)).body.data;
    target = si.access.iqn;
    ips = si.access.ips;
  });
  afterEach(async () => {
    await f?.stop();
  });

  it('a login of an initiator outside the ACL is 403 and leaves active_initiators empty', async () => {
    const r = await ctl('login', { target, initiator: IQN1, portal: `${ips[0]}:3260` });
    expect(r.status).to.equal(403);
    expect(r.body.error).to.equal(`Initiator ${IQN1} is not in the ACL of sess-1/storage-1: login refused (authorization failure)`);
    expect(await active()).to.deep.equal([]);
  });

  it('logins on two portals show the initiator once; logout of one portal keeps it, of the last removes it', async () => {
    await f.call('PUT', `${SI}/acl_policy/initiators`, { op: 'add', path: `/initiators/${IQN1}` });
    for (const ip of ips) expect((await ctl('login', { target, initiator: IQN1, portal: `${ip}:3260` })).status).to.equal(200);
    const again = await ctl('login', { target, initiator: IQN1, portal: `${ips[0]}:3260` });
    expect(again.body.existed, 'a repeated login is the existing session').to.equal(true);
    expect(await active()).to.deep.equal([IQN1]);
    expect((await ctl('sessions')).body.sessions.map((s: { portal: string }) => s.portal)).to.deep.equal(ips.map((ip) => `${ip}:3260`));
    expect((await ctl('logout', { target, initiator: IQN1, portal: `${ips[0]}:3260` })).body).to.deep.equal({ removed: 1 });
    expect(await active()).to.deep.equal([IQN1]);
    expect((await ctl('logout', { target, initiator: IQN1, portal: `${ips[1]}:3260` })).body).to.deep.equal({ removed: 1 });
    expect(await active()).to.deep.equal([]);
  });

  it('drop ends every session of one initiator (target timeout of a dead node) and keeps the others', async () => {
    for (const iqn of [IQN1, IQN2]) {
      await f.call('PUT', `${SI}/acl_policy/initiators`, { op: 'add', path: `/initiators/${iqn}` });
      await ctl('login', { target, initiator: iqn, portal: `${ips[0]}:3260` });
    }
    expect(await active()).to.deep.equal([IQN1, IQN2]);
    expect((await ctl('drop', { initiator: IQN1 })).body).to.deep.equal({ removed: 1 });
    expect(await active()).to.deep.equal([IQN2]);
    expect(f.sim.iscsiSessions().map((s) => s.initiator)).to.deep.equal([IQN2]);
  });

  it('a session survives removal from the ACL, but a new login is then refused', async () => {
    await f.call('PUT', `${SI}/acl_policy/initiators`, { op: 'add', path: `/initiators/${IQN1}` });
    await ctl('login', { target, initiator: IQN1, portal: `${ips[0]}:3260` });
    await f.call('PUT', `${SI}/acl_policy/initiators`, { op: 'remove', path: `/initiators/${IQN1}` });
    expect(await active()).to.deep.equal([IQN1]);
    expect((await ctl('login', { target, initiator: IQN1, portal: `${ips[1]}:3260` })).status).to.equal(403);
  });

  it('offlining the app instance ends its sessions', async () => {
    await f.call('PUT', `${SI}/acl_policy/initiators`, { op: 'add', path: `/initiators/${IQN1}` });
    await ctl('login', { target, initiator: IQN1 });
    await f.call('PUT', '/app_instances/sess-1', { admin_state: 'offline' });
    expect(f.sim.iscsiSessions()).to.deep.equal([]);
    expect((await ctl('login', { target, initiator: IQN1 })).body.error).to.equal(`Target ${target} is offline`);
  });

  it('bad requests name the field: unknown target 404, bad initiator 422, foreign portal 400', async () => {
    expect((await ctl('login', { target: 'iqn.2013-05.com.daterainc:tc:01:sn:nope', initiator: IQN1 })).status).to.equal(404);
    const bad = await ctl('login', { target, initiator: 'node1' });
    expect(bad.status).to.equal(422);
    expect(bad.body.error).to.equal('initiator: "node1" is not an iqn.* or eui.* name');
    const portal = await ctl('login', { target, initiator: IQN1, portal: '10.9.9.9:3260' });
    expect(portal.status).to.equal(400);
    expect(portal.body.error).to.match(/^Portal 10\.9\.9\.9:3260 does not serve target/);
  });
});
