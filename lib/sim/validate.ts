// SPDX-License-Identifier: Apache-2.0
// A small validator for the JSON-schema dialect of the Datera `/api` dump.
//
// The dump uses: type (a name or a list of names), properties, additionalProperties (boolean),
// required, pattern, minimum/maximum, minLength/maxLength, enum, items, format ("date-time"),
// and default. anyOf/oneOf never occur in the v2.1 dump; they are supported here because the
// simulator's v2.2 additions use anyOf (see schemas.ts). Everything else (descr, fmthelp,
// simple_reference, resolved_reference, internal_enums, containment ...) is documentation and
// is ignored. A `pattern` that is not a string (the dump has `"pattern": {}` on booleans) is
// ignored too. Patterns are searched, not anchored, as JSON schema specifies; the dump anchors
// the ones that matter.
//
// Contract: validate() returns one message per violation, each starting with the field path in
// the request body (`storage_instances[0].volumes[0].replica_count: 7 is greater than the
// maximum of 5`); an empty list means the value is valid. It never throws on odd schemas.

export interface SchemaNode {
  type?: string | string[];
  properties?: Record<string, SchemaNode>;
  additionalProperties?: boolean | SchemaNode;
  required?: string[];
  pattern?: unknown;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  enum?: unknown[];
  items?: SchemaNode;
  format?: string;
  anyOf?: SchemaNode[];
  oneOf?: SchemaNode[];
  fmthelp?: string;
  [keyword: string]: unknown;
}

const regexCache = new Map<string, RegExp | null>();
function compile(pattern: string): RegExp | null {
  let re = regexCache.get(pattern);
  if (re === undefined) {
    try {
      re = new RegExp(pattern);
    } catch {
      re = null; // a pattern JavaScript cannot compile is not enforced
    }
    regexCache.set(pattern, re);
  }
  return re;
}

const DATE_TIME = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$/i;

function matchesType(v: unknown, t: string): boolean {
  switch (t) {
    case 'string':
      return typeof v === 'string';
    case 'integer':
      return typeof v === 'number' && Number.isInteger(v);
    case 'number':
      return typeof v === 'number' && Number.isFinite(v);
    case 'boolean':
      return typeof v === 'boolean';
    case 'object':
      return v !== null && typeof v === 'object' && !Array.isArray(v);
    case 'array':
      return Array.isArray(v);
    case 'null':
      return v === null;
    default:
      return true; // unknown type names are not enforced
  }
}

/** Renders a value for a message: strings quoted, everything else as JSON. */
export function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 80 ? `${v.slice(0, 77)}...` : v);
  if (v === undefined) return 'undefined';
  const s = JSON.stringify(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

function child(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

function label(path: string): string {
  return path === '' ? '(body)' : path;
}

export function validate(schema: SchemaNode | undefined, value: unknown, path = ''): string[] {
  const errors: string[] = [];
  check(schema, value, path, errors);
  return errors;
}

function check(schema: SchemaNode | undefined, v: unknown, path: string, errors: string[]): void {
  if (!schema || typeof schema !== 'object') return;

  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? schema.type : [schema.type];
    if (!types.some((t) => matchesType(v, t))) {
      errors.push(`${label(path)}: ${show(v)} is not of type ${types.map((t) => `'${t}'`).join(' or ')}`);
      return;
    }
  }

  if (Array.isArray(schema.enum) && !schema.enum.some((e) => e === v)) {
    errors.push(`${label(path)}: ${show(v)} is not one of ${schema.enum.map((e) => show(e)).join(', ')}`);
    return;
  }

  const alternatives = schema.anyOf ?? schema.oneOf;
  if (Array.isArray(alternatives) && alternatives.length > 0) {
    const results = alternatives.map((alt) => validate(alt, v, path));
    const ok = results.filter((r) => r.length === 0).length;
    if (schema.oneOf && ok > 1) {
      errors.push(`${label(path)}: ${show(v)} matches more than one allowed form`);
    } else if (ok === 0) {
      // Report the alternative meant for this kind of value (its type fits), else the first.
      const typeFits = (alt: SchemaNode): boolean =>
        alt.type === undefined || (Array.isArray(alt.type) ? alt.type : [alt.type]).some((t) => matchesType(v, t));
      const fitting = results.filter((_, i) => typeFits(alternatives[i]!));
      const pool = fitting.length > 0 ? fitting : results;
      errors.push(...pool.reduce((a, b) => (b.length < a.length ? b : a)));
    }
  }

  if (typeof v === 'string') {
    if (typeof schema.minLength === 'number' && v.length < schema.minLength) {
      errors.push(`${label(path)}: ${show(v)} is too short (minimum length ${schema.minLength})`);
    }
    if (typeof schema.maxLength === 'number' && v.length > schema.maxLength) {
      errors.push(`${label(path)}: ${show(v)} is too long (maximum length ${schema.maxLength})`);
    }
    if (typeof schema.pattern === 'string') {
      const re = compile(schema.pattern);
      if (re && !re.test(v)) {
        const help = typeof schema.fmthelp === 'string' ? ` (${schema.fmthelp})` : '';
        errors.push(`${label(path)}: ${show(v)} does not match '${schema.pattern}'${help}`);
      }
    }
    if (schema.format === 'date-time' && (!DATE_TIME.test(v) || Number.isNaN(Date.parse(v)))) {
      errors.push(`${label(path)}: ${show(v)} is not an ISO 8601 date-time`);
    }
  }

  if (typeof v === 'number') {
    if (typeof schema.minimum === 'number' && v < schema.minimum) {
      errors.push(`${label(path)}: ${show(v)} is less than the minimum of ${schema.minimum}`);
    }
    if (typeof schema.maximum === 'number' && v > schema.maximum) {
      errors.push(`${label(path)}: ${show(v)} is greater than the maximum of ${schema.maximum}`);
    }
  }

  if (Array.isArray(v) && schema.items) {
    v.forEach((item, i) => check(schema.items, item, `${path}[${i}]`, errors));
  }

  if (matchesType(v, 'object') && (schema.properties || schema.required || schema.additionalProperties !== undefined)) {
    const obj = v as Record<string, unknown>;
    const props = schema.properties ?? {};
    for (const name of schema.required ?? []) {
      if (obj[name] === undefined) errors.push(`${child(path, name)}: is a required property`);
    }
    for (const [key, val] of Object.entries(obj)) {
      const sub = Object.hasOwn(props, key) ? props[key] : undefined;
      if (sub) {
        if (val !== undefined) check(sub, val, child(path, key), errors);
      } else if (schema.additionalProperties === false) {
        errors.push(`${child(path, key)}: is not an allowed property`);
      } else if (schema.additionalProperties && typeof schema.additionalProperties === 'object') {
        check(schema.additionalProperties, val, child(path, key), errors);
      }
    }
  }
}
