// SPDX-License-Identifier: Apache-2.0
// QoS of existing volumes: which of our bound volumes change their performance policy after an
// AppTemplate edit or an edit of their claim's QoS override annotations, and the rate-limited
// action that changes it. Owns the rules:
// - A template edit reaches existing volumes only when the NEW template says `applyToExisting:
//   [qos]`; such a template's volumes are also brought to its QoS at start (after a restart).
// - A change of a claim's `datera.io/qos.*` annotation always reaches its volume, for the limits
//   that annotation decides, under the same tighten-only rules as at provisioning (request.ts); a
//   refused annotation is a Warning on the claim and changes nothing.
// - Nothing but the performance policy ever changes on an existing volume: an edit of any other
//   setting (template replicas, placement, IP pool, ...; a claim's replicas annotation, ...) is
//   reported as applying to new volumes only (one event per template edit, one per claim edit).
// - The effective limits are computed by appInstanceRequest (request.ts) for the volume's own size,
//   so per-GiB limits and the tighten-only check are the provisioning ones. Volumes of a Datera-side
//   template are never touched (that template decides their QoS).
// The PV annotation Ann.performancePolicy records what the volume has: a volume whose record
// matches costs no storage call. Before any change the storage is read (the truth), so a change
// done but not yet recorded (a crash, a failed PV patch) is recorded without a second change or
// event. Changes go through the controller's work queue (key `qos/<pv>`), at most `perSecond`
// started per second; a failure is a Warning QoSUpdateFailed and is retried with backoff.
import type { V1ConfigMap, V1PersistentVolume, V1PersistentVolumeClaim, V1StorageClass } from '@kubernetes/client-node';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import type { PerformancePolicy } from '../datera/types.js';
import type { EventRecorder } from '../kube/events.js';
import type { InformerLike } from '../kube/informer.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { AppTemplateSpec, TemplateSet } from './app-templates.js';
import { Ann } from './claim.js';
import { OVERRIDE_KEYS, TEMPLATE_KEYS, parseClassParameters, type QosKey } from './parameters.js';
import type { VolumeProvisioner } from './provisioner.js';
import { GIB, bytesToGiBCeil, parseQuantity } from './quantity.js';
import type { Outcome } from './queue.js';
import { describeFailure, subjectOf } from './report.js';
import { isFinal } from '../errors.js';
import { appInstanceRequest } from './request.js';
import { POLICY_KEYS, decodePolicy, encodePolicy, normalPolicy, policyRecordOp } from './volume.js';

/** Work-queue key prefix of a volume's QoS check: `qos/<pv name>`. */
export const QOS_KEY = 'qos/';

type PolicyKey = (typeof POLICY_KEYS)[number];

/** The performance-policy limit each QoS setting decides (absolute and per-GiB limits share one). */
const GOVERNS: Readonly<Record<QosKey, PolicyKey>> = {
  totalIopsMax: 'total_iops_max',
  iopsPerGiB: 'total_iops_max',
  readIopsMax: 'read_iops_max',
  writeIopsMax: 'write_iops_max',
  totalBandwidthMax: 'total_bandwidth_max',
  bandwidthPerGiB: 'total_bandwidth_max',
  readBandwidthMax: 'read_bandwidth_max',
  writeBandwidthMax: 'write_bandwidth_max',
};

/** A limit in AppTemplate spelling, for messages. */
const SPELLING: Readonly<Record<PolicyKey, string>> = {
  total_iops_max: 'totalIopsMax',
  read_iops_max: 'readIopsMax',
  write_iops_max: 'writeIopsMax',
  total_bandwidth_max: 'totalBandwidthMax',
  read_bandwidth_max: 'readBandwidthMax',
  write_bandwidth_max: 'writeBandwidthMax',
};

const ANNOTATION_PREFIX = 'datera.io/';
const QOS_ANNOTATION_PREFIX = `${ANNOTATION_PREFIX}qos`;

// ---------------------------------------------------------------------------------------------
// Pure decisions.

