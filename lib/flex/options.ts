// SPDX-License-Identifier: Apache-2.0
// Pure decoding of what kubelet hands the driver: the options JSON (system keys, the PV's
// flexVolume.options, base64 secrets on mount) into typed requests. No I/O.
import { DATERA_NAME_RE, STORAGE_INSTANCE_NAME, VOLUME_NAME } from '../datera/names.js';
import { bytesToGiBCeil } from '../provision/quantity.js';
import { DNS_SUBDOMAIN_RE, FS_TYPES, type FsType } from '../provision/values.js';
import { FlexError } from './reply.js';

/** Option keys kubelet sets (k8s pkg/volume/flexvolume). The PV's own options may overwrite them. */
export const K8S = {
  fsType: 'kubernetes.io/fsType',
  readwrite: 'kubernetes.io/readwrite',
  pvOrVolumeName: 'kubernetes.io/pvOrVolumeName',
  fsGroup: 'kubernetes.io/mounterArgs.FsGroup',
  podName: 'kubernetes.io/pod.name',
  podNamespace: 'kubernetes.io/pod.namespace',
  secretPrefix: 'kubernetes.io/secret/',
} as const;

export type FlexOptions = Record<string, string>;

/** Parses the JSON argument; every value must be a string, as kubelet sends them. */
export function parseOptions(json: string | undefined, callout: string): FlexOptions {
  if (json === undefined || json === '') throw new FlexError(`${callout}: missing the JSON options argument`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    throw new FlexError(`${callout}: the options argument is not valid JSON`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new FlexError(`${callout}: the options argument must be a JSON object`);
  }
  const out: FlexOptions = {};
  for (const [k, v] of Object.entries(parsed)) {
    if (typeof v === 'string') out[k] = v;
    else if (typeof v === 'number' || typeof v === 'boolean') out[k] = String(v);
    else throw new FlexError(`${callout}: option "${k}" must be a string`);
  }
  return out;
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * `kubernetes.io/secret/<key>` values, base64-decoded. kubelet passes these on `mount` only.
 * A value that is not base64 is refused (its key is named, never its content).
 */
export function decodeSecrets(opts: FlexOptions): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(opts)) {
    if (!k.startsWith(K8S.secretPrefix)) continue;
    const key = k.slice(K8S.secretPrefix.length);
    const compact = v.replace(/\s+/g, '');
    if (!BASE64.test(compact)) throw new FlexError(`secret key "${key}" is not base64-encoded as kubelet sends it`);
    out[key] = Buffer.from(compact, 'base64').toString('utf8');
  }
  return out;
}

/** Options safe to log: everything except the secret keys. */
export function loggableOptions(opts: FlexOptions): FlexOptions {
  return Object.fromEntries(Object.entries(opts).filter(([k]) => !k.startsWith(K8S.secretPrefix)));
}

/** An app instance may also be named by its UUID (storage instances and volumes only by DATERA_NAME_RE). */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A PV name is a Kubernetes object name (DNS subdomain): safe as a file name and as a Datera lookup key. */
export const isPvName = (name: string): boolean => DNS_SUBDOMAIN_RE.test(name);

export function checkPvName(name: string): string {
  if (!isPvName(name)) throw new FlexError(`"${name}" is not a valid PersistentVolume name`);
  return name;
}

function checkDateraName(what: string, name: string, allowUuid = false): string {
  if (DATERA_NAME_RE.test(name) || (allowUuid && UUID.test(name))) return name;
  throw new FlexError(`${what} "${name}" is not a valid Datera name`);
}

/** Which Datera volume a PV is, as the provisioner wrote it into flexVolume.options. */
export interface VolumeRef {
  /** PV name: the key of the node's attachment record; the only thing `detach` receives. */
  pvName: string;
  /** Datera app instance: `volumeID`, which our provisioner sets to the PV name. */
  appInstance: string;
  storageInstance: string;
  volume: string;
  /** `tenant` option; undefined means "the credentials' tenant". */
  tenant: string | undefined;
  /** `backstoreServer` option. */
  server: string | undefined;
  /**
   * From the `accessModes` option the provisioner writes: true only when the PV is ReadOnlyMany
   * and nothing else. Then it is mounted read-only everywhere and may be attached on many nodes;
   * every other PV (and one without the option) gets one writing node at a time.
   */
  readOnlyMany: boolean;
}

