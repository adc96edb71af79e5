// SPDX-License-Identifier: Apache-2.0
// Heap retained by N claims + N PVs (bench/experiments/scale-objects.ts) as the caches would hold
// them: parsed server JSON, slimObject (what lib/main.ts keeps: managedFields and last-applied
// dropped), and a trimmed copy with only the fields lib/provision reads (identity, annotations,
// finalizers, deletion time, spec, status.phase; measured on 2026-12-01 and not adopted: 1.5 MB
// less than slimObject at 10,000 claims + PVs). Usage:
//   node --expose-gc --import tsx bench/experiments/cache-heap.ts [N] [json|slim|cached]
// Each variant is measured in a fresh process (run without a variant: runs all three), since
// measuring them one after another in one heap skews the later ones.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { slimObject } from '../../lib/wiring.js';
import { pv, pvc } from './scale-objects.js';

const n = Number(process.argv[2] ?? 10000);

type Obj = { metadata?: Record<string, unknown>; spec?: unknown; status?: { phase?: string } };
/** The trimmed variant: only what the controller reads. */
function trimmed(o: Obj, finalizers: boolean): Obj {
  const m = o.metadata ?? {};
  const md: Record<string, unknown> = {};
  for (const k of ['name', 'namespace', 'uid', 'resourceVersion', 'creationTimestamp', 'deletionTimestamp', 'annotations', ...(finalizers ? ['finalizers'] : [])]) if (m[k] !== undefined) md[k] = m[k];
  return { metadata: md, ...(o.spec !== undefined ? { spec: o.spec } : {}), ...(o.status?.phase ? { status: { phase: o.status.phase } } : {}) };
}
const cachedClaim = (o: object) => trimmed(o as Obj, false);
const cachedVolume = (o: object) => trimmed(o as Obj, true);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');
const mb = (b: number) => Math.round(b / 104857.6) / 10;
const heap = () => {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
};
// What the informer receives: JSON text parsed (not the generator's objects, which share strings).
const claimsText = JSON.stringify(Array.from({ length: n }, (_, i) => pvc(i)));
const volumesText = JSON.stringify(Array.from({ length: n }, (_, i) => pv(i)));
const variant = process.argv[3];
if (!variant) {
  const out: Record<string, number> = {};
  for (const v of ['json', 'slim', 'cached']) {
    const r = execFileSync(process.execPath, ['--expose-gc', '--import', 'tsx', fileURLToPath(import.meta.url), String(n), v], { encoding: 'utf8' });
    out[v] = (JSON.parse(r) as { heapMB: number }).heapMB;
  }
  process.stdout.write(JSON.stringify({ n, heapMB: out }) + '\n');
} else {
  const pick = { json: [(o: object) => o, (o: object) => o], slim: [slimObject, slimObject], cached: [cachedClaim, cachedVolume] }[variant];
  if (!pick) throw new Error(`unknown variant ${variant}`);
  const [fc, fv] = pick as [(o: object) => object, (o: object) => object];
  // Retained = heap with the two caches held - heap once they are dropped (both after full GCs),
  // so garbage from generating and parsing never counts.
  let held: object[][] | undefined = [(JSON.parse(claimsText) as object[]).map((o) => fc(o)), (JSON.parse(volumesText) as object[]).map((o) => fv(o))];
  const withCaches = heap();
  if (held.length !== 2) throw new Error('unreachable');
  // eslint-disable-next-line no-useless-assignment -- dropping the only reference is what lets gc() free the caches
  held = undefined;
  const heapMB = mb(withCaches - heap());
  process.stdout.write(JSON.stringify({ heapMB }) + '\n');
}
