// SPDX-License-Identifier: Apache-2.0
import { expect } from 'chai';
import { SimFixture, aiBody } from './helpers.js';

const IQN1 = 'iqn.1993-08.org.debian:01:node1';
const IQN2 = 'iqn.1993-08.org.debian:01:node2';
const SI = '/app_instances/acl-1/storage_instances/storage-1';

describe('simulator: initiators and ACLs', () => {
  let f: SimFixture;
  beforeEach(async () => {
    f = await new SimFixture().start();
    await f.call('POST', '/app_instances', aiBody('acl-1'));
  });
  afterEach(async () => {
    await f?.stop();
  });

  it('creates, reads, lists and deletes initiators; a duplicate is 409', async () => {
    const r = await f.call('POST', '/initiators', { id: IQN1, name: 'CSI-node1', force: true });
    expect(r.status).to.equal(200);
    expect(r.body.data).to.deep.equal({ path: `/initiators/${IQN1}`, id: IQN1, name: 'CSI-node1', tenant: '/root' });
    const dup = await f.call('POST', '/initiators', { id: IQN1, name: 'CSI-again' });
    expect(dup.status).to.equal(409);
    expect(dup.body.name).to.equal('ConflictError');
    expect((await f.get(`/initiators/${IQN1}`)).body.data.name).to.equal('CSI-node1');
    expect((await f.get('/initiators')).body.data.map((i: any) => i.id)).to.deep.equal([IQN1]);
    expect((await f.get(`/initiators/${IQN2}`)).status).to.equal(404);
    const bad = await f.call('POST', '/initiators', { id: 'not-an-iqn', name: 'x_name' });
    expect(bad.status).to.equal(422);
    expect(bad.body.errors[0]).to.match(/^id: "not-an-iqn" does not match/);
    expect((await f.call('DELETE', `/initiators/${IQN1}`)).status).to.equal(200);
    expect((await f.get(`/initiators/${IQN1}`)).status).to.equal(404);
  });

  it('shows a parent tenant initiator in a sub-tenant and wants force to create a local copy', async () => {
    await f.call('POST', '/initiators', { id: IQN1, name: 'root-copy' });
    const seen = await f.get(`/initiators/${IQN1}`, { tenant: '/root/team-a' });
    expect(seen.status).to.equal(200);
    expect(seen.body.data.tenant).to.equal('/root');
    const warn = await f.call('POST', '/initiators', { id: IQN1, name: 'team-copy' }, { tenant: '/root/team-a' });
    expect(warn.status).to.equal(400);
    expect(warn.body.message).to.match(/override this warning/);
    const forced = await f.call('POST', '/initiators', { id: IQN1, name: 'team-copy', force: true }, { tenant: '/root/team-a' });
    expect(forced.status).to.equal(200);
    expect(forced.body.data.tenant).to.equal('/root/team-a');
  });

  it('PUT acl_policy replaces the initiator list; unknown initiators are 422', async () => {
    await f.call('POST', '/initiators', { id: IQN1, name: 'node_one' });
    await f.call('POST', '/initiators', { id: IQN2, name: 'node_two' });
    const put = await f.call('PUT', `${SI}/acl_policy`, { initiators: [{ path: `/initiators/${IQN1}` }, { path: `/initiators/${IQN2}` }] });
    expect(put.status).to.equal(200);
    expect(put.body.data.initiators).to.deep.equal([{ path: `/initiators/${IQN1}` }, { path: `/initiators/${IQN2}` }]);
    const replaced = await f.call('PUT', `${SI}/acl_policy`, { initiators: [{ path: `/initiators/${IQN2}` }] });
    expect(replaced.body.data.initiators).to.deep.equal([{ path: `/initiators/${IQN2}` }]);
    const read = await f.get(`${SI}/acl_policy`);
    expect(read.body.data).to.deep.equal({ path: `${(await f.get(SI)).body.data.path}/acl_policy`, initiators: [{ path: `/initiators/${IQN2}` }], initiator_groups: [] });
    const unknown = await f.call('PUT', `${SI}/acl_policy`, { initiators: [{ path: '/initiators/iqn.2000-01.com.example:nobody' }] });
    expect(unknown.status).to.equal(422);
    expect(unknown.body.errors[0]).to.match(/^initiators\[0\]\.path:/);
    const extraKey = await f.call('PUT', `${SI}/acl_policy`, { initiators: [{ path: `/initiators/${IQN1}`, tenant: '/root' }] });
    expect(extraKey.status).to.equal(422);
    expect(extraKey.body.errors).to.deep.equal(['initiators[0].tenant: is not an allowed property']);
    expect((await f.call('PUT', `${SI}/acl_policy`, { initiators: [] })).body.data.initiators).to.deep.equal([]);
  });

  it('adds and removes single members with PUT acl_policy/initiators {op, path}', async () => {
    await f.call('POST', '/initiators', { id: IQN1, name: 'node_one' });
    const add = await f.call('PUT', `${SI}/acl_policy/initiators`, { op: 'add', path: `/initiators/${IQN1}` });
    expect(add.status).to.equal(200);
    expect(add.body.data.initiators).to.deep.equal([{ path: `/initiators/${IQN1}` }]);
    const again = await f.call('PUT', `${SI}/acl_policy/initiators`, { op: 'add', path: `/initiators/${IQN1}` });
    expect(again.status).to.equal(409);
    expect(again.body.name).to.equal('ConflictError');
    const members = await f.get(`${SI}/acl_policy/initiators`);
    expect(members.body.data).to.deep.equal([{ path: `/initiators/${IQN1}`, id: IQN1, name: 'node_one', tenant: '/root' }]);
    expect((await f.get(SI)).body.data.acl_policy.initiators).to.deep.equal([{ path: `/initiators/${IQN1}` }]);
    // An initiator in an ACL cannot be deleted.
    expect((await f.call('DELETE', `/initiators/${IQN1}`)).status).to.equal(400);
    const remove = await f.call('PUT', `${SI}/acl_policy/initiators`, { op: 'remove', path: `/initiators/${IQN1}` });
    expect(remove.status).to.equal(200);
    expect(remove.body.data.initiators).to.deep.equal([]);
    expect((await f.get(`${SI}/acl_policy`)).body.data.initiators).to.deep.equal([]);
    const absent = await f.call('PUT', `${SI}/acl_policy/initiators`, { op: 'remove', path: `/initiators/${IQN1}` });
    expect(absent.status).to.equal(404);
    expect(absent.body.name).to.equal('NotFoundError');
    const missingOp = await f.call('PUT', `${SI}/acl_policy/initiators`, { path: `/initiators/${IQN1}` });
    expect(missingOp.status).to.equal(422);
    expect(missingOp.body.errors).to.deep.equal(['op: is a required property']);
    const unknown = await f.call('PUT', `${SI}/acl_policy/initiators`, { op: 'add', path: `/initiators/${IQN2}` });
    expect(unknown.status).to.equal(422);
  });

  it('sets CHAP on the storage instance auth and reads passwords back hidden', async () => {
    const put = await f.call('PUT', `${SI}/auth`, { type: 'mchap', target_user_name: 'tgt_user', target_pswd: 'tgtsecret1234', initiator_user_name: 'ini_user', initiator_pswd: 'inisecret1234' });
    expect(put.status).to.equal(200);
    expect(put.body.data).to.include({ type: 'mchap', target_user_name: 'tgt_user', target_pswd: '(hidden)', initiator_pswd: '(hidden)' });
    const short = await f.call('PUT', `${SI}/auth`, { type: 'chap', target_user_name: 'tgt_user', target_pswd: 'short' });
    expect(short.status).to.equal(422);
    expect(short.body.errors).to.deep.equal(['target_pswd: "short" is too short (minimum length 12)']);
  });
});
