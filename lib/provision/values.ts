// SPDX-License-Identifier: Apache-2.0
// Value rules of volume settings: the Datera API ranges the provisioner enforces before calling
// Datera, and how each kind of value is read from a string (StorageClass parameter, claim
// annotation) or a YAML scalar (AppTemplate), with the message when it cannot be. Also the
// "did you mean" and size renderings every message uses. Pure functions, no I/O.
//
// Every "problem" string produced here reads after the name of the thing being checked:
//   `${label} ${problem}`  ->  `StorageClass "gold" parameter "replica" must be an integer 1..5, got "7"`

import type { PlacementMode, SnapshotInterval, SnapshotPolicy } from '../datera/types.js';
import { DATERA_NAME_RE, DATERA_NAME_RULE, TENANT_PATH_RE, TENANT_PATH_RULE } from '../datera/names.js';
import { GIB, bytesToGiBCeil, parseQuantity } from './quantity.js';

// ---------------------------------------------------------------------------------------------
// Limits of the Datera API (v2.1 schema) that the provisioner enforces before calling Datera.

const REPLICAS_MIN = 1;
const REPLICAS_MAX = 5;
export const IOPS_MAX = 10_000_000;
/** KiB/s */
export const BANDWIDTH_MAX = 10_240_000;
export const SIZE_MIN_GIB = 1;
export const SIZE_MAX_GIB = 32_768;
const RETENTION_MIN = 1;
const RETENTION_MAX = 256;
/** Used when neither the claim, the StorageClass nor the AppTemplate gives a size (Datera CSI's default). */
export const DEFAULT_SIZE_GIB = 16;
export const DEFAULT_REPLICAS = 3;
export const DEFAULT_FS_TYPE: FsType = 'xfs';

const PLACEMENT_MODES: readonly PlacementMode[] = ['hybrid', 'single_flash', 'all_flash'];
export const FS_TYPES = ['xfs', 'ext4'] as const;
export type FsType = (typeof FS_TYPES)[number];
const SNAPSHOT_INTERVALS: readonly SnapshotInterval[] = [
  '1min', '2min', '15min', '1hour', '1day', '1week', '1month', '1year',
];

// ---------------------------------------------------------------------------------------------
// Value rules.

type Checked<T> = { ok: true; value: T } | { ok: false; problem: string };

/** How one kind of value is read from a string (StorageClass, annotation) or a YAML scalar. */
export interface ValueKind<T> {
  /** Human description of the accepted values, e.g. "an integer 1..5". */
  readonly allowed: string;
  fromString(raw: string): Checked<T>;
  fromYaml(value: unknown): Checked<T>;
  /** Whether an already-typed value is acceptable (re-checked at translation time). */
  valid(value: T): boolean;
}

