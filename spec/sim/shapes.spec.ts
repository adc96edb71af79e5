// SPDX-License-Identifier: Apache-2.0
// The simulator's answers must carry every field name found in the real cluster responses in
// ../shared/datera/samples (relative to the repository root).
import { expect } from 'chai';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { SimFixture } from './helpers.js';

const SAMPLES = fileURLToPath(new URL('../../../shared/datera/samples/', import.meta.url));
const present = existsSync(SAMPLES) && readdirSync(SAMPLES).some((n) => n.endsWith('.json'));

/** Every key path in a JSON value; array elements collapse to `[]`. */
function keyPaths(v: unknown, prefix = '', out = new Set<string>()): Set<string> {
  if (Array.isArray(v)) for (const item of v) keyPaths(item, `${prefix}[]`, out);
  else if (v !== null && typeof v === 'object') {
    for (const [k, val] of Object.entries(v)) {
      const p = prefix ? `${prefix}.${k}` : k;
      out.add(p);
      keyPaths(val, p, out);
    }
  }
  return out;
}

describe('simulator: response shapes match the real samples', () => {
  const title = present
    ? 'lists app instances, storage instances and volumes with every field of the v2.1 samples'
    : `lists with every field of the samples (SKIPPED: ${SAMPLES} is absent; it lives in the shared reference folder beside the repository)`;

  (present ? it : it.skip)(title, async () => {
    const f = await new SimFixture().start();
    try {
      const created = await f.call('POST', '/app_instances', {
        name: 'test-app-1',
        access_control_mode: 'deny_all',
        storage_instances: [{ name: 'storage-1', volumes: [{ name: 'volume-1', size: 20, replica_count: 1 }] }],
      });
      expect(created.status).to.equal(200);
      const ourId = created.body.data.id as string;
      const files = readdirSync(SAMPLES).filter((n) => n.endsWith('.json')).sort();
      expect(files.length).to.be.greaterThan(0);
      for (const file of files) {
        const sample = JSON.parse(readFileSync(`${SAMPLES}${file}`, 'utf8')) as { path: string; version: string; data: Array<{ id?: string }> };
        const sampleId = /^\/app_instances\/([^/]+)/.exec(sample.path)?.[1] ?? sample.data[0]?.id ?? '';
        const path = sample.path.replace(sampleId, ourId);
        const res = await fetch(`${f.url}/${sample.version}${path}`, { headers: { 'Auth-Token': f.token } });
        expect(res.status, `${file}: GET ${path}`).to.equal(200);
        const ours = (await res.json()) as Record<string, unknown>;
        const have = keyPaths(ours);
        const missing = [...keyPaths(sample)].filter((p) => !have.has(p));
        expect(missing, `${file}: fields the simulator lacks`).to.deep.equal([]);
        expect(ours['version']).to.equal(sample.version);
        expect(ours['path']).to.equal(path);
      }
    } finally {
      await f.stop();
    }
  });
});
