// SPDX-License-Identifier: Apache-2.0
// App instances: create (from storage instances, a template, or a clone source), read, update,
// delete, and their snapshot policies.
import { randomUUID } from 'node:crypto';
import type { SnapshotPolicy } from '../../datera/types.js';
import { conflict, invalid, notFound, validationFailed } from '../errors.js';
import {
  type AiRec,
  type Json,
  Listing,
  type OpContext,
  type SiRec,
  type SiSpec,
  type SnapRec,
  type TemplateRec,
  type TenantRec,
  type VolRec,
  clone,
  duplicates,
  isObject,
  refName,
} from '../model.js';
import { specsFromTemplate } from '../override.js';
import { renderAi, renderSnapshotPolicy } from '../render.js';
import { newSi, rawGiB, siSpecFromBody, specFromVol, specsFromAi } from '../specs.js';
import type { SimState } from '../state.js';
import { show } from '../validate.js';

const ZERO_UUID = '00000000-0000-0000-0000-000000000000';

/** Where a clone comes from: `/app_instances/<ai>[/storage_instances/<si>/volumes/<vol>][/snapshots/<ts>]`. */
interface CloneSource {
  kind: 'ai' | 'volume' | 'snapshot' | 'ai_snapshot';
  ai: AiRec;
  si?: SiRec;
  vol?: VolRec;
  snap?: SnapRec;
}

/** Resolves a clone source path in a tenant; undefined when any part of it does not exist. */
function resolveAppPath(t: TenantRec, path: string): CloneSource | undefined {
  const seg = path.split('/').slice(1).map(decodeURIComponent);
  if (seg[0] !== 'app_instances' || !seg[1]) return undefined;
  const ai = t.ais.get(seg[1]) ?? t.ais.get(t.aiIdByName.get(seg[1]) ?? '');
  if (!ai) return undefined;
  if (seg.length === 2) return { ai, kind: 'ai' };
  if (seg.length === 4 && seg[2] === 'snapshots') {
    const snap = ai.snapshots.find((s) => s.utc_ts === seg[3] || s.uuid === seg[3]);
    return snap ? { ai, snap, kind: 'ai_snapshot' } : undefined;
  }
  if (seg[2] !== 'storage_instances' || seg[4] !== 'volumes' || !seg[3] || !seg[5]) return undefined;
  const si = ai.storage_instances.find((s) => s.name === seg[3]);
  const vol = si?.volumes.find((v) => v.name === seg[5]);
  if (!si || !vol) return undefined;
  if (seg.length === 6) return { ai, si, vol, kind: 'volume' };
  if (seg.length === 8 && seg[6] === 'snapshots') {
    const snap = vol.snapshots.find((s) => s.utc_ts === seg[7] || s.uuid === seg[7]);
    return snap ? { ai, si, vol, snap, kind: 'snapshot' } : undefined;
  }
  return undefined;
}

export function listAppInstances(s: SimState, ctx: OpContext): Listing {
  return new Listing([...s.tenant(ctx.tenant).ais.values()].map((ai) => renderAi(s, ai)));
}

export function getAppInstance(s: SimState, ctx: OpContext): Json {
  return renderAi(s, s.aiCtx(ctx).ai);
}

/**
 * One of storage_instances, app_template (with template_override), clone_src, clone_volume_src
 * or clone_snapshot_src says what the app instance holds; none makes an empty one. All volumes
 * are checked against capacity and get their backing files before anything is stored.
 */
