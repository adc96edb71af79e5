// SPDX-License-Identifier: Apache-2.0
// The audit behind `datera-provisioner audit`: Datera (every tenant the cluster's credentials
// reach) against the cluster (PVs, claims, classes, templates). It owns the comparison and the
// clean-up of orphans; reading the cluster and printing are lib/admin/audit.ts's.
//
// Contracts:
// - Looking is read-only: list tenants, list app instances, read metadata (and one GET to confirm
//   an app instance a PV names is really gone). Nothing is written unless deleteOrphans() is
//   called with `yes`.
// - Which app instances are this cluster's orphans is the orphan sweep's rule
//   (classifyAppInstance in lib/provision/orphans.ts, with no grace period: the age is reported
//   instead), and the places looked in are the sweep's (sweepTargets) plus every sub-tenant the
//   credentials can list.
// - A delete re-reads the app instance's metadata and the PV and claim it names right before it,
//   and goes ahead only when the sweep's rule and the provisioner's delete rule (deletableBy) both
//   still hold and the creation time proves the age; then the provisioner's own offline+delete path.
//   App instances of other clusters or provisioners, untagged ones and retained ones are never deleted.
import type { V1PersistentVolume, V1PersistentVolumeClaim, V1StorageClass } from '@kubernetes/client-node';
import { isDateraNotFound } from '../datera/errors.js';
import { STORAGE_INSTANCE_NAME, VOLUME_NAME } from '../datera/names.js';
import type { AppInstance, DateraApi, Page, PerformancePolicy, Tenant } from '../datera/types.js';
import type { TemplateSet } from '../provision/app-templates.js';
import { Ann } from '../provision/claim.js';
import type { Connection, DateraConnections } from '../provision/credentials.js';
import { deleteAppInstance } from '../provision/datera-provisioner.js';
import { classifyAppInstance, sweepTargets } from '../provision/orphans.js';
import { parseQuantity } from '../provision/quantity.js';
import { appInstanceRequest } from '../provision/request.js';
import { FLEX_DRIVER, MD, deletableBy } from '../provision/volume.js';

/** The cluster as the audit sees it: one listing of each kind, and fresh reads for the re-check before a delete. */
export interface ClusterView {
  provisionerNames: ReadonlySet<string>;
  clusterId: string;
  /** The provisioner's namespace: class Secrets without a namespace are looked up here. */
  namespace: string;
  defaultFsType: string;
  volumes: V1PersistentVolume[];
  claims: V1PersistentVolumeClaim[];
  classes: V1StorageClass[];
  templates: TemplateSet;
  /**
   * Why the template ConfigMap is unusable (invalid, or without the templates key), else undefined.
   * Drift is then not checked (the provisioner keeps its last good templates, which the audit cannot
   * see) and the audit is incomplete.
   */
  templatesProblem?: string;
  /** The PV now, or undefined when it does not exist. Throws when it cannot tell. */
  readVolume(name: string): Promise<V1PersistentVolume | undefined>;
  /** The claim now, or undefined when it does not exist. Throws when it cannot tell. */
  readClaim(namespace: string, name: string): Promise<V1PersistentVolumeClaim | undefined>;
}

interface Orphan {
  endpoint: string;
  tenant: string;
  appInstance: string;
  pv: string;
  claim: string;
  claimUid: string;
  storageClass: string;
  /** `k8s-created-at`, when recorded. */
  createdAt?: string;
  /** Seconds since createdAt; absent when the creation time is not recorded (then never deleted by age). */
  ageSeconds?: number;
  /** Its metadata says reclaim policy Retain: reported, never deleted. */
  retained: boolean;
}

interface MissingAppInstance {
  pv: string;
  appInstance: string;
  endpoint: string;
  tenant: string;
  claim: string;
  phase: string;
  reclaimPolicy: string;
}

