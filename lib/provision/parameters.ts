// SPDX-License-Identifier: Apache-2.0
// The vocabulary of volume settings shared by AppTemplates (YAML), StorageClass parameters
// (strings) and PVC annotation overrides (strings): one canonical name and value rule per
// setting (FIELDS), the AppTemplate key lists, the StorageClass alias table (Datera CSI names
// and the legacy flex names), the parsers of StorageClass parameters and claim overrides, and
// ParameterError. The value rules themselves live in values.ts. Pure functions, no I/O.

import type { PlacementMode, SnapshotPolicy } from '../datera/types.js';
import {
  BOOLEAN,
  CLASS_SIZE,
  DATERA_NAME,
  FS_TYPE,
  IOPS,
  IOPS_PER_GIB,
  BANDWIDTH,
  BANDWIDTH_PER_GIB,
  NAMESPACE_NAME,
  PLACEMENT_MODE,
  REPLICAS,
  SECRET_NAME,
  TEMPLATE_NAME,
  TENANT,
  describe,
  problem,
  suggest,
  type FsType,
  type ValueKind,
} from './values.js';

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

function fieldOfOverrideKey(key: OverrideKey): ScalarField {
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

/** Sets `obj[key]` only when `value` is defined: an absent key means "not set by this layer". */
export function setIf<T extends object, K extends keyof T>(obj: T, key: K, value: T[K] | undefined): void {
  if (value !== undefined) obj[key] = value;
}

// ---------------------------------------------------------------------------------------------
// StorageClass parameters.

type ClassTarget = ScalarField | 'template' | 'secretName' | 'secretNamespace';

/**
 * Every accepted StorageClass parameter, grouped by what it sets. Datera CSI spelling first,
 * then the legacy flex (2016-2018 guide) spelling.
 */
const STORAGE_CLASS_PARAMETERS: ReadonlyArray<{ readonly name: string; readonly target: ClassTarget }> = [
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
const STORAGE_CLASS_PARAMETER_NAMES: readonly string[] = STORAGE_CLASS_PARAMETERS.map((p) => p.name);

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
const OVERRIDE_ANNOTATION_PREFIX = 'datera.io/';

/**
 * Top-level keys of one AppTemplate entry in templates.yaml. The template parser refuses any
 * other key; claim override parsing uses them (plus the `qos.*`, `qosOverrideMax.*` and
 * `placement.*` prefixes) to recognise override attempts on keys that are never overridable.
 */
export const TEMPLATE_KEYS = [
  'name', 'description', 'replicas', 'placement', 'ipPool', 'tenant', 'qos', 'snapshotPolicies', 'fsType',
  'defaultSize', 'minSize', 'maxSize', 'dateraTemplate', 'disableTemplateOverride', 'overridable', 'qosOverrideMax',
  'applyToExisting',
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

