// SPDX-License-Identifier: Apache-2.0
// A stand-in for open-iscsi's `iscsiadm`: a TEST DOUBLE of the kernel's iSCSI initiator, for the
// local cluster's nodes only (this machine's kernel has no SCSI/iSCSI support). It answers the
// commands the node driver (lib/flex/iscsi.ts) runs, with iscsiadm's exit codes and output
// formats, and makes the Datera simulator's volumes real block devices:
//
//   login   POST <sim>/_sim/iscsi/login {target, initiator, portal}; for each LUN the simulator
//           answers (its sparse backing file, `datera-sim --backing-dir`):
//           `losetup --find --show --direct-io=off FILE`, then the udev-style link
//           <dev>/disk/by-path/ip-<portal>-iscsi-<target>-lun-<n> -> ../../loopN.
//   logout  POST <sim>/_sim/iscsi/logout, then remove the links and `losetup -d` the loops.
//   rescan  `losetup -c` (new capacity after a resize), re-attach a LUN whose loop is gone,
//           re-create missing links.
//
// Everything around it stays real: the driver, blkid, mkfs, mount, the filesystem on the loop
// device. The simulator plays the target: it refuses a login the way a Datera target would
// (ACL -> exit 24 authorization failure) and reports the sessions as `active_initiators`.
//
// State (per node, survives this process): node records and sessions as JSON files under the
// state dir (default /etc/iscsi/standin: open-iscsi keeps its node records under /etc/iscsi,
// which the local cluster gives each node its own copy of). A session whose loop devices are all
// gone (detached by `--standin-cleanup`, or re-used for another file) has ended, as a session
// ends when the initiator's host loses the target.
//
// Settings: iscsiadm.json next to this script (or the wrapper that runs it), or the file named
// by DATERA_ISCSI_STANDIN_CONFIG, with keys below; environment variables win:
//   simUrl        DATERA_ISCSI_STANDIN_SIM             simulator base URL (login/logout need it)
//   devDir        DATERA_ISCSI_STANDIN_DEVDIR          default /dev (links go to <devDir>/disk/by-path)
//   stateDir      DATERA_ISCSI_STANDIN_STATE_DIR       default /etc/iscsi/standin
//   initiatorFile DATERA_ISCSI_STANDIN_INITIATOR_FILE  default $DATERA_FLEX_INITIATOR_FILE, else
//                                                      /etc/iscsi/initiatorname.iscsi
//   backingDir    DATERA_ISCSI_STANDIN_BACKING_DIR     when set, only files under it are attached
//
// `iscsiadm.mjs --standin-cleanup DIR` detaches every loop device whose backing file lies under
// DIR (the simulator's --backing-dir); exit 1 when one stays attached (still mounted somewhere).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// iscsiadm's exit codes (open-iscsi include/iscsi_err.h) and their texts.
const ERR = {
  GENERIC: 1,
  INVAL: 7,
  TRANS_TIMEOUT: 8,
  INTERNAL: 9,
  LOGOUT: 10,
  SESS_EXISTS: 15,
  FATAL_LOGIN: 19,
  NO_OBJS_FOUND: 21,
  LOGIN_AUTH_FAILED: 24,
};
const ERR_TEXT = {
  [ERR.TRANS_TIMEOUT]: 'connection timed out',
  [ERR.INTERNAL]: 'internal error',
  [ERR.LOGOUT]: 'encountered iSCSI logout failure',
  [ERR.FATAL_LOGIN]: 'encountered non-retryable iSCSI login failure',
  [ERR.LOGIN_AUTH_FAILED]: 'iSCSI login failed due to authorization failure',
};
const DEFAULT_PORT = 3260;
const SIM_TIMEOUT_MS = 10_000;

class Exit extends Error {
  constructor(code, stderr = '') {
    super(stderr);
    this.code = code;
  }
}
const out = (line) => process.stdout.write(`${line}\n`);
const err = (line) => process.stderr.write(`${line}\n`);

// ------------------------------------------------------------------------------ settings

