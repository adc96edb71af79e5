// SPDX-License-Identifier: Apache-2.0
// Seed files for the simulator (YAML or JSON):
//
//   templates:            # app templates in the shape of POST /app_templates (or of a GET answer)
//     - name: basic_small
//       storage_templates: [...]
//   ip_pools: [fast]      # extra access network IP pools besides "default" (optional)
//   placement_policies: [all-flash]   # extra placement policies (optional)
//
// Pools and placement policies that seeded templates reference are created as well. Templates
// are validated like POST /app_templates when the simulator starts.
import { readFile } from 'node:fs/promises';
import type { AppTemplate } from '../datera/types.js';

export interface SimSeed {
  templates?: AppTemplate[];
  ip_pools?: string[];
  placement_policies?: string[];
}

function isStringList(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}

/** Checks the outer shape of a parsed seed; the templates themselves are checked when seeded. */
function parseSeed(doc: unknown, source = 'seed'): SimSeed {
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new Error(`${source}: expected a mapping with "templates"`);
  const d = doc as Record<string, unknown>;
  const unknownKeys = Object.keys(d).filter((k) => !['templates', 'ip_pools', 'placement_policies'].includes(k));
  if (unknownKeys.length) throw new Error(`${source}: unknown keys ${unknownKeys.join(', ')} (expected templates, ip_pools, placement_policies)`);
  if (d['templates'] !== undefined && !Array.isArray(d['templates'])) throw new Error(`${source}: "templates" must be a list`);
  for (const k of ['ip_pools', 'placement_policies']) {
    if (d[k] !== undefined && !isStringList(d[k])) throw new Error(`${source}: "${k}" must be a list of names`);
  }
  return {
    templates: d['templates'] as AppTemplate[] | undefined,
    ip_pools: d['ip_pools'] as string[] | undefined,
    placement_policies: d['placement_policies'] as string[] | undefined,
  };
}

/** Reads a YAML (or JSON, which is YAML too) seed file. */
export async function loadSeedFile(path: string): Promise<SimSeed> {
  const text = await readFile(path, 'utf8');
  let doc: unknown;
  if (/\.json$/i.test(path)) {
    try {
      doc = JSON.parse(text);
    } catch (err) {
      throw new Error(`${path}: not valid JSON: ${(err as Error).message}`, { cause: err });
    }
  } else {
    // Loaded on demand: client-node is large and only YAML seeds need it.
    const { loadYaml } = await import('@kubernetes/client-node');
    try {
      doc = loadYaml<unknown>(text);
    } catch (err) {
      throw new Error(`${path}: not valid YAML: ${(err as Error).message}`, { cause: err });
    }
  }
  return parseSeed(doc, path);
}
