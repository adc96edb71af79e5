// SPDX-License-Identifier: Apache-2.0
// AppTemplates + StorageClass + claim  ->  one Datera app-instance create request and the
// parameters the PV needs. Pure: no Kubernetes, no HTTP, no clock, no randomness; the same
// input always yields the same output, so a retried provision sends the same request.
//
// PRECEDENCE (lowest first; a later layer replaces a setting an earlier layer set):
//   1. built-in defaults       replicas 3, fsType xfs, size 16 GiB
//   2. controller defaults     TranslateInput.defaults (fsType, tenant)
//   3. the AppTemplate         named by the StorageClass parameter `template` / `appTemplate`
//   4. StorageClass parameters every other parameter (CSI or legacy flex spelling)
//   5. claim annotations       `datera.io/<key>`, only for keys the template lists in `overridable`;
//                              a QoS override may only TIGHTEN the limit layers 3-4 set (see
//                              checkQosOverrides) unless the template's `qosOverrideMax` allows more
// The claim's storage request, when present, always decides the size; AppTemplate
// minSize/maxSize bound it. Absolute and per-GiB QoS limits are merged per key first, then
// combined: total = min(absolute, perGiB x size), where an absolute of 0 (or unset) is no cap.
//
// DEFAULTS: replicas 3 and fsType xfs are always explicit. placement_mode, placement_policy and
// ip_pool are sent only when some layer sets them, so Datera applies its own defaults (hybrid,
// "default", "default"), and placement_policy is never sent to clusters that predate it unless
// asked for. QoS keys that are 0 (unlimited) are left out; no key -> no performance_policy.
//
// DATERA-SIDE TEMPLATE (`dateraTemplate` / `datera_template`): the body references
// /app_templates/<name> and carries no storage_instances; only the size is sent, as
// template_override (unless `disable_template_override`). The Datera template then decides
// replicas, placement, IP pool, QoS and snapshot policies, so setting any of those alongside it
// in any layer is an error rather than a silently ignored setting.

import { parseYaml } from '../yaml.js';
import type {
  AppInstanceCreate,
  PerformancePolicy,
  PlacementMode,
  SnapshotPolicy,
  StorageInstanceSpec,
  VolumeSpec,
} from '../datera/types.js';
import {
  BANDWIDTH_MAX,
  DATERA_NAME,
  DATERA_NAME_RE,
  DATERA_NAME_RULE,
  DEFAULT_FS_TYPE,
  DEFAULT_REPLICAS,
  DEFAULT_SIZE_GIB,
  FIELDS,
  FS_TYPE,
  IOPS_MAX,
  OVERRIDE_GROUPS,
  OVERRIDE_KEYS,
  ParameterError,
  QOS_KEYS,
  RETENTION,
  SIZE_MAX_GIB,
  SIZE_MIN_GIB,
  SNAPSHOT_INTERVAL,
  START_TIME,
  TEMPLATE_NAME,
  TENANT,
  VOLUME_FIELDS,
  YAML_SIZE,
  describe,
  formatBytes,
  isValidSnapshotPolicy,
  parseClaimOverrides,
  parseClassParameters,
  suggest,
  type FsType,
  type Layer,
  type OverrideKey,
  type QosKey,
  type ScalarField,
  type Settings,
  type Source,
  type ValueKind,
} from './parameters.js';
import { bytesToGiBCeil, bytesToGiBFloor } from './quantity.js';

export { parseQuantity } from './quantity.js';
export {
  ParameterError,
  OVERRIDE_ANNOTATION_PREFIX,
  OVERRIDE_KEYS,
  STORAGE_CLASS_PARAMETER_NAMES,
  type FsType,
  type OverrideKey,
} from './parameters.js';

/** Names every driver uses for the single storage instance and volume of an app instance. */
export const STORAGE_INSTANCE_NAME = 'storage-1';
export const VOLUME_NAME = 'volume-1';

// ---------------------------------------------------------------------------------------------
// AppTemplates

/** QoS of a template; IOPS, KiB/s, and per-GiB multipliers. Absent = not set by the template. */
export type QosSpec = { readonly [K in QosKey]?: number };

/** One AppTemplate from the ConfigMap, validated and normalised. */
export interface AppTemplateSpec {
  readonly name: string;
  readonly description?: string;
  readonly replicas?: number;
  readonly placement?: { readonly mode?: PlacementMode; readonly policy?: string };
  readonly ipPool?: string;
  readonly tenant?: string;
  readonly qos: QosSpec;
  /** Already in Datera API form (snake_case); empty when the template has none. */
  readonly snapshotPolicies: readonly SnapshotPolicy[];
  readonly fsType?: FsType;
  /** Whole GiB (defaultSize rounded up). */
  readonly defaultSizeGiB?: number;
  /** Smallest provisioned size in whole GiB (minSize rounded up). */
  readonly minSizeGiB?: number;
  /** Largest provisioned size in whole GiB (maxSize rounded down). */
  readonly maxSizeGiB?: number;
  readonly dateraTemplate?: string;
  readonly disableTemplateOverride?: boolean;
  /** Keys claim annotations may override; shorthands expanded, in OVERRIDE_KEYS order. */
  readonly overridable: readonly OverrideKey[];
  /**
   * Per QoS key, the most a claim annotation may ask for, replacing the template's (or class's)
   * own limit as the ceiling; 0 = a claim may ask for anything, unlimited included. Absent
   * (the default): a claim may only tighten the limit it was given.
   */
  readonly qosOverrideMax?: QosSpec;
}