export interface Drift {
  pv: string;
  appInstance: string;
  endpoint: string;
  tenant: string;
  claim: string;
  /** `size`, `replicas`, `qos.<key>`, or `request` when the templates would refuse the volume today. */
  field: string;
  /** What the app instance has (0 = unlimited for QoS keys). */
  actual: string;
  /** What the class and templates would make today for the PV's size and the claim's annotations. */
  expected: string;
}

interface Foreign {
  endpoint: string;
  tenant: string;
  appInstance: string;
  /** another provisioner, another cluster, untagged, no cluster id recorded, incomplete metadata */
  why: string;
  provisioner: string;
  clusterId: string;
  pv: string;
  claim: string;
}

interface AuditProblem {
  where: string;
  message: string;
}

interface Deletion {
  endpoint: string;
  tenant: string;
  appInstance: string;
  /** would-delete (dry run), deleted, skipped (not old enough, retained, no age), refused (the re-check failed), failed */
  action: 'would-delete' | 'deleted' | 'skipped' | 'refused' | 'failed';
  reason: string;
}

export interface AuditReport {
  clusterId: string;
  provisionerNames: string[];
  /** RFC 3339 time of the audit. */
  at: string;
  tenants: Array<{ endpoint: string; tenant: string; appInstances: number }>;
  orphans: Orphan[];
  missing: MissingAppInstance[];
  drift: Drift[];
  foreign: Foreign[];
  /** Places that could not be read and other failures: the audit is incomplete. */
  errors: AuditProblem[];
  /** Things worth knowing that do not make the audit incomplete (e.g. tenants could not be listed). */
  notes: string[];
  /** Present after deleteOrphans(). */
  deletions?: Deletion[];
}

export interface AuditOptions {
  connections: Pick<DateraConnections, 'forProvision' | 'forVolume'>;
  /** Called with a line of progress now and then (per page of app instances, every 100 metadata reads). */
  progress?: (line: string) => void;
  /** Metadata reads in flight at once per tenant. Default 8. */
  concurrency?: number;
  /** App instances per listed page. Default 100. */
  pageSize?: number;
  now?: () => number;
}

/** The audit of one run; the orphans it found can then be deleted with deleteOrphans(). */
export class Audit {
  readonly #c: ClusterView;
  readonly #o: AuditOptions;
  /** endpoint|tenant|app instance -> the connection it was found through (for deletes). */
  readonly #found = new Map<string, Connection>();

  constructor(cluster: ClusterView, o: AuditOptions) {
    this.#c = cluster;
    this.#o = o;
  }

  #now(): number {
    return (this.#o.now ?? Date.now)();
  }

