// SPDX-License-Identifier: Apache-2.0
// Request schemas of the simulator: the committed v2.1 subset (schema/v2.1-subset.json, made by
// schema/extract.ts from a cluster's /v2.1/api dump) plus the v2.2 fields the v2.1 dump lacks.
//
// The v2.1 dump says `additionalProperties: false` almost everywhere, so a v2.2 client body
// (template_override, placement_policy, service_configuration, initiator `force` ...) would be
// refused if the dump were used as is. The additions below are taken from the v2.2 clients
// (GOSDK struct tags, CSI and Cinder request bodies, see datera-api.md); the simulator accepts
// them on both /v2.1 and /v2.2, because no v2.2 dump exists to be stricter with. Their shapes
// are checked here as far as the clients pin them down; template_override is checked by the
// app-instance builder (override.ts), which knows the template it overrides. The same changes
// are applied to the whole dump for the `/v2.2/api` answer (api-schema.ts, `extendSchemas`).
import subsetFile from './schema/v2.1-subset.json' with { type: 'json' };
import type { SchemaNode } from './validate.js';

interface SubsetFile {
  version: string;
  routes: Record<string, Record<string, SchemaNode>>;
}

const PATH_PATTERN = '(^(\\/)$)|(^(\\/[^\\/]+)+$)';

const pathRef = (): SchemaNode => ({
  type: 'object',
  properties: { path: { type: 'string', pattern: PATH_PATTERN } },
  required: ['path'],
  additionalProperties: false,
});

/** v2.2: "iscsi" or "object" in DBMP; GOSDK models it loosely, so a string or an object. */
const serviceConfiguration = (): SchemaNode => ({ anyOf: [{ type: 'string' }, { type: 'object' }] });
const storagePool = (): SchemaNode => ({ anyOf: [{ type: 'string' }, { type: 'object' }, { type: 'array' }] });

type Addition = [route: string, op: string, at: string[], props: Record<string, SchemaNode>];

const SI = '/app_instances/:id/storage_instances';
const SI1 = `${SI}/:storage_instance_name`;
const VOL = `${SI1}/volumes`;
const VOL1 = `${VOL}/:volume_name`;

// `at` walks from the operation's root: a name steps into `properties[name]`, "[]" into `items`.
const V22_ADDITIONS: Addition[] = [
  ['/app_instances', 'create', [], { template_override: { type: 'object' }, repair_priority: { type: 'string' } }],
  ['/app_instances', 'create', ['storage_instances', '[]'], { service_configuration: serviceConfiguration() }],
  [
    '/app_instances',
    'create',
    ['storage_instances', '[]', 'volumes', '[]'],
    { placement_policy: pathRef(), storage_pool: storagePool() },
  ],
  [
    '/app_instances/:id',
    'update',
    [],
    {
      repair_priority: { type: 'string' },
      remote_provider: { type: ['string', 'object'] },
      remote_restore_point: { type: 'string' },
      storage_pool: storagePool(),
    },
  ],
  ['/app_instances/:id', 'update', ['storage_instances', '[]'], { service_configuration: serviceConfiguration() }],
  [
    '/app_instances/:id',
    'update',
    ['storage_instances', '[]', 'volumes', '[]'],
    { placement_policy: pathRef(), storage_pool: storagePool() },
  ],
  [SI, 'create', [], { service_configuration: serviceConfiguration() }],
  [SI, 'create', ['volumes', '[]'], { placement_policy: pathRef(), storage_pool: storagePool() }],
  [SI1, 'update', [], { service_configuration: serviceConfiguration() }],
  [SI1, 'update', ['volumes', '[]'], { placement_policy: pathRef(), storage_pool: storagePool() }],
  [VOL, 'create', [], { placement_policy: pathRef(), storage_pool: storagePool(), force: { type: 'boolean' } }],
  [VOL1, 'update', [], { placement_policy: pathRef(), storage_pool: storagePool() }],
  ['/initiators', 'create', [], { force: { type: 'boolean' } }],
  [
    `${VOL1}/snapshots`,
    'create',
    [],
    { remote_provider_uuid: { type: 'string' }, type: { type: 'string', enum: ['local', 'remote', 'local_and_remote'] } },
  ],
  [
    '/app_instances/:id/snapshots',
    'create',
    [],
    { remote_provider_uuid: { type: 'string' }, type: { type: 'string', enum: ['local', 'remote', 'local_and_remote'] } },
  ],
  // v2.1 templates hold ip_pool as a plain path string; v2.2 (GOSDK) sends {path}. Accept both.
  [
    '/app_templates',
    'create',
    ['storage_templates', '[]'],
    { ip_pool: { anyOf: [{ type: 'string', pattern: PATH_PATTERN }, pathRef()] }, service_configuration: serviceConfiguration() },
  ],
  [
    '/app_templates',
    'create',
    ['storage_templates', '[]', 'volume_templates', '[]'],
    { placement_policy: pathRef(), storage_pool: storagePool() },
  ],
];

function walk(node: SchemaNode, at: string[], where: string): SchemaNode {
  let cur: SchemaNode | undefined = node;
  for (const step of at) {
    cur = step === '[]' ? cur?.items : cur?.properties?.[step];
    if (!cur) throw new Error(`simulator schema: ${where} has no ${at.join('.')}`);
  }
  return cur;
}

/**
 * Applies the simulator's request-schema changes in place: volumes created on their own take the
 * same performance and snapshot policies as inline ones, and the v2.2 additions above. `find`
 * answers the bodyParamSchema of a route operation (from the subset or from the whole dump).
 */
export function extendSchemas(find: (route: string, op: string) => SchemaNode | undefined): void {
  const aiCreate = find('/app_instances', 'create');
  const volCreate = find(VOL, 'create');
  if (!aiCreate || !volCreate) throw new Error('simulator schema: no app instance or volume create schema');
  const inlineVolume = walk(aiCreate, ['storage_instances', '[]', 'volumes', '[]'], 'AI create');
  volCreate.properties = {
    ...volCreate.properties,
    performance_policy: structuredClone(inlineVolume.properties!['performance_policy']!),
    snapshot_policies: structuredClone(inlineVolume.properties!['snapshot_policies']!),
  };
  for (const [route, op, at, props] of V22_ADDITIONS) {
    const root = find(route, op);
    if (!root) throw new Error(`simulator schema: ${route} ${op} is not in the schema`);
    const target = walk(root, at, `${route} ${op}`);
    target.properties = { ...target.properties, ...props };
  }
}

function build(): Record<string, Record<string, SchemaNode>> {
  const copy = structuredClone((subsetFile as unknown as SubsetFile).routes);
  extendSchemas((route, op) => copy[route]?.[op]);
  return copy;
}

const SCHEMAS = build();

/** The request schema of a route operation (v2.1 dump plus the v2.2 additions), if any. */
export function bodySchema(route: string, op: 'read' | 'create' | 'update' | 'delete'): SchemaNode | undefined {
  return SCHEMAS[route]?.[op];
}