export interface TemplateSet {
  templates: ReadonlyMap<string, AppTemplateSpec>;
}

export type ParseResult = { ok: true; set: TemplateSet } | { ok: false; errors: string[] };

const TOP_KEYS = ['templates'] as const;
const TEMPLATE_YAML_KEYS = [
  'name', 'description', 'replicas', 'placement', 'ipPool', 'tenant', 'qos', 'snapshotPolicies', 'fsType',
  'defaultSize', 'minSize', 'maxSize', 'dateraTemplate', 'disableTemplateOverride', 'overridable', 'qosOverrideMax',
] as const;
const PLACEMENT_KEYS = ['mode', 'policy'] as const;
const SNAPSHOT_KEYS = ['name', 'interval', 'retentionCount', 'startTime'] as const;

function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

/** Reports keys of `obj` outside `allowed` as `${label}: unknown key ${prefix}k (did you mean ...); allowed: ...`. */
function unknownKeys(obj: Record<string, unknown>, allowed: readonly string[], label: string, prefix: string, errors: string[]): void {
  for (const k of Object.keys(obj)) {
    if (allowed.includes(k)) continue;
    const hint = suggest(k, allowed);
    errors.push(
      `${label}: unknown key ${prefix}${k}${hint ? ` (did you mean ${prefix}${hint}?)` : ''}; allowed: ${allowed.map((a) => prefix + a).join(', ')}`,
    );
  }
}

/**
 * Largest templates.yaml accepted (bytes of UTF-8). The ConfigMap is parsed synchronously on every
 * replica, on the thread that also renews the leader lease; real template files are a few KiB.
 */
export const TEMPLATES_MAX_BYTES = 256 * 1024;
/**
 * Most values (scalars, lists, mappings) templates.yaml may hold once every alias is counted as a
 * copy of what it names. js-yaml shares aliased objects instead of copying them, so parsing stays
 * linear, but anything that walks the result (validation, logging, a deep copy) would pay the full
 * expansion: a "billion laughs" document is refused here instead.
 */
export const TEMPLATES_MAX_NODES = 100_000;

/** Values in `doc` with aliases expanded, counted until `limit` is passed (work bounded by `limit`). */
function expandedSize(doc: unknown, limit: number): number {
  let n = 1;
  const stack: unknown[] = [doc];
  while (stack.length > 0) {
    const v = stack.pop();
    const children = Array.isArray(v) ? v : isMapping(v) ? Object.values(v) : undefined;
    if (children === undefined) continue;
    n += children.length;
    if (n > limit) return n;
    for (const c of children) if (typeof c === 'object' && c !== null) stack.push(c);
  }
  return n;
}

