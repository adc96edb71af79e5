// SPDX-License-Identifier: Apache-2.0
// The orphan sweep: app instances this cluster's provisioner made that no PV and no claim account
// for (a crash between the Datera create and the PV create, a claim deleted meanwhile, a clean-up
// lost with a restart). Runs as one key of the controller's work queue, so only the leader sweeps.
//
// Safety rules (each one must hold before anything is deleted):
//   1. the metadata names one of our provisioner names AND this cluster's id (untagged, foreign-
//      cluster and pre-cluster-id volumes are never touched);
//   2. no PV names it (cache), and neither the PV named in its metadata nor a claim with the uid in
//      its metadata exists (cache, then a GET to the API server);
//   3. its metadata does not say `k8s-reclaim-policy: Retain` (an admin who deletes a Retain PV
//      keeps the volume): such an orphan is only reported, whatever the mode;
//   4. it is older than the grace period (`k8s-created-at`; without one, first seen by this process);
//   5. mode is `delete` (in `report` mode it is only logged, evented and counted).
import type { V1PersistentVolume, V1StorageClass } from '@kubernetes/client-node';
import { isDateraNotFound } from '../datera/errors.js';
import type { DateraApi } from '../datera/types.js';
import type { EventRecorder } from '../kube/events.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { Connection, DateraConnections } from './credentials.js';
import type { Outcome } from './queue.js';
import type { TemplateSet } from './app-templates.js';
import { MD, describeOwner } from './volume.js';

export type OrphanSweepMode = 'delete' | 'report' | 'off';
export const ORPHAN_SWEEP_MODES: readonly OrphanSweepMode[] = ['delete', 'report', 'off'];

export interface OrphanSweepOptions {
  mode: OrphanSweepMode;
  /** Time between the end of one sweep and the start of the next. */
  intervalMs: number;
  /** An app instance younger than this is never an orphan (its PV or claim may still be on the way). */
  graceMs: number;
  /**
   * Wait after becoming leader before the first sweep (default 0). A new leader then makes no
   * Datera calls while it starts, and a failover at scale does not begin with a full listing.
   */
  startDelayMs?: number;
}

export interface OrphanFacts {
  provisionerNames: ReadonlySet<string>;
  clusterId: string;
  /** Names of PVs in the cache. */
  hasVolume: (pvName: string) => boolean;
  /** Is a claim with this uid known (cache, or being provisioned by this process)? */
  hasClaim: (uid: string) => boolean;
  /** Milliseconds since the epoch. */
  now: number;
  graceMs: number;
  /** When this process first saw the app instance (for metadata without `k8s-created-at`). */
  firstSeen: number;
}

export type OrphanVerdict =
  | { kind: 'not-ours'; why: string }
  | { kind: 'has-volume' }
  | { kind: 'has-claim' }
  | { kind: 'retained' }
  | { kind: 'too-young' }
  | { kind: 'orphan' };

/** Pure: what the sweep may do with an app instance, from its metadata and the caches. */
export function classifyAppInstance(md: Record<string, string>, f: OrphanFacts): OrphanVerdict {
  if (!f.provisionerNames.has(md[MD.provisioner] ?? '')) return { kind: 'not-ours', why: 'provisioner' };
  if (!f.clusterId || md[MD.clusterId] !== f.clusterId) return { kind: 'not-ours', why: 'cluster' };
  const pv = md[MD.pv];
  const uid = md[MD.claimUid];
  if (!pv || !uid) return { kind: 'not-ours', why: 'incomplete' };
  if (f.hasVolume(pv)) return { kind: 'has-volume' };
  if (f.hasClaim(uid)) return { kind: 'has-claim' };
  const created = Date.parse(md[MD.createdAt] ?? '');
  const since = Number.isFinite(created) ? Math.min(created, f.now) : f.firstSeen;
  if (f.now - since < f.graceMs) return { kind: 'too-young' };
  if (md[MD.reclaimPolicy] === 'Retain') return { kind: 'retained' };
  return { kind: 'orphan' };
}

export interface OrphanSweepDeps {
  provisionerNames: ReadonlySet<string>;
  clusterId: string;
  /** The provisioner's namespace: class Secrets without a namespace are looked up here. */
  namespace: string;
  connections: Pick<DateraConnections, 'forProvision' | 'forVolume'>;
  volumes: { get(name: string): V1PersistentVolume | undefined; list(): V1PersistentVolume[] };
  classes: { get(name: string): V1StorageClass | undefined; list(): V1StorageClass[] };
  templates: () => TemplateSet;
  claimExists: (uid: string) => boolean;
  /** Confirms with the API server: true when the PV or the claim of this metadata exists. Throws when it cannot tell. */
  stillExists: (md: Record<string, string>) => Promise<boolean>;
  deleteAppInstance: (client: DateraApi, name: string) => Promise<void>;
  recorder: Pick<EventRecorder, 'record'>;
  metrics: Metrics;
  logger: Logger;
  now?: () => number;
}