  #progress(line: string): void {
    this.#o.progress?.(line);
  }

  /** Looks at everything; never throws for what it cannot read (it lands in `errors`). */
  async run(): Promise<AuditReport> {
    const c = this.#c;
    const report: AuditReport = {
      clusterId: c.clusterId,
      provisionerNames: [...c.provisionerNames],
      at: new Date(this.#now()).toISOString(),
      tenants: [],
      orphans: [],
      missing: [],
      drift: [],
      foreign: [],
      errors: [],
      notes: [],
    };
    if (c.templatesProblem !== undefined) report.errors.push({ where: 'AppTemplates', message: `${c.templatesProblem}; drift not checked` });
    const conns = await this.#connections(report);
    const listings = new Map<string, Map<string, AppInstance>>();
    const ours = this.#ourVolumes();
    const pvAppInstances = new Set(c.volumes.filter((pv) => pv.spec?.flexVolume?.driver === FLEX_DRIVER).map(appInstanceOf));
    for (const conn of conns) {
      const where = whereOf(conn);
      let all: AppInstance[];
      try {
        all = await this.#list(conn);
      } catch (err) {
        report.errors.push({ where: `endpoint ${conn.endpoint} tenant ${conn.tenant}`, message: `listing app instances failed: ${(err as Error).message}` });
        continue;
      }
      listings.set(where, new Map(all.map((ai) => [ai.name, ai])));
      report.tenants.push({ endpoint: conn.endpoint, tenant: conn.tenant, appInstances: all.length });
      await this.#classify(conn, all.filter((ai) => !pvAppInstances.has(ai.name)), report);
    }
    await this.#checkVolumes(ours, listings, report);
    sortReport(report);
    return report;
  }

  /** PVs this provisioner made (annotation names one of our names, flexVolume datera/iscsi). */
  #ourVolumes(): V1PersistentVolume[] {
    return this.#c.volumes.filter((pv) => {
      const by = pv.metadata?.annotations?.[Ann.provisionedBy];
      return by !== undefined && this.#c.provisionerNames.has(by) && pv.spec?.flexVolume?.driver === FLEX_DRIVER;
    });
  }

  /**
   * The sweep's places (default connection, our classes' Secrets and tenants, template tenants,
   * our PVs' connections), plus every sub-tenant of each set of credentials' own tenant that
   * GET /tenants shows. One connection per endpoint and tenant.
   */
  async #connections(report: AuditReport): Promise<Connection[]> {
    const c = this.#c;
    const targets = sweepTargets({
      provisionerNames: c.provisionerNames,
      namespace: c.namespace,
      connections: this.#o.connections,
      templates: () => c.templates,
      volumes: { list: () => c.volumes },
      classes: { list: () => c.classes },
    });
    const out = new Map<string, Connection>();
    const credentials = new Map<string, Connection>();
    for (const t of targets) {
      let conn: Connection;
      try {
        conn = await t.resolve();
      } catch (err) {
        report.errors.push({ where: t.label, message: `cannot open the connection: ${(err as Error).message}` });
        continue;
      }
      if (!out.has(whereOf(conn))) out.set(whereOf(conn), conn);
      const cred = `${conn.endpoint}|${conn.secretRef.namespace}/${conn.secretRef.name}`;
      if (!credentials.has(cred)) credentials.set(cred, conn);
    }
    for (const conn of credentials.values()) {
      const label = `secret ${conn.secretRef.namespace}/${conn.secretRef.name} endpoint ${conn.endpoint}`;
      let base: Connection;
      let tenants: Page<Tenant>;
      try {
        // The credentials' own tenant (the Secret's, else the provisioner's default) is the root of what they reach.
        base = await this.#o.connections.forProvision({ secretName: conn.secretRef.name, secretNamespace: conn.secretRef.namespace });
        const client = base.client as DateraApi & { listTenants?: () => Promise<Page<Tenant>> };
        if (!client.listTenants) continue;
        tenants = await client.listTenants();
      } catch (err) {
        report.notes.push(`${label}: sub-tenants not listed (${(err as Error).message}); audited the tenants classes, templates and PVs name`);
        continue;
      }
      for (const t of tenants.data) {
        const path = tenantPath(t);
        if (path === undefined || (path !== base.tenant && !path.startsWith(`${base.tenant}/`))) continue;
        if (out.has(`${base.endpoint}|${path}`)) continue;
        try {
          const sub = await this.#o.connections.forProvision({ secretName: conn.secretRef.name, secretNamespace: conn.secretRef.namespace, tenant: path });
          out.set(whereOf(sub), sub);
        } catch (err) {
          report.errors.push({ where: `${label} tenant ${path}`, message: `cannot open the connection: ${(err as Error).message}` });
        }
      }
    }
    return [...out.values()];
  }

  /**
   * Every app instance of one tenant, page by page (progress after each page) until a short page:
   * a missing total_count must not end the listing early. A page that repeats a name already
   * listed (a server ignoring offset) ends it too.
   */
  async #list(conn: Connection): Promise<AppInstance[]> {
    const size = this.#o.pageSize ?? 100;
    const all: AppInstance[] = [];
    const names = new Set<string>();
    for (let pages = 0; pages < MAX_PAGES; pages++) {
      const page = await conn.client.listAppInstances({ limit: size, offset: all.length });
      const fresh = page.data.filter((ai) => !names.has(ai.name));
      for (const ai of fresh) names.add(ai.name);
      all.push(...fresh);
      this.#progress(`tenant ${conn.tenant} at ${conn.endpoint}: ${all.length}${page.total > all.length ? ` of ${page.total}` : ''} app instances listed`);
      if (page.data.length < size || fresh.length < page.data.length) break;
    }
    return all;
  }

  /** App instances no PV names: orphans of this cluster, foreign ones, or on their way (a claim exists). */
  async #classify(conn: Connection, candidates: AppInstance[], report: AuditReport): Promise<void> {
    const c = this.#c;
    const claimUids = new Set(c.claims.map((pvc) => pvc.metadata?.uid ?? ''));
    const volumeNames = new Set(c.volumes.map((pv) => pv.metadata?.name ?? ''));
    const now = this.#now();
    let read = 0;
    await eachLimited(candidates, this.#o.concurrency ?? 8, async (ai) => {
      let md: Record<string, string> | undefined;
      try {
        md = await conn.client.getMetadata(ai.name).catch((e: unknown) => (isDateraNotFound(e) ? undefined : Promise.reject(e)));
      } catch (err) {
        report.errors.push({ where: `app instance ${ai.name} tenant ${conn.tenant}`, message: `reading its metadata failed: ${(err as Error).message}` });
        return;
      } finally {
        if (++read % 100 === 0) this.#progress(`tenant ${conn.tenant}: metadata of ${read} of ${candidates.length} app instances read`);
      }
      if (!md) return; // deleted meanwhile
      const verdict = classifyAppInstance(md, {
        provisionerNames: c.provisionerNames,
        clusterId: c.clusterId,
        hasVolume: (n) => volumeNames.has(n),
        hasClaim: (uid) => claimUids.has(uid),
        now,
        graceMs: 0,
        firstSeen: now,
      });
      if (verdict.kind === 'not-ours') {
        report.foreign.push({
          endpoint: conn.endpoint,
          tenant: conn.tenant,
          appInstance: ai.name,
          why: foreignReason(md, verdict.why, c.provisionerNames),
          provisioner: md[MD.provisioner] ?? '',
          clusterId: md[MD.clusterId] ?? '',
          pv: md[MD.pv] ?? '',
          claim: claimOf(md),
        });
        return;
      }
      if (verdict.kind !== 'orphan' && verdict.kind !== 'retained') return;
      const created = Date.parse(md[MD.createdAt] ?? '');
      this.#found.set(`${whereOf(conn)}|${ai.name}`, conn);
      report.orphans.push({
        endpoint: conn.endpoint,
        tenant: conn.tenant,
        appInstance: ai.name,
        pv: md[MD.pv] ?? '',
        claim: claimOf(md),
        claimUid: md[MD.claimUid] ?? '',
        storageClass: md[MD.storageClass] ?? '',
        ...(md[MD.createdAt] ? { createdAt: md[MD.createdAt] } : {}),
        ...(Number.isFinite(created) ? { ageSeconds: Math.max(0, Math.floor((now - created) / 1000)) } : {}),
        retained: verdict.kind === 'retained',
      });
    });
  }

  /** Each of our PVs: is its app instance there, and does it match what the templates would make today? */
  async #checkVolumes(ours: V1PersistentVolume[], listings: Map<string, Map<string, AppInstance>>, report: AuditReport): Promise<void> {
    for (const pv of ours) {
      const name = pv.metadata!.name!;
      let conn: Connection;
      try {
        conn = await this.#o.connections.forVolume(pv);
      } catch (err) {
        report.errors.push({ where: `PV ${name}`, message: `cannot open its connection: ${(err as Error).message}` });
        continue;
      }
      const listing = listings.get(whereOf(conn));
      if (!listing) continue; // its tenant could not be listed: already an error
      const aiName = appInstanceOf(pv);
      const ref = pv.spec?.claimRef;
      const claim = ref ? `${ref.namespace ?? ''}/${ref.name ?? ''}` : '';
      let ai = listing.get(aiName);
      if (!ai) {
        // Listed before: confirm, it may have been created since.
        try {
          ai = await conn.client.getAppInstance(aiName);
        } catch (err) {
          if (!isDateraNotFound(err)) {
            report.errors.push({ where: `PV ${name}`, message: `reading app instance ${aiName} failed: ${(err as Error).message}` });
            continue;
          }
        }
      }
      if (!ai) {
        report.missing.push({
          pv: name,
          appInstance: aiName,
          endpoint: conn.endpoint,
          tenant: conn.tenant,
          claim,
          phase: pv.status?.phase ?? '',
          reclaimPolicy: pv.spec?.persistentVolumeReclaimPolicy ?? '',
        });
        continue;
      }
      if (this.#c.templatesProblem === undefined) for (const d of this.#drift(pv, ai)) report.drift.push({ pv: name, appInstance: aiName, endpoint: conn.endpoint, tenant: conn.tenant, claim, ...d });
    }
  }

  /**
   * Size, replicas and QoS of the app instance against appInstanceRequest() for the PV's size and
   * the claim's annotations under today's class and templates. A PV whose class or claim is gone
   * (the claim's overrides are unknown) or that was cloned (settings from its source) is compared
   * on size only.
   */
  #drift(pv: V1PersistentVolume, ai: AppInstance): Array<Pick<Drift, 'field' | 'actual' | 'expected'>> {
    const out: Array<Pick<Drift, 'field' | 'actual' | 'expected'>> = [];
    const si = ai.storage_instances?.find((s) => s.name === STORAGE_INSTANCE_NAME) ?? ai.storage_instances?.[0];
    const vol = si?.volumes?.find((v) => v.name === VOLUME_NAME) ?? si?.volumes?.[0];
    if (!vol) return [{ field: 'volume', actual: 'none', expected: `${STORAGE_INSTANCE_NAME}/${VOLUME_NAME}` }];
    const bytes = parseQuantity(pv.spec?.capacity?.storage ?? '');
    const className = pv.spec?.storageClassName ?? '';
    const sc = this.#c.classes.find((s) => s.metadata?.name === className);
    const ref = pv.spec?.claimRef;
    const pvc = this.#c.claims.find((p) => p.metadata?.uid === ref?.uid);
    const tr = appInstanceRequest({
      pvName: ai.name,
      className,
      parameters: sc?.parameters ?? {},
      claim: {
        namespace: ref?.namespace ?? '',
        name: ref?.name ?? '',
        uid: ref?.uid ?? '',
        annotations: pvc?.metadata?.annotations ?? {},
        ...(bytes !== undefined ? { requestBytes: bytes } : {}),
        accessModes: pv.spec?.accessModes ?? [],
      },
      templates: this.#c.templates,
      defaults: { fsType: this.#c.defaultFsType },
    });
    if (!tr.ok) {
      // Without the PV's size there is nothing to compare; otherwise the class or templates refuse it now.
      return [{ field: 'request', actual: 'exists', expected: `refused today: ${tr.error.message}` }];
    }
    const want = tr.volume;
    if (vol.size !== want.sizeGiB) out.push({ field: 'size', actual: `${vol.size}Gi`, expected: `${want.sizeGiB}Gi` });
    const cloned = (pvc?.spec?.dataSourceRef ?? pvc?.spec?.dataSource)?.kind === 'PersistentVolumeClaim';
    if (sc === undefined || pvc === undefined || cloned || want.dateraTemplate !== undefined) return out;
    if (want.replicas > 0 && vol.replica_count !== undefined && vol.replica_count !== want.replicas)
      out.push({ field: 'replicas', actual: String(vol.replica_count), expected: String(want.replicas) });
    const have = vol.performance_policy ?? {};
    for (const k of QOS_FIELDS) {
      const a = Number(have[k] ?? 0);
      const e = Number(want.qos[k] ?? 0);
      if (a !== e) out.push({ field: `qos.${k}`, actual: qosText(a), expected: qosText(e) });
    }
    return out;
  }

  /**
   * Deletes the orphans (not retained) at least `olderThanMs` old, as proven by `k8s-created-at`;
   * with `yes` false only says what it would delete. Each delete first re-reads the app
   * instance's metadata and the PV and claim it names (see the header). Records into
   * `report.deletions`; a failed re-read or delete is also an error.
   */
  async deleteOrphans(report: AuditReport, o: { olderThanMs: number; yes: boolean }): Promise<void> {
    const deletions: Deletion[] = (report.deletions = []);
    for (const orphan of report.orphans) {
      const base = { endpoint: orphan.endpoint, tenant: orphan.tenant, appInstance: orphan.appInstance };
      if (orphan.retained) {
        deletions.push({ ...base, action: 'skipped', reason: 'reclaim policy Retain: kept for an admin' });
        continue;
      }
      if (orphan.ageSeconds === undefined) {
        deletions.push({ ...base, action: 'skipped', reason: 'no creation time recorded: its age cannot be proven' });
        continue;
      }
      if (orphan.ageSeconds * 1000 < o.olderThanMs) {
        deletions.push({ ...base, action: 'skipped', reason: `younger than --older-than (${formatAge(orphan.ageSeconds)} old)` });
        continue;
      }
      if (!o.yes) {
        deletions.push({ ...base, action: 'would-delete', reason: `orphan ${formatAge(orphan.ageSeconds)} old (dry run: add --yes to delete)` });
        continue;
      }
      const conn = this.#found.get(`${orphan.endpoint}|${orphan.tenant}|${orphan.appInstance}`);
      if (!conn) {
        deletions.push({ ...base, action: 'refused', reason: 'not found by this audit' });
        continue;
      }
      let refusal: string | undefined;
      try {
        refusal = await this.#recheck(conn, orphan.appInstance, o.olderThanMs);
      } catch (err) {
        const message = `re-checking before the delete failed: ${(err as Error).message}`;
        deletions.push({ ...base, action: 'failed', reason: message });
        report.errors.push({ where: `app instance ${orphan.appInstance} tenant ${orphan.tenant}`, message });
        continue;
      }
      if (refusal !== undefined) {
        deletions.push({ ...base, action: 'refused', reason: refusal });
        continue;
      }
      try {
        await deleteAppInstance(conn.client, orphan.appInstance);
        deletions.push({ ...base, action: 'deleted', reason: `orphan ${formatAge(orphan.ageSeconds)} old` });
      } catch (err) {
        const message = `delete failed: ${(err as Error).message}`;
        deletions.push({ ...base, action: 'failed', reason: message });
        report.errors.push({ where: `app instance ${orphan.appInstance} tenant ${orphan.tenant}`, message });
      }
    }
  }

  /** Why the app instance may not be deleted now, or undefined when it may. Throws when it cannot tell. */
  async #recheck(conn: Connection, name: string, olderThanMs: number): Promise<string | undefined> {
    const c = this.#c;
    const md = await conn.client.getMetadata(name).catch((e: unknown) => (isDateraNotFound(e) ? undefined : Promise.reject(e)));
    if (!md) return 'gone already';
    const pvName = md[MD.pv] ?? '';
    const uid = md[MD.claimUid] ?? '';
    const pvExists = (pvName !== '' && (await c.readVolume(pvName)) !== undefined) || (name !== pvName && (await c.readVolume(name)) !== undefined);
    const ns = md[MD.claimNamespace];
    const claimName = md[MD.claimName];
    const claim = ns && claimName ? await c.readClaim(ns, claimName) : undefined;
    const now = this.#now();
    const verdict = classifyAppInstance(md, {
      provisionerNames: c.provisionerNames,
      clusterId: c.clusterId,
      hasVolume: () => pvExists,
      hasClaim: (u) => claim?.metadata?.uid === u,
      now,
      graceMs: olderThanMs,
      firstSeen: now,
    });
    if (verdict.kind !== 'orphan') return `no longer an orphan of this cluster (${verdict.kind === 'not-ours' ? `not ours: ${verdict.why}` : verdict.kind})`;
    if (!Number.isFinite(Date.parse(md[MD.createdAt] ?? ''))) return 'no creation time recorded: its age cannot be proven';
    const may = deletableBy(md, { provisionerNames: c.provisionerNames, clusterId: c.clusterId, pvName, claimUid: uid });
    return may.ok ? undefined : may.reason;
  }
}