function readYaml(text: string): { ok: true; doc: unknown } | { ok: false; error: string } {
  if (typeof text === 'string' && Buffer.byteLength(text, 'utf8') > TEMPLATES_MAX_BYTES) {
    return { ok: false, error: `templates.yaml is larger than ${TEMPLATES_MAX_BYTES} bytes; split rarely used templates out or shorten the comments` };
  }
  if (typeof text !== 'string' || text.replace(/#.*$/gm, '').trim() === '') {
    return { ok: false, error: 'templates.yaml is empty; write "templates: []" to define no templates' };
  }
  try {
    const doc = parseYaml(text);
    if (expandedSize(doc, TEMPLATES_MAX_NODES) > TEMPLATES_MAX_NODES) {
      return {
        ok: false,
        error:
          `templates.yaml holds more than ${TEMPLATES_MAX_NODES} values once its aliases (*name) are expanded; ` +
          'each alias counts as a full copy of what it names, so write the settings out or use fewer, smaller aliases',
      };
    }
    return { ok: true, doc };
  } catch (e) {
    const err = e as { reason?: string; mark?: { line?: number; column?: number }; message?: string };
    if (err.mark?.line !== undefined) {
      return {
        ok: false,
        error: `templates.yaml is not valid YAML: ${err.reason ?? 'syntax error'} at line ${err.mark.line + 1}, column ${(err.mark.column ?? 0) + 1}`,
      };
    }
    return { ok: false, error: `templates.yaml is not valid YAML: ${err.message ?? String(e)}` };
  }
}

/**
 * Parses and validates the ConfigMap's `templates.yaml`. Collects every problem rather than
 * stopping at the first; on any error the whole set is refused (the controller keeps its last
 * good set). Messages name the template (or its index), the key and what is allowed.
 */
export function parseTemplates(yamlText: string): ParseResult {
  const read = readYaml(yamlText);
  if (!read.ok) return { ok: false, errors: [read.error] };
  const doc = read.doc;
  if (!isMapping(doc)) {
    return { ok: false, errors: [`templates.yaml must be a mapping with a "templates" list, got ${describe(doc)}`] };
  }
  const errors: string[] = [];
  unknownKeys(doc, TOP_KEYS, 'templates.yaml', '', errors);
  const list = doc['templates'];
  if (!Array.isArray(list)) {
    errors.push(`templates.yaml: "templates" must be a list of templates (write "templates: []" for none), got ${describe(list)}`);
    return { ok: false, errors };
  }

  const templates = new Map<string, AppTemplateSpec>();
  const firstIndex = new Map<string, number>();
  list.forEach((entry, index) => {
    // Duplicates are judged on the written name, whether or not the entries are otherwise valid.
    const name = isMapping(entry) ? entry['name'] : undefined;
    if (typeof name === 'string') {
      const earlier = firstIndex.get(name);
      if (earlier !== undefined) {
        errors.push(`template "${name}": duplicate name (templates[${earlier}] and templates[${index}]); names must be unique`);
      } else {
        firstIndex.set(name, index);
      }
    }
    const spec = parseTemplate(entry, index, errors);
    if (spec !== undefined && !templates.has(spec.name)) templates.set(spec.name, spec);
  });
  return errors.length > 0 ? { ok: false, errors } : { ok: true, set: { templates } };
}

/** One template entry; undefined when it has errors (all pushed to `errors`). */
function parseTemplate(entry: unknown, index: number, errors: string[]): AppTemplateSpec | undefined {
  const before = errors.length;
  if (!isMapping(entry)) {
    errors.push(`templates[${index}] must be a mapping with at least a name, got ${describe(entry)}`);
    return undefined;
  }
  const rawName = entry['name'];
  const label = typeof rawName === 'string' && rawName !== '' ? `template "${rawName}"` : `templates[${index}]`;
  const fail = (msg: string): void => {
    errors.push(`${label}: ${msg}`);
  };
  unknownKeys(entry, TEMPLATE_YAML_KEYS, label, '', errors);

  /** Reads an optional scalar `value` (key path `key`) with `kind`. */
  function read<T>(key: string, value: unknown, kind: ValueKind<T>): T | undefined {
    if (value === undefined) return undefined;
    const c = kind.fromYaml(value);
    if (!c.ok) {
      fail(`${key} ${c.problem}`);
      return undefined;
    }
    return c.value;
  }

  let name: string | undefined;
  if (rawName === undefined) fail('name is required');
  else name = read('name', rawName, TEMPLATE_NAME);

  const spec: {
    -readonly [K in keyof AppTemplateSpec]: AppTemplateSpec[K];
  } = { name: name ?? '', qos: {}, snapshotPolicies: [], overridable: [] };

  const description = entry['description'];
  if (description !== undefined) {
    if (typeof description === 'string') spec.description = description;
    else fail(`description must be a string, got ${describe(description)}`);
  }
  setIf(spec, 'replicas', read('replicas', entry['replicas'], FIELDS.replicas.kind));
  setIf(spec, 'ipPool', read('ipPool', entry['ipPool'], DATERA_NAME));
  setIf(spec, 'tenant', read('tenant', entry['tenant'], TENANT));
  setIf(spec, 'fsType', read('fsType', entry['fsType'], FS_TYPE));
  setIf(spec, 'dateraTemplate', read('dateraTemplate', entry['dateraTemplate'], DATERA_NAME));
  setIf(spec, 'disableTemplateOverride', read('disableTemplateOverride', entry['disableTemplateOverride'], FIELDS.disableTemplateOverride.kind));

  // placement: { mode, policy }
  const placement = entry['placement'];
  if (placement !== undefined) {
    if (!isMapping(placement)) fail(`placement must be a mapping with mode and/or policy, got ${describe(placement)}`);
    else {
      unknownKeys(placement, PLACEMENT_KEYS, label, 'placement.', errors);
      const p: { mode?: PlacementMode; policy?: string } = {};
      setIf(p, 'mode', read('placement.mode', placement['mode'], FIELDS.placementMode.kind));
      setIf(p, 'policy', read('placement.policy', placement['policy'], DATERA_NAME));
      spec.placement = p;
    }
  }

  // qos: { totalIopsMax, ..., iopsPerGiB, bandwidthPerGiB }
  const qos = entry['qos'];
  if (qos !== undefined) {
    if (!isMapping(qos)) fail(`qos must be a mapping of limits, got ${describe(qos)}`);
    else {
      unknownKeys(qos, QOS_KEYS, label, 'qos.', errors);
      const q: { [K in QosKey]?: number } = {};
      for (const k of QOS_KEYS) setIf(q, k, read(`qos.${k}`, qos[k], FIELDS[k].kind));
      spec.qos = q;
    }
  }

  spec.snapshotPolicies = readSnapshotPolicies(entry['snapshotPolicies'], label, errors);

  // Sizes: provisioned sizes are whole GiB, so min rounds up and max rounds down; that keeps the
  // volume's real size within [minSize, maxSize] bytes.
  const defaultBytes = read('defaultSize', entry['defaultSize'], YAML_SIZE);
  const minBytes = read('minSize', entry['minSize'], YAML_SIZE);
  const maxBytes = read('maxSize', entry['maxSize'], YAML_SIZE);
  const limit = BigInt(SIZE_MAX_GIB);
  if (defaultBytes !== undefined) {
    const gib = bytesToGiBCeil(defaultBytes);
    if (gib > limit) fail(`defaultSize ${formatBytes(defaultBytes)} exceeds the Datera maximum of ${SIZE_MAX_GIB}Gi`);
    else spec.defaultSizeGiB = Number(gib);
  }
  if (minBytes !== undefined) {
    const gib = bytesToGiBCeil(minBytes);
    if (gib > limit) fail(`minSize ${formatBytes(minBytes)} exceeds the Datera maximum of ${SIZE_MAX_GIB}Gi`);
    else spec.minSizeGiB = Number(gib);
  }
  if (maxBytes !== undefined) {
    const gib = bytesToGiBFloor(maxBytes);
    if (gib < 1n) fail(`maxSize ${formatBytes(maxBytes)} is below 1Gi, the smallest Datera volume`);
    else spec.maxSizeGiB = Number(gib > limit ? limit : gib);
  }
  const lo = spec.minSizeGiB ?? SIZE_MIN_GIB;
  const hi = spec.maxSizeGiB ?? SIZE_MAX_GIB;
  if (spec.minSizeGiB !== undefined && spec.maxSizeGiB !== undefined && lo > hi) {
    fail(`minSize (${lo}Gi after rounding up) is larger than maxSize (${hi}Gi after rounding down)`);
  } else if (spec.defaultSizeGiB !== undefined && (spec.defaultSizeGiB < lo || spec.defaultSizeGiB > hi)) {
    fail(`defaultSize ${spec.defaultSizeGiB}Gi is outside minSize..maxSize (${lo}Gi..${hi}Gi)`);
  }

  spec.overridable = readOverridable(entry['overridable'], label, errors);

  // qosOverrideMax: { <qos key>: ceiling for claim overrides }; only keys claims may override.
  const overrideMax = entry['qosOverrideMax'];
  if (overrideMax !== undefined) {
    if (!isMapping(overrideMax)) fail(`qosOverrideMax must be a mapping of qos keys to the most a claim may ask for, got ${describe(overrideMax)}`);
    else {
      unknownKeys(overrideMax, QOS_KEYS, label, 'qosOverrideMax.', errors);
      const q: { [K in QosKey]?: number } = {};
      for (const k of QOS_KEYS) {
        const v = read(`qosOverrideMax.${k}`, overrideMax[k], FIELDS[k].kind);
        if (v === undefined) continue;
        if (!spec.overridable.includes(`qos.${k}`)) fail(`qosOverrideMax.${k} has no effect: qos.${k} is not in overridable`);
        q[k] = v;
      }
      spec.qosOverrideMax = q;
    }
  }

  // A Datera-side template decides the volume itself: nothing of that may be set next to it.
  if (spec.dateraTemplate !== undefined) {
    const clashing = [
      spec.replicas !== undefined && 'replicas',
      spec.placement !== undefined && 'placement',
      spec.ipPool !== undefined && 'ipPool',
      Object.keys(spec.qos).length > 0 && 'qos',
      spec.snapshotPolicies.length > 0 && 'snapshotPolicies',
    ].filter((k): k is string => typeof k === 'string');
    if (clashing.length > 0) {
      fail(
        `dateraTemplate "${spec.dateraTemplate}" decides replicas, placement, ipPool, qos and snapshotPolicies, ` +
          `so they may not be set next to it; remove ${clashing.join(', ')}`,
      );
    }
    const volumeOverrides = spec.overridable.filter((k) => k !== 'fsType');
    if (volumeOverrides.length > 0) {
      fail(`with dateraTemplate only fsType may be overridable; remove ${volumeOverrides.join(', ')} from overridable`);
    }
  } else if (spec.disableTemplateOverride === true) {
    fail('disableTemplateOverride applies only together with dateraTemplate');
  }

  return errors.length > before ? undefined : (spec as AppTemplateSpec);
}

function readSnapshotPolicies(value: unknown, label: string, errors: string[]): SnapshotPolicy[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) {
    errors.push(`${label}: snapshotPolicies must be a list of {name, interval, retentionCount, startTime?}, got ${describe(value)}`);
    return [];
  }
  const out: SnapshotPolicy[] = [];
  const names = new Set<string>();
  value.forEach((item, i) => {
    const at = `snapshotPolicies[${i}]`;
    if (!isMapping(item)) {
      errors.push(`${label}: ${at} must be a mapping {name, interval, retentionCount, startTime?}, got ${describe(item)}`);
      return;
    }
    unknownKeys(item, SNAPSHOT_KEYS, label, `${at}.`, errors);
    let good = true;
    const need = <T>(key: string, kind: ValueKind<T>, optional = false): T | undefined => {
      const v = item[key];
      if (v === undefined) {
        if (!optional) {
          errors.push(`${label}: ${at}.${key} is required (${kind.allowed})`);
          good = false;
        }
        return undefined;
      }
      const c = kind.fromYaml(v);
      if (!c.ok) {
        errors.push(`${label}: ${at}.${key} ${c.problem}`);
        good = false;
        return undefined;
      }
      return c.value;
    };
    const name = need('name', DATERA_NAME);
    const interval = need('interval', SNAPSHOT_INTERVAL);
    const retention = need('retentionCount', RETENTION);
    const start = need('startTime', START_TIME, true);
    if (name !== undefined) {
      if (names.has(name)) {
        errors.push(`${label}: ${at}.name "${name}" is used by another snapshot policy of this template`);
        good = false;
      }
      names.add(name);
    }
    if (!good || name === undefined || interval === undefined || retention === undefined) return;
    const policy: SnapshotPolicy = { name, interval, retention_count: retention };
    if (start !== undefined) policy.start_time = start;
    out.push(policy);
  });
  return out;
}

