// SPDX-License-Identifier: Apache-2.0
// The vocabulary of volume settings shared by AppTemplates (YAML), StorageClass parameters
// (strings) and PVC annotation overrides (strings): one canonical name per setting, the value
// rules with their Datera API ranges, the StorageClass alias table (Datera CSI names and the
// legacy flex names), and ParameterError. Pure functions, no I/O.
//
// Every "problem" string produced here reads after the name of the thing being checked:
//   `${label} ${problem}`  ->  `StorageClass "gold" parameter "replica" must be an integer 1..5, got "7"`

import type { PlacementMode, SnapshotInterval, SnapshotPolicy } from '../datera/types.js';
import { TENANT_PATH_RE, TENANT_PATH_RULE } from '../datera/names.js';
import { GIB, bytesToGiBCeil, parseQuantity } from './quantity.js';

// ---------------------------------------------------------------------------------------------
// Limits of the Datera API (v2.1 schema) that the provisioner enforces before calling Datera.

/** Name rule for app instances, volumes, templates, IP pools, placement and snapshot policies. */
export const DATERA_NAME_RE = /^[a-zA-Z_][a-zA-Z0-9_\-.]{2,63}$/;
export const DATERA_NAME_RULE =
  'a Datera name (3-64 characters of letters, digits, "_", "-", ".", starting with a letter or "_")';

export const REPLICAS_MIN = 1;
export const REPLICAS_MAX = 5;
export const IOPS_MAX = 10_000_000;
/** KiB/s */
export const BANDWIDTH_MAX = 10_240_000;
export const SIZE_MIN_GIB = 1;
export const SIZE_MAX_GIB = 32_768;
export const RETENTION_MIN = 1;
export const RETENTION_MAX = 256;
/** Used when neither the claim, the StorageClass nor the AppTemplate gives a size (Datera CSI's default). */
export const DEFAULT_SIZE_GIB = 16;
export const DEFAULT_REPLICAS = 3;
export const DEFAULT_FS_TYPE: FsType = 'xfs';

export const PLACEMENT_MODES: readonly PlacementMode[] = ['hybrid', 'single_flash', 'all_flash'];
export const FS_TYPES = ['xfs', 'ext4'] as const;
export type FsType = (typeof FS_TYPES)[number];
export const SNAPSHOT_INTERVALS: readonly SnapshotInterval[] = [
  '1min', '2min', '15min', '1hour', '1day', '1week', '1month', '1year',
];

// ---------------------------------------------------------------------------------------------

/**
 * A StorageClass parameter, claim annotation, claim field or template reference that cannot be
 * turned into a Datera request. Final: retrying with the same input fails the same way, so the
 * controller reports it (event ProvisioningFailed) and waits for the input to change.
 */
export class ParameterError extends Error {
  readonly code = 'INVALID_PARAMETER' as const;
  /** The parameter, annotation or field at fault, spelled as the user wrote it. */
  readonly parameter: string;
  /** What would have been accepted (a value rule or a list of names). */
  readonly allowed?: string;

  constructor(parameter: string, message: string, allowed?: string) {
    super(message);
    this.name = 'ParameterError';
    this.parameter = parameter;
    if (allowed !== undefined) this.allowed = allowed;
  }
}

// ---------------------------------------------------------------------------------------------
// Value rules.

export type Checked<T> = { ok: true; value: T } | { ok: false; problem: string };

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

