// SPDX-License-Identifier: Apache-2.0
// attachVolume / attachedDevice / detachVolume in-process, with a scripted Datera (a stub
// DateraApi that records every call) and a scripted node (an iscsiadm that creates and removes
// by-path links under a temp host root). spec/flex/driver.spec.ts and trust.spec.ts run the
// same flows through the driver against the simulator and the fake host tools.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { NotFoundError, ConnectionError } from '../../lib/datera/errors.js';
import type { AppInstance, DateraApi, Initiator, StorageInstance } from '../../lib/datera/types.js';
import { attachedDevice, attachVolume, detachVolume, type AttachRequest, type DriverContext } from '../../lib/flex/attachment.js';
import { configFromEnv } from '../../lib/flex/config.js';
import type { DateraConnection } from '../../lib/flex/datera.js';
import type { CommandResult, HostRunner } from '../../lib/flex/host.js';
import { byPathLink } from '../../lib/flex/iscsi.js';
import type { Logger } from '../../lib/flex/log.js';
import type { VolumeRef } from '../../lib/flex/options.js';
import { FlexError } from '../../lib/flex/reply.js';
import { readRecord, writeRecord } from '../../lib/flex/state.js';

const NODE = 'iqn.1994-05.com.redhat:node-1';
const OTHER = 'iqn.1994-05.com.redhat:node-2';
const TARGET = 'iqn.2013-05.com.daterainc:tc:01:sn:abc';
const IPS = ['172.28.41.9', '172.28.42.9'];
const PV = 'pvc-1';
const res = (code: number, stdout = '', stderr = ''): CommandResult => ({ code, stdout, stderr });

async function rejection(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    expect(err).to.be.instanceOf(FlexError);
    return (err as Error).message;
  }
  throw new Error('expected a FlexError');
}

/** A Datera holding one app instance PV with storage-1; every call is recorded as "method arg...". */
class FakeDatera {
  calls: string[] = [];
  metadata: Record<string, string> = { 'k8s-pv': PV, 'k8s-claim-namespace': 'default' };
  initiators = new Map<string, Initiator>();
  adminState: 'online' | 'offline' = 'offline';
  /** op_state reads left until the SI reports available after onlining. */
  availableAfter = 0;
  active: string[] = [];
  /** active_initiators reported from the n-th getAppInstance on (a node logging in meanwhile). */
  activeLater?: { from: number; list: string[] };
  acl: string[] = [];
  ips = [...IPS];
  fail: Partial<Record<string, Error>> = {};
  private reads = 0;

  /** Storage instances report no active_initiators, no acl_policy, and no access until available. */
  sparse = false;
  /** Another storage instance, storage-0, listed first: node-2 uses it and is in its ACL. */
  neighbour = false;
  /** Replaces `access` (undefined: the normal one; null: none at all). */
  access?: object | null;

  si(): StorageInstance {
    const available = this.adminState === 'online' && this.availableAfter-- <= 0;
    const active = this.activeLater && this.reads >= this.activeLater.from ? this.activeLater.list : this.active;
    if (this.sparse) {
      return { name: 'storage-1', op_state: available ? 'available' : 'unavailable', ...(available ? { access: { path: '', iqn: TARGET, ips: [...this.ips] } } : {}) } as unknown as StorageInstance;
    }
    const access = this.access === undefined ? { path: '', iqn: TARGET, ips: [...this.ips] } : (this.access ?? undefined);
    return {
      name: 'storage-1',
      op_state: available ? 'available' : 'unavailable',
      access,
      acl_policy: { initiators: this.acl.map((i) => ({ path: `/initiators/${i}` })), initiator_groups: [] },
      active_initiators: [...active],
    } as unknown as StorageInstance;
  }

  sis(): StorageInstance[] {
    const neighbour = {
      name: 'storage-0',
      op_state: 'available',
      access: { path: '', iqn: 'iqn.2013-05.com.daterainc:tc:01:sn:neighbour', ips: ['172.28.50.1'] },
      acl_policy: { initiators: [{ path: `/initiators/${OTHER}` }], initiator_groups: [] },
      active_initiators: [OTHER],
    } as unknown as StorageInstance;
    return this.neighbour ? [neighbour, this.si()] : [this.si()];
  }

  api(): DateraApi {
    const call = async <T>(name: string, args: unknown[], fn: () => T): Promise<T> => {
      this.calls.push([name, ...args].join(' '));
      const err = this.fail[name];
      if (err) throw err;
      return fn();
    };
    const api = {
      getMetadata: (ai: string) => call('getMetadata', [ai], () => ({ ...this.metadata })),
      getInitiator: (iqn: string) =>
        call('getInitiator', [iqn], () => {
          const i = this.initiators.get(iqn);
          if (!i) throw new NotFoundError(`initiator ${iqn} not found`);
          return i;
        }),
      createInitiator: (iqn: string, name: string, force?: boolean) =>
        call('createInitiator', [iqn, name, force], () => {
          const i = { path: `/initiators/${iqn}`, id: iqn, name, tenant: '/root' };
          this.initiators.set(iqn, i);
          return i;
        }),
      getAppInstance: (ai: string) =>
        call('getAppInstance', [ai], () => {
          this.reads++;
          return { name: ai, admin_state: this.adminState, storage_instances: this.sis() } as unknown as AppInstance;
        }),
      setAdminState: (ai: string, state: 'online' | 'offline') =>
        call('setAdminState', [ai, state], () => {
          this.adminState = state;
          return {} as AppInstance;
        }),
      addAclInitiator: (ai: string, si: string, iqn: string) =>
        call('addAclInitiator', [ai, si, iqn], () => {
          if (!this.acl.includes(iqn)) this.acl.push(iqn);
        }),
      removeAclInitiator: (ai: string, si: string, iqn: string) =>
        call('removeAclInitiator', [ai, si, iqn], () => {
          this.acl = this.acl.filter((x) => x !== iqn);
        }),
    };
    return api as unknown as DateraApi;
  }
}