function readConfig() {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const invokedDir = process.argv[1] ? path.dirname(path.resolve(process.argv[1])) : here;
  const candidates = process.env.DATERA_ISCSI_STANDIN_CONFIG
    ? [process.env.DATERA_ISCSI_STANDIN_CONFIG]
    : [...new Set([process.env.DATERA_ISCSI_STANDIN_HOME, invokedDir, here].filter(Boolean).map((d) => path.join(d, 'iscsiadm.json')))];
  let file = {};
  for (const c of candidates) {
    let text;
    try {
      text = fs.readFileSync(c, 'utf8');
    } catch (e) {
      if (e.code === 'ENOENT' && !process.env.DATERA_ISCSI_STANDIN_CONFIG) continue;
      throw new Exit(ERR.GENERIC, `iscsiadm (stand-in): cannot read ${c}: ${e.message}`);
    }
    try {
      file = JSON.parse(text);
    } catch {
      throw new Exit(ERR.GENERIC, `iscsiadm (stand-in): ${c} is not valid JSON`);
    }
    if (file === null || typeof file !== 'object' || Array.isArray(file)) throw new Exit(ERR.GENERIC, `iscsiadm (stand-in): ${c} is not a JSON object`);
    break;
  }
  const pick = (envKey, key, dflt) => {
    const v = process.env[envKey] || file[key] || dflt;
    if (v !== undefined && typeof v !== 'string') throw new Exit(ERR.GENERIC, `iscsiadm (stand-in): "${key}" must be a string`);
    return v;
  };
  return {
    simUrl: pick('DATERA_ISCSI_STANDIN_SIM', 'simUrl', undefined)?.replace(/\/+$/, ''),
    devDir: path.resolve(pick('DATERA_ISCSI_STANDIN_DEVDIR', 'devDir', '/dev')),
    stateDir: path.resolve(pick('DATERA_ISCSI_STANDIN_STATE_DIR', 'stateDir', '/etc/iscsi/standin')),
    initiatorFile: pick('DATERA_ISCSI_STANDIN_INITIATOR_FILE', 'initiatorFile', process.env.DATERA_FLEX_INITIATOR_FILE || '/etc/iscsi/initiatorname.iscsi'),
    backingDir: pick('DATERA_ISCSI_STANDIN_BACKING_DIR', 'backingDir', undefined),
  };
}

// ------------------------------------------------------------------------------ names

/** `ip:port` with brackets for IPv6; a portal without a port gets 3260; a `,tpgt` suffix is dropped. */
export function normalizePortal(p) {
  const s = p.replace(/,\d+$/, '');
  if (/^\[.*\]:\d+$/.test(s) || /^[^:[\]]+:\d+$/.test(s)) return s;
  if (/^\[.*\]$/.test(s)) return `${s}:${DEFAULT_PORT}`;
  if (s.includes(':')) return `[${s}]:${DEFAULT_PORT}`;
  return `${s}:${DEFAULT_PORT}`;
}
/** How iscsiadm's messages spell a portal: `ip,port`. */
export const portalText = (portal) => {
  const m = /^\[?(.*?)\]?:(\d+)$/.exec(portal);
  return m ? `${m[1]},${m[2]}` : portal;
};
const recordKey = (iqn, portal) => createHash('sha256').update(`${iqn}\0${portal}`).digest('hex').slice(0, 32);
const byPathDir = (cfg) => path.join(cfg.devDir, 'disk', 'by-path');
const linkOf = (cfg, portal, iqn, lun) => path.join(byPathDir(cfg), `ip-${portal}-iscsi-${iqn}-lun-${lun}`);

// ------------------------------------------------------------------------------ state files

function readJsonDir(dir) {
  let names;
  try {
    names = fs.readdirSync(dir).filter((n) => n.endsWith('.json')).sort();
  } catch (e) {
    if (e.code === 'ENOENT') return [];
    throw e;
  }
  const items = [];
  for (const n of names) {
    try {
      items.push({ file: path.join(dir, n), ...JSON.parse(fs.readFileSync(path.join(dir, n), 'utf8')) });
    } catch {
      // a file another invocation is replacing, or garbage: not a record
    }
  }
  return items;
}

/** Atomic replace (write + rename), mode 0600: node records may hold CHAP secrets, as open-iscsi's do. */
function writeJson(file, value) {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  const { file: _drop, ...rest } = value;
  fs.writeFileSync(tmp, `${JSON.stringify(rest, null, 2)}\n`, { mode: 0o600 });
  fs.renameSync(tmp, file);
}

