// SPDX-License-Identifier: Apache-2.0
// App templates per tenant (a tenant sees its own, then its parents' unless shadowed), and the
// seeding of templates into /root at start-up.
import type { AppTemplate, SnapshotPolicy } from '../../datera/types.js';
import { conflict, invalid, notFound, validationFailed } from '../errors.js';
import { HIDDEN, type Json, Listing, type OpContext, ROOT_TENANT, type TemplateRec, clone, duplicates, isObject, refName, tenantChain, toAuth } from '../model.js';
import { renderTemplate } from '../render.js';
import { bodySchema } from '../schemas.js';
import { poolFromRef, volSpecFromBody } from '../specs.js';
import type { SimState } from '../state.js';
import { show, validate } from '../validate.js';

/** A template record from a checked POST body; references to missing pools or policies are 422. */
function templateFromBody(s: SimState, b: Json, tenant: string): TemplateRec {
  const errors: string[] = [];
  const sts = Array.isArray(b['storage_templates']) ? (b['storage_templates'] as Json[]) : [];
  for (const d of duplicates(sts.map((x) => x['name'] as string))) errors.push(`storage_templates: duplicate name ${show(d)}`);
  const rec: TemplateRec = {
    name: b['name'] as string,
    descr: (b['descr'] as string | null | undefined) ?? '',
    tenant,
    snapshot_policies: Array.isArray(b['snapshot_policies']) ? clone(b['snapshot_policies'] as SnapshotPolicy[]) : [],
    storage_templates: sts.map((st, i) => {
      const vts = Array.isArray(st['volume_templates']) ? (st['volume_templates'] as Json[]) : [];
      for (const d of duplicates(vts.map((v) => v['name'] as string))) {
        errors.push(`storage_templates[${i}].volume_templates: duplicate name ${show(d)}`);
      }
      return {
        name: st['name'] as string,
        ip_pool: poolFromRef(s, st['ip_pool'], `storage_templates[${i}].ip_pool`, errors),
        auth: isObject(st['auth']) ? toAuth(st['auth']) : undefined,
        service_configuration: st['service_configuration'],
        volume_templates: vts.map((v, j) => volSpecFromBody(s, v, `storage_templates[${i}].volume_templates[${j}]`, errors)),
      };
    }),
  };
  if (errors.length) throw validationFailed(errors);
  return rec;
}

/**
 * Seeds a template into /root (seed file, SimOptions.templates); pools and placement policies it
 * names are created. Throws a plain Error naming the template when it fails the create schema.
 */
export function seedTemplate(s: SimState, t: AppTemplate): void {
  const body = templateCreateBody(t);
  for (const st of body.storage_templates ?? []) {
    const pool = typeof st.ip_pool === 'string' ? st.ip_pool : st.ip_pool?.path;
    const poolName = pool ? refName(pool, '/access_network_ip_pools/') : undefined;
    if (poolName) s.addIpPool(poolName);
    for (const vt of st.volume_templates ?? []) {
      const pp = vt.placement_policy?.path ? refName(vt.placement_policy.path, '/placement_policies/') : undefined;
      if (pp) s.addPlacementPolicy(pp);
    }
  }
  const errors = validate(bodySchema('/app_templates', 'create'), body);
  if (errors.length > 0) throw new Error(`app template ${JSON.stringify(t.name)}: ${errors.join('; ')}`);
  const rec = templateFromBody(s, body as unknown as Json, ROOT_TENANT);
  s.tenant(ROOT_TENANT).templates.set(rec.name, rec);
}

export function listTemplates(s: SimState, ctx: OpContext): Listing {
  // Own templates first, then those shared from parent tenants (unless shadowed).
  const seen = new Set<string>();
  const out: Json[] = [];
  for (const t of tenantChain(ctx.tenant)) {
    for (const tpl of s.tenants.get(t)?.templates.values() ?? []) {
      if (seen.has(tpl.name)) continue;
      seen.add(tpl.name);
      out.push(renderTemplate(s, tpl));
    }
  }
  return new Listing(out);
}

