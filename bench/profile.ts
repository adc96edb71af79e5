// SPDX-License-Identifier: Apache-2.0
// Summarises a V8 .cpuprofile (node --cpu-prof): self time by module (package or lib/ file) and
// by function, and inclusive time of chosen call paths, so a benchmark finding can cite where the
// CPU went. Usage: npx tsx bench/profile.ts FILE.cpuprofile [--top 25]
import { readFileSync } from 'node:fs';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
  hitCount?: number;
}
interface Profile {
  nodes: Node[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  totalMs: number;
  idleMs: number;
  gcMs: number;
  byModule: Array<[string, number]>;
  byFunction: Array<[string, number]>;
  /** Inclusive time of every frame of each module (time spent in it or below it). */
  inclusiveByModule: Array<[string, number]>;
}

export function moduleOf(url: string): string {
  if (!url) return '(native/vm)';
  if (url.startsWith('node:')) return url.split('/')[0]!.replace(/^node:internal.*/, 'node:internal');
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1]!;
  const lib = /\/(lib\/.*)$/.exec(url);
  if (lib) return lib[1]!.replace(/\.js$/, '.ts');
  return url;
}

export function summarise(p: Profile, top = 25): ProfileSummary {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) {
    const dt = (p.timeDeltas[i + 1] ?? 0) / 1000;
    self.set(p.samples[i]!, (self.get(p.samples[i]!) ?? 0) + dt);
  }
  const mod = new Map<string, number>();
  const fn = new Map<string, number>();
  const incl = new Map<string, number>();
  let idle = 0;
  let gc = 0;
  let total = 0;
  for (const [id, ms] of self) {
    const n = byId.get(id)!;
    total += ms;
    const name = n.callFrame.functionName;
    if (name === '(idle)') {
      idle += ms;
      continue;
    }
    if (name === '(garbage collector)') gc += ms;
    const m = name === '(garbage collector)' ? '(gc)' : name === '(program)' ? '(program)' : moduleOf(n.callFrame.url);
    mod.set(m, (mod.get(m) ?? 0) + ms);
    const f = `${name || '(anonymous)'} ${m}:${n.callFrame.lineNumber + 1}`;
    fn.set(f, (fn.get(f) ?? 0) + ms);
    // inclusive: once per module on the stack
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const cm = moduleOf(byId.get(cur)!.callFrame.url);
      if (!seen.has(cm)) {
        seen.add(cm);
        incl.set(cm, (incl.get(cm) ?? 0) + ms);
      }
    }
  }
  const sorted = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]).slice(0, top).map(([k, v]) => [k, Math.round(v)] as [string, number]);
  return { totalMs: Math.round(total), idleMs: Math.round(idle), gcMs: Math.round(gc), byModule: sorted(mod), byFunction: sorted(fn), inclusiveByModule: sorted(incl) };
}

if (process.argv[1]?.endsWith('profile.ts')) {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write('usage: npx tsx bench/profile.ts FILE.cpuprofile [--top N]\n');
    process.exit(2);
  }
  const topArg = process.argv.indexOf('--top');
  const top = topArg > 0 ? Number(process.argv[topArg + 1]) : 25;
  const s = summarise(JSON.parse(readFileSync(file, 'utf8')) as Profile, top);
  const busy = s.totalMs - s.idleMs;
  const pct = (v: number) => `${((100 * v) / busy).toFixed(1)}%`;
  process.stdout.write(`total ${s.totalMs} ms, idle ${s.idleMs} ms, busy ${busy} ms, gc ${s.gcMs} ms (${pct(s.gcMs)})\n\nself time by module:\n`);
  for (const [k, v] of s.byModule) process.stdout.write(`  ${String(v).padStart(7)} ms ${pct(v).padStart(6)}  ${k}\n`);
  process.stdout.write('\ninclusive time by module (on the stack):\n');
  for (const [k, v] of s.inclusiveByModule) process.stdout.write(`  ${String(v).padStart(7)} ms ${pct(v).padStart(6)}  ${k}\n`);
  process.stdout.write('\nself time by function:\n');
  for (const [k, v] of s.byFunction) process.stdout.write(`  ${String(v).padStart(7)} ms ${pct(v).padStart(6)}  ${k}\n`);
}