const nodesDir = (cfg) => path.join(cfg.stateDir, 'nodes');
const sessionsDir = (cfg) => path.join(cfg.stateDir, 'sessions');
const nodeFile = (cfg, iqn, portal) => path.join(nodesDir(cfg), `${recordKey(iqn, portal)}.json`);
const sessionFile = (cfg, iqn, portal) => path.join(sessionsDir(cfg), `${recordKey(iqn, portal)}.json`);

// ------------------------------------------------------------------------------ loop devices

function losetup(args) {
  const r = spawnSync('losetup', args, { encoding: 'utf8' });
  if (r.error) return { code: 127, stdout: '', stderr: `losetup: ${r.error.message}` };
  return { code: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
}

/** The file a loop device is bound to (" (deleted)" stripped), or undefined when it is free. */
function loopBackingFile(loopDev) {
  try {
    const text = fs.readFileSync(`/sys/block/${path.basename(loopDev)}/loop/backing_file`, 'utf8').trim();
    return text.replace(/ \(deleted\)$/, '');
  } catch {
    return undefined;
  }
}
/** True while `loopDev` is still bound to `file`: a loop re-used for another file is not ours. */
const loopIsOurs = (loopDev, file) => loopDev !== undefined && loopBackingFile(loopDev) === file;

function attachLoop(file) {
  const r = losetup(['--find', '--show', '--direct-io=off', file]);
  const dev = r.stdout.trim();
  if (r.code !== 0 || !/^\/dev\/loop\d+$/.test(dev)) {
    throw new Error(`losetup --find --show ${file} failed (exit ${r.code}): ${(r.stderr || r.stdout).trim() || 'no output'}`);
  }
  return dev;
}

function detachLoop(loopDev, file) {
  if (!loopIsOurs(loopDev, file)) return;
  const r = losetup(['-d', loopDev]);
  if (r.code !== 0 && loopIsOurs(loopDev, file)) throw new Error(`losetup -d ${loopDev} failed (exit ${r.code}): ${r.stderr.trim()}`);
}

/** What a by-path link points at, as udev writes it: relative (`../../loopN`) when the device lives in devDir, else absolute. */
export function linkTarget(devDir, link, loopDev) {
  return path.dirname(loopDev) === path.resolve(devDir) ? path.relative(path.dirname(link), loopDev) : loopDev;
}

function makeLink(cfg, link, loopDev) {
  fs.mkdirSync(path.dirname(link), { recursive: true });
  fs.rmSync(link, { force: true });
  fs.symlinkSync(linkTarget(cfg.devDir, link, loopDev), link);
}

const linkExists = (link) => {
  try {
    fs.lstatSync(link);
    return true;
  } catch {
    return false;
  }
};

// ------------------------------------------------------------------------------ sessions

/**
 * The live sessions of this node. A LUN whose loop device is no longer bound to its file has
 * gone (its link is removed, as udev removes a vanished disk's link); a session none of whose
 * LUNs is left has ended (file and links removed; the simulator is told, best effort).
 */
async function liveSessions(cfg) {
  const live = [];
  for (const s of readJsonDir(sessionsDir(cfg))) {
    const luns = s.luns ?? [];
    const present = luns.filter((l) => loopIsOurs(l.loop, l.file));
    for (const l of luns) if (!present.includes(l)) fs.rmSync(linkOf(cfg, s.portal, s.iqn, l.lun), { force: true });
    if (luns.length > 0 && present.length === 0) {
      fs.rmSync(s.file, { force: true });
      await tellSim(cfg, 'logout', s.iqn, s.portal).catch(() => undefined);
      continue;
    }
    live.push(s);
  }
  return live.sort((a, b) => a.sid - b.sid);
}

function nextSid(sessions, luns) {
  const first = luns[0]?.loop && /(\d+)$/.exec(luns[0].loop);
  if (first) return Number(first[1]) + 1;
  return Math.max(1000, ...sessions.map((s) => s.sid)) + 1;
}

function readInitiator(cfg) {
  let text;
  try {
    text = fs.readFileSync(cfg.initiatorFile, 'utf8');
  } catch (e) {
    throw new Exit(ERR.GENERIC, `iscsiadm (stand-in): cannot read the initiator name from ${cfg.initiatorFile}: ${e.message}`);
  }
  const m = /^\s*InitiatorName\s*=\s*(\S+)\s*$/m.exec(text);
  if (!m) throw new Exit(ERR.GENERIC, `iscsiadm (stand-in): ${cfg.initiatorFile} has no InitiatorName= line`);
  return m[1];
}

/** POST /_sim/iscsi/<op>; answers {status, body}; throws on a network error or timeout. */
async function tellSim(cfg, op, target, portal, initiator = readInitiator(cfg)) {
  if (!cfg.simUrl) throw new Error('no simulator URL (simUrl in iscsiadm.json, or DATERA_ISCSI_STANDIN_SIM)');
  const res = await fetch(`${cfg.simUrl}/_sim/iscsi/${op}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ target, initiator, portal }),
    signal: AbortSignal.timeout(SIM_TIMEOUT_MS),
  });
  const body = await res.json().catch(() => ({}));
  return { status: res.status, body };
}

// ------------------------------------------------------------------------------ commands

function parseArgs(argv) {
  const long = {
    '--mode': '-m', '--targetname': '-T', '--portal': '-p', '--op': '-o', '--name': '-n', '--value': '-v',
    '--login': '-l', '--logout': '-u', '--rescan': '-R', '--print': '-P', '--type': '-t', '--sid': '-r',
  };
  const withValue = new Set(['-m', '-T', '-p', '-o', '-n', '-v', '-P', '-t', '-r', '-I']);
  const opts = {};
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i];
    let inline;
    if (a.startsWith('--') && a.includes('=')) [a, inline] = [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)];
    a = long[a] ?? a;
    if (withValue.has(a)) {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Exit(ERR.INVAL, `iscsiadm: option '${a}' requires an argument`);
      opts[a] = v;
    } else if (['-l', '-u', '-R'].includes(a)) {
      opts[a] = true;
    } else {
      throw new Exit(ERR.INVAL, `iscsiadm: unrecognized option '${argv[i]}' (the stand-in knows what lib/flex/iscsi.ts runs)`);
    }
  }
  return opts;
}

const loginFailed = (iqn, portal, code, detail) =>
  new Exit(
    code,
    [
      `iscsiadm: Could not login to [iface: default, target: ${iqn}, portal: ${portalText(portal)}].`,
      `iscsiadm: initiator reported error (${code} - ${ERR_TEXT[code]})`,
      'iscsiadm: Could not log into all portals',
      ...(detail ? [`iscsiadm (stand-in): ${detail}`] : []),
    ].join('\n'),
  );

async function login(cfg, iqn, portal) {
  const rec = fs.existsSync(nodeFile(cfg, iqn, portal));
  if (!rec) throw new Exit(ERR.NO_OBJS_FOUND, 'iscsiadm: No records found');
  const sessions = await liveSessions(cfg);
  if (sessions.some((s) => s.iqn === iqn && s.portal === portal)) {
    throw new Exit(ERR.SESS_EXISTS, 'iscsiadm: default: 1 session requested, but 1 already present.');
  }
  const initiator = readInitiator(cfg);
  out(`Logging in to [iface: default, target: ${iqn}, portal: ${portalText(portal)}]`);
  let r;
  try {
    r = await tellSim(cfg, 'login', iqn, portal, initiator);
  } catch (e) {
    throw loginFailed(iqn, portal, ERR.TRANS_TIMEOUT, `simulator ${cfg.simUrl ?? ''}: ${e.message}`);
  }
  const said = `simulator answered ${r.status}: ${r.body?.error ?? ''}`;
  if (r.status === 403) throw loginFailed(iqn, portal, ERR.LOGIN_AUTH_FAILED, said);
  if (r.status >= 500) throw loginFailed(iqn, portal, ERR.TRANS_TIMEOUT, said);
  if (r.status !== 200) throw loginFailed(iqn, portal, ERR.FATAL_LOGIN, said);
  const undo = () => tellSim(cfg, 'logout', iqn, portal, initiator).catch(() => undefined);
  if (!Array.isArray(r.body.luns)) {
    await undo();
    throw loginFailed(iqn, portal, ERR.FATAL_LOGIN, 'the simulator keeps no backing files for its volumes: start it with --backing-dir');
  }
  const luns = [];
  try {
    for (const l of r.body.luns) {
      if (!Number.isInteger(l.lun) || l.lun < 0 || typeof l.path !== 'string' || !path.isAbsolute(l.path)) {
        throw new Error(`the simulator answered a LUN without an absolute path: ${JSON.stringify(l)}`);
      }
      const file = path.normalize(l.path);
      if (cfg.backingDir && !file.startsWith(`${path.resolve(cfg.backingDir)}/`)) throw new Error(`${file} is not under the backing dir ${cfg.backingDir}`);
      if (!fs.statSync(file).isFile()) throw new Error(`${file} is not a regular file`);
      luns.push({ lun: l.lun, file, loop: attachLoop(file) });
    }
  } catch (e) {
    for (const l of luns) {
      try {
        detachLoop(l.loop, l.file);
      } catch {
        // reported below; cleanup with --standin-cleanup
      }
    }
    await undo();
    throw loginFailed(iqn, portal, ERR.INTERNAL, e.message);
  }
  // The session file first: whatever happens next, logout and cleanup know the loops.
  writeJson(sessionFile(cfg, iqn, portal), { sid: nextSid(sessions, luns), iqn, portal, since: new Date().toISOString(), luns });
  for (const l of luns) makeLink(cfg, linkOf(cfg, portal, iqn, l.lun), l.loop);
  out(`Login to [iface: default, target: ${iqn}, portal: ${portalText(portal)}] successful.`);
}

async function logout(cfg, iqn, portal) {
  const sessions = (await liveSessions(cfg)).filter((s) => (!iqn || s.iqn === iqn) && (!portal || s.portal === portal));
  if (sessions.length === 0) throw new Exit(ERR.NO_OBJS_FOUND, 'iscsiadm: No matching sessions found');
  const initiator = readInitiator(cfg);
  let code = 0;
  for (const s of sessions) {
    const what = `[sid: ${s.sid}, target: ${s.iqn}, portal: ${portalText(s.portal)}]`;
    out(`Logging out of session ${what}`);
    try {
      // The target first: if it cannot be told, the session stays whole and a retry finishes it.
      const r = await tellSim(cfg, 'logout', s.iqn, s.portal, initiator);
      if (r.status !== 200) throw new Error(`simulator answered ${r.status}: ${r.body?.error ?? ''}`);
      for (const l of s.luns ?? []) fs.rmSync(linkOf(cfg, s.portal, s.iqn, l.lun), { force: true });
      for (const l of s.luns ?? []) detachLoop(l.loop, l.file);
      fs.rmSync(s.file, { force: true });
      out(`Logout of ${what} successful.`);
    } catch (e) {
      err(`iscsiadm: Could not logout of ${what}.`);
      err(`iscsiadm: initiator reported error (${ERR.LOGOUT} - ${ERR_TEXT[ERR.LOGOUT]})`);
      err(`iscsiadm (stand-in): ${e.message}`);
      code = ERR.LOGOUT;
    }
  }
  if (code) throw new Exit(code);
}

/** Picks up a grown backing file (`losetup -c`), re-attaches a LUN whose loop is gone, re-makes links. */
async function rescan(cfg, iqn, portal) {
  const sessions = (await liveSessions(cfg)).filter((s) => (!iqn || s.iqn === iqn) && (!portal || s.portal === portal));
  if (sessions.length === 0) throw new Exit(ERR.NO_OBJS_FOUND, 'iscsiadm: No session found.');
  for (const s of sessions) {
    out(`Rescanning session [sid: ${s.sid}, target: ${s.iqn}, portal: ${portalText(s.portal)}]`);
    let changed = false;
    for (const l of s.luns ?? []) {
      let reattached = false;
      if (loopIsOurs(l.loop, l.file)) {
        losetup(['-c', l.loop]);
      } else if (fs.existsSync(l.file)) {
        l.loop = attachLoop(l.file);
        reattached = changed = true;
      } else {
        continue;
      }
      const link = linkOf(cfg, s.portal, s.iqn, l.lun);
      if (reattached || !linkExists(link)) makeLink(cfg, link, l.loop);
    }
    if (changed) writeJson(s.file, s);
  }
}

async function sessionMode(cfg, o) {
  const sessions = await liveSessions(cfg);
  if (o['-R']) {
    if (sessions.length === 0) throw new Exit(ERR.NO_OBJS_FOUND, 'iscsiadm: No session found.');
    return rescan(cfg, undefined, undefined);
  }
  if (o['-u']) return logout(cfg, undefined, undefined);
  if (sessions.length === 0) throw new Exit(ERR.NO_OBJS_FOUND, 'iscsiadm: No active sessions.');
  const level = o['-P'] === undefined ? undefined : Number(o['-P']);
  if (level === undefined) {
    for (const s of sessions) out(`tcp: [${s.sid}] ${s.portal},1 ${s.iqn} (non-flash)`);
    return;
  }
  for (const s of sessions) {
    out(`Target: ${s.iqn} (non-flash)`);
    out(`\tCurrent Portal: ${s.portal},1`);
    out(`\tPersistent Portal: ${s.portal},1`);
    out(`\t\tSID: ${s.sid}`);
    out('\t\tiSCSI Session State: LOGGED_IN');
    if (level >= 3) {
      for (const l of s.luns ?? []) {
        out(`\t\t\tscsi0 Channel 00 Id 0 Lun: ${l.lun}`);
        out(`\t\t\t\tAttached scsi disk ${path.basename(l.loop)}\t\tState: running`);
        out(`\t\t\t\t(stand-in: loop device on ${l.file})`);
      }
    }
  }
}

function showNode(cfg, iqn, portal) {
  const nodes = readJsonDir(nodesDir(cfg)).filter((n) => (!iqn || n.iqn === iqn) && (!portal || n.portal === portal));
  if (nodes.length === 0) throw new Exit(ERR.NO_OBJS_FOUND, 'iscsiadm: No records found');
  if (!iqn || !portal) {
    for (const n of nodes) out(`${n.portal},-1 ${n.iqn}`);
    return;
  }
  const n = nodes[0];
  out(`node.name = ${n.iqn}`);
  out(`node.conn[0].address = ${/^\[?(.*?)\]?:\d+$/.exec(n.portal)?.[1] ?? n.portal}`);
  out(`node.conn[0].port = ${/:(\d+)$/.exec(n.portal)?.[1] ?? DEFAULT_PORT}`);
  for (const [k, v] of Object.entries(n.settings ?? {})) out(`${k} = ${/password/i.test(k) ? '********' : v}`);
}

async function nodeMode(cfg, o) {
  const iqn = o['-T'];
  const portal = o['-p'] === undefined ? undefined : normalizePortal(o['-p']);
  const op = o['-o'];
  if (op === 'new') {
    if (!iqn || !portal) throw new Exit(ERR.INVAL, 'iscsiadm: --op=new requires --targetname and --portal');
    // open-iscsi writes the record afresh (settings back to defaults).
    writeJson(nodeFile(cfg, iqn, portal), { iqn, portal, settings: {} });
    out(`New iSCSI node [tcp:[hw=,ip=,net_if=,iscsi_if=default] ${portalText(portal)},-1 ${iqn}] added`);
    return;
  }
  if (op === 'update') {
    const name = o['-n'];
    const value = o['-v'];
    if (!name || value === undefined) throw new Exit(ERR.INVAL, 'iscsiadm: --op=update requires --name and --value');
    if (!/^(node|iface)\.[A-Za-z0-9_.[\]]+$/.test(name)) throw new Exit(ERR.INVAL, `iscsiadm: Cannot modify ${name}. Invalid param name.`);
    const recs = readJsonDir(nodesDir(cfg)).filter((n) => (!iqn || n.iqn === iqn) && (!portal || n.portal === portal));
    if (recs.length === 0) throw new Exit(ERR.NO_OBJS_FOUND, 'iscsiadm: No records found');
    for (const r of recs) writeJson(r.file, { ...r, settings: { ...r.settings, [name]: value } });
    return;
  }
  if (op === 'delete') {
    const recs = readJsonDir(nodesDir(cfg)).filter((n) => (!iqn || n.iqn === iqn) && (!portal || n.portal === portal));
    if (recs.length === 0) throw new Exit(ERR.NO_OBJS_FOUND, 'iscsiadm: No records found');
    const sessions = await liveSessions(cfg);
    for (const r of recs) {
      if (sessions.some((s) => s.iqn === r.iqn && s.portal === r.portal)) {
        throw new Exit(
          ERR.SESS_EXISTS,
          `iscsiadm: This command will remove the record [iface: default, target: ${r.iqn}, portal: ${portalText(r.portal)}], but a session is using it. Logout session then rerun command to remove record.`,
        );
      }
    }
    for (const r of recs) fs.rmSync(r.file, { force: true });
    return;
  }
  if (op !== undefined && op !== 'show') throw new Exit(ERR.INVAL, `iscsiadm: invalid op ${op}`);
  if (o['-l']) {
    if (!iqn || !portal) throw new Exit(ERR.INVAL, 'iscsiadm (stand-in): login needs -T <target> and -p <portal>');
    return login(cfg, iqn, portal);
  }
  if (o['-u']) return logout(cfg, iqn, portal);
  if (o['-R']) return rescan(cfg, iqn, portal);
  return showNode(cfg, iqn, portal);
}

// ------------------------------------------------------------------------------ cleanup

/** Detaches every loop device bound to a file under `dir`; lists what it did. Exit 1 if one stays. */
function cleanup(dir) {
  if (!dir) throw new Exit(ERR.INVAL, 'usage: iscsiadm.mjs --standin-cleanup <backing dir>');
  const root = path.resolve(dir);
  const under = (f) => f === root || f.startsWith(`${root}/`);
  const bound = () => {
    const r = losetup(['--list', '--json', '--output', 'NAME,BACK-FILE']);
    if (r.code !== 0) throw new Exit(ERR.GENERIC, `losetup --list failed (exit ${r.code}): ${r.stderr.trim()}`);
    if (!r.stdout.trim()) return [];
    return JSON.parse(r.stdout).loopdevices
      .map((d) => ({ name: d.name, file: String(d['back-file'] ?? '').replace(/ \(deleted\)$/, '') }))
      .filter((d) => under(d.file));
  };
  for (const d of bound()) {
    const r = losetup(['-d', d.name]);
    out(r.code === 0 ? `detached ${d.name} (${d.file})` : `cannot detach ${d.name} (${d.file}): ${r.stderr.trim()}`);
  }
  const left = bound();
  for (const d of left) err(`still attached: ${d.name} (${d.file}); is it mounted? (autoclear: detached at unmount)`);
  if (left.length > 0) throw new Exit(ERR.GENERIC);
}

// ------------------------------------------------------------------------------ main

async function main(argv) {
  if (argv[0] === '--standin-cleanup') return cleanup(argv[1]);
  const o = parseArgs(argv);
  const cfg = readConfig();
  switch (o['-m']) {
    case 'session':
      return sessionMode(cfg, o);
    case 'node':
      return nodeMode(cfg, o);
    case 'discovery':
    case 'discoverydb':
      throw new Exit(ERR.INVAL, 'iscsiadm (stand-in): discovery is not simulated; the node driver logs in to the targets Datera names');
    case undefined:
      throw new Exit(ERR.INVAL, 'iscsiadm: no mode specified.');
    default:
      throw new Exit(ERR.INVAL, `iscsiadm: invalid mode '${o['-m']}' (the stand-in knows session and node)`);
  }
}

/** Run as a command (not when a spec imports the helpers above). */
function invokedDirectly() {
  try {
    return !!process.argv[1] && fs.realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

if (invokedDirectly()) {
  try {
    await main(process.argv.slice(2));
    process.exitCode = 0;
  } catch (e) {
    if (e instanceof Exit) {
      if (e.message) err(e.message);
      process.exitCode = e.code;
    } else {
      err(`iscsiadm (stand-in): ${e?.stack ?? e}`);
      process.exitCode = ERR.INTERNAL;
    }
  }
}