export interface QosInput {
  pv: V1PersistentVolume;
  /** Did this provisioner make the PV (VolumeProvisioner.owns)? */
  ours: boolean;
  storageClass: V1StorageClass | undefined;
  /** The claim the PV is bound to, from the cache (any claim: its uid is checked here). */
  claim: V1PersistentVolumeClaim | undefined;
  templates: TemplateSet;
  defaultFsType: string;
}

export type QosTarget =
  /** Not a volume whose QoS we change (not ours, unbound, Datera-side template, class gone, ...). */
  | { kind: 'skip'; reason: string }
  /** The claim's QoS annotation is refused (tighten-only rules, not overridable): nothing changes. */
  | { kind: 'refused'; annotation: string; message: string }
  /** The limits the volume should have, computed as provisioning would for its size. */
  | { kind: 'policy'; policy: PerformancePolicy; className: string; template: string | undefined; sizeGiB: number };

/** The PV's size in whole GiB: its capacity, else `flexVolume.options.size`; undefined when neither reads. */
export function volumeSizeGiB(pv: V1PersistentVolume): number | undefined {
  const cap = pv.spec?.capacity?.['storage'];
  const bytes = typeof cap === 'string' ? parseQuantity(cap) : undefined;
  if (bytes !== undefined && bytes > 0n) return Number(bytesToGiBCeil(bytes));
  const opt = Number(pv.spec?.flexVolume?.options?.['size']);
  return Number.isInteger(opt) && opt > 0 ? opt : undefined;
}

/** Is the PV bound to this (cached) claim? */
function boundTo(pv: V1PersistentVolume, claim: V1PersistentVolumeClaim | undefined): claim is V1PersistentVolumeClaim {
  const uid = pv.spec?.claimRef?.uid;
  return pv.status?.phase === 'Bound' && uid !== undefined && claim?.metadata?.uid === uid;
}

/** Size bounds decide which claims may be made; an existing volume is computed for the size it has. */
const unbounded = new WeakMap<TemplateSet, TemplateSet>();
function withoutSizeBounds(set: TemplateSet): TemplateSet {
  let out = unbounded.get(set);
  if (out === undefined) {
    const templates = new Map<string, AppTemplateSpec>();
    for (const [name, t] of set.templates) {
      const { minSizeGiB: _min, maxSizeGiB: _max, ...rest } = t;
      templates.set(name, rest);
    }
    out = { templates };
    unbounded.set(set, out);
  }
  return out;
}

/**
 * The performance policy one of our bound volumes should have now: what provisioning would send
 * for its class, the templates in force, its claim's QoS annotations (only those: other
 * annotations never change an existing volume) and the volume's own size.
 */
export function desiredQos(i: QosInput): QosTarget {
  const { pv, claim } = i;
  if (!i.ours) return { kind: 'skip', reason: 'not made by this provisioner' };
  if (!boundTo(pv, claim)) return { kind: 'skip', reason: 'not bound' };
  const className = pv.spec?.storageClassName ?? '';
  if (i.storageClass === undefined) return { kind: 'skip', reason: `StorageClass "${className}" does not exist` };
  const sizeGiB = volumeSizeGiB(pv);
  if (sizeGiB === undefined) return { kind: 'skip', reason: 'the PV has no readable size' };
  const annotations: Record<string, string> = {};
  for (const [k, v] of Object.entries(claim.metadata?.annotations ?? {})) if (k.startsWith(QOS_ANNOTATION_PREFIX)) annotations[k] = v;
  const r = appInstanceRequest({
    pvName: pv.spec?.flexVolume?.options?.['volumeID'] ?? pv.metadata?.name ?? '',
    className,
    parameters: i.storageClass.parameters ?? {},
    claim: {
      namespace: claim.metadata?.namespace ?? '',
      name: claim.metadata?.name ?? '',
      uid: claim.metadata?.uid ?? '',
      annotations,
      requestBytes: BigInt(sizeGiB) * GIB,
      accessModes: ['ReadWriteOnce'],
    },
    templates: withoutSizeBounds(i.templates),
    defaults: { fsType: i.defaultFsType },
  });
  if (!r.ok) {
    const p = r.error.parameter;
    if (p.startsWith(ANNOTATION_PREFIX)) return { kind: 'refused', annotation: p, message: r.error.message };
    return { kind: 'skip', reason: r.error.message };
  }
  if (r.volume.dateraTemplate !== undefined) return { kind: 'skip', reason: `Datera-side template "${r.volume.dateraTemplate}" decides its QoS` };
  const made = pv.metadata?.annotations?.[Ann.template] ?? pv.spec?.flexVolume?.options?.['template'];
  if (made !== undefined && made !== '' && made !== r.volume.template) {
    return { kind: 'skip', reason: `it was made from template "${made}", but StorageClass "${className}" now names ${r.volume.template ? `"${r.volume.template}"` : 'none'}` };
  }
  return { kind: 'policy', policy: normalPolicy(r.volume.qos), className, template: r.volume.template, sizeGiB };
}