export function createAppInstance(s: SimState, ctx: OpContext): Json {
  const t = s.tenant(ctx.tenant);
  const b = ctx.body;
  const name = b['name'] as string;
  if (t.aiIdByName.has(name) || t.ais.has(name)) throw conflict(`App instance ${name}`);

  const sources = ['storage_instances', 'app_template', 'clone_src', 'clone_volume_src', 'clone_snapshot_src'].filter(
    (k) => b[k] !== undefined,
  );
  if (sources.length > 1) throw invalid(`Only one of ${sources.join(', ')} may be given`);
  if (b['template_override'] !== undefined && b['app_template'] === undefined) {
    throw invalid('template_override requires app_template');
  }

  const errors: string[] = [];
  let specs: SiSpec[] = [];
  let template: TemplateRec | undefined;
  let cloneSrc: string | undefined;
  let snapshotPolicies = Array.isArray(b['snapshot_policies']) ? clone(b['snapshot_policies'] as SnapshotPolicy[]) : undefined;

  if (Array.isArray(b['storage_instances'])) {
    const sis = b['storage_instances'] as Json[];
    for (const d of duplicates(sis.map((x) => x['name'] as string))) errors.push(`storage_instances: duplicate storage instance name ${show(d)}`);
    specs = sis.map((x, i) => siSpecFromBody(s, x, ctx.tenant, `storage_instances[${i}]`, errors));
  } else if (isObject(b['app_template'])) {
    const path = b['app_template']['path'] as string;
    const tplName = refName(path, '/app_templates/');
    template = tplName ? s.findTemplate(ctx.tenant, tplName) : undefined;
    if (!template) throw validationFailed([`app_template.path: app template ${show(path)} does not exist`]);
    specs = specsFromTemplate(s, template, b['template_override'], errors);
    snapshotPolicies ??= clone(template.snapshot_policies);
  } else {
    const key = sources[0];
    if (key) {
      const path = (b[key] as Json)['path'] as string;
      const src = resolveAppPath(t, path);
      const want = key === 'clone_src' ? ['ai'] : key === 'clone_volume_src' ? ['volume'] : ['snapshot', 'ai_snapshot'];
      if (!src || !want.includes(src.kind)) {
        throw validationFailed([`${key}.path: ${key === 'clone_src' ? 'app instance' : key === 'clone_volume_src' ? 'volume' : 'snapshot'} ${show(path)} does not exist`]);
      }
      cloneSrc = path;
      if (src.kind === 'ai') specs = specsFromAi(src.ai);
      else if (src.kind === 'ai_snapshot') specs = clone(src.snap?.layout ?? []);
      else if (src.si && src.vol) {
        specs = [
          {
            name: src.si.name,
            ip_pool: src.si.ip_pool,
            auth: clone(src.si.auth),
            access_control_mode: src.si.access_control_mode,
            volumes: [specFromVol(src.vol, src.snap?.size ?? src.vol.size)],
          },
        ];
      }
    }
  }
  if (errors.length > 0) throw validationFailed(errors);

  s.requireCapacity(rawGiB(specs), `app instance ${name}`);

  const ai: AiRec = {
    id: randomUUID(),
    name,
    uuid: (b['uuid'] as string | undefined) ?? ZERO_UUID,
    tenant: ctx.tenant,
    descr: (b['descr'] as string | null | undefined) ?? '',
    create_mode: (b['create_mode'] as string | undefined) ?? 'normal',
    admin_state: 'online',
    app_template: template ? { name: template.name, tenant: template.tenant } : undefined,
    template_override: b['template_override'] !== undefined ? clone(b['template_override']) : undefined,
    clone_src: cloneSrc,
    repair_priority: b['repair_priority'] as string | undefined,
    snapshot_policies: snapshotPolicies ?? [],
    snapshots: [],
    storage_instances: specs.map((x) => newSi(s, x, { access_control_mode: (b['access_control_mode'] as string) ?? 'deny_all' })),
    metadata: {},
  };
  // A uuid given on create (OpenStack) becomes the uuid of the first volume too.
  const firstVol = ai.storage_instances[0]?.volumes[0];
  if (b['uuid'] !== undefined && firstVol) firstVol.uuid = b['uuid'] as string;
  s.createBacking(ai.storage_instances.flatMap((si) => si.volumes), `app instance ${name}`);
  t.ais.set(ai.id, ai);
  t.aiIdByName.set(ai.name, ai.id);
  return renderAi(s, ai);
}