/** Stop listing a tenant after this many pages, whatever the server says. */
const MAX_PAGES = 10_000;

const QOS_FIELDS: ReadonlyArray<keyof PerformancePolicy> = ['total_iops_max', 'read_iops_max', 'write_iops_max', 'total_bandwidth_max', 'read_bandwidth_max', 'write_bandwidth_max'];

/** Does the report call for an admin: an orphan not deleted, a missing app instance, or drift? Foreign volumes do not. */
export function hasFindings(r: AuditReport): boolean {
  const deleted = new Set((r.deletions ?? []).filter((d) => d.action === 'deleted').map((d) => `${d.endpoint}|${d.tenant}|${d.appInstance}`));
  return r.orphans.some((o) => !deleted.has(`${o.endpoint}|${o.tenant}|${o.appInstance}`)) || r.missing.length > 0 || r.drift.length > 0;
}

/** "3d4h", "5h12m", "42m", "30s". */
export function formatAge(seconds: number): string {
  const d = Math.floor(seconds / 86_400);
  const h = Math.floor((seconds % 86_400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  if (d > 0) return `${d}d${h}h`;
  if (h > 0) return `${h}h${m}m`;
  if (m > 0) return `${m}m`;
  return `${seconds}s`;
}

function qosText(v: number): string {
  return v === 0 ? 'unlimited' : String(v);
}

function whereOf(conn: Connection): string {
  return `${conn.endpoint}|${conn.tenant}`;
}

function appInstanceOf(pv: V1PersistentVolume): string {
  return pv.spec?.flexVolume?.options?.volumeID ?? pv.metadata?.name ?? '';
}

function claimOf(md: Record<string, string>): string {
  return md[MD.claimNamespace] || md[MD.claimName] ? `${md[MD.claimNamespace] ?? '?'}/${md[MD.claimName] ?? '?'}` : '';
}

/** A tenant path ("/root/a") from a GET /tenants entry ("/tenants/root/a"), or from parent_path and name. */
function tenantPath(t: Tenant): string | undefined {
  if (typeof t.path === 'string' && t.path.startsWith('/tenants/')) return t.path.slice('/tenants'.length);
  if (typeof t.name === 'string' && typeof t.parent_path === 'string') return t.parent_path ? `${t.parent_path}/${t.name}` : `/${t.name}`;
  return undefined;
}

function foreignReason(md: Record<string, string>, why: string, names: ReadonlySet<string>): string {
  const by = md[MD.provisioner];
  if (!by) return md[MD.pv] || md[MD.claimUid] ? 'incomplete metadata' : 'untagged';
  if (!names.has(by)) return 'another provisioner';
  if (why === 'cluster') return md[MD.clusterId] ? 'another cluster' : 'no cluster id recorded';
  return 'incomplete metadata';
}

function sortReport(r: AuditReport): void {
  const by = <T>(key: (x: T) => string) => (a: T, b: T) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0);
  r.tenants.sort(by((t) => `${t.endpoint}\0${t.tenant}`));
  r.orphans.sort(by((o) => `${o.tenant}\0${o.appInstance}`));
  r.missing.sort(by((m) => m.pv));
  r.drift.sort(by((d) => `${d.pv}\0${d.field}`));
  r.foreign.sort(by((f) => `${f.tenant}\0${f.appInstance}`));
}

/** Runs `fn` over `items`, at most `limit` at once. */
async function eachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