/** Does the template opt its existing volumes into QoS changes? */
function followsTemplate(t: AppTemplateSpec | undefined): boolean {
  return t?.applyToExisting?.includes('qos') === true;
}

/** Which limits change: all of them (the template opted in), or those the changed claim annotations decide. */
export type Scope = 'all' | ReadonlySet<PolicyKey>;

/** `current` with the limits in `scope` taken from `desired` (others kept as the volume has them). */
export function targetPolicy(current: PerformancePolicy, desired: PerformancePolicy, scope: Scope): PerformancePolicy {
  if (scope === 'all') return normalPolicy(desired);
  const out: PerformancePolicy = { ...normalPolicy(current) };
  for (const k of scope) {
    const v = desired[k];
    if (v !== undefined && v > 0) out[k] = v;
    else delete out[k];
  }
  return normalPolicy(out);
}

function samePolicy(a: PerformancePolicy, b: PerformancePolicy): boolean {
  return encodePolicy(a) === encodePolicy(b);
}

/** "totalIopsMax 1000 -> 500, readIopsMax unlimited -> 200": the limits that differ, in template spelling. */
export function describePolicyChange(from: PerformancePolicy, to: PerformancePolicy): string {
  const show = (v: number | undefined) => (v === undefined || v === 0 ? 'unlimited' : String(v));
  const parts = POLICY_KEYS.filter((k) => (from[k] ?? 0) !== (to[k] ?? 0)).map((k) => `${SPELLING[k]} ${show(from[k])} -> ${show(to[k])}`);
  return parts.length > 0 ? parts.join(', ') : 'no change';
}

/** How one edit of a bound claim's annotations touches its volume. */
export interface ClaimAnnotationChange {
  /** Changed `datera.io/qos*` annotations: the volume follows them (for the limits they decide). */
  qos: string[];
  /** The limits those annotations decide. */
  scope: Set<PolicyKey>;
  /** Changed override annotations of other settings: they apply to new volumes only. */
  others: { annotation: string; from: string | undefined; to: string | undefined }[];
}

/** Is `key` (after `datera.io/`) a volume setting a claim could try to override, other than QoS? */
function isOtherSetting(key: string): boolean {
  return (OVERRIDE_KEYS as readonly string[]).includes(key) || (TEMPLATE_KEYS as readonly string[]).includes(key) || key.startsWith('placement.') || key.startsWith('qosOverrideMax.');
}

/** The override annotations that differ between two versions of a claim. */
export function claimAnnotationChanges(now: Readonly<Record<string, string>>, before: Readonly<Record<string, string>>): ClaimAnnotationChange {
  const out: ClaimAnnotationChange = { qos: [], scope: new Set(), others: [] };
  const keys = new Set([...Object.keys(now), ...Object.keys(before)]);
  for (const annotation of [...keys].sort()) {
    if (!annotation.startsWith(ANNOTATION_PREFIX) || now[annotation] === before[annotation]) continue;
    const key = annotation.slice(ANNOTATION_PREFIX.length);
    if (key === 'qos' || key.startsWith('qos.')) {
      out.qos.push(annotation);
      const limit = GOVERNS[key.slice(4) as QosKey] as PolicyKey | undefined;
      if (limit !== undefined) out.scope.add(limit);
    } else if (isOtherSetting(key)) {
      out.others.push({ annotation, from: before[annotation], to: now[annotation] });
    }
  }
  return out;
}