/** Every check runs before the first change, so a refused update changes nothing. */
export function updateAppInstance(s: SimState, ctx: OpContext): Json {
  const { t, ai } = s.aiCtx(ctx);
  const b = ctx.body;
  if (b['storage_instances'] !== undefined) {
    throw invalid('Updating storage_instances through the app instance is not supported by the simulator; PUT the storage instance');
  }
  if (typeof b['name'] === 'string' && b['name'] !== ai.name) {
    if (t.aiIdByName.has(b['name']) || t.ais.has(b['name'])) throw conflict(`App instance ${b['name']}`);
  }
  if (Array.isArray(b['snapshot_policies'])) {
    const d = duplicates((b['snapshot_policies'] as Json[]).map((p) => p['name'] as string));
    if (d.length) throw validationFailed(d.map((n) => `snapshot_policies: duplicate snapshot policy name ${show(n)}`));
  }
  if (typeof b['restore_point'] === 'string') {
    if (ai.admin_state !== 'offline') throw invalid(`App instance ${ai.name} must be offline to restore a snapshot`);
    const snap = ai.snapshots.find((x) => x.utc_ts === b['restore_point']);
    if (!snap) throw notFound(`Snapshot ${b['restore_point']} of app instance ${ai.name}`);
  }
  if (typeof b['name'] === 'string' && b['name'] !== ai.name) {
    t.aiIdByName.delete(ai.name);
    ai.name = b['name'];
    t.aiIdByName.set(ai.name, ai.id);
  }
  if (b['descr'] !== undefined) ai.descr = (b['descr'] as string | null) ?? '';
  if (b['admin_state'] === 'online' || b['admin_state'] === 'offline') {
    ai.admin_state = b['admin_state'];
    for (const si of ai.storage_instances) si.admin_state = b['admin_state'];
    // DECISION: offlining a target ends its sessions (the initiators lose the disk).
    if (b['admin_state'] === 'offline') s.dropSessionsOf(ai.storage_instances);
  }
  if (Array.isArray(b['snapshot_policies'])) ai.snapshot_policies = clone(b['snapshot_policies'] as SnapshotPolicy[]);
  if (typeof b['repair_priority'] === 'string') ai.repair_priority = b['repair_priority'];
  return renderAi(s, ai);
}

/**
 * DECISION: with requireOfflineForDelete, an online app instance is refused with 400
 * InvalidRequestError unless the body (or query) says force: true. Snapshots do not block.
 */
export function deleteAppInstance(s: SimState, ctx: OpContext): Json {
  const { t, ai } = s.aiCtx(ctx);
  const force = ctx.body['force'] === true || ctx.query.get('force') === 'true';
  if (s.opts.requireOfflineForDelete && ai.admin_state === 'online' && !force) {
    throw invalid(`App instance ${ai.name} is online; set admin_state offline (or pass force: true) before deleting it`);
  }
  const out = renderAi(s, ai);
  t.ais.delete(ai.id);
  t.aiIdByName.delete(ai.name);
  s.dropSessionsOf(ai.storage_instances);
  s.removeBacking(ai.storage_instances);
  return out;
}

// -------------------------------------------------------------------------- snapshot policies

export function listAiSnapshotPolicies(s: SimState, ctx: OpContext): Listing {
  const { ai } = s.aiCtx(ctx);
  return new Listing(ai.snapshot_policies.map((p) => renderSnapshotPolicy(`/app_instances/${ai.id}`, p)));
}

export function createAiSnapshotPolicy(s: SimState, ctx: OpContext): Json {
  const { ai } = s.aiCtx(ctx);
  const p = clone(ctx.body) as unknown as SnapshotPolicy;
  if (ai.snapshot_policies.some((x) => x.name === p.name)) throw conflict(`Snapshot policy ${p.name}`);
  ai.snapshot_policies.push(p);
  return renderSnapshotPolicy(`/app_instances/${ai.id}`, p);
}