/** Short rendering of an offending value for messages. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'nothing';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (value instanceof Date) return `a timestamp (${Number.isNaN(value.getTime()) ? 'invalid' : value.toISOString()})`;
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return typeof value;
}

function ok<T>(value: T): Checked<T> {
  return { ok: true, value };
}

export function problem(allowed: string, got: unknown): { ok: false; problem: string } {
  return { ok: false, problem: `must be ${allowed}, got ${describe(got)}` };
}

function integerKind(min: number, max: number, unit = ''): ValueKind<number> {
  const allowed = `an integer ${min}..${max}${unit}`;
  const valid = (n: number): boolean => Number.isSafeInteger(n) && n >= min && n <= max;
  return {
    allowed,
    valid,
    fromString(raw) {
      const s = raw.trim();
      if (/^\d{1,16}$/.test(s) && valid(Number(s))) return ok(Number(s));
      return problem(allowed, raw);
    },
    fromYaml(value) {
      return typeof value === 'number' && valid(value) ? ok(value) : problem(allowed, value);
    },
  };
}

function enumKind<T extends string>(values: readonly T[]): ValueKind<T> {
  const allowed = `one of ${values.join(', ')}`;
  const valid = (v: T): boolean => values.includes(v);
  return {
    allowed,
    valid,
    fromString(raw) {
      const s = raw.trim() as T;
      return valid(s) ? ok(s) : problem(allowed, raw);
    },
    fromYaml(value) {
      return typeof value === 'string' && valid(value as T) ? ok(value as T) : problem(allowed, value);
    },
  };
}

function patternKind(re: RegExp, allowed: string): ValueKind<string> {
  const valid = (v: string): boolean => typeof v === 'string' && re.test(v);
  return {
    allowed,
    valid,
    fromString(raw) {
      const s = raw.trim();
      return valid(s) ? ok(s) : problem(allowed, raw);
    },
    fromYaml(value) {
      return typeof value === 'string' && valid(value) ? ok(value) : problem(allowed, value);
    },
  };
}

export const REPLICAS = integerKind(REPLICAS_MIN, REPLICAS_MAX);
export const IOPS = integerKind(0, IOPS_MAX, ' (IOPS, 0 = unlimited)');
export const BANDWIDTH = integerKind(0, BANDWIDTH_MAX, ' (KiB/s, 0 = unlimited)');
export const IOPS_PER_GIB = integerKind(0, IOPS_MAX, ' (IOPS per GiB, 0 = none)');
export const BANDWIDTH_PER_GIB = integerKind(0, BANDWIDTH_MAX, ' (KiB/s per GiB, 0 = none)');
export const RETENTION = integerKind(RETENTION_MIN, RETENTION_MAX);
export const PLACEMENT_MODE = enumKind(PLACEMENT_MODES);
export const FS_TYPE = enumKind(FS_TYPES);
export const SNAPSHOT_INTERVAL = enumKind(SNAPSHOT_INTERVALS);
export const DATERA_NAME = patternKind(DATERA_NAME_RE, DATERA_NAME_RULE);

/** Names of AppTemplates in the ConfigMap (ours, not Datera's). */
const TEMPLATE_NAME_RE = /^[a-zA-Z0-9](?:[a-zA-Z0-9_.-]{0,61}[a-zA-Z0-9])?$/;
export const TEMPLATE_NAME = patternKind(
  TEMPLATE_NAME_RE,
  'a template name (1-63 characters of letters, digits, "_", "-", ".", starting and ending with a letter or digit)',
);

/** Datera tenant path as sent in the `tenant` header. */
export const TENANT = patternKind(TENANT_PATH_RE, TENANT_PATH_RULE);

/**
 * Names of most Kubernetes objects (Secrets, PersistentVolumes): a lower-case RFC 1123 DNS
 * subdomain of at most 253 characters. Also safe as a file name: no "/", never "." or "..".
 */
