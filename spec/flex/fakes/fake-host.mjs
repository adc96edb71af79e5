// SPDX-License-Identifier: Apache-2.0
// A fake node for the FlexVolume driver specs: iscsiadm, mkfs.*, mount, umount, blkid,
// multipath, xfs_growfs, resize2fs and chgrp in one script (the per-tool wrappers next to it
// call `fake-host.mjs <tool> args...`). State lives under $DATERA_FLEX_ROOT:
//
//   fake/calls.jsonl        every call, one JSON line {tool, args}
//   fake/state.json         node records, sessions, filesystems (keyed by target IQN = the LUN)
//   fake/portal-down/<ip>   login to that IP fails (connection timed out, exit 8)
//   fake/chap.json          {user, password}: logins need these CHAP settings (else exit 24)
//   fake/multipath          present: a login also builds a dm map over the path
//   fake/fail/<tool>        present: the tool fails (exit 1, the file's text on stderr)
//   fake/luns/<iqn>.json    what the LUN holds before the driver touches it:
//                           {fs?: 'xfs'|'ext4'|..., data?: 'junk'|'unreadable',
//                            blkid?: {code, stdout?, stderr?}}  ({dev} in the texts = device path)
//                           fs: an existing filesystem; data junk: the device's first bytes are
//                           non-zero; unreadable: reading the device fails (EISDIR stands in for
//                           EIO); blkid: the exact answer of `blkid -p` for this LUN.
//
// With FAKE_ISCSI_SIM_URL=<simulator base URL> in the environment, iscsiadm also plays the
// target side: a login is POST /_sim/iscsi/login {target, initiator, portal} (the initiator is
// this host's etc/iscsi/initiatorname.iscsi) and fails like iscsiadm when the simulator refuses
// (403 -> exit 24 authorization failure, other errors -> exit 8); a logout is POST
// /_sim/iscsi/logout. So the storage instance's active_initiators follow this host's sessions.
// With FAKE_DISKS_FILE=<file>, the filesystems mkfs makes are kept there (shared by hosts).
//
// Logins create dev/sdX plus dev/disk/by-path/ip-<portal>-iscsi-<iqn>-lun-0 -> ../../sdX (and
// sys/block/dm-N/slaves/sdX with multipath); logout removes them. mkfs records a filesystem
// for the LUN so blkid reports it afterwards, across logouts. mount/umount edit proc/mounts.
import fs from 'node:fs';
import path from 'node:path';

const root = process.env.DATERA_FLEX_ROOT;
if (!root) {
  process.stderr.write('fake-host: DATERA_FLEX_ROOT is not set\n');
  process.exit(99);
}
const [tool, ...args] = process.argv.slice(2);
const fake = path.join(root, 'fake');
const stateFile = path.join(fake, 'state.json');
const procMounts = path.join(root, 'proc', 'mounts');
const devDir = path.join(root, 'dev');
const byPathDir = path.join(devDir, 'disk', 'by-path');
const sysBlock = path.join(root, 'sys', 'block');

fs.mkdirSync(fake, { recursive: true });
fs.appendFileSync(path.join(fake, 'calls.jsonl'), `${JSON.stringify({ tool, args })}\n`);

function exit(code, stderr = '', stdout = '') {
  if (stdout) process.stdout.write(stdout.endsWith('\n') ? stdout : `${stdout}\n`);
  if (stderr) process.stderr.write(stderr.endsWith('\n') ? stderr : `${stderr}\n`);
  process.exit(code);
}

const failFile = path.join(fake, 'fail', tool);
if (fs.existsSync(failFile)) exit(1, fs.readFileSync(failFile, 'utf8') || `${tool}: injected failure`);