/** What one template edit means for the volumes already made from it. */
export interface TemplateEdit {
  name: string;
  /** Not in the earlier set (a new template, or the first load). */
  added: boolean;
  /** The new template says applyToExisting: [qos]. */
  follows: boolean;
  /** Its QoS (limits, override ceilings, overridable QoS keys) or its opt-in changed. */
  qosChanged: boolean;
  /** Other settings that changed; existing volumes keep them. */
  others: string[];
}

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

/** Settings of a template that describe a volume, other than QoS, in template spelling. */
const OTHER_SETTINGS: ReadonlyArray<[string, (t: AppTemplateSpec) => unknown]> = [
  ['replicas', (t) => t.replicas],
  ['placement', (t) => t.placement],
  ['ipPool', (t) => t.ipPool],
  ['tenant', (t) => t.tenant],
  ['fsType', (t) => t.fsType],
  ['snapshotPolicies', (t) => t.snapshotPolicies],
  ['dateraTemplate', (t) => t.dateraTemplate],
  ['disableTemplateOverride', (t) => t.disableTemplateOverride],
  ['defaultSize', (t) => t.defaultSizeGiB],
  ['minSize', (t) => t.minSizeGiB],
  ['maxSize', (t) => t.maxSizeGiB],
];

const qosOverridable = (t: AppTemplateSpec) => t.overridable.filter((k) => k.startsWith('qos.'));