function readOverridable(value: unknown, label: string, errors: string[]): OverrideKey[] {
  if (value === undefined) return [];
  const allowed = [...OVERRIDE_KEYS, ...Object.keys(OVERRIDE_GROUPS)];
  if (!Array.isArray(value)) {
    errors.push(`${label}: overridable must be a list of keys (${allowed.join(', ')}), got ${describe(value)}`);
    return [];
  }
  const chosen = new Set<OverrideKey>();
  for (const item of value) {
    if (typeof item === 'string' && (OVERRIDE_KEYS as readonly string[]).includes(item)) {
      chosen.add(item as OverrideKey);
    } else if (typeof item === 'string' && item in OVERRIDE_GROUPS) {
      for (const k of OVERRIDE_GROUPS[item] ?? []) chosen.add(k);
    } else {
      const hint = typeof item === 'string' ? suggest(item, allowed) : undefined;
      errors.push(
        `${label}: overridable entry ${describe(item)} is not an overridable key${hint ? ` (did you mean ${hint}?)` : ''}; allowed: ${allowed.join(', ')}`,
      );
    }
  }
  return OVERRIDE_KEYS.filter((k) => chosen.has(k));
}

function setIf<T extends object, K extends keyof T>(obj: T, key: K, value: T[K] | undefined): void {
  if (value !== undefined) obj[key] = value;
}