export const DNS_SUBDOMAIN_RE = /^(?=.{1,253}$)[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*$/;

/** Kubernetes object names: Secret (DNS subdomain) and namespace (DNS label). */
export const SECRET_NAME = patternKind(
  DNS_SUBDOMAIN_RE,
  'a Kubernetes Secret name (lower-case DNS subdomain, at most 253 characters)',
);
export const NAMESPACE_NAME = patternKind(
  /^(?=.{1,63}$)[a-z0-9](?:[-a-z0-9]*[a-z0-9])?$/,
  'a Kubernetes namespace name (lower-case DNS label, at most 63 characters)',
);

export const BOOLEAN: ValueKind<boolean> = {
  allowed: '"true" or "false"',
  valid: (v) => typeof v === 'boolean',
  fromString(raw) {
    const s = raw.trim().toLowerCase();
    if (s === 'true' || s === '1') return ok(true);
    if (s === 'false' || s === '0') return ok(false);
    return problem(this.allowed, raw);
  },
  fromYaml(value) {
    return typeof value === 'boolean' ? ok(value) : problem('true or false', value);
  },
};

/** True when the quantity text carries a unit (suffix or exponent), i.e. is not a bare byte count. */
function hasUnit(text: string): boolean {
  return /[a-zA-Z]$/.test(text);
}

/**
 * A size written in YAML: a quantity string with a unit ("16Gi", "500G", "1e12"), as bytes.
 * A bare number is refused because as a Kubernetes quantity it would mean bytes, which is never
 * what an admin writing `defaultSize: 16` means.
 */
export const YAML_SIZE: ValueKind<bigint> = {
  allowed: 'a Kubernetes quantity with a unit, e.g. 16Gi, 500G or 1Ti',
  valid: (v) => typeof v === 'bigint' && v > 0n,
  fromString(raw) {
    const s = raw.trim();
    const bytes = hasUnit(s) ? parseQuantity(s) : undefined;
    return bytes !== undefined && bytes > 0n ? ok(bytes) : problem(this.allowed, raw);
  },
  fromYaml(value) {
    if (typeof value === 'number') {
      return { ok: false, problem: `must be ${this.allowed}, got the bare number ${value} (that would mean bytes)` };
    }
    return typeof value === 'string' ? this.fromString(value) : problem(this.allowed, value);
  },
};

/**
 * StorageClass `size` (legacy flex): a whole number of GiB ("16"), or a quantity with a unit
 * ("16Gi", "20G", rounded up to whole GiB); 1..32768 GiB. The result is GiB.
 */
export const CLASS_SIZE: ValueKind<number> = {
  allowed: `a whole number of GiB or a quantity with a unit such as 16Gi, within ${SIZE_MIN_GIB}..${SIZE_MAX_GIB} GiB`,
  valid: (v) => Number.isSafeInteger(v) && v >= SIZE_MIN_GIB && v <= SIZE_MAX_GIB,
  fromString(raw) {
    const s = raw.trim();
    let gib: bigint | undefined;
    if (/^\d{1,16}$/.test(s)) gib = BigInt(s);
    else if (hasUnit(s)) {
      const bytes = parseQuantity(s);
      if (bytes !== undefined && bytes > 0n) gib = bytesToGiBCeil(bytes);
    }
    return gib !== undefined && gib >= BigInt(SIZE_MIN_GIB) && gib <= BigInt(SIZE_MAX_GIB)
      ? ok(Number(gib))
      : problem(this.allowed, raw);
  },
  fromYaml(value) {
    return typeof value === 'string' ? this.fromString(value) : problem(this.allowed, value);
  },
};

/** Snapshot policy start time: ISO 8601 date-time with a zone, as the Datera schema asks. */
const START_TIME_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})$/;
export const START_TIME: ValueKind<string> = {
  allowed: 'an ISO 8601 date-time with a zone, e.g. "2024-01-01T02:00:00Z"',
  valid: (v) => typeof v === 'string' && START_TIME_RE.test(v) && !Number.isNaN(Date.parse(v)),
  fromString(raw) {
    const s = raw.trim();
    return this.valid(s) ? ok(s) : problem(this.allowed, raw);
  },
  fromYaml(value) {
    // An unquoted YAML timestamp arrives as a Date.
    if (value instanceof Date) {
      return Number.isNaN(value.getTime()) ? problem(this.allowed, value) : ok(value.toISOString());
    }
    return typeof value === 'string' ? this.fromString(value) : problem(this.allowed, value);
  },
};

export function isValidSnapshotPolicy(p: SnapshotPolicy): boolean {
  return (
    DATERA_NAME.valid(p.name) &&
    SNAPSHOT_INTERVAL.valid(p.interval) &&
    RETENTION.valid(p.retention_count) &&
    (p.start_time === undefined || START_TIME.valid(p.start_time))
  );
}

// ---------------------------------------------------------------------------------------------

/** Closest candidate within a small edit distance (or equal ignoring case and "_"/"-"), for "did you mean". */
export function suggest(word: string, candidates: readonly string[]): string | undefined {
  const squash = (s: string): string => s.toLowerCase().replace(/[_\-.]/g, '');
  let best: string | undefined;
  let bestScore = Infinity;
  for (const c of candidates) {
    const score = squash(c) === squash(word) ? 0 : editDistance(word.toLowerCase(), c.toLowerCase());
    if (score < bestScore) {
      bestScore = score;
      best = c;
    }
  }
  return bestScore <= Math.max(1, Math.min(3, Math.floor(word.length / 4))) ? best : undefined;
}

/** Optimal-string-alignment distance: insertions, deletions, substitutions and adjacent swaps. */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  const at = (i: number, j: number): number => d[i]?.[j] ?? Infinity;
  for (let i = 1; i <= a.length; i++) {
    const row = d[i] as number[];
    for (let j = 1; j <= b.length; j++) {
      let v = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, at(i - 2, j - 2) + 1);
      row[j] = v;
    }
  }
  return at(a.length, b.length);
}

/** Whole-GiB rendering of a byte count for messages ("10Gi", or "1073741825 bytes"). */
export function formatBytes(bytes: bigint): string {
  return bytes % GIB === 0n ? `${bytes / GIB}Gi` : `${bytes} bytes`;
}