/** One (Secret, tenant) or PV connection the cluster uses, opened on demand. */
interface Target {
  label: string;
  resolve: () => Promise<Connection>;
}

/**
 * Every (Secret, tenant) the cluster provisions through: the default; each of our classes'
 * Secret with its tenant and the tenants templates name; and each of our PVs' own connection.
 * Shared by the sweep and `datera-provisioner audit`, so both look in the same places.
 */
export function sweepTargets(d: Pick<OrphanSweepDeps, 'provisionerNames' | 'namespace' | 'connections' | 'templates'> & {
  volumes: { list(): V1PersistentVolume[] };
  classes: { list(): V1StorageClass[] };
}): Target[] {
  const out = new Map<string, Target>();
  const addProvision = (secretName: string | undefined, secretNamespace: string | undefined, tenant: string | undefined) => {
    const label = `secret ${secretName ? `${secretNamespace ?? d.namespace}/${secretName}` : '(default)'} tenant ${tenant ?? '(default)'}`;
    if (!out.has(label))
      out.set(label, { label, resolve: () => d.connections.forProvision({ secretName, secretNamespace, tenant, claimNamespace: d.namespace }) });
  };
  const templateTenants = [...d.templates().templates.values()].map((t) => t.tenant).filter((t): t is string => !!t);
  const secrets = new Map<string, { name: string | undefined; namespace: string | undefined; tenants: Set<string | undefined> }>();
  secrets.set('', { name: undefined, namespace: undefined, tenants: new Set([undefined, ...templateTenants]) });
  for (const sc of d.classes.list()) {
    if (!d.provisionerNames.has(sc.provisioner)) continue;
    const p = sc.parameters ?? {};
    const key = p.secretName ? `${p.secretNamespace ?? ''}/${p.secretName}` : '';
    let s = secrets.get(key);
    if (!s) secrets.set(key, (s = { name: p.secretName, namespace: p.secretNamespace, tenants: new Set([undefined, ...templateTenants]) }));
    if (p.tenant) s.tenants.add(p.tenant);
  }
  for (const s of secrets.values()) for (const t of s.tenants) addProvision(s.name, s.namespace, t);
  for (const pv of d.volumes.list()) {
    const by = pv.metadata?.annotations?.['pv.kubernetes.io/provisioned-by'];
    const flex = pv.spec?.flexVolume;
    if (!by || !d.provisionerNames.has(by) || flex?.driver !== 'datera/iscsi') continue;
    const label = `endpoint ${flex.options?.backstoreServer ?? '(default)'} tenant ${flex.options?.tenant ?? '(default)'} secret ${flex.secretRef?.namespace ?? ''}/${flex.secretRef?.name ?? ''}`;
    if (!out.has(label)) out.set(label, { label, resolve: () => d.connections.forVolume(pv) });
  }
  return [...out.values()];
}

/** Tagged, and the tag names another provisioner or another cluster (never changes to ours). */
function taggedByOthers(md: Record<string, string>, provisionerNames: ReadonlySet<string>, clusterId: string): boolean {
  const by = md[MD.provisioner];
  if (!by) return false;
  if (!provisionerNames.has(by)) return true;
  const cluster = md[MD.clusterId];
  return cluster !== undefined && cluster !== clusterId;
}

const MAX_REMEMBERED = 100_000;

export class OrphanSweep {
  readonly #o: OrphanSweepOptions;
  readonly #d: OrphanSweepDeps;
  /** endpoint|tenant|name -> when first seen as a candidate (grace fallback). */
  readonly #firstSeen = new Map<string, number>();
  /** endpoint|tenant|name of orphans already counted and evented by this process (report mode repeats quietly). */
  readonly #reported = new Set<string>();
  /**
   * endpoint|tenant|id|name of app instances tagged by another provisioner or cluster: their metadata
   * is not read again (a shared tenant may hold many). Untagged ones are not remembered: one of
   * ours is untagged for a moment between its create and its metadata write.
   */
  readonly #foreign = new Set<string>();

  constructor(o: OrphanSweepOptions, d: OrphanSweepDeps) {
    this.#o = o;
    this.#d = d;
  }

