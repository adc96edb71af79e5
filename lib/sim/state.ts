// SPDX-License-Identifier: Apache-2.0
// The in-memory state of the simulated cluster: every record, the lookups that turn route params
// into records (404 when missing), the capacity check and the backing files kept in step with
// the volumes. The operations themselves live in ops/ (one module per resource) and iscsi.ts;
// routes.ts maps each API route to one of them.
//
// Every operation is synchronous: the HTTP layer awaits only for latency injection and body
// reading, so two requests never interleave inside one operation and a duplicate-name check
// followed by an insert is atomic.
//
// Decisions where the real cluster's behaviour is unknown are marked DECISION and listed in
// lib/sim/README.md.
import { randomUUID } from 'node:crypto';
import type { AppInstance } from '../datera/types.js';
import type { BackingStore } from './backing.js';
import { invalid, notFound } from './errors.js';
import type { IscsiSession } from './iscsi.js';
import {
  type AiRec,
  DEFAULT_IP_POOL,
  DEFAULT_PLACEMENT_POLICY,
  type InitiatorRec,
  type OpContext,
  ROOT_TENANT,
  type SiRec,
  type TemplateRec,
  type TenantRec,
  type VolRec,
  tenantChain,
} from './model.js';
import { renderAi } from './render.js';

export interface StateOptions {
  capacityGiB: number;
  requireOfflineForDelete: boolean;
  iqnPrefix: string;
  accessIps: [string, string];
  /** Keeps a sparse file per volume (see backing.ts); without it nothing is written anywhere. */
  backing?: BackingStore;
}

export class SimState {
  readonly tenants = new Map<string, TenantRec>();
  /** Access network IP pools: name -> description. */
  readonly ipPools = new Map<string, string>([[DEFAULT_IP_POOL, 'Default access network IP pool']]);
  readonly placementPolicies = new Set<string>([DEFAULT_PLACEMENT_POLICY, 'all-flash', 'hybrid', 'single-flash']);
  readonly storageNodes: string[] = Array.from({ length: 5 }, () => randomUUID());
  readonly systemUuid = randomUUID();
  readonly bootedAt = Date.now();
  /** Live iSCSI sessions, oldest first (see IscsiSession). */
  sessions: IscsiSession[] = [];

  constructor(readonly opts: StateOptions) {
    this.tenant(ROOT_TENANT);
  }

  // -------------------------------------------------------------------------- tenants, reset

  /** The tenant at `path`, created on first use. */
  tenant(path: string): TenantRec {
    let t = this.tenants.get(path);
    if (!t) {
      t = { path, ais: new Map(), aiIdByName: new Map(), initiators: new Map(), templates: new Map() };
      this.tenants.set(path, t);
    }
    return t;
  }

  tenantPaths(): string[] {
    return [...this.tenants.keys()].sort();
  }

  /** Drops app instances and initiators everywhere; keeps tenants, templates, pools, policies. */
  reset(): void {
    for (const t of this.tenants.values()) {
      for (const ai of t.ais.values()) this.removeBacking(ai.storage_instances);
      t.ais.clear();
      t.aiIdByName.clear();
      t.initiators.clear();
    }
    this.sessions = [];
  }

  addIpPool(name: string): void {
    if (!this.ipPools.has(name)) this.ipPools.set(name, `Access network IP pool ${name}`);
  }

  addPlacementPolicy(name: string): void {
    this.placementPolicies.add(name);
  }

  /** Deep copies of the app instances of one tenant, or of every tenant. */
  appInstances(tenant?: string): AppInstance[] {
    const tenants = tenant === undefined ? [...this.tenants.values()] : [this.tenants.get(tenant)].filter((t) => t !== undefined);
    return tenants.flatMap((t) => [...t.ais.values()].map((ai) => renderAi(this, ai)));
  }

  // -------------------------------------------------------------------------- lookups

  findAi(t: TenantRec, idOrName: string): AiRec {
    const ai = t.ais.get(idOrName) ?? t.ais.get(t.aiIdByName.get(idOrName) ?? '');
    if (!ai) throw notFound(`App instance ${idOrName}`);
    return ai;
  }

