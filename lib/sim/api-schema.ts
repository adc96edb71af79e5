// SPDX-License-Identifier: Apache-2.0
// What `GET /vX/api` answers: the whole API schema of each served version, as a cluster serves it
// (clients build themselves from it: dfs-sdk 1.2.27 reads every route and the metric enums of
// `/metrics/io/:metric` and `/metrics/hw/:metric` at login, and fails on a partial schema).
//
// Source: schema/api-v2.1.json.gz, the `/v2.1/api` dump of a real cluster (the one in dfs-sdk's
// tests; schema/extract.ts writes it from ../shared/datera/), read and parsed once, on the first
// `/api` call, and kept. Validation does not use it: it keeps the committed subset (schemas.ts).
//
// The views (DECISION, no v2.2 dump exists anywhere public):
// - v2.1: the dump as the cluster answered it, plus `/app_instances/:id/int_ecosystem_data` and
//   its storage-instance twin, listed the way the dump lists `/metadata` (no operations). The
//   simulator reports product 3.3.5, and on 3.3.0.0 and later clients use that route on every API
//   version (dfs-sdk switches on the product version, not the API version).
// - v2.2: the v2.1 view with what a v2.2 cluster adds as the v2.2 clients show it: the request
//   fields of schemas.ts merged into the same bodyParamSchemas (Cinder's v2.2 driver looks for
//   `template_override` in `/app_instances` create to detect the feature), and the
//   `/placement_policies` routes (product 3.3+, v2.2). Everything else is the v2.1 dump: the v2.2
//   clients use no other route the dump lacks.
// Either view answers a top-level map keyed by route with `version` and `request_time`, without
// the `data` envelope, as the dump shows.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { extendSchemas } from './schemas.js';
import type { SchemaNode } from './validate.js';

type Operation = Record<string, unknown> & { bodyParamSchema?: SchemaNode };
type Routes = Record<string, Record<string, Operation>>;

const DUMP = 'schema/api-v2.1.json.gz';

/** Reads the committed dump. tsc copies only imported JSON into dist/, so compiled code falls back to the source tree. */
function readDump(): Routes {
  const candidates = [new URL(`./${DUMP}`, import.meta.url), new URL(`../../../lib/sim/${DUMP}`, import.meta.url)];
  const errors: string[] = [];
  for (const url of candidates) {
    try {
      const parsed = JSON.parse(gunzipSync(readFileSync(url)).toString('utf8')) as Record<string, unknown>;
      const routes: Routes = {};
      for (const [key, value] of Object.entries(parsed)) {
        if (key.startsWith('/') && value && typeof value === 'object') routes[key] = value as Routes[string];
      }
      return routes;
    } catch (err) {
      errors.push(`${fileURLToPath(url)}: ${(err as Error).message}`);
    }
  }
  throw new Error(`simulator: cannot read the /api schema dump (${errors.join('; ')})`);
}

const ECOSYSTEM_ROUTES = ['/app_instances/:id/int_ecosystem_data', '/app_instances/:ai_id/storage_instances/:si_id/int_ecosystem_data'];

function placementPolicyRoutes(): Routes {
  const op = (path: string, descr: string, entity?: string): Operation => ({
    op: 'read',
    path,
    descr,
    group: 'app_storage_provisioning',
    minVersion: '3.3.0.0',
    ...(entity ? { entity } : {}),
    bodyParamSchema: { type: 'object', properties: {}, additionalProperties: true },
  });
  return {
    '/placement_policies': { read: op('/placement_policies', 'List all placement policies') },
    '/placement_policies/:name': { read: op('/placement_policies/:name', 'Show a single placement policy', 'placement_policy') },
  };
}

function buildViews(): Record<string, Routes> {
  const v21 = readDump();
  for (const route of ECOSYSTEM_ROUTES) v21[route] = {};
  const v22 = structuredClone(v21);
  extendSchemas((route, op) => v22[route]?.[op]?.bodyParamSchema);
  Object.assign(v22, placementPolicyRoutes());
  return { 'v2.1': v21, 'v2.2': v22 };
}

let views: Record<string, Routes> | undefined;

/**
 * The `/api` answer of a served version: routes, `version` and `request_time`. Built on the first
 * call; the route objects are shared between calls and must not be changed by the caller.
 */
export function apiDescription(version: string): Record<string, unknown> {
  views ??= buildViews();
  const routes = views[version];
  if (!routes) throw new Error(`simulator: no /api view for ${version}`);
  return { ...routes, version, request_time: 0 };
}
