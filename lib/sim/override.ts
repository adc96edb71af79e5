// SPDX-License-Identifier: Apache-2.0
// An app template's layout for a new app instance, with the create body's template_override
// applied. Bad overrides are collected into `errors` (422 naming the field), never thrown.
import type { PerformancePolicy, PlacementMode } from '../datera/types.js';
import { type SiSpec, type TemplateRec, clone, isObject } from './model.js';
import { bodySchema } from './schemas.js';
import { poolFromRef, policyFromRef } from './specs.js';
import type { SimState } from './state.js';
import { show, validate } from './validate.js';

/** The template's storage templates as storage instance specs, with `override` (when given) applied. */
export function specsFromTemplate(s: SimState, tpl: TemplateRec, override: unknown, errors: string[]): SiSpec[] {
  const specs: SiSpec[] = tpl.storage_templates.map((st) => ({
    name: st.name,
    ip_pool: st.ip_pool,
    auth: st.auth ? clone(st.auth) : undefined,
    service_configuration: st.service_configuration,
    volumes: st.volume_templates.map((vt) => clone(vt)),
  }));
  if (override !== undefined) applyOverride(s, tpl, specs, override, errors);
  return specs;
}

/**
 * template_override (v2.2): `{storage_instances: {<si>: {ip_pool?, volumes: {<vol>: {size: "20", ...}}}}}`.
 * Numbers may come as strings (CSI and Cinder send the size as a string). DECISION: volume keys
 * size, replica_count, placement_mode, placement_policy, performance_policy and SI key ip_pool
 * may be overridden; other keys and names the template lacks are 422.
 */
function applyOverride(s: SimState, tpl: TemplateRec, specs: SiSpec[], override: unknown, errors: string[]): void {
  const base = 'template_override';
  if (!isObject(override)) {
    errors.push(`${base}: must be an object`);
    return;
  }
  for (const k of Object.keys(override)) if (k !== 'storage_instances') errors.push(`${base}.${k}: is not an allowed property`);
  const sis = override['storage_instances'];
  if (sis === undefined) return;
  if (!isObject(sis)) {
    errors.push(`${base}.storage_instances: must be an object keyed by storage instance name`);
    return;
  }
  const volSchema = bodySchema('/app_instances', 'create')?.properties?.['storage_instances']?.items?.properties?.['volumes']
    ?.items?.properties;
  for (const [siName, siOv] of Object.entries(sis)) {
    const siField = `${base}.storage_instances.${siName}`;
    const spec = specs.find((x) => x.name === siName);
    if (!spec) {
      errors.push(`${siField}: app template ${show(tpl.name)} has no storage template named ${show(siName)}`);
      continue;
    }
    if (!isObject(siOv)) {
      errors.push(`${siField}: must be an object`);
      continue;
    }
    for (const [k, val] of Object.entries(siOv)) {
      if (k === 'ip_pool') {
        const pool = poolFromRef(s, val, `${siField}.ip_pool`, errors);
        if (pool) spec.ip_pool = pool;
      } else if (k !== 'volumes') errors.push(`${siField}.${k}: is not an allowed property`);
    }
    const vols = siOv['volumes'];
    if (vols === undefined) continue;
    if (!isObject(vols)) {
      errors.push(`${siField}.volumes: must be an object keyed by volume name`);
      continue;
    }
    for (const [volName, volOv] of Object.entries(vols)) {
      const volField = `${siField}.volumes.${volName}`;
      const vol = spec.volumes.find((v) => v.name === volName);
      if (!vol) {
        errors.push(`${volField}: storage template ${show(siName)} has no volume template named ${show(volName)}`);
        continue;
      }
      if (!isObject(volOv)) {
        errors.push(`${volField}: must be an object`);
        continue;
      }
      for (const [k, raw] of Object.entries(volOv)) {
        const field = `${volField}.${k}`;
        const val = (k === 'size' || k === 'replica_count') && typeof raw === 'string' && /^\d+(\.\d+)?$/.test(raw) ? Number(raw) : raw;
        if (k === 'placement_policy') {
          const errs = validate({ type: 'object', properties: { path: { type: 'string' } }, required: ['path'] }, val, field);
          if (errs.length) errors.push(...errs);
          else {
            const p = policyFromRef(s, val, field, errors);
            if (p) vol.placement_policy = p;
          }
          continue;
        }
        if (!['size', 'replica_count', 'placement_mode', 'performance_policy'].includes(k) || !volSchema?.[k]) {
          errors.push(`${field}: is not an allowed property`);
          continue;
        }
        const errs = validate(volSchema[k], val, field);
        if (errs.length) {
          errors.push(...errs);
          continue;
        }
        if (k === 'size') vol.size = val as number;
        else if (k === 'replica_count') vol.replica_count = val as number;
        else if (k === 'placement_mode') vol.placement_mode = val as PlacementMode;
        else vol.performance_policy = clone(val as PerformancePolicy);
      }
    }
  }
}
