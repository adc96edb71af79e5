// SPDX-License-Identifier: Apache-2.0
// Where the provisioner's memory goes at 10,000 claims: heap retained by the PV and PVC lists held
// (a) as the JSON the server sends, (b) as client-node model objects (what the typed list call
// returns: ObjectSerializer.deserialize), (c) as JSON without metadata.managedFields, and the cost
// of importing @kubernetes/client-node in a bare node process. Input: the lists `make bench` dumps with
// BENCH_DUMP_LISTS=DIR. Usage:
//   node --expose-gc --import tsx bench/experiments/cache-memory.ts DIR
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

const dir = process.argv[2];
if (!dir || typeof globalThis.gc !== 'function') {
  process.stderr.write('usage: node --expose-gc --import tsx bench/experiments/cache-memory.ts DIR (with pvs.json, pvcs.json)\n');
  process.exit(2);
}
const gc = globalThis.gc as () => void;
const mb = (b: number) => Math.round(b / 104857.6) / 10;
function heap(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

const texts = { pvs: readFileSync(join(dir, 'pvs.json'), 'utf8'), pvcs: readFileSync(join(dir, 'pvcs.json'), 'utf8') };
const out: Record<string, unknown> = { bytes: { pvs: texts.pvs.length, pvcs: texts.pvcs.length } };

// The import's cost in a bare node process (this one runs under tsx, whose loader inflates it).
const probe = `const mb = (b) => Math.round(b / 104857.6) / 10; gc(); const r0 = process.memoryUsage().rss, h0 = process.memoryUsage().heapUsed;
await import('@kubernetes/client-node'); gc(); gc(); const u = process.memoryUsage();
console.log(JSON.stringify({ baselineRssMB: mb(r0), rssMB: mb(u.rss - r0), heapMB: mb(u.heapUsed - h0) }));`;
out.importClientNode = JSON.parse(
  execFileSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', probe], { cwd: fileURLToPath(new URL('../..', import.meta.url)), encoding: 'utf8' }),
) as Record<string, number>;

const keep: unknown[] = [];
let h = heap();
keep.push(JSON.parse(texts.pvs), JSON.parse(texts.pvcs));
out.plainJson = { heapMB: mb(heap() - h) };

h = heap();
const strip = (l: { items: Array<{ metadata?: { managedFields?: unknown } }> }) => {
  for (const i of l.items) delete i.metadata?.managedFields;
  return l;
};
keep.push(strip(JSON.parse(texts.pvs)), strip(JSON.parse(texts.pvcs)));
out.jsonWithoutManagedFields = { heapMB: mb(heap() - h) };

h = heap();
// The serializer the generated typed clients use (not re-exported from the package root).
const { ObjectSerializer: S } = (await import('@kubernetes/client-node/dist/gen/models/ObjectSerializer.js' as string)) as {
  ObjectSerializer: { deserialize(data: unknown, type: string): unknown };
};
keep.push(S.deserialize(JSON.parse(texts.pvs), 'V1PersistentVolumeList'), S.deserialize(JSON.parse(texts.pvcs), 'V1PersistentVolumeClaimList'));
out.clientNodeModels = { heapMB: mb(heap() - h) };

const managed = (JSON.parse(texts.pvs) as { items: Array<{ metadata: { managedFields?: unknown } }> }).items[0]?.metadata.managedFields;
out.managedFieldsBytesPerPv = JSON.stringify(managed ?? null).length;
out.bytesPerPv = Math.round(texts.pvs.length / (JSON.parse(texts.pvs) as { items: unknown[] }).items.length);
process.stdout.write(JSON.stringify(out, null, 2) + '\n');
void keep;