// ---------------------------------------------------------------------------------------------
// Translation

export interface ClaimInput {
  namespace: string;
  name: string;
  uid: string;
  annotations: Record<string, string>;
  /** spec.resources.requests.storage in bytes (see parseQuantity); absent -> default size. */
  requestBytes?: bigint;
  accessModes: string[];
}

export interface TranslateInput {
  /** The PV name, `pvc-<claim uid>`; also the Datera app instance name. */
  pvName: string;
  className: string;
  parameters: Record<string, string>;
  claim: ClaimInput;
  templates: TemplateSet;
  /** Controller-wide defaults, below every AppTemplate and StorageClass. */
  defaults?: { fsType?: string; tenant?: string };
}

/** Everything the PV builder and the node driver need. */
export interface VolumeParams {
  appInstanceName: string;
  sizeGiB: number;
  /** Replica count sent to Datera; 0 when a Datera-side template decides it. */
  replicas: number;
  fsType: string;
  /** AppTemplate (ConfigMap) name, when the class named one. */
  template?: string;
  /** Datera-side app_template name, when one is referenced. */
  dateraTemplate?: string;
  /** Tenant path for the `tenant` header, e.g. "/root/team-a"; absent -> the client's default. */
  tenant?: string;
  ipPool?: string;
  placementMode?: string;
  placementPolicy?: string;
  secretName?: string;
  secretNamespace?: string;
  /** Effective limits sent to Datera (per-GiB already applied), only non-zero keys; {} with a Datera-side template. */
  qos: PerformancePolicy;
}

export type Translation = { ok: true; request: AppInstanceCreate; volume: VolumeParams } | { ok: false; error: ParameterError };

/** Access modes a flexVolume iSCSI volume can honour. */
export const SUPPORTED_ACCESS_MODES = ['ReadWriteOnce', 'ReadOnlyMany'] as const;

const SIZE_FIELD = 'resources.requests.storage';

/**
 * Builds the Datera create request and the PV parameters for one claim. Never throws for bad
 * input: every problem comes back as a ParameterError naming the parameter, annotation or field.
 */
export function appInstanceRequest(input: TranslateInput): Translation {
  try {
    return { ok: true, ...translate(input) };
  } catch (e) {
    if (e instanceof ParameterError) return { ok: false, error: e };
    throw e;
  }
}

