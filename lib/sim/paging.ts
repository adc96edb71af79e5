// SPDX-License-Identifier: Apache-2.0
// Collection reads: the query check (limit, filter, sort, offset), the RQL filter subset, sort,
// and the page with its metadata.
import { invalid, validationFailed } from './errors.js';
import type { Json } from './model.js';
import { bodySchema } from './schemas.js';
import { show, validate } from './validate.js';

const READ_QUERY_SCHEMA = bodySchema('/app_instances', 'read');

/** 422 naming each bad query parameter of a collection read. */
export function checkReadQuery(query: URLSearchParams): void {
  const q: Json = {};
  for (const k of ['limit', 'filter', 'sort']) {
    const v = query.get(k);
    if (v === null) continue;
    q[k] = k === 'limit' && /^-?\d+$/.test(v) ? Number(v) : v;
  }
  const errors = validate(READ_QUERY_SCHEMA, q);
  const offset = query.get('offset');
  if (offset !== null && !/^\d+$/.test(offset)) errors.push(`offset: ${show(offset)} is not a non-negative integer`);
  if (errors.length) throw validationFailed(errors);
}

/** Filter (`name=x`, `<attr>=x`, `match(<attr>,<regex>)`), sort (`attr` or `-attr`), limit/offset. */
export function page(items: Json[], q: URLSearchParams, version: string, defaultLimit: number): { data: Json[]; metadata: Json } {
  let list = items;
  const filter = q.get('filter');
  if (filter) list = list.filter(compileFilter(filter));
  const sort = q.get('sort');
  if (sort) {
    const desc = sort.startsWith('-');
    const key = desc ? sort.slice(1) : sort;
    list = [...list].sort((a, b) => {
      const x = a[key];
      const y = b[key];
      const c = typeof x === 'number' && typeof y === 'number' ? x - y : String(x ?? '').localeCompare(String(y ?? ''));
      return desc ? -c : c;
    });
  }
  const offset = Number(q.get('offset') ?? 0);
  const limitRaw = q.get('limit');
  const limit = limitRaw === null ? defaultLimit : Number(limitRaw);
  const data = list.slice(offset, offset + limit);
  const metadata: Json = { total_count: list.length, request_count: data.length, limit, offset };
  if (version === 'v2.1') metadata['total'] = list.length; // what the v2.1 samples carry
  return { data, metadata };
}

/** RQL subset: `attr=value`, `match(attr,regex)` (anchored). Anything else is 400. */
function compileFilter(filter: string): (item: Json) => boolean {
  const eq = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(filter);
  if (eq) {
    const [, key, value] = eq as unknown as [string, string, string];
    return (item) => item[key] !== undefined && String(item[key]) === value;
  }
  const match = /^match\(([A-Za-z_][A-Za-z0-9_]*),(.*)\)$/.exec(filter);
  if (match) {
    const [, key, pattern] = match as unknown as [string, string, string];
    let re: RegExp;
    try {
      re = new RegExp(`^(?:${pattern})$`);
    } catch {
      throw invalid(`filter: ${show(pattern)} is not a valid regular expression`);
    }
    return (item) => item[key] !== undefined && re.test(String(item[key]));
  }
  throw invalid(`filter: ${show(filter)} is not supported (use <attr>=<value> or match(<attr>,<regex>))`);
}