export function getTemplate(s: SimState, ctx: OpContext): Json {
  const name = ctx.params['name'] ?? '';
  const tpl = s.findTemplate(ctx.tenant, name);
  if (!tpl) throw notFound(`App template ${name}`);
  return renderTemplate(s, tpl);
}

/** `copy_from: {path}` starts from another visible template; keys of the body win. */
export function createTemplate(s: SimState, ctx: OpContext): Json {
  const t = s.tenant(ctx.tenant);
  const name = ctx.body['name'] as string;
  if (t.templates.has(name)) throw conflict(`App template ${name}`);
  let body = ctx.body;
  if (isObject(body['copy_from'])) {
    const from = refName(String(body['copy_from']['path']), '/app_templates/');
    const src = from ? s.findTemplate(ctx.tenant, from) : undefined;
    if (!src) throw validationFailed([`copy_from.path: app template ${show(body['copy_from']['path'])} does not exist`]);
    const copied = templateCreateBody(renderTemplate(s, src));
    body = { ...copied, ...body, storage_templates: body['storage_templates'] ?? copied.storage_templates } as Json;
  }
  const rec = templateFromBody(s, body, ctx.tenant);
  t.templates.set(rec.name, rec);
  return renderTemplate(s, rec);
}

/** DECISION: a template some app instance was created from cannot be deleted (400). */
export function deleteTemplate(s: SimState, ctx: OpContext): Json {
  const t = s.tenant(ctx.tenant);
  const name = ctx.params['name'] ?? '';
  const tpl = t.templates.get(name);
  if (!tpl) throw notFound(`App template ${name}`);
  const out = renderTemplate(s, tpl);
  if ((out['app_instances'] as unknown[]).length > 0) throw invalid(`App template ${name} is in use by app instances`);
  t.templates.delete(name);
  return out;
}

/** Turns a template in read shape (or as written in a seed file) into a POST /app_templates body. */
function templateCreateBody(t: AppTemplate | Json): {
  name: string;
  descr?: string;
  snapshot_policies?: unknown[];
  storage_templates?: Array<{
    name: string;
    ip_pool?: string | { path: string };
    auth?: Json;
    service_configuration?: unknown;
    volume_templates?: Array<Json & { placement_policy?: { path: string } }>;
  }>;
} {
  const src = t as Json;
  const strip = (o: Json, drop: string[]): Json => Object.fromEntries(Object.entries(o).filter(([k]) => !drop.includes(k)));
  const pathOnly = (v: unknown): unknown => (isObject(v) && typeof v['path'] === 'string' ? { path: v['path'] } : v);
  const out = strip(src, ['path', 'tenant', 'app_instances']);
  if (Array.isArray(out['snapshot_policies'])) out['snapshot_policies'] = (out['snapshot_policies'] as Json[]).map((p) => strip(p, ['path']));
  if (out['descr'] === '') delete out['descr'];
  if (Array.isArray(out['storage_templates'])) {
    out['storage_templates'] = (out['storage_templates'] as Json[]).map((st) => {
      const x = strip(st, ['path']);
      if (x['ip_pool'] !== undefined) x['ip_pool'] = pathOnly(x['ip_pool']);
      if (isObject(x['auth'])) {
        const a = strip(x['auth'], ['path']);
        for (const k of Object.keys(a)) if (a[k] === HIDDEN || a[k] === '') delete a[k];
        x['auth'] = a;
      }
      if (Array.isArray(x['volume_templates'])) {
        x['volume_templates'] = (x['volume_templates'] as Json[]).map((vt) => {
          const v = strip(vt, ['path']);
          if (v['placement_policy'] !== undefined) v['placement_policy'] = pathOnly(v['placement_policy']);
          if (isObject(v['performance_policy'])) v['performance_policy'] = strip(v['performance_policy'], ['path']);
          if (Array.isArray(v['snapshot_policies'])) v['snapshot_policies'] = (v['snapshot_policies'] as Json[]).map((p) => strip(p, ['path']));
          return v;
        });
      }
      return x;
    });
  }
  return out as ReturnType<typeof templateCreateBody>;
}
