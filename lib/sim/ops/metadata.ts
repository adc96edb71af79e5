// SPDX-License-Identifier: Apache-2.0
// The metadata maps of app instances and storage instances (where the provisioner records
// ownership), under both names a 3.3 cluster serves them: `/metadata` (the Go SDK, CSI, our
// client; the body is the map) and `/int_ecosystem_data` (dfs-sdk on product 3.3.0.0 and later;
// the PUT body is `{"data": <map>}`). DECISION: one map per instance behind both routes, so a key
// written through either is read through either; both GETs answer the map as `data`.
import { validationFailed } from '../errors.js';
import { type Json, type OpContext, clone } from '../model.js';
import type { SimState } from '../state.js';
import { type SchemaNode, validate } from '../validate.js';

const METADATA_SCHEMA: SchemaNode = {
  type: 'object',
  additionalProperties: { type: ['string', 'number', 'boolean', 'null'] },
};

/** DECISION: PUT merges keys into the map; a null value removes the key; "" is kept as "". */
function mergeMetadata(target: Json, body: Json): Json {
  const errors = validate(METADATA_SCHEMA, body);
  if (errors.length) throw validationFailed(errors);
  for (const [k, v] of Object.entries(body)) {
    if (v === null) delete target[k];
    else target[k] = v;
  }
  return clone(target);
}

export function getMetadata(s: SimState, ctx: OpContext): Json {
  return clone(s.aiCtx(ctx).ai.metadata);
}

export function putMetadata(s: SimState, ctx: OpContext): Json {
  return mergeMetadata(s.aiCtx(ctx).ai.metadata, ctx.body);
}

const ECOSYSTEM_SCHEMA: SchemaNode = {
  type: 'object',
  properties: { data: METADATA_SCHEMA },
  required: ['data'],
  additionalProperties: false,
};

/** The map inside an int_ecosystem_data PUT body; 422 naming `data` when the body is not `{data: {...}}`. */
function ecosystemData(body: Json): Json {
  const errors = validate(ECOSYSTEM_SCHEMA, body);
  if (errors.length) throw validationFailed(errors);
  return body['data'] as Json;
}

export function putEcosystemData(s: SimState, ctx: OpContext): Json {
  return mergeMetadata(s.aiCtx(ctx).ai.metadata, ecosystemData(ctx.body));
}

export function putSiEcosystemData(s: SimState, ctx: OpContext): Json {
  return mergeMetadata(s.siCtx(ctx).si.metadata, ecosystemData(ctx.body));
}

export function getSiMetadata(s: SimState, ctx: OpContext): Json {
  return clone(s.siCtx(ctx).si.metadata);
}

export function putSiMetadata(s: SimState, ctx: OpContext): Json {
  return mergeMetadata(s.siCtx(ctx).si.metadata, ctx.body);
}