function load() {
  try {
    return JSON.parse(fs.readFileSync(stateFile, 'utf8'));
  } catch {
    return { nodes: {}, sessions: [], fs: {}, dms: {}, nextSd: 1, nextSid: 1, nextDm: 0 };
  }
}
const state = load();
// FAKE_DISKS_FILE: filesystems live on the LUNs, so hosts playing several nodes share them.
const disksFile = process.env.FAKE_DISKS_FILE;
if (disksFile) {
  try {
    state.fs = JSON.parse(fs.readFileSync(disksFile, 'utf8'));
  } catch {
    state.fs = {};
  }
}
const save = () => {
  fs.writeFileSync(stateFile, JSON.stringify(state, null, 2));
  if (disksFile) fs.writeFileSync(disksFile, JSON.stringify(state.fs));
};

const opt = (flag) => {
  const i = args.indexOf(flag);
  return i >= 0 ? args[i + 1] : undefined;
};
const has = (flag) => args.includes(flag);
const canonical = (p) => {
  try {
    return fs.realpathSync(p);
  } catch {
    return undefined;
  }
};
const link = (portal, iqn) => path.join(byPathDir, `ip-${portal}-iscsi-${iqn}-lun-0`);
const ipOf = (portal) => portal.replace(/^\[/, '').replace(/\]?:\d+$/, '');
/** The planted content of a LUN (fake/luns/<iqn>.json), or {}. */
function lunOf(iqn) {
  try {
    return JSON.parse(fs.readFileSync(path.join(fake, 'luns', `${iqn}.json`), 'utf8'));
  } catch {
    return {};
  }
}
/** A new device node: an empty file reads as zeros; junk has bytes; unreadable cannot be read. */
function makeDeviceNode(file, iqn) {
  const lun = lunOf(iqn);
  fs.rmSync(file, { force: true, recursive: true });
  if (lun.data === 'unreadable') fs.mkdirSync(file);
  else fs.writeFileSync(file, lun.data === 'junk' ? Buffer.from('\x00\x00\x00\x00ORACLE ASM DISK HEADER? some bytes', 'latin1') : '');
}

/** The target IQN (= LUN identity) behind a device path: a session's sdX or a dm map. */
function iqnOfDevice(dev) {
  const real = canonical(dev);
  if (!real) return undefined;
  const name = path.basename(real);
  const s = state.sessions.find((x) => x.sd === name);
  if (s) return s.iqn;
  return Object.keys(state.dms).find((iqn) => state.dms[iqn] === name);
}

function readMounts() {
  try {
    return fs.readFileSync(procMounts, 'utf8').split('\n').filter(Boolean);
  } catch {
    return [];
  }
}
function writeMounts(lines) {
  fs.mkdirSync(path.dirname(procMounts), { recursive: true });
  fs.writeFileSync(procMounts, lines.map((l) => `${l}\n`).join(''));
}

function removePath(iqn, sd) {
  fs.rmSync(path.join(devDir, sd), { force: true, recursive: true });
  const dm = state.dms[iqn];
  if (dm) {
    fs.rmSync(path.join(sysBlock, dm, 'slaves', sd), { force: true, recursive: true });
    if (!state.sessions.some((x) => x.iqn === iqn && x.sd !== sd)) dropMap(iqn);
  }
}
function dropMap(iqn) {
  const dm = state.dms[iqn];
  if (!dm) return;
  fs.rmSync(path.join(sysBlock, dm), { force: true, recursive: true });
  fs.rmSync(path.join(devDir, dm), { force: true, recursive: true });
  delete state.dms[iqn];
}

const simUrl = process.env.FAKE_ISCSI_SIM_URL;

function initiatorName() {
  const text = fs.readFileSync(path.join(root, 'etc', 'iscsi', 'initiatorname.iscsi'), 'utf8');
  return /^\s*InitiatorName\s*=\s*(\S+)/m.exec(text)?.[1];
}

