// SPDX-License-Identifier: Apache-2.0
// Storage instances (the iSCSI targets of an app instance), their CHAP auth and their ACL.
import { conflict, invalid, notFound, validationFailed } from '../errors.js';
import { type AuthRec, type Json, Listing, type OpContext, clone, isObject, refName, toAuth } from '../model.js';
import { renderAcl, renderAuth, renderInitiator, renderSi } from '../render.js';
import { groupPaths, initiatorPaths, newSi, poolFromRef, rawGiB, siSpecFromBody } from '../specs.js';
import type { SimState } from '../state.js';
import { show } from '../validate.js';

export function listStorageInstances(s: SimState, ctx: OpContext): Listing {
  const { ai } = s.aiCtx(ctx);
  return new Listing(ai.storage_instances.map((si) => renderSi(s, ai, si)));
}

export function getStorageInstance(s: SimState, ctx: OpContext): Json {
  const { ai, si } = s.siCtx(ctx);
  return renderSi(s, ai, si);
}

export function createStorageInstance(s: SimState, ctx: OpContext): Json {
  const { ai } = s.aiCtx(ctx);
  const name = ctx.body['name'] as string;
  if (ai.storage_instances.some((x) => x.name === name)) throw conflict(`Storage instance ${name}`);
  const errors: string[] = [];
  const spec = siSpecFromBody(s, ctx.body, ctx.tenant, '', errors);
  if (errors.length) throw validationFailed(errors.map((e) => e.replace(/^\./, '')));
  s.requireCapacity(rawGiB([spec]), `storage instance ${name}`);
  const si = newSi(s, spec, { access_control_mode: 'deny_all' });
  s.createBacking(si.volumes, `storage instance ${ai.name}/${name}`);
  ai.storage_instances.push(si);
  return renderSi(s, ai, si);
}

/** An offline storage instance ends its iSCSI sessions. */
export function updateStorageInstance(s: SimState, ctx: OpContext): Json {
  const { ai, si } = s.siCtx(ctx);
  const b = ctx.body;
  if (b['volumes'] !== undefined) {
    throw invalid('Updating volumes through the storage instance is not supported by the simulator; PUT the volume');
  }
  const errors: string[] = [];
  const pool = poolFromRef(s, b['ip_pool'], 'ip_pool', errors);
  let initiators: string[] | undefined;
  let groups: string[] | undefined;
  if (isObject(b['acl_policy'])) {
    const acl = b['acl_policy'];
    if (acl['initiators'] !== undefined) initiators = initiatorPaths(s, acl['initiators'], ctx.tenant, 'acl_policy.initiators', errors);
    if (acl['initiator_groups'] !== undefined) groups = groupPaths(acl['initiator_groups'], 'acl_policy.initiator_groups', errors);
  }
  if (errors.length) throw validationFailed(errors);
  if (b['admin_state'] === 'online' || b['admin_state'] === 'offline') si.admin_state = b['admin_state'];
  if (si.admin_state === 'offline') s.dropSessionsOf([si]);
  if (typeof b['access_control_mode'] === 'string') si.access_control_mode = b['access_control_mode'];
  if (pool) si.ip_pool = pool;
  if (isObject(b['auth'])) si.auth = mergeAuth(si.auth, b['auth']);
  if (initiators) si.initiators = initiators;
  if (groups) si.initiator_groups = groups;
  if (b['service_configuration'] !== undefined) si.service_configuration = clone(b['service_configuration']);
  return renderSi(s, ai, si);
}

/** With requireOfflineForDelete, an online storage instance needs force: true, as an app instance does. */
export function deleteStorageInstance(s: SimState, ctx: OpContext): Json {
  const { ai, si } = s.siCtx(ctx);
  const force = ctx.body['force'] === true || ctx.query.get('force') === 'true';
  if (s.opts.requireOfflineForDelete && si.admin_state === 'online' && !force) {
    throw invalid(`Storage instance ${si.name} is online; set admin_state offline (or pass force: true) before deleting it`);
  }
  const out = renderSi(s, ai, si);
  ai.storage_instances.splice(ai.storage_instances.indexOf(si), 1);
  s.dropSessionsOf([si]);
  s.removeBacking([si]);
  return out;
}

// -------------------------------------------------------------------------- auth

export function getAuth(s: SimState, ctx: OpContext): Json {
  const { ai, si } = s.siCtx(ctx);
  return renderAuth(`/app_instances/${ai.id}/storage_instances/${si.name}/auth`, si.auth);
}

export function putAuth(s: SimState, ctx: OpContext): Json {
  const { ai, si } = s.siCtx(ctx);
  si.auth = mergeAuth(si.auth, ctx.body);
  return renderAuth(`/app_instances/${ai.id}/storage_instances/${si.name}/auth`, si.auth);
}

/** Given keys replace; type "none" clears the credentials. */
function mergeAuth(cur: AuthRec, body: Json): AuthRec {
  const next = toAuth({ ...cur, ...body });
  if (next.type === 'none') return toAuth(undefined);
  return next;
}

// -------------------------------------------------------------------------- ACL

export function getAcl(s: SimState, ctx: OpContext): Json {
  const { ai, si } = s.siCtx(ctx);
  return renderAcl(ai, si);
}

/** DECISION: PUT replaces each list that is present in the body; a list left out is kept. */
export function putAcl(s: SimState, ctx: OpContext): Json {
  const { ai, si } = s.siCtx(ctx);
  const errors: string[] = [];
  const b = ctx.body;
  const initiators = b['initiators'] !== undefined ? initiatorPaths(s, b['initiators'], ctx.tenant, 'initiators', errors) : undefined;
  const groups = b['initiator_groups'] !== undefined ? groupPaths(b['initiator_groups'], 'initiator_groups', errors) : undefined;
  if (errors.length) throw validationFailed(errors);
  if (initiators) si.initiators = initiators;
  if (groups) si.initiator_groups = groups;
  return renderAcl(ai, si);
}

export function listAclInitiators(s: SimState, ctx: OpContext): Listing {
  const { si } = s.siCtx(ctx);
  return new Listing(
    si.initiators.map((p) => {
      const iqn = refName(p, '/initiators/') ?? '';
      const rec = s.findInitiator(ctx.tenant, iqn);
      return rec ? renderInitiator(rec) : { path: p, id: iqn, name: '', tenant: ctx.tenant };
    }),
  );
}

/**
 * `{op: add|remove, path}`. Add of a member already present: 409 ConflictError (as DBMP sees).
 * DECISION: remove of a path that is not a member: 404 NotFoundError. Answers the ACL policy.
 */
export function patchAclInitiators(s: SimState, ctx: OpContext): Json {
  const { ai, si } = s.siCtx(ctx);
  const path = ctx.body['path'] as string;
  const iqn = refName(path, '/initiators/');
  const canonical = iqn ? `/initiators/${iqn}` : path;
  if (ctx.body['op'] === 'add') {
    if (!iqn || !s.findInitiator(ctx.tenant, iqn)) throw validationFailed([`path: initiator ${show(path)} does not exist`]);
    if (si.initiators.includes(canonical)) throw conflict(`Initiator ${canonical} in the ACL of ${si.name}`);
    si.initiators.push(canonical);
  } else {
    const at = si.initiators.indexOf(canonical);
    if (at < 0) throw notFound(`Initiator ${canonical} in the ACL of ${si.name}`);
    si.initiators.splice(at, 1);
  }
  return renderAcl(ai, si);
}
