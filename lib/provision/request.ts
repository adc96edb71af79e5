// SPDX-License-Identifier: Apache-2.0
// AppTemplate + StorageClass + claim  ->  one Datera app-instance create request and the
// parameters the PV needs; the templates themselves are parsed in app-templates.ts. Pure: no
// Kubernetes, no HTTP, no clock, no randomness; the same input always yields the same output,
// so a retried provision sends the same request. Bad input never throws: appInstanceRequest
// returns a ParameterError naming the parameter, annotation or claim field at fault.
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

import type {
  AppInstanceCreate,
  PerformancePolicy,
  SnapshotPolicy,
  StorageInstanceSpec,
  VolumeSpec,
} from '../datera/types.js';
import { DATERA_NAME_RE, DATERA_NAME_RULE, STORAGE_INSTANCE_NAME, VOLUME_NAME } from '../datera/names.js';
import type { AppTemplateSpec, TemplateSet } from './app-templates.js';
import { SUPPORTED_ACCESS_MODES, accessModeProblem } from './claim.js';
import {
  FIELDS,
  ParameterError,
  QOS_KEYS,
  VOLUME_FIELDS,
  parseClaimOverrides,
  parseClassParameters,
  setIf,
  type Layer,
  type ScalarField,
  type Settings,
  type Source,
} from './parameters.js';
import { bytesToGiBCeil } from './quantity.js';
import {
  BANDWIDTH_MAX,
  DEFAULT_FS_TYPE,
  DEFAULT_REPLICAS,
  DEFAULT_SIZE_GIB,
  FS_TYPE,
  IOPS_MAX,
  SIZE_MAX_GIB,
  SIZE_MIN_GIB,
  TENANT,
  describe,
  formatBytes,
  isValidSnapshotPolicy,
  suggest,
  type ValueKind,
} from './values.js';

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

/** Which precedence layer (see PRECEDENCE above) decided a setting; `provisioner` is layer 2. */
export type Origin = 'default' | 'provisioner' | 'template' | 'class' | 'claim';

/** Where one setting of a Translation came from: the layer, and the key, parameter, annotation or field in it. */
export interface SettingSource {
  origin: Origin;
  /** Reads as a noun, as in error messages: `template "fast" key replicas`, `built-in default`. */
  desc: string;
  /** The template key, class parameter, annotation or claim field, as the user wrote it; absent for defaults. */
  param?: string;
  /** The value that layer gave it (`size`: the provisioned whole GiB). */
  value?: unknown;
}

/**
 * Per setting, the layer that decided it: every Settings key some layer set (including those a
 * Datera-side template leaves unsent), plus `size` (the claim's request or the default size),
 * `template`, `secretName` and `secretNamespace` when the class names them. Informational: the
 * request and the PV never depend on it.
 */
type SettingSources = Partial<Record<keyof Settings | 'size' | 'template' | 'secretName' | 'secretNamespace', SettingSource>>;

export type Translation = { ok: true; request: AppInstanceCreate; volume: VolumeParams; sources: SettingSources } | { ok: false; error: ParameterError };

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

function translate(input: TranslateInput): { request: AppInstanceCreate; volume: VolumeParams; sources: SettingSources } {
  const { pvName, className, claim } = input;
  const claimRef = `claim "${claim.namespace}/${claim.name}"`;

  if (typeof pvName !== 'string' || !DATERA_NAME_RE.test(pvName)) {
    throw new ParameterError(
      'pvName',
      `PV name ${describe(pvName)} cannot be used as the Datera app instance name: it must be ${DATERA_NAME_RULE}`,
      DATERA_NAME_RULE,
    );
  }
  const modes = accessModeProblem(claim.accessModes ?? []);
  if (modes !== undefined) {
    const allowed = SUPPORTED_ACCESS_MODES.join(', ');
    throw new ParameterError(
      'accessModes',
      modes.kind === 'none'
        ? `${claimRef} asks for no access mode; allowed: ${allowed}`
        : `${claimRef} asks for access mode ${modes.modes.join(', ')}, which a Datera iSCSI flexVolume cannot provide; allowed: ${allowed}`,
      allowed,
    );
  }

  // Layers 1-2: built-in and controller defaults.
  const layers: Layer[] = [{ settings: { replicas: DEFAULT_REPLICAS, fsType: DEFAULT_FS_TYPE }, sources: {} }];
  layers.push(controllerDefaults(input.defaults));
  const origins: Origin[] = ['default', 'provisioner'];

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
    origins.push('template');
  }
  layers.push(cls);
  origins.push('class');
  const overrides = parseClaimOverrides(claim.annotations ?? {}, template, className);
  checkQosOverrides(overrides, merge(layers), template);
  layers.push(overrides);
  origins.push('claim');

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

  const from = settingSources(layers, origins);
  const sizeFrom: SettingSource =
    claim.requestBytes !== undefined
      ? { origin: 'claim', desc: `${claimRef} field ${SIZE_FIELD}`, param: SIZE_FIELD }
      : (from.defaultSizeGiB ?? { origin: 'default', desc: 'built-in default size' });
  from.size = { ...sizeFrom, value: sizeGiB };
  const byClass = (param: string, value: string): SettingSource => ({ origin: 'class', desc: `StorageClass "${className}" parameter "${param}"`, param, value });
  if (cls.template !== undefined) from.template = byClass(cls.template.param, cls.template.name);
  if (cls.secretName !== undefined) from.secretName = byClass('secretName', cls.secretName);
  if (cls.secretNamespace !== undefined) from.secretNamespace = byClass('secretNamespace', cls.secretNamespace);

  return { request: buildRequest(pvName, sizeGiB, settings, volume), volume, sources: from };
}

/** The layer that set each setting last, as merge() decides it; `origins[i]` names layer i. */
function settingSources(layers: readonly Layer[], origins: readonly Origin[]): SettingSources {
  const out: SettingSources = {};
  layers.forEach((layer, index) => {
    const origin = origins[index]!;
    for (const [k, v] of Object.entries(layer.settings) as [keyof Settings, unknown][]) {
      if (v === undefined) continue;
      const src = layer.sources[k];
      if (src !== undefined) out[k] = { origin, desc: src.desc, param: src.param, value: v };
      else out[k] = { origin, desc: origin === 'default' ? 'built-in default' : `provisioner default ${k}`, value: v };
    }
  });
  return out;
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