export function integerKind(min: number, max: number, unit = ''): ValueKind<number> {
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

export function enumKind<T extends string>(values: readonly T[]): ValueKind<T> {
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
export const TEMPLATE_NAME_RE = /^[a-zA-Z0-9](?:[a-zA-Z0-9_.-]{0,61}[a-zA-Z0-9])?$/;
export const TEMPLATE_NAME = patternKind(
  TEMPLATE_NAME_RE,
  'a template name (1-63 characters of letters, digits, "_", "-", ".", starting and ending with a letter or digit)',
);

/** Datera tenant path as sent in the `tenant` header. */
export const TENANT = patternKind(TENANT_PATH_RE, TENANT_PATH_RULE);

/** Kubernetes object names: Secret (DNS subdomain) and namespace (DNS label). */
export const SECRET_NAME = patternKind(
  /^(?=.{1,253}$)[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*$/,
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
// Settings: the normalised form every layer (built-in, AppTemplate, StorageClass, annotation)
// is reduced to before the layers are merged.

/** One layer's worth of volume settings; a key that is absent is "not set by this layer". */
export interface Settings {
  replicas?: number;
  placementMode?: PlacementMode;
  placementPolicy?: string;
  ipPool?: string;
  fsType?: FsType;
  tenant?: string;
  dateraTemplate?: string;
  disableTemplateOverride?: boolean;
  /** Size used when the claim has no request. */
  defaultSizeGiB?: number;
  totalIopsMax?: number;
  readIopsMax?: number;
  writeIopsMax?: number;
  totalBandwidthMax?: number;
  readBandwidthMax?: number;
  writeBandwidthMax?: number;
  iopsPerGiB?: number;
  bandwidthPerGiB?: number;
  snapshotPolicies?: SnapshotPolicy[];
}

export type ScalarField = Exclude<keyof Settings, 'snapshotPolicies'>;

/** Rule and AppTemplate key (also the annotation key `datera.io/<key>`) of each scalar setting. */
export const FIELDS: { readonly [F in ScalarField]-?: { key: string; kind: ValueKind<NonNullable<Settings[F]>> } } = {
  replicas: { key: 'replicas', kind: REPLICAS },
  placementMode: { key: 'placement.mode', kind: PLACEMENT_MODE },
  placementPolicy: { key: 'placement.policy', kind: DATERA_NAME },
  ipPool: { key: 'ipPool', kind: DATERA_NAME },
  fsType: { key: 'fsType', kind: FS_TYPE },
  tenant: { key: 'tenant', kind: TENANT },
  dateraTemplate: { key: 'dateraTemplate', kind: DATERA_NAME },
  disableTemplateOverride: { key: 'disableTemplateOverride', kind: BOOLEAN },
  defaultSizeGiB: { key: 'defaultSize', kind: CLASS_SIZE },
  totalIopsMax: { key: 'qos.totalIopsMax', kind: IOPS },
  readIopsMax: { key: 'qos.readIopsMax', kind: IOPS },
  writeIopsMax: { key: 'qos.writeIopsMax', kind: IOPS },
  totalBandwidthMax: { key: 'qos.totalBandwidthMax', kind: BANDWIDTH },
  readBandwidthMax: { key: 'qos.readBandwidthMax', kind: BANDWIDTH },
  writeBandwidthMax: { key: 'qos.writeBandwidthMax', kind: BANDWIDTH },
  iopsPerGiB: { key: 'qos.iopsPerGiB', kind: IOPS_PER_GIB },
  bandwidthPerGiB: { key: 'qos.bandwidthPerGiB', kind: BANDWIDTH_PER_GIB },
};

/** QoS settings in AppTemplate spelling (the keys under `qos:`). */
export const QOS_KEYS = [
  'totalIopsMax', 'readIopsMax', 'writeIopsMax',
  'totalBandwidthMax', 'readBandwidthMax', 'writeBandwidthMax',
  'iopsPerGiB', 'bandwidthPerGiB',
] as const;
export type QosKey = (typeof QOS_KEYS)[number];

/** Settings that describe the Datera volume itself; a Datera-side app_template decides them all. */
export const VOLUME_FIELDS: readonly (keyof Settings)[] = [
  'replicas', 'placementMode', 'placementPolicy', 'ipPool', ...QOS_KEYS, 'snapshotPolicies',
];

/**
 * Keys a template may list in `overridable`, i.e. that a claim annotation `datera.io/<key>` may
 * change. Sizes, tenant, snapshot policies and the Datera-side template are never overridable:
 * they are the admin's guard rails.
 */
export const OVERRIDE_KEYS = [
  'replicas', 'placement.mode', 'placement.policy', 'ipPool', 'fsType',
  ...QOS_KEYS.map((k) => `qos.${k}` as const),
] as const;
export type OverrideKey = (typeof OVERRIDE_KEYS)[number];
/** Shorthands accepted in `overridable`, expanded when the template is parsed. */
export const OVERRIDE_GROUPS: Readonly<Record<string, readonly OverrideKey[]>> = {
  qos: OVERRIDE_KEYS.filter((k) => k.startsWith('qos.')),
  placement: ['placement.mode', 'placement.policy'],
};

const FIELD_BY_KEY: ReadonlyMap<string, ScalarField> = new Map(
  (Object.keys(FIELDS) as ScalarField[]).map((f) => [FIELDS[f].key, f]),
);

export function fieldOfOverrideKey(key: OverrideKey): ScalarField {
  const f = FIELD_BY_KEY.get(key);
  if (f === undefined) throw new Error(`BUG: override key ${key} has no field`);
  return f;
}

/** Where a setting came from, for messages: `desc` reads as a noun, `param` goes into ParameterError. */
export interface Source {
  desc: string;
  param: string;
  /** Index of the layer that set it, filled in when layers are merged (higher = later). */
  layer?: number;
}

/** A layer: its settings plus the source of each one it sets. */
export interface Layer {
  settings: Settings;
  sources: Partial<Record<keyof Settings, Source>>;
}

// ---------------------------------------------------------------------------------------------
// StorageClass parameters.

type ClassTarget = ScalarField | 'template' | 'secretName' | 'secretNamespace';

/**
 * Every accepted StorageClass parameter, grouped by what it sets. Datera CSI spelling first,
 * then the legacy flex (2016-2018 guide) spelling.
 */
export const STORAGE_CLASS_PARAMETERS: ReadonlyArray<{ readonly name: string; readonly target: ClassTarget }> = [
  { name: 'template', target: 'template' },
  { name: 'appTemplate', target: 'template' },
  { name: 'replica_count', target: 'replicas' },
  { name: 'replica', target: 'replicas' },
  { name: 'placement_mode', target: 'placementMode' },
  { name: 'placementMode', target: 'placementMode' },
  { name: 'placement_policy', target: 'placementPolicy' },
  { name: 'placementPolicy', target: 'placementPolicy' },
  { name: 'ip_pool', target: 'ipPool' },
  { name: 'ipPool', target: 'ipPool' },
  { name: 'total_iops_max', target: 'totalIopsMax' },
  { name: 'maxIops', target: 'totalIopsMax' },
  { name: 'read_iops_max', target: 'readIopsMax' },
  { name: 'write_iops_max', target: 'writeIopsMax' },
  { name: 'total_bandwidth_max', target: 'totalBandwidthMax' },
  { name: 'maxBW', target: 'totalBandwidthMax' },
  { name: 'read_bandwidth_max', target: 'readBandwidthMax' },
  { name: 'write_bandwidth_max', target: 'writeBandwidthMax' },
  { name: 'iops_per_gb', target: 'iopsPerGiB' },
  { name: 'bandwidth_per_gb', target: 'bandwidthPerGiB' },
  { name: 'fs_type', target: 'fsType' },
  { name: 'fsType', target: 'fsType' },
  { name: 'csi.storage.k8s.io/fstype', target: 'fsType' },
  { name: 'datera_template', target: 'dateraTemplate' },
  { name: 'dateraTemplate', target: 'dateraTemplate' },
  { name: 'disable_template_override', target: 'disableTemplateOverride' },
  { name: 'tenant', target: 'tenant' },
  { name: 'secretName', target: 'secretName' },
  { name: 'secretNamespace', target: 'secretNamespace' },
  { name: 'size', target: 'defaultSizeGiB' },
];

const CLASS_PARAMETER_TARGET: ReadonlyMap<string, ClassTarget> = new Map(
  STORAGE_CLASS_PARAMETERS.map((p) => [p.name, p.target]),
);
export const STORAGE_CLASS_PARAMETER_NAMES: readonly string[] = STORAGE_CLASS_PARAMETERS.map((p) => p.name);

const OTHER_KINDS: Readonly<Record<'template' | 'secretName' | 'secretNamespace', ValueKind<string>>> = {
  template: TEMPLATE_NAME,
  secretName: SECRET_NAME,
  secretNamespace: NAMESPACE_NAME,
};

/** What a StorageClass's parameters say, normalised. */
export interface ClassParameters extends Layer {
  /** AppTemplate name and the parameter spelling that named it. */
  template?: { name: string; param: string };
  secretName?: string;
  secretNamespace?: string;
}

/**
 * Normalises StorageClass parameters. An empty (or blank) value counts as "not set", so that
 * `template: ""` in an old class means "no template". Two spellings of one setting must agree.
 * Throws ParameterError for an unknown parameter, a bad value or disagreeing aliases.
 */
export function parseClassParameters(className: string, parameters: Readonly<Record<string, string>>): ClassParameters {
  const out: ClassParameters = { settings: {}, sources: {} };
  const seen = new Map<ClassTarget, { param: string; value: unknown }>();
  const label = (param: string): string => `StorageClass "${className}" parameter "${param}"`;

  for (const [param, raw] of Object.entries(parameters)) {
    const target = CLASS_PARAMETER_TARGET.get(param);
    if (target === undefined) {
      const hint = suggest(param, STORAGE_CLASS_PARAMETER_NAMES);
      const allowed = STORAGE_CLASS_PARAMETER_NAMES.join(', ');
      throw new ParameterError(
        param,
        `StorageClass "${className}" has unknown parameter "${param}"${hint ? ` (did you mean "${hint}"?)` : ''}; allowed parameters: ${allowed}`,
        allowed,
      );
    }
    if (typeof raw !== 'string') {
      throw new ParameterError(param, `${label(param)} must be a string, got ${describe(raw)}`, 'a string');
    }
    if (raw.trim() === '') continue;

    const kind: ValueKind<unknown> =
      target === 'template' || target === 'secretName' || target === 'secretNamespace'
        ? OTHER_KINDS[target]
        : (FIELDS[target].kind as ValueKind<unknown>);
    const checked = kind.fromString(raw);
    if (!checked.ok) throw new ParameterError(param, `${label(param)} ${checked.problem}`, kind.allowed);

    const earlier = seen.get(target);
    if (earlier !== undefined) {
      if (earlier.value !== checked.value) {
        throw new ParameterError(
          param,
          `StorageClass "${className}" parameters "${earlier.param}" and "${param}" set the same thing but disagree ` +
            `(${describe(parameters[earlier.param])} vs ${describe(raw)}); set only one of them`,
          `only one of "${earlier.param}", "${param}", or both with the same value`,
        );
      }
      continue;
    }
    seen.set(target, { param, value: checked.value });

    if (target === 'template') out.template = { name: checked.value as string, param };
    else if (target === 'secretName') out.secretName = checked.value as string;
    else if (target === 'secretNamespace') out.secretNamespace = checked.value as string;
    else {
      (out.settings as Record<string, unknown>)[target] = checked.value;
      out.sources[target] = { desc: label(param), param };
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Claim annotation overrides.

/** Claims override template settings with annotations `datera.io/<key>`, e.g. `datera.io/replicas: "2"`. */
export const OVERRIDE_ANNOTATION_PREFIX = 'datera.io/';

/** AppTemplate keys (top level and dotted), used to recognise override attempts on keys that are never overridable. */
export const TEMPLATE_KEYS = [
  'name', 'description', 'replicas', 'placement', 'placement.mode', 'placement.policy', 'ipPool', 'tenant', 'qos',
  ...QOS_KEYS.map((k) => `qos.${k}`),
  'snapshotPolicies', 'fsType', 'defaultSize', 'minSize', 'maxSize', 'dateraTemplate', 'disableTemplateOverride',
  'overridable', 'qosOverrideMax',
] as const;

/**
 * Reads the claim's override annotations. An annotation `datera.io/<key>` is an override attempt
 * when <key> is an AppTemplate key (or looks like one: `qos.*`, `placement.*`) or a StorageClass
 * parameter name; it is accepted only when the template lists <key> in `overridable`. Other
 * `datera.io/` annotations (e.g. ones the controller itself writes) are not overrides and are
 * left alone. Throws ParameterError naming the annotation and the keys that are allowed.
 */
export function parseClaimOverrides(
  annotations: Readonly<Record<string, string>>,
  template: { name: string; overridable: readonly OverrideKey[] } | undefined,
  className: string,
): Layer {
  const layer: Layer = { settings: {}, sources: {} };
  const allowedKeys = template?.overridable ?? [];
  const allowedText = allowedKeys.length > 0 ? allowedKeys.join(', ') : 'none';
  const refuse = (annotation: string, why: string): never => {
    const scope =
      template === undefined
        ? `StorageClass "${className}" names no AppTemplate, so claims may not override any setting`
        : allowedKeys.length === 0
          ? `template "${template.name}" allows no overrides (its "overridable" list is empty)`
          : `template "${template.name}" allows overriding only: ${allowedText}`;
    throw new ParameterError(annotation, `claim annotation "${annotation}" ${why}: ${scope}`, allowedText);
  };

  for (const [annotation, raw] of Object.entries(annotations)) {
    if (!annotation.startsWith(OVERRIDE_ANNOTATION_PREFIX)) continue;
    const key = annotation.slice(OVERRIDE_ANNOTATION_PREFIX.length);
    if ((OVERRIDE_KEYS as readonly string[]).includes(key)) {
      if (!allowedKeys.includes(key as OverrideKey)) refuse(annotation, `may not override ${key}`);
      const field = fieldOfOverrideKey(key as OverrideKey);
      const kind = FIELDS[field].kind as ValueKind<unknown>;
      const checked = typeof raw === 'string' ? kind.fromString(raw) : problem(kind.allowed, raw);
      if (!checked.ok) throw new ParameterError(annotation, `claim annotation "${annotation}" ${checked.problem}`, kind.allowed);
      (layer.settings as Record<string, unknown>)[field] = checked.value;
      layer.sources[field] = { desc: `claim annotation "${annotation}"`, param: annotation };
      continue;
    }
    if ((TEMPLATE_KEYS as readonly string[]).includes(key) || key.startsWith('qos.') || key.startsWith('qosOverrideMax.') || key.startsWith('placement.')) {
      refuse(annotation, `is not an overridable key`);
    }
    const target = CLASS_PARAMETER_TARGET.get(key);
    if (target !== undefined) {
      const canonical = target in FIELDS ? FIELDS[target as ScalarField].key : undefined;
      const hint =
        canonical !== undefined && (OVERRIDE_KEYS as readonly string[]).includes(canonical)
          ? ` (override annotations use AppTemplate keys: did you mean "${OVERRIDE_ANNOTATION_PREFIX}${canonical}"?)`
          : '';
      refuse(annotation, `is a StorageClass parameter, not an override key${hint}`);
    }
  }
  return layer;
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