  /** One sweep over every connection the cluster uses; never throws; asks to run again after the interval. */
  async run(): Promise<Outcome> {
    const started = performance.now();
    let orphans = 0;
    let listed = 0;
    const seen = new Set<string>();
    for (const t of sweepTargets(this.#d)) {
      let conn: Connection;
      try {
        conn = await t.resolve();
      } catch (err) {
        this.#d.logger.warn('orphan sweep skips a connection it cannot open', { connection: t.label, err: (err as Error).message });
        continue;
      }
      const where = `${conn.endpoint}|${conn.tenant}`;
      if (seen.has(where)) continue;
      seen.add(where);
      try {
        const r = await this.#sweepConnection(conn, where);
        orphans += r.orphans;
        listed += r.listed;
      } catch (err) {
        this.#d.logger.warn('orphan sweep of a tenant failed; next sweep retries', { connection: t.label, tenant: conn.tenant, err: (err as Error).message });
      }
    }
    if (this.#firstSeen.size > MAX_REMEMBERED) this.#firstSeen.clear();
    if (this.#reported.size > MAX_REMEMBERED) this.#reported.clear();
    if (this.#foreign.size > MAX_REMEMBERED) this.#foreign.clear();
    this.#d.metrics.orphans.set(orphans);
    this.#d.logger.info('orphan sweep finished', { mode: this.#o.mode, tenants: seen.size, appInstances: listed, orphans, ms: Math.round(performance.now() - started) });
    return { kind: 'requeueAfter', ms: this.#o.intervalMs };
  }

  async #sweepConnection(conn: Connection, where: string): Promise<{ orphans: number; listed: number }> {
    const now = (this.#d.now ?? Date.now)();
    const pvAppInstances = new Set<string>();
    for (const pv of this.#d.volumes.list()) {
      if (pv.spec?.flexVolume?.driver !== 'datera/iscsi') continue;
      pvAppInstances.add(pv.spec.flexVolume.options?.volumeID ?? pv.metadata?.name ?? '');
    }
    const page = await conn.client.listAppInstances();
    let orphans = 0;
    const live = new Set<string>();
    for (const ai of page.data) {
      if (pvAppInstances.has(ai.name)) continue; // a PV names it: reclaim owns its fate
      const foreignKey = `${where}|${ai.id}|${ai.name}`; // id, not uuid: the samples (and the simulator) show a zero uuid on app instances
      if (this.#foreign.has(foreignKey)) continue;
      const md = await conn.client.getMetadata(ai.name).catch((e: unknown) => (isDateraNotFound(e) ? undefined : Promise.reject(e)));
      if (!md) continue;
      const key = `${where}|${ai.name}`;
      const verdict = classifyAppInstance(md, {
        provisionerNames: this.#d.provisionerNames,
        clusterId: this.#d.clusterId,
        hasVolume: (n) => this.#d.volumes.get(n) !== undefined,
        hasClaim: this.#d.claimExists,
        now,
        graceMs: this.#o.graceMs,
        firstSeen: this.#firstSeen.get(key) ?? now,
      });
      if (taggedByOthers(md, this.#d.provisionerNames, this.#d.clusterId)) this.#foreign.add(foreignKey);
      if (verdict.kind === 'too-young' || verdict.kind === 'orphan' || verdict.kind === 'retained') {
        live.add(key);
        if (!this.#firstSeen.has(key)) this.#firstSeen.set(key, now);
      }
      if (verdict.kind !== 'orphan' && verdict.kind !== 'retained') continue;
      if (await this.#d.stillExists(md)) continue; // the caches were behind
      orphans++;
      await this.#act(conn, ai.name, md, key, verdict.kind === 'retained');
    }
    for (const k of this.#firstSeen.keys()) if (k.startsWith(`${where}|`) && !live.has(k)) this.#firstSeen.delete(k);
    return { orphans, listed: page.data.length };
  }

  async #act(conn: Connection, name: string, md: Record<string, string>, key: string, retained: boolean): Promise<void> {
    const owner = describeOwner(md);
    const created = md[MD.createdAt] ?? 'unknown';
    const first = !this.#reported.has(key);
    if (first) {
      this.#reported.add(key);
      this.#d.metrics.orphansFound.inc();
    }
    const className = md[MD.storageClass];
    const sc = className ? this.#d.classes.get(className) : undefined;
    const event = (type: 'Normal' | 'Warning', reason: string, message: string) => {
      if (sc) this.#d.recorder.record({ kind: 'StorageClass', apiVersion: 'storage.k8s.io/v1', metadata: { name: sc.metadata!.name!, ...(sc.metadata?.uid ? { uid: sc.metadata.uid } : {}) } }, type, reason, message);
    };
    const fields = { appInstance: name, tenant: conn.tenant, endpoint: conn.endpoint, owner, createdAt: created };
    if (this.#o.mode !== 'delete' || retained) {
      if (!first) return;
      const why = retained ? 'reclaim policy Retain' : 'orphanSweep: report';
      this.#d.logger.warn(`orphaned Datera app instance: no PV and no claim (${why}, not deleted)`, fields);
      event('Warning', 'OrphanedVolume', `Datera app instance ${name} in tenant ${conn.tenant} (${owner}, created ${created}) has no PersistentVolume and no claim; not deleted (${why})`);
      return;
    }
    try {
      await this.#d.deleteAppInstance(conn.client, name);
    } catch (err) {
      this.#d.logger.warn('deleting an orphaned app instance failed; next sweep retries', { ...fields, err: (err as Error).message });
      return;
    }
    this.#reported.delete(key);
    this.#firstSeen.delete(key);
    this.#d.metrics.orphansRemoved.inc();
    this.#d.logger.warn('deleted orphaned Datera app instance: no PV and no claim', fields);
    event('Normal', 'OrphanedVolumeDeleted', `deleted Datera app instance ${name} in tenant ${conn.tenant} (${owner}, created ${created}): it had no PersistentVolume and no claim`);
  }
}