/** A node: iscsiadm sessions whose login creates /dev/sdX and its by-path link; multipath recorded. */
class FakeNode {
  calls: string[] = [];
  sessions: { portal: string; iqn: string }[] = [];
  /** Portals whose login fails (exit 8). */
  down = new Set<string>();
  /** Whether a login creates the by-path link. */
  udev = true;
  private sd = 0;
  constructor(readonly cfg: ReturnType<typeof configFromEnv>) {}

  link(portal: string, iqn = TARGET): string {
    return byPathLink(this.cfg.devDir, portal, iqn);
  }

  addDevice(portal: string, iqn = TARGET): string {
    const sd = path.join(this.cfg.devDir, `sd${String.fromCharCode(97 + this.sd++)}`);
    fs.writeFileSync(sd, '');
    fs.mkdirSync(path.dirname(this.link(portal, iqn)), { recursive: true });
    fs.rmSync(this.link(portal, iqn), { force: true });
    fs.symlinkSync(sd, this.link(portal, iqn));
    return sd;
  }

  /** A multipath map dm-N named `name` over the sdX devices. */
  addMap(dm: string, name: string, sds: string[]): void {
    const dir = path.join(this.cfg.sysDir, 'block', dm);
    fs.mkdirSync(path.join(dir, 'slaves'), { recursive: true });
    fs.mkdirSync(path.join(dir, 'dm'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'dm', 'name'), name);
    for (const sd of sds) fs.writeFileSync(path.join(dir, 'slaves', path.basename(sd)), '');
    fs.writeFileSync(path.join(this.cfg.devDir, dm), '');
  }

  runner(): HostRunner {
    return {
      run: (cmd, args) => {
        this.calls.push([cmd, ...args].join(' '));
        if (cmd !== 'iscsiadm') return Promise.resolve(res(0));
        if (args.join(' ') === '-m session') {
          if (this.sessions.length === 0) return Promise.resolve(res(21, '', 'iscsiadm: No active sessions.'));
          return Promise.resolve(res(0, this.sessions.map((s, i) => `tcp: [${i + 1}] ${s.portal},1 ${s.iqn} (non-flash)\n`).join('')));
        }
        const iqn = args[args.indexOf('-T') + 1]!;
        const portal = args[args.indexOf('-p') + 1]!;
        if (args.includes('-l')) {
          if (this.down.has(portal)) return Promise.resolve(res(8, '', `iscsiadm: connection to ${portal} timed out`));
          this.sessions.push({ portal, iqn });
          if (this.udev) this.addDevice(portal, iqn);
        }
        if (args.includes('-R') && this.udev && !fs.existsSync(this.link(portal, iqn))) this.addDevice(portal, iqn);
        if (args.includes('-u')) {
          this.sessions = this.sessions.filter((s) => !(s.portal === portal && s.iqn === iqn));
          fs.rmSync(this.link(portal, iqn), { force: true });
        }
        return Promise.resolve(res(0));
      },
    };
  }
}

interface LogLine {
  level: string;
  msg: string;
  meta: Record<string, unknown>;
}

function recordingLogger(lines: LogLine[]): Logger {
  const at = (level: string) => (msg: string, meta: Record<string, unknown> = {}) => {
    lines.push({ level, msg, meta });
  };
  return { info: at('info'), warn: at('warn'), error: at('error') } as unknown as Logger;
}