function translate(input: TranslateInput): { request: AppInstanceCreate; volume: VolumeParams } {
  const { pvName, className, claim } = input;
  const claimRef = `claim "${claim.namespace}/${claim.name}"`;

  if (typeof pvName !== 'string' || !DATERA_NAME_RE.test(pvName)) {
    throw new ParameterError(
      'pvName',
      `PV name ${describe(pvName)} cannot be used as the Datera app instance name: it must be ${DATERA_NAME_RULE}`,
      DATERA_NAME_RULE,
    );
  }
  const badMode = (claim.accessModes ?? []).find((m) => !(SUPPORTED_ACCESS_MODES as readonly string[]).includes(m));
  if (badMode !== undefined) {
    throw new ParameterError(
      'accessModes',
      `${claimRef} asks for access mode ${badMode}, which a Datera iSCSI flexVolume cannot provide; allowed: ${SUPPORTED_ACCESS_MODES.join(', ')}`,
      SUPPORTED_ACCESS_MODES.join(', '),
    );
  }

  // Layers 1-2: built-in and controller defaults.
  const layers: Layer[] = [{ settings: { replicas: DEFAULT_REPLICAS, fsType: DEFAULT_FS_TYPE }, sources: {} }];
  layers.push(controllerDefaults(input.defaults));

  // Layer 4 is parsed first: it names the template of layer 3.
  const cls = parseClassParameters(className, input.parameters ?? {});
  let template: AppTemplateSpec | undefined;
  if (cls.template !== undefined) {
    template = input.templates.templates.get(cls.template.name);
    if (template === undefined) {
      const defined = [...input.templates.templates.keys()].sort();
      const hint = suggest(cls.template.name, defined);
      const list = defined.length > 0 ? defined.join(', ') : '(none)';
      throw new ParameterError(
        cls.template.param,
        `StorageClass "${className}" parameter "${cls.template.param}" names AppTemplate "${cls.template.name}", which is not defined` +
          `${hint ? ` (did you mean "${hint}"?)` : ''}; defined templates: ${list}. ` +
          'A template that exists only on the Datera cluster is referenced with "datera_template".',
        list,
      );
    }
    layers.push(templateLayer(template));
  }
  layers.push(cls);
  const overrides = parseClaimOverrides(claim.annotations ?? {}, template, className);
  checkQosOverrides(overrides, merge(layers), template);
  layers.push(overrides);

  const { settings, sources } = merge(layers);
  recheck(settings, sources);

  // Cross-setting rules.
  if (settings.dateraTemplate !== undefined) {
    const by = sources.dateraTemplate;
    for (const f of VOLUME_FIELDS) {
      const src = sources[f];
      if (src === undefined) continue;
      // Blame whichever of the two was set by the later (more specific) layer.
      const culprit = by !== undefined && (by.layer ?? 0) > (src.layer ?? 0) ? by : src;
      throw new ParameterError(
        culprit.param,
        `${src.desc} cannot be combined with Datera-side template "${settings.dateraTemplate}"` +
          `${by ? ` (set by ${by.desc})` : ''}: that template decides replicas, placement, IP pool, QoS and snapshot policies`,
        'no volume settings next to a Datera-side template',
      );
    }
  } else if (settings.disableTemplateOverride === true) {
    const src = sources.disableTemplateOverride;
    throw new ParameterError(
      src?.param ?? 'disable_template_override',
      `${src?.desc ?? 'disable_template_override'} is true but no Datera-side template is set; it applies only with datera_template`,
      'true only together with datera_template',
    );
  }
  if (cls.secretNamespace !== undefined && cls.secretName === undefined) {
    throw new ParameterError(
      'secretNamespace',
      `StorageClass "${className}" sets secretNamespace without secretName; name the credentials Secret too`,
      'secretNamespace only together with secretName',
    );
  }

  const sizeGiB = provisionedSize(claim, claimRef, settings, sources, template);

  const volume: VolumeParams = {
    appInstanceName: pvName,
    sizeGiB,
    replicas: settings.dateraTemplate !== undefined ? 0 : (settings.replicas ?? DEFAULT_REPLICAS),
    fsType: settings.fsType ?? DEFAULT_FS_TYPE,
    qos: settings.dateraTemplate !== undefined ? {} : effectiveQos(settings, sizeGiB),
  };
  setIf(volume, 'template', template?.name);
  setIf(volume, 'dateraTemplate', settings.dateraTemplate);
  setIf(volume, 'tenant', settings.tenant);
  setIf(volume, 'ipPool', settings.ipPool);
  setIf(volume, 'placementMode', settings.placementMode);
  setIf(volume, 'placementPolicy', settings.placementPolicy);
  setIf(volume, 'secretName', cls.secretName);
  setIf(volume, 'secretNamespace', cls.secretNamespace);

  return { request: buildRequest(pvName, sizeGiB, settings, volume), volume };
}

