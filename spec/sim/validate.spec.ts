// SPDX-License-Identifier: Apache-2.0
import { expect } from 'chai';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ROUTES } from '../../lib/sim/routes.js';
import { SERVED, extractSubset } from '../../lib/sim/schema/extract.js';
import { bodySchema } from '../../lib/sim/schemas.js';
import { type SchemaNode, validate } from '../../lib/sim/validate.js';

const SUBSET = fileURLToPath(new URL('../../lib/sim/schema/v2.1-subset.json', import.meta.url));
const FULL = fileURLToPath(new URL('../../../shared/datera/api-v2.1-schema.json', import.meta.url));

describe('simulator: schema validator', () => {
  const schema: SchemaNode = {
    type: 'object',
    required: ['name'],
    additionalProperties: false,
    properties: {
      name: { type: 'string', pattern: '^[a-z]{3,5}$', fmthelp: 'three to five letters' },
      descr: { type: ['string', 'null'] },
      count: { type: 'integer', minimum: 1, maximum: 5 },
      ratio: { type: 'number' },
      mode: { enum: ['a', 'b'] },
      flag: { type: 'boolean', pattern: {} },
      secret: { type: 'string', minLength: 12, maxLength: 16 },
      when: { type: 'string', format: 'date-time' },
      ref: { anyOf: [{ type: 'string' }, { type: 'object', properties: { path: { type: 'string' } }, required: ['path'] }] },
      list: { type: 'array', items: { type: 'object', properties: { size: { type: 'number', minimum: 1 } }, required: ['size'] } },
    },
  };

  it('accepts a valid value', () => {
    expect(
      validate(schema, {
        name: 'abc',
        descr: null,
        count: 5,
        ratio: 0.5,
        mode: 'b',
        flag: true,
        secret: 'x'.repeat(12),
        when: '2024-01-02T03:04:05Z',
        ref: { path: '/a' },
        list: [{ size: 1 }],
      }),
    ).to.deep.equal([]);
  });

  it('names the field path in every message', () => {
    expect(validate(schema, { name: 'toolongname' })).to.deep.equal([
      `name: "toolongname" does not match '^[a-z]{3,5}$' (three to five letters)`,
    ]);
    expect(validate(schema, { name: 'abc', count: 7 })).to.deep.equal(['count: 7 is greater than the maximum of 5']);
    expect(validate(schema, { name: 'abc', count: 0 })).to.deep.equal(['count: 0 is less than the minimum of 1']);
    expect(validate(schema, { name: 'abc', count: 1.5 })).to.deep.equal([`count: 1.5 is not of type 'integer'`]);
    expect(validate(schema, { name: 'abc', descr: 3 })).to.deep.equal([`descr: 3 is not of type 'string' or 'null'`]);
    expect(validate(schema, { name: 'abc', mode: 'c' })).to.deep.equal(['mode: "c" is not one of "a", "b"']);
    expect(validate(schema, { name: 'abc', secret: 'short' })).to.deep.equal(['secret: "short" is too short (minimum length 12)']);
    expect(validate(schema, { name: 'abc', when: 'yesterday' })).to.deep.equal(['when: "yesterday" is not an ISO 8601 date-time']);
    expect(validate(schema, { name: 'abc', list: [{ size: 1 }, {}] })).to.deep.equal(['list[1].size: is a required property']);
    expect(validate(schema, { name: 'abc', list: [{ size: 0 }] })).to.deep.equal(['list[0].size: 0 is less than the minimum of 1']);
    expect(validate(schema, { name: 'abc', ref: { nope: 1 } })).to.deep.equal(['ref.path: is a required property']);
    expect(validate(schema, { name: 'abc', other: 1 })).to.deep.equal(['other: is not an allowed property']);
    expect(validate(schema, {})).to.deep.equal(['name: is a required property']);
    expect(validate(schema, [])).to.deep.equal([`(body): [] is not of type 'object'`]);
  });

  it('refuses a string longer than maxLength, naming the limit; a string of exactly maxLength passes', () => {
    expect(validate(schema, { name: 'abc', secret: 'x'.repeat(17) })).to.deep.equal([`secret: "${'x'.repeat(17)}" is too long (maximum length 16)`]);
    expect(validate(schema, { name: 'abc', secret: 'x'.repeat(16) })).to.deep.equal([]);
  });

  it('reports several violations at once', () => {
    expect(validate(schema, { count: 9, mode: 'z' })).to.have.length(3);
  });
});

describe('simulator: committed schema subset', () => {
  it('has a request schema for every route operation the simulator validates', () => {
    for (const r of ROUTES.filter((x) => x.schema)) {
      expect(bodySchema(r.route, r.schema!), `${r.method} ${r.route} (${r.schema})`).to.be.an('object');
    }
    const subset = JSON.parse(readFileSync(SUBSET, 'utf8')) as { routes: Record<string, Record<string, unknown>> };
    expect(Object.keys(subset.routes)).to.deep.equal(Object.keys(SERVED));
  });

  it('keeps the v2.1 limits the specs rely on', () => {
    const vol = bodySchema('/app_instances', 'create')!.properties!['storage_instances']!.items!.properties!['volumes']!.items!;
    expect(vol.properties!['size']).to.include({ minimum: 1, maximum: 32768 });
    expect(vol.properties!['replica_count']).to.include({ minimum: 1, maximum: 5 });
    expect(vol.required).to.deep.equal(['name', 'size']);
    // v2.2 additions on top of the v2.1 dump
    expect(vol.properties).to.have.property('placement_policy');
    expect(bodySchema('/app_instances', 'create')!.properties).to.have.property('template_override');
    expect(bodySchema('/initiators', 'create')!.properties).to.have.property('force');
  });

  (existsSync(FULL) ? it : it.skip)('is what extract.ts makes from the shared v2.1 dump (re-run extract.ts if not)', () => {
    const full = JSON.parse(readFileSync(FULL, 'utf8')) as Record<string, unknown>;
    const committed = JSON.parse(readFileSync(SUBSET, 'utf8')) as unknown;
    expect(JSON.parse(JSON.stringify(extractSubset(full)))).to.deep.equal(committed);
  });
});