describe('flex attachment (in-process: scripted Datera and node)', () => {
  let root: string;
  let cfg: ReturnType<typeof configFromEnv>;
  let datera: FakeDatera;
  let node: FakeNode;
  let logs: LogLine[];
  let ctx: DriverContext;
  let clientConns: DateraConnection[];

  const conn: DateraConnection = { endpoint: 'http://dat:7717', username: 'u', password: 'p', tenant: '/root', source: 'test' };
  const ref = (over: Partial<VolumeRef> = {}): VolumeRef =>
    ({ pvName: PV, appInstance: PV, storageInstance: 'storage-1', volume: 'volume-1', server: 'http://dat:7717', readOnlyMany: false, ...over }) as VolumeRef;
  const req = (over: Partial<AttachRequest> = {}): AttachRequest => ({ ref: ref(), conn, chap: undefined, nodeName: 'node-1', ...over });
  const portal = (ip: string) => `${ip}:3260`;
  const warnings = () => logs.filter((l) => l.level === 'warn').map((l) => l.msg);
  const settingsFile = () => cfg.settingsFile;
  /** multipath-tools on this node: an executable `multipath` first on the driver's command PATH. */
  const installMultipathTools = () => {
    const bin = path.join(root, 'usr-sbin');
    fs.mkdirSync(bin, { recursive: true });
    fs.writeFileSync(path.join(bin, 'multipath'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
    cfg.commandPath = `${bin}:${cfg.commandPath}`;
  };
  const writeSettings = (s: Record<string, unknown>) => {
    fs.mkdirSync(path.dirname(settingsFile()), { recursive: true });
    fs.writeFileSync(settingsFile(), JSON.stringify(s));
  };

  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'flex-attach-'));
    cfg = configFromEnv({
      DATERA_FLEX_ROOT: root,
      DATERA_FLEX_POLL_MS: '1',
      DATERA_FLEX_DEVICE_TIMEOUT_MS: '30',
      DATERA_FLEX_ONLINE_TIMEOUT_MS: '30',
      DATERA_FLEX_MULTIPATH_TIMEOUT_MS: '30',
      DATERA_FLEX_LOCK_TIMEOUT_MS: '1000',
    });
    fs.mkdirSync(path.dirname(cfg.initiatorNameFile), { recursive: true });
    fs.writeFileSync(cfg.initiatorNameFile, `InitiatorName=${NODE}\n`);
    fs.mkdirSync(path.join(cfg.devDir, 'disk', 'by-path'), { recursive: true });
    fs.mkdirSync(path.dirname(cfg.procMounts), { recursive: true });
    fs.writeFileSync(cfg.procMounts, 'proc /proc proc rw 0 0\n');
    datera = new FakeDatera();
    node = new FakeNode(cfg);
    logs = [];
    clientConns = [];
    ctx = {
      cfg,
      run: node.runner(),
      log: recordingLogger(logs),
      clients: (c) => {
        clientConns.push(c);
        return datera.api();
      },
    };
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  describe('attachVolume', () => {
    it('registers the initiator as k8s_<node>, adds it to the ACL, onlines the app instance, logs in to every portal and records the attachment', async () => {
      const device = await attachVolume(ctx, req({ podNamespace: 'default' }));
      expect(device).to.equal(node.link(portal(IPS[0]!)));
      expect(datera.calls).to.deep.equal([
        `getMetadata ${PV}`,
        `getInitiator ${NODE}`,
        `createInitiator ${NODE} k8s_node-1 true`,
        `getAppInstance ${PV}`,
        `addAclInitiator ${PV} storage-1 ${NODE}`,
        `getAppInstance ${PV}`,
        `setAdminState ${PV} online`,
        `getAppInstance ${PV}`,
        `getAppInstance ${PV}`,
      ]);
      expect(clientConns).to.deep.equal([conn]);
      expect(node.sessions.map((s) => s.portal)).to.deep.equal(IPS.map(portal));
      const rec = readRecord(cfg.stateDir, PV)!;
      expect(rec).to.include({ pvName: PV, appInstance: PV, storageInstance: 'storage-1', volume: 'volume-1', endpoint: 'http://dat:7717', tenant: '/root', iqn: TARGET, claimNamespace: 'default', readOnlyMany: false });
      expect(rec.ips).to.deep.equal(IPS);
      expect(Date.parse(rec.attachedAt)).to.be.a('number').and.not.NaN;
      const attached = logs.find((l) => l.msg === 'attached')!;
      expect(attached.meta).to.deep.equal({ pv: PV, device, portals: IPS.map(portal), failedPortals: 0 });
    });

    it('without a node name the initiator label is k8s_<host name>', async () => {
      await attachVolume(ctx, req({ nodeName: '' }));
      expect(datera.calls[2]).to.equal(`createInitiator ${NODE} k8s_${os.hostname().replace(/[^a-zA-Z0-9_\-.]/g, '_')} true`);
    });

    it('an initiator that exists in our tenant, or without a tenant, is not created again', async () => {
      datera.initiators.set(NODE, { path: '', id: NODE, name: 'k8s_node-1', tenant: '/root' });
      await attachVolume(ctx, req());
      expect(datera.calls.filter((c) => c.startsWith('createInitiator'))).to.deep.equal([]);
      node.sessions = [];
      datera.calls = [];
      fs.rmSync(path.join(cfg.stateDir, `${PV}.json`));
      datera.initiators.set(NODE, { path: '', id: NODE, name: 'k8s_node-1' });
      await attachVolume(ctx, req());
      expect(datera.calls.filter((c) => c.startsWith('createInitiator'))).to.deep.equal([]);
    });

    it('an initiator of the same IQN in another tenant does not count: ours is created, and the log says why', async () => {
      datera.initiators.set(NODE, { path: '', id: NODE, name: 'theirs', tenant: '/root/other' });
      await attachVolume(ctx, req());
      expect(datera.calls).to.include(`createInitiator ${NODE} k8s_node-1 true`);
      expect(logs.find((l) => l.msg === 'initiator belongs to another tenant; creating our own')?.meta).to.deep.equal({ iqn: NODE, tenant: '/root/other' });
    });

    it('a Datera error while reading the initiator stops the attach, naming the step and the endpoint', async () => {
      datera.fail.getInitiator = new ConnectionError('ECONNRESET');
      const msg = await rejection(attachVolume(ctx, req()));
      expect(msg).to.equal(`cannot reach Datera at http://dat:7717 while trying to register initiator ${NODE}: ECONNRESET`);
      expect(datera.calls.some((c) => c.startsWith('addAclInitiator'))).to.equal(false);
      expect(node.sessions).to.deep.equal([]);
    });

    it('an app instance Datera does not know is a Failure naming it, the endpoint, the tenant and the step', async () => {
      datera.fail.getMetadata = new NotFoundError('no such app instance');
      expect(await rejection(attachVolume(ctx, req()))).to.equal(
        `app instance ${PV} was not found on Datera http://dat:7717 (tenant /root) while trying to read the ownership metadata of app instance ${PV}`,
      );
      datera.fail = { addAclInitiator: new NotFoundError('gone') };
      expect(await rejection(attachVolume(ctx, req()))).to.contain(`while trying to add ${NODE} to the ACL of ${PV}/storage-1`);
      datera.fail = { setAdminState: new NotFoundError('gone') };
      expect(await rejection(attachVolume(ctx, req()))).to.contain(`while trying to bring ${PV} online`);
      datera.fail = { getAppInstance: new NotFoundError('gone') };
      expect(await rejection(attachVolume(ctx, req()))).to.contain(`while trying to check that no other node uses ${PV}/storage-1`);
    });

    it('refuses an app instance whose ownership metadata names another PV before any ACL change or login', async () => {
      datera.metadata = { 'k8s-pv': 'pvc-other', 'k8s-claim-namespace': 'default' };
      expect(await rejection(attachVolume(ctx, req()))).to.contain('names PersistentVolume pvc-other, not pvc-1');
      expect(datera.calls).to.deep.equal([`getMetadata ${PV}`]);
      expect(node.calls).to.deep.equal([]);
    });

    it('an app instance without the storage instance the PV names is a Failure naming both', async () => {
      const msg = await rejection(attachVolume(ctx, req({ ref: ref({ storageInstance: 'storage-9' }) })));
      expect(msg).to.equal(`app instance ${PV} has no storage instance storage-9`);
      const ro = await rejection(attachVolume(ctx, req({ ref: ref({ storageInstance: 'storage-9', readOnlyMany: true }) })));
      expect(ro).to.equal(`app instance ${PV} has no storage instance storage-9`);
    });

    it('ReadWriteOnce: a live session of another node is refused, naming that node by its k8s_ label, with no ACL change or login', async () => {
      datera.active = [OTHER, NODE];
      datera.initiators.set(OTHER, { path: '', id: OTHER, name: 'k8s_node-2' });
      datera.acl = [OTHER];
      const msg = await rejection(attachVolume(ctx, req()));
      expect(msg).to.equal(
        `${PV} is ReadWriteOnce and node node-2 (initiator ${OTHER}) still has a live iSCSI session to it; it attaches here once that node unmounts it (or, if that node died, once the target times out its sessions)`,
      );
      expect(datera.acl).to.deep.equal([OTHER]);
      expect(node.calls).to.deep.equal([]);
    });

    it('other nodes are named by their initiator name, or only by IQN when Datera does not know them', async () => {
      datera.active = [OTHER, 'iqn.x:unknown'];
      datera.initiators.set(OTHER, { path: '', id: OTHER, name: 'hand-made' });
      expect(await rejection(attachVolume(ctx, req()))).to.contain(`and initiator ${OTHER} ("hand-made"), initiator iqn.x:unknown still has`);
      datera.initiators.set(OTHER, { path: '', id: OTHER, name: '' });
      datera.active = [OTHER];
      expect(await rejection(attachVolume(ctx, req()))).to.contain(`and initiator ${OTHER} still has`);
    });

    it('ReadWriteOnce take-over: initiators in the ACL without a live session are removed (not this node), each with a warning', async () => {
      datera.acl = [OTHER, NODE, 'iqn.x:dead'];
      datera.active = [NODE];
      await attachVolume(ctx, req());
      expect(datera.calls.filter((c) => c.startsWith('removeAclInitiator'))).to.deep.equal([
        `removeAclInitiator ${PV} storage-1 ${OTHER}`,
        `removeAclInitiator ${PV} storage-1 iqn.x:dead`,
      ]);
      expect(datera.acl).to.deep.equal([NODE]);
      const w = logs.filter((l) => l.msg === 'took over a ReadWriteOnce volume: removed an initiator without a live session from its ACL');
      expect(w.map((l) => l.meta)).to.deep.equal([
        { pv: PV, initiator: OTHER },
        { pv: PV, initiator: 'iqn.x:dead' },
      ]);
    });

    it('ReadOnlyMany: other nodes with sessions are neither refused nor removed from the ACL', async () => {
      datera.active = [OTHER];
      datera.acl = [OTHER];
      const device = await attachVolume(ctx, req({ ref: ref({ readOnlyMany: true }) }));
      expect(device).to.equal(node.link(portal(IPS[0]!)));
      expect(datera.acl).to.deep.equal([OTHER, NODE]);
      expect(readRecord(cfg.stateDir, PV)?.readOnlyMany).to.equal(true);
    });

    it('an app instance already online is not onlined again; the target is polled until available with IQN and portals', async () => {
      datera.adminState = 'online';
      datera.availableAfter = 2;
      await attachVolume(ctx, req());
      expect(datera.calls.filter((c) => c.startsWith('setAdminState'))).to.deep.equal([]);
      expect(datera.calls.filter((c) => c.startsWith('getAppInstance'))).to.have.length(4);
    });

    it('a target that never becomes available is a Failure with its states after the online timeout', async () => {
      datera.adminState = 'online';
      datera.availableAfter = 1e9;
      expect(await rejection(attachVolume(ctx, req()))).to.equal(
        `storage instance ${PV}/storage-1 is not available after 0.03s (admin_state=online, op_state=unavailable, ips=2)`,
      );
      expect(node.calls).to.deep.equal([]);
    });

    it('a target without portals is not available', async () => {
      datera.adminState = 'online';
      datera.ips = [];
      expect(await rejection(attachVolume(ctx, req()))).to.contain('is not available after 0.03s (admin_state=online, op_state=available, ips=0)');
    });

    it('a portal whose login fails is skipped with a warning; the attach uses the others', async () => {
      node.down.add(portal(IPS[0]!));
      const device = await attachVolume(ctx, req());
      expect(device).to.equal(node.link(portal(IPS[1]!)));
      expect(warnings()).to.include('iSCSI portal unusable');
      expect(logs.find((l) => l.msg === 'attached')?.meta).to.include({ failedPortals: 1 });
    });

    it('when every portal fails the Failure lists each error', async () => {
      for (const ip of IPS) node.down.add(portal(ip));
      expect(await rejection(attachVolume(ctx, req()))).to.equal(
        `iSCSI login to ${TARGET} failed on every portal: login to ${portal(IPS[0]!)} failed (iscsiadm exit 8): iscsiadm: connection to ${portal(IPS[0]!)} timed out; login to ${portal(IPS[1]!)} failed (iscsiadm exit 8): iscsiadm: connection to ${portal(IPS[1]!)} timed out`,
      );
      expect(readRecord(cfg.stateDir, PV), 'the record stays for detach to undo').to.not.equal(undefined);
    });

    it('a session that exists without its device is rescanned, not logged in again', async () => {
      node.sessions.push({ portal: portal(IPS[0]!), iqn: TARGET });
      const device = await attachVolume(ctx, req());
      expect(node.calls).to.include(`iscsiadm -m node -T ${TARGET} -p ${portal(IPS[0]!)} -R`);
      expect(node.calls.filter((c) => c.endsWith(' -l'))).to.deep.equal([`iscsiadm -m node -T ${TARGET} -p ${portal(IPS[1]!)} -l`]);
      expect(device, 'the rescan brought the first portal\'s device back').to.equal(node.link(portal(IPS[0]!)));
    });

    it('a session with its device present is neither rescanned nor logged in again', async () => {
      node.sessions.push({ portal: portal(IPS[0]!), iqn: TARGET });
      node.addDevice(portal(IPS[0]!));
      await attachVolume(ctx, req());
      expect(node.calls.filter((c) => c.endsWith(' -R'))).to.deep.equal([]);
      expect(node.calls.filter((c) => c.endsWith(' -l'))).to.have.length(1);
    });

    it('ReadWriteOnce: a node that logged in at the same time makes this node back off (logout, ACL entry and record removed)', async () => {
      // getAppInstance #1 single-writer check, #2/#3 online, #4 wait, #5 the re-check after login
      datera.activeLater = { from: 4, list: [OTHER, NODE] };
      datera.initiators.set(OTHER, { path: '', id: OTHER, name: 'k8s_node-2' });
      const msg = await rejection(attachVolume(ctx, req()));
      expect(msg).to.equal(`${PV} is ReadWriteOnce and node node-2 (initiator ${OTHER}) logged in to it at the same time; backed off, kubelet will retry`);
      expect(node.sessions).to.deep.equal([]);
      expect(node.calls.filter((c) => c.endsWith(' -u'))).to.have.length(2);
      expect(datera.acl).to.deep.equal([]);
      expect(readRecord(cfg.stateDir, PV)).to.equal(undefined);
    });

    it('backing off still fails and removes the record when the ACL entry cannot be removed, with a warning', async () => {
      datera.activeLater = { from: 4, list: [OTHER] };
      datera.fail.removeAclInitiator = new ConnectionError('ECONNRESET');
      expect(await rejection(attachVolume(ctx, req()))).to.contain('logged in to it at the same time; backed off');
      expect(readRecord(cfg.stateDir, PV)).to.equal(undefined);
      const w = logs.find((l) => l.msg === 'backing off: could not remove this node from the ACL')!;
      expect(w.meta).to.deep.equal({ pv: PV, err: 'cannot reach Datera at http://dat:7717 while trying to remove ACL entry: ECONNRESET' });
    });

    it('a re-check after login that cannot read Datera keeps the attachment, with a warning', async () => {
      let reads = 0;
      const api = datera.api();
      const get = api.getAppInstance.bind(api);
      api.getAppInstance = (ai: string) => (++reads >= 4 ? Promise.reject(new Error('socket hang up')) : get(ai));
      ctx.clients = () => api;
      const device = await attachVolume(ctx, req());
      expect(device).to.equal(node.link(portal(IPS[0]!)));
      expect(logs.find((l) => l.msg === 'could not re-check the sessions of a ReadWriteOnce volume after login')?.meta).to.deep.equal({
        pv: PV,
        err: 'socket hang up',
      });
    });

    it('no device after login is a Failure naming the links it waited for', async () => {
      node.udev = false;
      expect(await rejection(attachVolume(ctx, req()))).to.equal(
        `logged in to ${TARGET} but no device appeared within 0.03s (looked for ${IPS.map((ip) => node.link(portal(ip))).join(', ')})`,
      );
    });

    it('a link whose device node is missing does not count; the next portal with a device does', async () => {
      const runner = node.runner();
      ctx.run = {
        run: async (cmd, args) => {
          const r = await runner.run(cmd, args);
          if (args.includes('-l') && args.includes(portal(IPS[0]!))) fs.rmSync(fs.realpathSync(node.link(portal(IPS[0]!))));
          return r;
        },
      };
      expect(await attachVolume(ctx, req())).to.equal(node.link(portal(IPS[1]!)));
    });

    it('a device that appears only after a while is waited for', async () => {
      node.udev = false;
      setTimeout(() => node.addDevice(portal(IPS[1]!)), 5);
      expect(await attachVolume(ctx, { ...req(), ref: ref() })).to.equal(node.link(portal(IPS[1]!)));
    });

    it('with multipath configured the dm map over the path is the device, by its /dev/dm-N', async () => {
      const runner = node.runner();
      ctx.run = {
        run: async (cmd, args) => {
          const r = await runner.run(cmd, args);
          if (args.includes('-l') && args.includes(portal(IPS[1]!))) {
            node.addMap('dm-3', 'mpatha', [fs.realpathSync(node.link(portal(IPS[0]!))), fs.realpathSync(node.link(portal(IPS[1]!)))]);
          }
          return r;
        },
      };
      fs.mkdirSync(path.dirname(cfg.multipathConfFiles[0]!), { recursive: true });
      fs.writeFileSync(cfg.multipathConfFiles[0]!, '');
      expect(await attachVolume(ctx, req())).to.equal(path.join(cfg.devDir, 'dm-3'));
      expect(warnings()).to.deep.equal([]);
    });

    it('with multipath configured a map that appears after the login is waited for', async () => {
      installMultipathTools();
      fs.mkdirSync(path.dirname(cfg.multipathConfFiles[1]!), { recursive: true });
      fs.writeFileSync(cfg.multipathConfFiles[1]!, '');
      const runner = node.runner();
      ctx.run = {
        run: async (cmd, args) => {
          const r = await runner.run(cmd, args);
          if (args.includes('-l') && args.includes(portal(IPS[1]!))) {
            setTimeout(() => node.addMap('dm-0', 'mpathb', [fs.realpathSync(node.link(portal(IPS[0]!)))]), 5);
          }
          return r;
        },
      };
      expect(await attachVolume(ctx, req())).to.equal(path.join(cfg.devDir, 'dm-0'));
      expect(warnings()).to.deep.equal([]);
    });

    it('with multipath configured but no map forming, the single path is used with a warning', async () => {
      installMultipathTools();
      fs.mkdirSync(path.dirname(cfg.multipathConfFiles[0]!), { recursive: true });
      fs.writeFileSync(cfg.multipathConfFiles[0]!, '');
      expect(await attachVolume(ctx, req())).to.equal(node.link(portal(IPS[0]!)));
      expect(logs.find((l) => l.msg === 'multipath is configured but no map holds the device; using the single path')?.meta).to.deep.equal({
        link: node.link(portal(IPS[0]!)),
      });
    });

    it('with multipath configured but multipath-tools not installed, the single path is used without waiting for a map (info, no warning)', async () => {
      fs.mkdirSync(path.dirname(cfg.multipathConfFiles[1]!), { recursive: true });
      fs.writeFileSync(cfg.multipathConfFiles[1]!, '');
      cfg.commandPath = path.join(root, 'empty-bin');
      // Waiting for a map would outlast the spec's timeout and fail it.
      cfg.multipathTimeoutMs = 60_000;
      expect(await attachVolume(ctx, req())).to.equal(node.link(portal(IPS[0]!)));
      expect(warnings()).to.deep.equal([]);
      expect(logs.find((l) => l.msg.startsWith('multipath is configured but multipath-tools is not installed'))?.meta).to.deep.equal({
        link: node.link(portal(IPS[0]!)),
      });
    });

    it('only the storage instance the PV names counts: another one in the same app instance, used by another node, is left alone', async () => {
      datera.neighbour = true;
      expect(await attachVolume(ctx, req())).to.equal(node.link(portal(IPS[0]!)));
      expect(datera.calls.filter((c) => c.startsWith('removeAclInitiator'))).to.deep.equal([]);
      expect(readRecord(cfg.stateDir, PV)?.iqn).to.equal(TARGET);
    });

    it('a storage instance that reports no ACL, no active initiators and no access until available is attached', async () => {
      datera.sparse = true;
      datera.availableAfter = 1;
      expect(await attachVolume(ctx, req())).to.equal(node.link(portal(IPS[0]!)));
    });

    it('a storage instance that never reports its access is not available, with ips=0', async () => {
      datera.sparse = true;
      datera.availableAfter = 1e9;
      expect(await rejection(attachVolume(ctx, req()))).to.equal(
        `storage instance ${PV}/storage-1 is not available after 0.03s (admin_state=online, op_state=unavailable, ips=0)`,
      );
    });

    it('an available storage instance without access, or whose access has no IQN or no portal list, is not available', async () => {
      datera.adminState = 'online';
      datera.access = null;
      expect(await rejection(attachVolume(ctx, req()))).to.contain('(admin_state=online, op_state=available, ips=0)');
      datera.access = { path: '', iqn: TARGET };
      expect(await rejection(attachVolume(ctx, req()))).to.contain('(admin_state=online, op_state=available, ips=0)');
      datera.access = { path: '', iqn: '', ips: IPS };
      expect(await rejection(attachVolume(ctx, req()))).to.contain('(admin_state=online, op_state=available, ips=2)');
      expect(node.calls).to.deep.equal([]);
    });

    it('a not-found from Datera keeps the Datera error as the cause', async () => {
      const nf = new NotFoundError('no such app instance');
      datera.fail.getMetadata = nf;
      try {
        await attachVolume(ctx, req());
        expect.fail('expected a FlexError');
      } catch (err) {
        expect((err as Error).cause).to.equal(nf);
      }
    });

    it('the warning for an unusable portal names the PV, the portal and the error', async () => {
      node.down.add(portal(IPS[1]!));
      await attachVolume(ctx, req());
      expect(logs.find((l) => l.msg === 'iSCSI portal unusable')?.meta).to.deep.equal({
        pv: PV,
        portal: portal(IPS[1]!),
        err: `login to ${portal(IPS[1]!)} failed (iscsiadm exit 8): iscsiadm: connection to ${portal(IPS[1]!)} timed out`,
      });
    });

    it('a session to another target on the same portal does not count as logged in', async () => {
      node.sessions.push({ portal: portal(IPS[0]!), iqn: 'iqn.other-target' });
      await attachVolume(ctx, req());
      expect(node.calls.filter((c) => c.endsWith(' -l'))).to.have.length(2);
      expect(node.calls.filter((c) => c.endsWith(' -R'))).to.deep.equal([]);
    });

    it('backing off names every node that logged in meanwhile and logs out only of this target', async () => {
      datera.activeLater = { from: 4, list: [OTHER, 'iqn.x:third'] };
      node.sessions.push({ portal: portal(IPS[0]!), iqn: 'iqn.other-target' });
      const msg = await rejection(attachVolume(ctx, req()));
      expect(msg).to.equal(`${PV} is ReadWriteOnce and initiator ${OTHER}, initiator iqn.x:third logged in to it at the same time; backed off, kubelet will retry`);
      expect(node.sessions).to.deep.equal([{ portal: portal(IPS[0]!), iqn: 'iqn.other-target' }]);
      expect(node.calls.filter((c) => c.endsWith(' -u'))).to.deep.equal(IPS.map((ip) => `iscsiadm -m node -T ${TARGET} -p ${portal(ip)} -u`));
    });

    it('the re-check after login tolerates a storage instance without active initiators', async () => {
      datera.sparse = true;
      datera.adminState = 'online';
      expect(await attachVolume(ctx, req())).to.equal(node.link(portal(IPS[0]!)));
    });

    it('an initiator Datera knows without a name is named by its IQN only', async () => {
      datera.active = [OTHER];
      datera.initiators.set(OTHER, { path: '', id: OTHER } as Initiator);
      expect(await rejection(attachVolume(ctx, req()))).to.contain(`and initiator ${OTHER} still has`);
    });

    it('without multipath configured the single path is used at once, without a warning', async () => {
      expect(await attachVolume(ctx, req())).to.equal(node.link(portal(IPS[0]!)));
      expect(warnings()).to.deep.equal([]);
    });
  });

  describe('attachVolume when this node already has the volume', () => {
    beforeEach(async () => {
      await attachVolume(ctx, req({ podNamespace: 'default' }));
      datera.calls = [];
      node.calls = [];
      logs.length = 0;
    });

    it('a live session and device answer the device without asking Datera', async () => {
      expect(await attachVolume(ctx, req({ podNamespace: 'default' }))).to.equal(node.link(portal(IPS[0]!)));
      expect(await attachVolume(ctx, req())).to.equal(node.link(portal(IPS[0]!)));
      expect(datera.calls).to.deep.equal([]);
      expect(logs.find((l) => l.msg === 'already attached')?.meta).to.deep.equal({ pv: PV, device: node.link(portal(IPS[0]!)), sessions: 2 });
    });

    it('a pod of another namespace is refused against the recorded claim namespace, without asking Datera', async () => {
      expect(await rejection(attachVolume(ctx, req({ podNamespace: 'other' })))).to.equal(
        `refusing to mount app instance ${PV} for a pod in namespace other: it belongs to a claim in namespace default`,
      );
      expect(datera.calls).to.deep.equal([]);
    });

    it('a record from an attach without a claim namespace sends a mount to Datera for the ownership check', async () => {
      const rec = readRecord(cfg.stateDir, PV)!;
      writeRecord(cfg.stateDir, { ...rec, claimNamespace: '' });
      await attachVolume(ctx, req({ podNamespace: 'default' }));
      expect(datera.calls[0]).to.equal(`getMetadata ${PV}`);
    });

    it('a record of another app instance under the same PV name is not trusted', async () => {
      const rec = readRecord(cfg.stateDir, PV)!;
      writeRecord(cfg.stateDir, { ...rec, appInstance: 'other-ai' });
      await attachVolume(ctx, req());
      expect(datera.calls[0]).to.equal(`getMetadata ${PV}`);
    });

    it('without a live session (a reboot) the volume is attached again through Datera', async () => {
      node.sessions = [];
      await attachVolume(ctx, req());
      expect(datera.calls[0]).to.equal(`getMetadata ${PV}`);
      expect(node.calls.filter((c) => c.endsWith(' -l'))).to.have.length(2);
    });

    it('a session without its device is attached again through Datera, and the session rescanned', async () => {
      for (const ip of IPS) fs.rmSync(node.link(portal(ip)));
      await attachVolume(ctx, req());
      expect(datera.calls[0]).to.equal(`getMetadata ${PV}`);
      expect(node.calls.filter((c) => c.endsWith(' -R'))).to.have.length(2);
    });

    it('an attach-mode record without a claim namespace still answers attach (no pod) without asking Datera', async () => {
      const rec = readRecord(cfg.stateDir, PV)!;
      writeRecord(cfg.stateDir, { ...rec, claimNamespace: '' });
      expect(await attachVolume(ctx, req())).to.equal(node.link(portal(IPS[0]!)));
      expect(datera.calls).to.deep.equal([]);
    });

    it('sessions only to other targets do not count as attached', async () => {
      node.sessions = [{ portal: portal(IPS[0]!), iqn: 'iqn.other-target' }];
      await attachVolume(ctx, req());
      expect(datera.calls[0]).to.equal(`getMetadata ${PV}`);
    });

    it('attachedDevice: a session to this target among others is enough; a session without a device is not attached', async () => {
      node.sessions.unshift({ portal: portal(IPS[0]!), iqn: 'iqn.other-target' });
      expect(await attachedDevice(ctx, PV)).to.equal(node.link(portal(IPS[0]!)));
      for (const ip of IPS) fs.rmSync(node.link(portal(ip)));
      expect(await attachedDevice(ctx, PV)).to.equal(undefined);
    });

    it('attachedDevice answers the device; undefined without a record or without a session', async () => {
      expect(await attachedDevice(ctx, PV)).to.equal(node.link(portal(IPS[0]!)));
      expect(await attachedDevice(ctx, 'pvc-none')).to.equal(undefined);
      node.sessions = node.sessions.map((s) => ({ ...s, iqn: 'iqn.other' }));
      expect(await attachedDevice(ctx, PV)).to.equal(undefined);
    });
  });

  describe('detachVolume', () => {
    const settings = { server: 'http://dat:7717', username: 'nodeuser', password: 'nodepw' };

    beforeEach(async () => {
      writeSettings(settings);
      await attachVolume(ctx, req({ podNamespace: 'default' }));
      datera.calls = [];
      node.calls = [];
      clientConns = [];
      logs.length = 0;
    });

    it('logs out of every portal, removes this node from the ACL with the node credentials and deletes the record', async () => {
      expect(await detachVolume(ctx, PV, { ifUnused: true })).to.equal('detached');
      expect(node.sessions).to.deep.equal([]);
      expect(node.calls).to.deep.equal([
        'iscsiadm -m session',
        ...IPS.flatMap((ip) => [`iscsiadm -m node -T ${TARGET} -p ${portal(ip)} -u`, `iscsiadm -m node -T ${TARGET} -p ${portal(ip)} -o delete`]),
      ]);
      expect(datera.calls).to.deep.equal([`removeAclInitiator ${PV} storage-1 ${NODE}`]);
      expect(clientConns.map((c) => [c.endpoint, c.username, c.tenant])).to.deep.equal([['http://dat:7717', 'nodeuser', '/root']]);
      expect(readRecord(cfg.stateDir, PV)).to.equal(undefined);
      expect(logs.find((l) => l.msg === 'detached')?.meta).to.deep.equal({ pv: PV, appInstance: PV, iqn: TARGET });
    });

    it('a session on a portal the record does not list is logged out too; a recorded portal without a session only loses its node record', async () => {
      node.sessions = [{ portal: '10.9.9.9:3260', iqn: TARGET }, { portal: portal(IPS[1]!), iqn: TARGET }, { portal: portal(IPS[0]!), iqn: 'iqn.unrelated' }];
      await detachVolume(ctx, PV, { ifUnused: false });
      expect(node.calls.slice(1)).to.deep.equal([
        `iscsiadm -m node -T ${TARGET} -p ${portal(IPS[0]!)} -o delete`,
        `iscsiadm -m node -T ${TARGET} -p ${portal(IPS[1]!)} -u`,
        `iscsiadm -m node -T ${TARGET} -p ${portal(IPS[1]!)} -o delete`,
        `iscsiadm -m node -T ${TARGET} -p 10.9.9.9:3260 -u`,
        `iscsiadm -m node -T ${TARGET} -p 10.9.9.9:3260 -o delete`,
      ]);
      expect(node.sessions).to.deep.equal([{ portal: portal(IPS[0]!), iqn: 'iqn.unrelated' }]);
    });

    it('flushes the multipath map over the paths by its name before logging out', async () => {
      node.addMap('dm-2', 'mpathz', [fs.realpathSync(node.link(portal(IPS[0]!)))]);
      await detachVolume(ctx, PV, { ifUnused: true });
      expect(node.calls[1]).to.equal('multipath -f mpathz');
    });

    it('a multipath flush that fails stops the detach before any logout', async () => {
      node.addMap('dm-2', 'mpathz', [fs.realpathSync(node.link(portal(IPS[0]!)))]);
      ctx.run = {
        run: (cmd, args) => (cmd === 'multipath' ? Promise.resolve(res(1, '', 'map in use')) : node.runner().run(cmd, args)),
      };
      expect(await rejection(detachVolume(ctx, PV, { ifUnused: true }))).to.equal(`multipath -f ${path.join(cfg.devDir, 'dm-2')} failed (exit 1): map in use`);
      expect(node.sessions).to.have.length(2);
    });

    it('a device still mounted: in-use when detaching only if unused, a Failure naming the mount otherwise; nothing undone', async () => {
      fs.writeFileSync(cfg.procMounts, `${fs.realpathSync(node.link(portal(IPS[1]!)))} /mnt/a xfs rw 0 0\n`);
      expect(await detachVolume(ctx, PV, { ifUnused: true })).to.equal('in-use');
      expect(await rejection(detachVolume(ctx, PV, { ifUnused: false }))).to.equal(`${PV} is still mounted at /mnt/a; unmount it before detaching`);
      expect(node.sessions).to.have.length(2);
      expect(datera.calls).to.deep.equal([]);
      expect(readRecord(cfg.stateDir, PV)).to.not.equal(undefined);
    });

    it('the Failure for a device mounted twice names both mount points', async () => {
      const sd = fs.realpathSync(node.link(portal(IPS[0]!)));
      fs.writeFileSync(cfg.procMounts, `${sd} /mnt/a xfs rw 0 0\n${sd} /mnt/b xfs rw 0 0\n`);
      expect(await rejection(detachVolume(ctx, PV, { ifUnused: false }))).to.equal(`${PV} is still mounted at /mnt/a, /mnt/b; unmount it before detaching`);
    });

    it('a mounted multipath map counts as in use', async () => {
      node.addMap('dm-2', 'mpathz', [fs.realpathSync(node.link(portal(IPS[0]!)))]);
      fs.writeFileSync(cfg.procMounts, `${path.join(cfg.devDir, 'dm-2')} /mnt/a xfs rw 0 0\n`);
      expect(await detachVolume(ctx, PV, { ifUnused: true })).to.equal('in-use');
    });

    it('without a record nothing is undone and Datera is not called', async () => {
      expect(await detachVolume(ctx, 'pvc-unknown', { ifUnused: false })).to.equal('unknown-volume');
      expect(node.calls).to.deep.equal([]);
      expect(clientConns).to.deep.equal([]);
      expect(warnings()).to.deep.equal(['detach: no attachment record for this volume on this node; nothing it can safely undo (Datera not called)']);
      expect(logs[0]?.meta).to.deep.equal({ pv: 'pvc-unknown' });
    });

    it('without node settings it logs out and deletes the record but leaves the ACL entry, saying the settings are missing', async () => {
      fs.rmSync(settingsFile());
      expect(await detachVolume(ctx, PV, { ifUnused: true })).to.equal('detached');
      expect(node.sessions).to.deep.equal([]);
      expect(clientConns).to.deep.equal([]);
      expect(readRecord(cfg.stateDir, PV)).to.equal(undefined);
      const w = logs.find((l) => l.level === 'warn')!;
      expect(w.msg).to.equal('detach: logged out, but left this node in the ACL: the node credentials may not be sent to the recorded server');
      expect(w.meta).to.deep.equal({ pv: PV, appInstance: PV, endpoint: 'http://dat:7717', reason: `${settingsFile()} is missing` });
    });

    it('a recorded server not on the allow-list gets no request; the ACL entry stays, saying why', async () => {
      writeSettings({ ...settings, server: 'http://elsewhere:7717' });
      expect(await detachVolume(ctx, PV, { ifUnused: true })).to.equal('detached');
      expect(clientConns).to.deep.equal([]);
      expect(logs.find((l) => l.level === 'warn')?.meta).to.include({ reason: `not on the allow-list of ${settingsFile()}` });
      expect(readRecord(cfg.stateDir, PV)).to.equal(undefined);
    });

    it('an ACL entry already gone on Datera still counts as detached', async () => {
      datera.fail.removeAclInitiator = new NotFoundError('no such app instance');
      expect(await detachVolume(ctx, PV, { ifUnused: true })).to.equal('detached');
      expect(readRecord(cfg.stateDir, PV)).to.equal(undefined);
    });

    it('another Datera error while removing the ACL entry is a Failure naming it, and keeps the record for the retry', async () => {
      datera.fail.removeAclInitiator = new ConnectionError('ECONNREFUSED');
      expect(await rejection(detachVolume(ctx, PV, { ifUnused: true }))).to.equal(
        `cannot reach Datera at http://dat:7717 while trying to remove ${NODE} from the ACL of ${PV}/storage-1: ECONNREFUSED`,
      );
      expect(readRecord(cfg.stateDir, PV)).to.not.equal(undefined);
    });
  });
});