/** Tells the simulator's target about a login/logout; answers {status, error}. */
async function tellTarget(op, iqn, portal) {
  const res = await fetch(`${simUrl}/_sim/iscsi/${op}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ target: iqn, initiator: initiatorName(), portal }),
  });
  const body = await res.json().catch(() => ({}));
  return { status: res.status, error: body.error ?? '' };
}

async function iscsiadm() {
  const mode = opt('-m');
  const iqn = opt('-T');
  const portal = opt('-p');
  const op = opt('-o');
  if (mode === 'session') {
    if (has('-R')) exit(0);
    if (state.sessions.length === 0) exit(21, 'iscsiadm: No active sessions.');
    exit(0, '', state.sessions.map((s) => `tcp: [${s.sid}] ${s.portal},1 ${s.iqn} (non-flash)`).join('\n'));
  }
  if (mode !== 'node') exit(7, `iscsiadm: fake does not know mode ${mode}`);
  const key = `${iqn}|${portal}`;
  if (op === 'new') {
    if (!iqn || !portal) exit(7, 'iscsiadm: -o new needs -T and -p');
    state.nodes[key] = {};
    save();
    exit(0, '', `New iSCSI node [tcp:[hw=,ip=,net_if=,iscsi_if=default] ${portal},-1 ${iqn}] added`);
  }
  if (op === 'update') {
    if (!state.nodes[key]) exit(21, 'iscsiadm: No records found');
    state.nodes[key][opt('-n')] = opt('-v');
    save();
    exit(0);
  }
  if (op === 'delete') {
    const keys = Object.keys(state.nodes).filter((k) => k.startsWith(`${iqn}|`) && (!portal || k === key));
    if (keys.length === 0) exit(21, 'iscsiadm: No records found');
    for (const k of keys) delete state.nodes[k];
    save();
    exit(0);
  }
  if (has('-l')) {
    const rec = state.nodes[key];
    if (!rec) exit(21, 'iscsiadm: No records found');
    if (state.sessions.some((s) => s.iqn === iqn && s.portal === portal)) exit(15, 'iscsiadm: default: 1 session requested, but 1 already present.');
    if (fs.existsSync(path.join(fake, 'portal-down', ipOf(portal)))) {
      exit(8, `iscsiadm: Could not login to [iface: default, target: ${iqn}, portal: ${portal}].\niscsiadm: initiator reported error (8 - connection timed out)`);
    }
    const chapFile = path.join(fake, 'chap.json');
    if (fs.existsSync(chapFile)) {
      const chap = JSON.parse(fs.readFileSync(chapFile, 'utf8'));
      const ok =
        rec['node.session.auth.authmethod'] === 'CHAP' &&
        rec['node.session.auth.username'] === chap.user &&
        rec['node.session.auth.password'] === chap.password;
      if (!ok) exit(24, `iscsiadm: Could not login to [iface: default, target: ${iqn}, portal: ${portal}].\niscsiadm: initiator reported error (24 - iSCSI login failed due to authorization failure)`);
    }
    if (simUrl) {
      const r = await tellTarget('login', iqn, portal);
      if (r.status === 403) {
        exit(24, `iscsiadm: Could not login to [iface: default, target: ${iqn}, portal: ${portal}].\niscsiadm: initiator reported error (24 - iSCSI login failed due to authorization failure)\n(target: ${r.error})`);
      }
      if (r.status !== 200) {
        exit(8, `iscsiadm: Could not login to [iface: default, target: ${iqn}, portal: ${portal}].\niscsiadm: initiator reported error (8 - connection timed out)\n(target: ${r.status} ${r.error})`);
      }
    }
    const sd = `sd${String.fromCharCode(97 + state.nextSd++)}`;
    state.sessions.push({ sid: state.nextSid++, iqn, portal, sd });
    const planted = lunOf(iqn).fs;
    if (planted && !state.fs[iqn]) state.fs[iqn] = planted;
    fs.mkdirSync(byPathDir, { recursive: true });
    makeDeviceNode(path.join(devDir, sd), iqn);
    fs.rmSync(link(portal, iqn), { force: true });
    fs.symlinkSync(`../../${sd}`, link(portal, iqn));
    if (fs.existsSync(path.join(fake, 'multipath'))) {
      const n = state.dms[iqn] ? Number(state.dms[iqn].slice(3)) : state.nextDm++;
      const dm = `dm-${n}`;
      state.dms[iqn] = dm;
      fs.mkdirSync(path.join(sysBlock, dm, 'slaves', sd), { recursive: true });
      fs.mkdirSync(path.join(sysBlock, dm, 'dm'), { recursive: true });
      fs.writeFileSync(path.join(sysBlock, dm, 'dm', 'name'), `mpath${n}\n`);
      makeDeviceNode(path.join(devDir, dm), iqn);
    }
    save();
    exit(0, '', `Logging in to [iface: default, target: ${iqn}, portal: ${portal}]\nLogin to [iface: default, target: ${iqn}, portal: ${portal}] successful.`);
  }
  if (has('-u')) {
    const s = state.sessions.find((x) => x.iqn === iqn && (!portal || x.portal === portal));
    if (!s) exit(21, 'iscsiadm: No matching sessions found');
    if (simUrl) await tellTarget('logout', s.iqn, s.portal);
    state.sessions = state.sessions.filter((x) => x !== s);
    fs.rmSync(link(s.portal, s.iqn), { force: true });
    removePath(s.iqn, s.sd);
    save();
    exit(0, '', `Logging out of session [sid: ${s.sid}, target: ${iqn}, portal: ${s.portal}]\nLogout of [sid: ${s.sid}, target: ${iqn}, portal: ${s.portal}] successful.`);
  }
  if (has('-R')) {
    const s = state.sessions.find((x) => x.iqn === iqn && x.portal === portal);
    if (!s) exit(21, 'iscsiadm: No session found.');
    if (!fs.existsSync(link(portal, iqn))) {
      makeDeviceNode(path.join(devDir, s.sd), iqn);
      fs.symlinkSync(`../../${s.sd}`, link(portal, iqn));
    }
    exit(0, '', `Rescanning session [sid: ${s.sid}, target: ${iqn}, portal: ${portal}]`);
  }
  exit(7, `iscsiadm: fake does not understand ${args.join(' ')}`);
}

function mkfs(type) {
  const dev = args.at(-1);
  const iqn = iqnOfDevice(dev);
  if (!iqn) exit(1, `${tool}: cannot open ${dev}: No such file or directory`);
  if (type === 'xfs' && state.fs[iqn] && !has('-f')) {
    exit(1, `mkfs.xfs: ${dev} appears to contain an existing filesystem (${state.fs[iqn]}).\nmkfs.xfs: Use the -f option to force overwrite.`);
  }
  const planted = lunOf(iqn).blkid;
  if (type === 'xfs' && !state.fs[iqn] && planted?.code === 0 && !has('-f')) {
    exit(1, `mkfs.xfs: ${dev} appears to contain a partition table or another signature.\nmkfs.xfs: Use the -f option to force overwrite.`);
  }
  if (type === 'ext4' && !has('-F')) exit(1, `mke2fs: ${dev} is entire device, not just one partition! (fake: needs -F)`);
  state.fs[iqn] = type;
  save();
  exit(0, '', `fake ${type} filesystem on ${dev}`);
}

function mount() {
  const lines = readMounts();
  const mountedAt = (target) => lines.findLastIndex((l) => l.split(' ')[1] === target);
  if (has('--bind')) {
    const [src, dst] = args.filter((a) => a !== '--bind');
    const i = mountedAt(src);
    if (i < 0) exit(32, `mount: ${src}: not a mount point (fake)`);
    if (!fs.existsSync(dst)) exit(32, `mount: ${dst}: mount point does not exist.`);
    const [dev, , type, opts] = lines[i].split(' ');
    lines.push(`${dev} ${dst} ${type} ${opts} 0 0`);
    writeMounts(lines);
    exit(0);
  }
  const o = opt('-o') ?? '';
  if (o.startsWith('remount')) {
    const dst = args.at(-1);
    const i = mountedAt(dst);
    if (i < 0) exit(32, `mount: ${dst}: not mounted.`);
    const f = lines[i].split(' ');
    f[3] = o.split(',').includes('ro') ? 'ro,relatime' : 'rw,relatime';
    lines[i] = f.join(' ');
    writeMounts(lines);
    exit(0);
  }
  const type = opt('-t');
  const [dev, dst] = args.slice(-2);
  const real = canonical(dev);
  if (!real) exit(32, `mount: ${dst}: special device ${dev} does not exist.`);
  if (!fs.existsSync(dst)) exit(32, `mount: ${dst}: mount point does not exist.`);
  const iqn = iqnOfDevice(dev);
  const found = iqn && state.fs[iqn];
  if (!found || (type && type !== 'auto' && type !== found)) {
    exit(32, `mount: ${dst}: wrong fs type, bad option, bad superblock on ${dev}, missing codepage or helper program, or other error.`);
  }
  lines.push(`${real} ${dst} ${found} ${o.split(',').includes('ro') ? 'ro' : 'rw'},relatime 0 0`);
  writeMounts(lines);
  exit(0);
}

function umount() {
  const dst = args.at(-1);
  const lines = readMounts();
  const i = lines.findLastIndex((l) => l.split(' ')[1] === dst);
  if (i < 0) exit(32, `umount: ${dst}: not mounted.`);
  lines.splice(i, 1);
  writeMounts(lines);
  exit(0);
}

/**
 * `blkid -p -o export <dev>` (low-level probe) answers what the LUN holds: the planted answer,
 * else TYPE/USAGE of its filesystem (exit 0), else nothing (exit 2). Without -p it answers as the
 * cache-based blkid does for `-o value -s TYPE`: the TYPE, or for a partition table an empty line
 * with exit 0 (util-linux 2.38 measured), or exit 2.
 */
function blkid() {
  const dev = args.at(-1);
  const iqn = iqnOfDevice(dev);
  const lun = iqn ? lunOf(iqn) : {};
  const type = iqn && state.fs[iqn];
  const fill = (t) => (t ?? '').replaceAll('{dev}', dev);
  if (!has('-p')) {
    const plantedType = /^TYPE=(.*)$/m.exec(lun.blkid?.stdout ?? '')?.[1];
    if (type || plantedType) exit(0, '', type ?? plantedType);
    if (/^PTTYPE=/m.test(lun.blkid?.stdout ?? '')) exit(0, '', '\n');
    exit(2);
  }
  if (lun.blkid && !type) exit(lun.blkid.code, fill(lun.blkid.stderr), fill(lun.blkid.stdout));
  if (!type) exit(2);
  exit(0, '', `DEVNAME=${dev}\nUUID=0b5e1f1e-7a43-4a8e-9b61-${iqn.length.toString().padStart(12, '0')}\nBLOCK_SIZE=512\nTYPE=${type}\nUSAGE=filesystem`);
}

function multipath() {
  if (has('-r')) exit(0);
  const name = opt('-f');
  if (name === undefined) exit(1, 'multipath: fake knows only -f and -r');
  const iqn = Object.keys(state.dms).find((k) => {
    const dm = state.dms[k];
    const mapName = fs.existsSync(path.join(sysBlock, dm, 'dm', 'name'))
      ? fs.readFileSync(path.join(sysBlock, dm, 'dm', 'name'), 'utf8').trim()
      : '';
    return name === mapName || canonical(name) === path.join(devDir, dm);
  });
  if (!iqn) exit(1, `${name}: map does not exist`);
  if (readMounts().some((l) => l.split(' ')[0] === path.join(devDir, state.dms[iqn]))) exit(1, `${name}: map in use`);
  dropMap(iqn);
  save();
  exit(0);
}

switch (tool) {
  case 'iscsiadm':
    await iscsiadm();
    break;
  case 'mkfs.xfs':
    mkfs('xfs');
    break;
  case 'mkfs.ext4':
    mkfs('ext4');
    break;
  case 'mount':
    mount();
    break;
  case 'umount':
    umount();
    break;
  case 'blkid':
    blkid();
    break;
  case 'multipath':
    multipath();
    break;
  case 'chgrp':
    if (!fs.existsSync(args.at(-1))) exit(1, `chgrp: cannot access '${args.at(-1)}': No such file or directory`);
    exit(0);
    break;
  case 'xfs_growfs':
  case 'resize2fs':
    exit(0);
    break;
  default:
    exit(127, `fake-host: unknown tool ${tool}`);
}
