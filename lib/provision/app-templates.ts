// SPDX-License-Identifier: Apache-2.0
// The AppTemplates ConfigMap: parses and validates its `templates.yaml` into a TemplateSet of
// normalised AppTemplateSpecs. Pure: no Kubernetes, no clock. A document with any error is refused
// whole, with every problem listed, so the controller keeps its last good set; the size of a
// document (bytes, and values once YAML aliases are expanded) is bounded before it is walked.
// Turning a template into a Datera request is request.ts's job.

import { parseYaml } from '../yaml.js';
import type { PlacementMode, SnapshotPolicy } from '../datera/types.js';
import {
  FIELDS,
  OVERRIDE_GROUPS,
  OVERRIDE_KEYS,
  QOS_KEYS,
  TEMPLATE_KEYS,
  setIf,
  type OverrideKey,
  type QosKey,
} from './parameters.js';
import { bytesToGiBCeil, bytesToGiBFloor } from './quantity.js';
import {
  DATERA_NAME,
  FS_TYPE,
  RETENTION,
  SIZE_MAX_GIB,
  SIZE_MIN_GIB,
  SNAPSHOT_INTERVAL,
  START_TIME,
  TEMPLATE_NAME,
  TENANT,
  YAML_SIZE,
  describe,
  formatBytes,
  suggest,
  type FsType,
  type ValueKind,
} from './values.js';

/** QoS of a template; IOPS, KiB/s, and per-GiB multipliers. Absent = not set by the template. */
type QosSpec = { readonly [K in QosKey]?: number };

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
  /**
   * Which settings of volumes already made from this template follow an edit of it; absent (the
   * default) = none: an edit changes new volumes only. `qos` is the only setting that can change
   * on an existing volume (see qos-updates.ts).
   */
  readonly applyToExisting?: readonly ApplyToExisting[];
}

/** Values `applyToExisting` accepts. */
const APPLY_TO_EXISTING = ['qos'] as const;
type ApplyToExisting = (typeof APPLY_TO_EXISTING)[number];

export interface TemplateSet {
  templates: ReadonlyMap<string, AppTemplateSpec>;
}

export type ParseResult = { ok: true; set: TemplateSet } | { ok: false; errors: string[] };

const TOP_KEYS = ['templates'] as const;
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
  unknownKeys(entry, TEMPLATE_KEYS, label, '', errors);

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

  const apply = readApplyToExisting(entry['applyToExisting'], label, errors);
  if (apply !== undefined) spec.applyToExisting = apply;

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
    if (spec.applyToExisting?.includes('qos')) {
      fail(`applyToExisting: [qos] has no effect with dateraTemplate "${spec.dateraTemplate}", which decides the QoS of its volumes; remove it`);
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

/**
 * `applyToExisting`: a list of settings that follow a template edit on volumes already made.
 * Only `qos` can change on an existing volume; every other template key is named as applying to
 * new volumes only. undefined when absent or invalid (problems pushed to `errors`).
 */
function readApplyToExisting(value: unknown, label: string, errors: string[]): ApplyToExisting[] | undefined {
  if (value === undefined) return undefined;
  const allowed = APPLY_TO_EXISTING.join(', ');
  if (!Array.isArray(value)) {
    errors.push(`${label}: applyToExisting must be a list of settings that existing volumes follow (allowed: ${allowed}), got ${describe(value)}`);
    return undefined;
  }
  const chosen = new Set<ApplyToExisting>();
  const before = errors.length;
  for (const item of value) {
    if (typeof item === 'string' && (APPLY_TO_EXISTING as readonly string[]).includes(item)) {
      chosen.add(item as ApplyToExisting);
    } else if (typeof item === 'string' && item.startsWith('qos.')) {
      errors.push(`${label}: applyToExisting entry "${item}" is not allowed: the QoS limits of existing volumes follow the template together; write qos; allowed: ${allowed}`);
    } else if (typeof item === 'string' && ((TEMPLATE_KEYS as readonly string[]).includes(item) || item.startsWith('placement.') || item === 'size')) {
      errors.push(
        `${label}: applyToExisting entry "${item}" is not allowed: ${item} applies to new volumes only (an existing volume keeps the value it was made with); allowed: ${allowed}`,
      );
    } else {
      const hint = typeof item === 'string' ? suggest(item, APPLY_TO_EXISTING) : undefined;
      errors.push(`${label}: applyToExisting entry ${describe(item)} is not a setting${hint ? ` (did you mean ${hint}?)` : ''}; allowed: ${allowed}`);
    }
  }
  return errors.length > before ? undefined : APPLY_TO_EXISTING.filter((k) => chosen.has(k));
}
