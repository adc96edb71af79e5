// SPDX-License-Identifier: Apache-2.0
// Initiators (host IQNs) per tenant. A tenant sees its own and its parent tenants' initiators.
import { conflict, invalid, notFound } from '../errors.js';
import { type InitiatorRec, type Json, Listing, type OpContext } from '../model.js';
import { renderInitiator } from '../render.js';
import type { SimState } from '../state.js';

export function listInitiators(s: SimState, ctx: OpContext): Listing {
  return new Listing([...s.tenant(ctx.tenant).initiators.values()].map((i) => renderInitiator(i)));
}

/** An initiator of a parent tenant is visible (with its own `tenant`), as on the cluster. */
export function getInitiator(s: SimState, ctx: OpContext): Json {
  const iqn = ctx.params['id'] ?? '';
  const rec = s.findInitiator(ctx.tenant, iqn);
  if (!rec) throw notFound(`Initiator ${iqn}`);
  return renderInitiator(rec);
}

/**
 * 409 when the tenant has it. When only a parent tenant has it, the cluster warns with an
 * InvalidRequestError unless force is true (DBMP, Cinder DAT-15931); the simulator does the same.
 */
export function createInitiator(s: SimState, ctx: OpContext): Json {
  const t = s.tenant(ctx.tenant);
  const iqn = ctx.body['id'] as string;
  if (t.initiators.has(iqn)) throw conflict(`Initiator ${iqn}`);
  const inherited = s.findInitiator(ctx.tenant, iqn);
  if (inherited && ctx.body['force'] !== true) {
    throw invalid(`Initiator ${iqn} already exists in tenant ${inherited.tenant}; set force to true to override this warning`);
  }
  const rec: InitiatorRec = { id: iqn, name: ctx.body['name'] as string, tenant: ctx.tenant };
  t.initiators.set(iqn, rec);
  return renderInitiator(rec);
}

export function updateInitiator(s: SimState, ctx: OpContext): Json {
  const iqn = ctx.params['id'] ?? '';
  const rec = s.tenant(ctx.tenant).initiators.get(iqn);
  if (!rec) throw notFound(`Initiator ${iqn}`);
  if (typeof ctx.body['name'] === 'string') rec.name = ctx.body['name'];
  return renderInitiator(rec);
}

/** DECISION: an initiator still named in an ACL of its tenant cannot be deleted (400). */
export function deleteInitiator(s: SimState, ctx: OpContext): Json {
  const t = s.tenant(ctx.tenant);
  const iqn = ctx.params['id'] ?? '';
  const rec = t.initiators.get(iqn);
  if (!rec) throw notFound(`Initiator ${iqn}`);
  for (const ai of t.ais.values())
    for (const si of ai.storage_instances)
      if (si.initiators.includes(`/initiators/${iqn}`)) {
        throw invalid(`Initiator ${iqn} is in the ACL of /app_instances/${ai.id}/storage_instances/${si.name}; remove it first`);
      }
  t.initiators.delete(iqn);
  return renderInitiator(rec);
}