  findSi(ai: AiRec, name: string): SiRec {
    const si = ai.storage_instances.find((s) => s.name === name || s.uuid === name);
    if (!si) throw notFound(`Storage instance ${name} of app instance ${ai.name}`);
    return si;
  }

  findVol(si: SiRec, name: string): VolRec {
    const v = si.volumes.find((x) => x.name === name || x.uuid === name);
    if (!v) throw notFound(`Volume ${name} of storage instance ${si.name}`);
    return v;
  }

  /** A template of the tenant or, failing that, of the nearest parent tenant that has one. */
  findTemplate(tenant: string, name: string): TemplateRec | undefined {
    for (const t of tenantChain(tenant)) {
      const tpl = this.tenants.get(t)?.templates.get(name);
      if (tpl) return tpl;
    }
    return undefined;
  }

  /** An initiator of the tenant or, failing that, of the nearest parent tenant that has one. */
  findInitiator(tenant: string, iqn: string): InitiatorRec | undefined {
    for (const t of tenantChain(tenant)) {
      const i = this.tenants.get(t)?.initiators.get(iqn);
      if (i) return i;
    }
    return undefined;
  }

  aiCtx(ctx: OpContext): { t: TenantRec; ai: AiRec } {
    const t = this.tenant(ctx.tenant);
    return { t, ai: this.findAi(t, ctx.params['id'] ?? ctx.params['ai_id'] ?? '') };
  }

  siCtx(ctx: OpContext): { t: TenantRec; ai: AiRec; si: SiRec } {
    const { t, ai } = this.aiCtx(ctx);
    return { t, ai, si: this.findSi(ai, ctx.params['storage_instance_name'] ?? ctx.params['si_id'] ?? '') };
  }

  volCtx(ctx: OpContext): { t: TenantRec; ai: AiRec; si: SiRec; vol: VolRec } {
    const { t, ai, si } = this.siCtx(ctx);
    return { t, ai, si, vol: this.findVol(si, ctx.params['volume_name'] ?? '') };
  }

  // -------------------------------------------------------------------------- capacity

  /** Raw GiB in use: size × replica_count over every volume of every tenant. */
  usedRawGiB(): number {
    let used = 0;
    for (const t of this.tenants.values())
      for (const ai of t.ais.values())
        for (const si of ai.storage_instances) for (const v of si.volumes) used += v.size * v.replica_count;
    return used;
  }

  /** DECISION: over capacity is 400 InvalidRequestError (final for clients, as on a full cluster). */
  requireCapacity(extraRawGiB: number, what: string): void {
    if (extraRawGiB <= 0) return;
    const used = this.usedRawGiB();
    if (used + extraRawGiB > this.opts.capacityGiB) {
      throw invalid(
        `Insufficient capacity for ${what}: needs ${extraRawGiB} GiB raw (size x replica_count), ` +
          `${Math.max(0, this.opts.capacityGiB - used)} GiB of ${this.opts.capacityGiB} GiB available`,
      );
    }
  }

  // -------------------------------------------------------------------------- backing files

  /** Backing files for new volumes: all of them, or none (those made are removed) and a SimError. */
  createBacking(vols: VolRec[], what: string): void {
    const backing = this.opts.backing;
    if (!backing) return;
    const made: VolRec[] = [];
    try {
      for (const v of vols) {
        backing.create(v.backingId, v.size, `${what} (volume ${v.name})`);
        made.push(v);
      }
    } catch (err) {
      for (const v of made) backing.remove(v.backingId);
      throw err;
    }
  }

  removeBacking(sis: SiRec[]): void {
    const backing = this.opts.backing;
    if (!backing) return;
    for (const si of sis) for (const v of si.volumes) backing.remove(v.backingId);
  }

  /** Sessions to targets that no longer exist (or went offline) end with them. */
  dropSessionsOf(sis: SiRec[]): void {
    const gone = new Set(sis.map((x) => x.iqn));
    this.sessions = this.sessions.filter((x) => !gone.has(x.target));
  }
}