/**
 * A claim's QoS override may only tighten: a non-zero value no larger than the limit the admin's
 * layers (template, then StorageClass) set, where 0 or unset there means no limit to protect.
 * 0 (unlimited) never replaces a finite limit. The template's `qosOverrideMax.<key>` replaces
 * that ceiling (0 there = anything goes). Per-GiB keys follow the same rule, so the effective
 * limit, min(absolute, perGiB x size), can only go down.
 */
function checkQosOverrides(overrides: Layer, below: Layer, template: AppTemplateSpec | undefined): void {
  for (const k of QOS_KEYS) {
    const asked = overrides.settings[k];
    if (asked === undefined) continue;
    const annotation = overrides.sources[k]?.param ?? `datera.io/qos.${k}`;
    const explicit = template?.qosOverrideMax?.[k];
    const ceiling = explicit ?? below.settings[k];
    if (ceiling === undefined || ceiling === 0) continue;
    if (asked !== 0 && asked <= ceiling) continue;
    const by =
      explicit !== undefined
        ? `template "${template!.name}" key qosOverrideMax.${k} lets claims ask for at most ${ceiling}`
        : `${below.sources[k]?.desc ?? `qos.${k}`} sets the limit ${ceiling}`;
    const raise =
      explicit === undefined && template !== undefined ? ` (template "${template.name}" may allow more with qosOverrideMax.${k})` : '';
    throw new ParameterError(
      annotation,
      `claim annotation "${annotation}" asks for ${asked === 0 ? '0 (unlimited)' : String(asked)}, but ${by}; ` +
        `a claim may only tighten it: allowed 1..${ceiling}${raise}`,
      `1..${ceiling}`,
    );
  }
}

function controllerDefaults(defaults: TranslateInput['defaults']): Layer {
  const layer: Layer = { settings: {}, sources: {} };
  if (defaults?.fsType !== undefined) {
    const c = FS_TYPE.fromString(defaults.fsType);
    if (!c.ok) throw new ParameterError('defaults.fsType', `controller default fsType ${c.problem}`, FS_TYPE.allowed);
    layer.settings.fsType = c.value;
  }
  if (defaults?.tenant !== undefined) {
    const c = TENANT.fromString(defaults.tenant);
    if (!c.ok) throw new ParameterError('defaults.tenant', `controller default tenant ${c.problem}`, TENANT.allowed);
    layer.settings.tenant = c.value;
  }
  return layer;
}

function templateLayer(t: AppTemplateSpec): Layer {
  const settings: Settings = {};
  setIf(settings, 'replicas', t.replicas);
  setIf(settings, 'placementMode', t.placement?.mode);
  setIf(settings, 'placementPolicy', t.placement?.policy);
  setIf(settings, 'ipPool', t.ipPool);
  setIf(settings, 'tenant', t.tenant);
  setIf(settings, 'fsType', t.fsType);
  setIf(settings, 'dateraTemplate', t.dateraTemplate);
  setIf(settings, 'disableTemplateOverride', t.disableTemplateOverride);
  setIf(settings, 'defaultSizeGiB', t.defaultSizeGiB);
  for (const k of QOS_KEYS) setIf(settings, k, t.qos[k]);
  if (t.snapshotPolicies.length > 0) settings.snapshotPolicies = t.snapshotPolicies.map((p) => ({ ...p }));

  const sources: Layer['sources'] = {};
  for (const f of Object.keys(settings) as (keyof Settings)[]) {
    const key = f === 'snapshotPolicies' ? 'snapshotPolicies' : FIELDS[f].key;
    sources[f] = { desc: `template "${t.name}" key ${key}`, param: `templates.yaml:${t.name}.${key}` };
  }
  return { settings, sources };
}

function merge(layers: readonly Layer[]): Layer {
  const settings: Settings = {};
  const sources: Layer['sources'] = {};
  layers.forEach((layer, index) => {
    for (const [k, v] of Object.entries(layer.settings) as [keyof Settings, unknown][]) {
      if (v === undefined) continue;
      (settings as Record<string, unknown>)[k] = v;
      const src = layer.sources[k];
      if (src !== undefined) sources[k] = { ...src, layer: index };
      else delete sources[k];
    }
  });
  return { settings, sources };
}

/** Defensive range check of the merged result, so a hand-built AppTemplateSpec cannot send bad values to Datera. */
function recheck(settings: Settings, sources: Layer['sources']): void {
  for (const [f, v] of Object.entries(settings) as [keyof Settings, unknown][]) {
    const src: Source = sources[f] ?? { desc: f, param: f };
    if (f === 'snapshotPolicies') {
      const bad = (v as SnapshotPolicy[]).find((p) => !isValidSnapshotPolicy(p));
      if (bad !== undefined) {
        throw new ParameterError(src.param, `${src.desc} holds an invalid snapshot policy ${JSON.stringify(bad)}`, 'name, interval, retention_count 1..256');
      }
      continue;
    }
    const kind = FIELDS[f as ScalarField].kind as ValueKind<unknown>;
    if (!kind.valid(v)) throw new ParameterError(src.param, `${src.desc} must be ${kind.allowed}, got ${describe(v)}`, kind.allowed);
  }
}