/** The templates of `after` that are new or differ from `before`, and how. Removed templates are not edits: their volumes keep everything. */
export function templateEdits(before: TemplateSet, after: TemplateSet): TemplateEdit[] {
  const out: TemplateEdit[] = [];
  for (const [name, t] of after.templates) {
    const old = before.templates.get(name);
    const follows = followsTemplate(t);
    if (old === undefined) {
      out.push({ name, added: true, follows, qosChanged: true, others: [] });
      continue;
    }
    const qosChanged =
      !same(old.qos, t.qos) || !same(old.qosOverrideMax, t.qosOverrideMax) || !same(qosOverridable(old), qosOverridable(t)) || followsTemplate(old) !== follows;
    const others = OTHER_SETTINGS.filter(([, get]) => !same(get(old), get(t))).map(([key]) => key);
    if (qosChanged || others.length > 0) out.push({ name, added: false, follows, qosChanged, others });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The action.

/**
 * Token bucket that reserves: each volume change takes one token, and when none is left the
 * caller learns how long to wait for the one reserved for it (so waiting volumes are served in
 * the order they asked, without spinning).
 */
export class TokenBucket {
  readonly #rate: number;
  readonly #burst: number;
  readonly #now: () => number;
  #tokens: number;
  #last: number;

  constructor(perSecond: number, now: () => number = () => performance.now()) {
    this.#rate = perSecond;
    this.#burst = Math.max(1, Math.floor(perSecond));
    this.#now = now;
    this.#tokens = this.#burst;
    this.#last = now();
  }

  /** Takes a token; returns 0 when it is available now, else the ms until it is. */
  reserve(): number {
    const t = this.#now();
    this.#tokens = Math.min(this.#burst, this.#tokens + (Math.max(0, t - this.#last) / 1000) * this.#rate);
    this.#last = t;
    this.#tokens -= 1;
    return this.#tokens >= 0 ? 0 : (-this.#tokens / this.#rate) * 1000;
  }
}

export interface QosUpdaterDeps {
  provisioner: Pick<VolumeProvisioner, 'owns' | 'readPerformancePolicy' | 'setPerformancePolicy'>;
  core: { patchPersistentVolume(a: { name: string; body: object }, options?: ReturnType<typeof setHeaderOptions>): Promise<unknown> };
  claims: Pick<InformerLike<V1PersistentVolumeClaim>, 'get'>;
  volumes: Pick<InformerLike<V1PersistentVolume>, 'get' | 'list'>;
  classes: Pick<InformerLike<V1StorageClass>, 'get'>;
  templates: () => TemplateSet;
  /** The controller's work queue: the updater adds `qos/<pv>` keys, the controller hands them to `sync`. */
  enqueue: (key: string) => void;
  recorder: Pick<EventRecorder, 'record'>;
  metrics: Metrics;
  logger: Logger;
  defaultFsType: string;
  /** Volume changes started per second at most (burst: the same number, at least 1). */
  perSecond: number;
  /** Monotonic clock in ms (tests). */
  now?: () => number;
}

/** A volume waiting for its QoS check: why (for the event), which limits, and its reserved token. */
interface Pending {
  reasons: Set<string>;
  scope: Scope;
  /** When the token reserved for it is available (`now()` ms); unset until it needs the storage. */
  notBefore?: number;
}

export class QosUpdater {
  readonly #d: QosUpdaterDeps;
  readonly #now: () => number;
  readonly #bucket: TokenBucket;
  readonly #pending = new Map<string, Pending>();
  /**
   * Policies this process recorded on PVs, with the PV resourceVersion they were recorded over:
   * used while the cache still shows that version (the patch has not come back through the watch).
   */
  readonly #recorded = new Map<string, { policy: PerformancePolicy; overVersion: string | undefined }>();

  constructor(d: QosUpdaterDeps) {
    this.#d = d;
    this.#now = d.now ?? (() => performance.now());
    this.#bucket = new TokenBucket(d.perSecond, this.#now);
  }

  /** The template of one of our bound PVs (through its class), or undefined. */
  #templateOf(pv: V1PersistentVolume, byClass: Map<string, string | undefined>): string | undefined {
    if (!this.#d.provisioner.owns(pv) || pv.status?.phase !== 'Bound') return undefined;
    const className = pv.spec?.storageClassName ?? '';
    if (!byClass.has(className)) {
      const cls = this.#d.classes.get(className);
      let name: string | undefined;
      try {
        name = cls ? parseClassParameters(className, cls.parameters ?? {}).template?.name : undefined;
      } catch {
        name = undefined; // a class provisioning refuses: nothing of its volumes is changed either
      }
      byClass.set(className, name);
    }
    return byClass.get(className);
  }

  /** Our bound PVs, by the template their class names. */
  #volumesByTemplate(): Map<string, string[]> {
    const byClass = new Map<string, string | undefined>();
    const out = new Map<string, string[]>();
    for (const pv of this.#d.volumes.list()) {
      const t = this.#templateOf(pv, byClass);
      if (t === undefined) continue;
      const list = out.get(t) ?? [];
      list.push(pv.metadata!.name!);
      out.set(t, list);
    }
    return out;
  }

  #enqueue(pvName: string, reason: string, scope: Scope): void {
    const p = this.#pending.get(pvName);
    if (p === undefined) this.#pending.set(pvName, { reasons: new Set([reason]), scope });
    else {
      p.reasons.add(reason);
      if (p.scope !== 'all') p.scope = scope === 'all' ? 'all' : new Set([...p.scope, ...scope]);
    }
    this.#d.enqueue(QOS_KEY + pvName);
  }

  /** At start (caches synced): volumes of templates that opt in are brought to their template's QoS. */
  resume(): void {
    const templates = this.#d.templates().templates;
    if (![...templates.values()].some(followsTemplate)) return;
    for (const [name, pvs] of this.#volumesByTemplate()) {
      if (!followsTemplate(templates.get(name))) continue;
      for (const pv of pvs) this.#enqueue(pv, `template "${name}" applies its QoS to existing volumes`, 'all');
    }
  }

  /**
   * A new template set was loaded (`before` is the one it replaces; empty on the first load).
   * Volumes of edited templates that opt in are queued; what does not reach existing volumes is
   * said once, in one event on the ConfigMap.
   */
  templatesChanged(before: TemplateSet, after: TemplateSet, configMap: V1ConfigMap): void {
    const edits = templateEdits(before, after);
    if (edits.length === 0) return;
    const volumes = this.#volumesByTemplate();
    const kept: string[] = [];
    for (const e of edits) {
      const pvs = volumes.get(e.name) ?? [];
      if (pvs.length === 0) continue;
      if (e.follows && e.qosChanged) {
        const reason = e.added ? `template "${e.name}" applies its QoS to existing volumes` : `template "${e.name}" edited`;
        for (const pv of pvs) this.#enqueue(pv, reason, 'all');
      }
      if (e.added) continue; // the first load, or a template new to this set: nothing was edited
      const notApplied = [...e.others, ...(e.qosChanged && !e.follows ? ['qos'] : [])];
      if (notApplied.length === 0) continue;
      const hint = e.qosChanged && !e.follows ? ' (add applyToExisting: [qos] to the template to change their QoS)' : '';
      kept.push(`template "${e.name}" changed ${notApplied.join(', ')}: its ${pvs.length} existing volume(s) keep their values${hint}`);
    }
    if (kept.length === 0) return;
    const msg = `AppTemplates edit applies to new volumes only for: ${kept.join('; ')}. Only QoS can change on an existing volume, and only for templates with applyToExisting: [qos]`;
    this.#d.logger.info('template edit applies to new volumes only', { configMap: configMap.metadata?.name, templates: kept });
    this.#d.recorder.record(subjectOf(configMap, 'ConfigMap'), 'Normal', 'VolumeSettingNotApplied', msg);
  }

  /**
   * A claim changed. For a claim bound to one of our PVs, changed QoS annotations queue the volume;
   * changed annotations of other settings get one Warning saying they apply to new volumes only.
   */
  claimChanged(claim: V1PersistentVolumeClaim, old: V1PersistentVolumeClaim | undefined): void {
    if (old === undefined || old === claim) return; // an add or a resync: nothing was edited
    const pvName = claim.spec?.volumeName;
    const pv = pvName ? this.#d.volumes.get(pvName) : undefined;
    if (!pv || !this.#d.provisioner.owns(pv) || !boundTo(pv, claim)) return;
    const change = claimAnnotationChanges(claim.metadata?.annotations ?? {}, old.metadata?.annotations ?? {});
    if (change.qos.length > 0) this.#enqueue(pvName!, `claim annotation ${change.qos.join(', ')} changed`, change.scope);
    if (change.others.length > 0) {
      const what = change.others
        .map((o) => `"${o.annotation}" (${o.from === undefined ? 'unset' : JSON.stringify(o.from)} -> ${o.to === undefined ? 'unset' : JSON.stringify(o.to)})`)
        .join(', ');
      this.#d.recorder.record(
        subjectOf(claim, 'PersistentVolumeClaim'),
        'Warning',
        'VolumeSettingNotApplied',
        `claim annotation ${what} applies to new volumes only: volume ${pvName} keeps the value it was made with. ` +
          'Only the QoS annotations (datera.io/qos.*) the template lets claims override change an existing volume',
      );
    }
  }

  /** The policy the PV records (this process's own record while the cache lags), or undefined. */
  #recordedPolicy(pv: V1PersistentVolume): PerformancePolicy | undefined {
    const mine = this.#recorded.get(pv.metadata!.name!);
    if (mine && mine.overVersion === pv.metadata?.resourceVersion) return mine.policy;
    return decodePolicy(pv.metadata?.annotations?.[Ann.performancePolicy]);
  }

  /** The work item `qos/<pv>`: bring one volume to the policy it should have, if it differs. */
  async sync(pvName: string): Promise<Outcome> {
    const pending = this.#pending.get(pvName);
    const pv = this.#d.volumes.get(pvName);
    if (!pending || !pv) {
      this.#pending.delete(pvName);
      if (!pv) this.#recorded.delete(pvName);
      return { kind: 'done' };
    }
    const claimRef = pv.spec?.claimRef;
    const claim = claimRef?.name ? this.#d.claims.get(claimRef.name, claimRef.namespace) : undefined;
    const target = desiredQos({
      pv,
      ours: this.#d.provisioner.owns(pv),
      storageClass: this.#d.classes.get(pv.spec?.storageClassName ?? ''),
      claim,
      templates: this.#d.templates(),
      defaultFsType: this.#d.defaultFsType,
    });
    const log = this.#d.logger.child({ pv: pvName });
    if (target.kind === 'skip') {
      this.#pending.delete(pvName);
      log.debug('QoS of existing volume left alone', { reason: target.reason });
      return { kind: 'done' };
    }
    if (target.kind === 'refused') {
      this.#pending.delete(pvName);
      this.#d.recorder.record(subjectOf(claim!, 'PersistentVolumeClaim'), 'Warning', 'QoSUpdateRefused', `QoS of volume ${pvName} not changed: ${target.message}`);
      log.info('QoS change refused', { annotation: target.annotation });
      return { kind: 'done' };
    }
    const recorded = this.#recordedPolicy(pv);
    if (recorded !== undefined && samePolicy(recorded, targetPolicy(recorded, target.policy, pending.scope))) {
      this.#pending.delete(pvName);
      return { kind: 'done' }; // the volume has it already: no storage call
    }

    // The storage is needed: one token per volume.
    const now = this.#now();
    pending.notBefore ??= now + this.#bucket.reserve();
    if (pending.notBefore > now) return { kind: 'requeueAfter', ms: Math.ceil(pending.notBefore - now) };

    const why = [...pending.reasons].join('; ');
    let policy: PerformancePolicy;
    try {
      const current = await this.#d.provisioner.readPerformancePolicy(pv);
      policy = targetPolicy(current, target.policy, pending.scope);
      if (!samePolicy(current, policy)) {
        await this.#d.provisioner.setPerformancePolicy(pv, policy);
        this.#d.metrics.qosUpdateTotal.inc({ class: target.className });
        this.#d.recorder.record(subjectOf(claim!, 'PersistentVolumeClaim'), 'Normal', 'QoSUpdated', `QoS of volume ${pvName} changed: ${describePolicyChange(current, policy)} (${why})`);
        log.info('QoS of existing volume changed', { from: encodePolicy(current), to: encodePolicy(policy), why });
      }
    } catch (err) {
      delete pending.notBefore; // a retry takes a new token
      const msg = describeFailure(err);
      this.#d.metrics.qosUpdateFailed.inc({ class: target.className });
      if (isFinal(err)) {
        // Repeating cannot succeed (e.g. the app instance is not provably this PV's): said once, not retried.
        this.#pending.delete(pvName);
        this.#d.recorder.record(subjectOf(claim!, 'PersistentVolumeClaim'), 'Warning', 'QoSUpdateFailed', `failed to change QoS of volume ${pvName} (${why}): ${msg}`);
        log.warn('QoS change refused', { err: msg });
        return { kind: 'done' };
      }
      this.#d.recorder.record(subjectOf(claim!, 'PersistentVolumeClaim'), 'Warning', 'QoSUpdateFailed', `failed to change QoS of volume ${pvName} (${why}): ${msg}; will retry`);
      log.warn('QoS change failed; will retry', { err: msg });
      return { kind: 'retry', error: err };
    }
    if (recorded === undefined || !samePolicy(recorded, policy)) {
      try {
        await this.#record(pv, policy);
      } catch (err) {
        // The volume has its policy: the retry finds it so and only records it (no second change or event).
        delete pending.notBefore;
        log.warn('recording the QoS on the PV failed; will retry', { err: describeFailure(err) });
        return { kind: 'retry', error: err };
      }
    }
    this.#pending.delete(pvName);
    return { kind: 'done' };
  }

  /** One PV patch: the annotation Ann.performancePolicy. */
  async #record(pv: V1PersistentVolume, policy: PerformancePolicy): Promise<void> {
    const name = pv.metadata!.name!;
    const body = [policyRecordOp(pv, policy)];
    await this.#d.core.patchPersistentVolume({ name, body }, setHeaderOptions('Content-Type', PatchStrategy.JsonPatch));
    this.#recorded.set(name, { policy: normalPolicy(policy), overVersion: pv.metadata?.resourceVersion });
  }
}