/** PV option (written by the provisioner) listing the PV's access modes, comma-separated. */
const ACCESS_MODES_OPTION = 'accessModes';
const ACCESS_MODES = ['ReadWriteOnce', 'ReadOnlyMany', 'ReadWriteMany', 'ReadWriteOncePod'] as const;

/**
 * Whether the PV is ReadOnlyMany only. A missing or empty option means ReadWriteOnce (the safe
 * default: single writer). ReadWriteMany also gets a single writer: an xfs/ext4 filesystem on
 * one block device cannot take writes from two nodes. Unknown modes are refused.
 */
function isReadOnlyMany(opts: FlexOptions): boolean {
  const raw = opts[ACCESS_MODES_OPTION];
  if (raw === undefined || raw.trim() === '') return false;
  const modes = raw.split(',').map((m) => m.trim()).filter(Boolean);
  const bad = modes.filter((m) => !(ACCESS_MODES as readonly string[]).includes(m));
  if (bad.length) throw new FlexError(`option ${ACCESS_MODES_OPTION} "${raw}" lists unknown access modes ${bad.join(', ')} (allowed: ${ACCESS_MODES.join(', ')})`);
  return modes.every((m) => m === 'ReadOnlyMany');
}

export function volumeRef(opts: FlexOptions, fallbackName?: string): VolumeRef {
  const pvName = opts[K8S.pvOrVolumeName] || fallbackName;
  if (!pvName) throw new FlexError(`options carry neither ${K8S.pvOrVolumeName} nor volumeID`);
  checkPvName(pvName);
  return {
    pvName,
    appInstance: checkDateraName('volumeID', opts.volumeID || pvName, true),
    storageInstance: checkDateraName('storageInstance', opts.storageInstance || STORAGE_INSTANCE_NAME),
    volume: checkDateraName('volume', opts.volume || VOLUME_NAME),
    tenant: opts.tenant || undefined,
    server: opts.backstoreServer || undefined,
    readOnlyMany: isReadOnlyMany(opts),
  };
}

export interface MountParams {
  fsType: FsType;
  readOnly: boolean;
  /** Group that owns the root of a new filesystem (setgid), from the pod's fsGroup. */
  fsGroup: number | undefined;
}

export function mountParams(opts: FlexOptions): MountParams {
  const fsType = (opts[K8S.fsType] || 'xfs').toLowerCase();
  if (!(FS_TYPES as readonly string[]).includes(fsType)) {
    throw new FlexError(`fsType "${fsType}" is not supported (use ${FS_TYPES.join(' or ')})`);
  }
  const rw = opts[K8S.readwrite] || 'rw';
  if (rw !== 'rw' && rw !== 'ro') throw new FlexError(`${K8S.readwrite} must be "rw" or "ro", not "${rw}"`);
  const gid = opts[K8S.fsGroup];
  let fsGroup: number | undefined;
  if (gid !== undefined && gid !== '') {
    if (!/^\d+$/.test(gid) || Number(gid) > 0xffffffff) throw new FlexError(`${K8S.fsGroup} "${gid}" is not a group id`);
    fsGroup = Number(gid);
  }
  // A ReadOnlyMany PV is mounted read-only whatever kubelet asks: it may be mounted on many nodes.
  return { fsType: fsType as FsType, readOnly: rw === 'ro' || isReadOnlyMany(opts), fsGroup };
}

/** iSCSI CHAP credentials; `in` is the mutual (target -> initiator) pair. */
export interface Chap {
  user: string;
  password: string;
  userIn?: string;
  passwordIn?: string;
}

/** CHAP from a decoded secret or the node settings (same key names); undefined when absent. */
export function chapFrom(src: { chapUser?: string; chapPassword?: string; chapUserIn?: string; chapPasswordIn?: string } | undefined): Chap | undefined {
  if (!src?.chapUser || !src.chapPassword) return undefined;
  const chap: Chap = { user: src.chapUser, password: src.chapPassword };
  if (src.chapUserIn && src.chapPasswordIn) {
    chap.userIn = src.chapUserIn;
    chap.passwordIn = src.chapPasswordIn;
  }
  return chap;
}

/** Bytes (as kubelet passes sizes) to whole GiB, rounded up: Datera sizes volumes in GiB. */
export function bytesToGiB(bytes: string, what: string): number {
  if (!/^\d+$/.test(bytes)) throw new FlexError(`${what} "${bytes}" is not a size in bytes`);
  return Number(bytesToGiBCeil(BigInt(bytes)));
}