function provisionedSize(
  claim: ClaimInput,
  claimRef: string,
  settings: Settings,
  sources: Layer['sources'],
  template: AppTemplateSpec | undefined,
): number {
  let gib: number;
  let what: string;
  if (claim.requestBytes !== undefined) {
    const bytes = claim.requestBytes;
    if (typeof bytes !== 'bigint' || bytes < 0n) {
      throw new ParameterError(SIZE_FIELD, `${claimRef} requests a negative or invalid size ${describe(bytes)}`, `${SIZE_MIN_GIB}..${SIZE_MAX_GIB} GiB`);
    }
    const rounded = bytesToGiBCeil(bytes);
    if (rounded > BigInt(SIZE_MAX_GIB)) {
      throw new ParameterError(
        SIZE_FIELD,
        `${claimRef} requests ${formatBytes(bytes)} (${rounded}Gi after rounding up), above the Datera maximum of ${SIZE_MAX_GIB}Gi per volume`,
        `${SIZE_MIN_GIB}..${SIZE_MAX_GIB} GiB`,
      );
    }
    gib = Number(rounded);
    what = `${claimRef} requests ${formatBytes(bytes)} (${gib}Gi after rounding up to whole GiB)`;
  } else {
    gib = settings.defaultSizeGiB ?? DEFAULT_SIZE_GIB;
    const src = sources.defaultSizeGiB;
    what = `${claimRef} has no storage request and the default size (${src ? src.desc : 'built-in'}) is ${gib}Gi`;
  }
  if (template !== undefined) {
    const lo = template.minSizeGiB;
    const hi = template.maxSizeGiB;
    const range = `${lo ?? SIZE_MIN_GIB}..${hi ?? SIZE_MAX_GIB} GiB`;
    if (lo !== undefined && gib < lo) {
      throw new ParameterError(SIZE_FIELD, `${what}, below minSize ${lo}Gi of template "${template.name}"`, range);
    }
    if (hi !== undefined && gib > hi) {
      throw new ParameterError(SIZE_FIELD, `${what}, above maxSize ${hi}Gi of template "${template.name}"`, range);
    }
  }
  return gib;
}

/** Applies per-GiB limits: total = min(absolute, perGiB x size); 0 means no cap; clamped to the API maximum. */
function effectiveQos(s: Settings, sizeGiB: number): PerformancePolicy {
  const combine = (abs: number | undefined, perGiB: number | undefined, apiMax: number): number | undefined => {
    if (perGiB === undefined || perGiB === 0) return abs;
    const scaled = Math.min(perGiB * sizeGiB, apiMax);
    return abs === undefined || abs === 0 ? scaled : Math.min(abs, scaled);
  };
  const all: PerformancePolicy = {
    total_iops_max: combine(s.totalIopsMax, s.iopsPerGiB, IOPS_MAX),
    read_iops_max: s.readIopsMax,
    write_iops_max: s.writeIopsMax,
    total_bandwidth_max: combine(s.totalBandwidthMax, s.bandwidthPerGiB, BANDWIDTH_MAX),
    read_bandwidth_max: s.readBandwidthMax,
    write_bandwidth_max: s.writeBandwidthMax,
  };
  const policy: PerformancePolicy = {};
  for (const [k, v] of Object.entries(all) as [keyof PerformancePolicy, number | undefined][]) {
    if (v !== undefined && v !== 0) policy[k] = v;
  }
  return policy;
}

function buildRequest(pvName: string, sizeGiB: number, settings: Settings, volume: VolumeParams): AppInstanceCreate {
  const request: AppInstanceCreate = { name: pvName, create_mode: 'kubernetes' };
  if (settings.dateraTemplate !== undefined) {
    request.app_template = { path: `/app_templates/${settings.dateraTemplate}` };
    if (settings.disableTemplateOverride !== true) {
      request.template_override = {
        storage_instances: { [STORAGE_INSTANCE_NAME]: { volumes: { [VOLUME_NAME]: { size: String(sizeGiB) } } } },
      };
    }
    return request;
  }
  const vol: VolumeSpec = { name: VOLUME_NAME, size: sizeGiB, replica_count: volume.replicas };
  if (settings.placementMode !== undefined) vol.placement_mode = settings.placementMode;
  if (settings.placementPolicy !== undefined) vol.placement_policy = { path: `/placement_policies/${settings.placementPolicy}` };
  if (Object.keys(volume.qos).length > 0) vol.performance_policy = { ...volume.qos };
  if (settings.snapshotPolicies !== undefined && settings.snapshotPolicies.length > 0) {
    vol.snapshot_policies = settings.snapshotPolicies.map((p) => ({ ...p }));
  }
  const si: StorageInstanceSpec = { name: STORAGE_INSTANCE_NAME, volumes: [vol] };
  if (settings.ipPool !== undefined) si.ip_pool = { path: `/access_network_ip_pools/${settings.ipPool}` };
  request.storage_instances = [si];
  return request;
}
