// SPDX-License-Identifier: Apache-2.0
// The command line: node:util `parseArgs` over the flag table (lib/config-flags.ts), giving the
// setting values in command-line order, `--config`, `--help`/`-h`, `--version`, and every problem
// at once (unknown flag, missing value, stray argument) rather than only the first.
//
// Flag forms: `--name value` and `--name=value`. A boolean flag alone means true; it takes the
// next argument only when that is a boolean spelling (`--leader-elect 0`, `--leader-elect false`),
// or `--name=value` with any spelling. `-v N`, `-v=N` and `--v=N` are klog's verbosity.
import { parseArgs } from 'node:util';
import { ALIASES, SETTINGS, aliasKind, parseBool, type Alias, type Kind, type Setting, type SettingKey } from './config-flags.js';

export interface CommandLine {
  /** `--config FILE`, the last one given. */
  configFile?: string;
  /** Setting values in command-line order (a later one wins), each with the flag that set it. */
  values: Array<{ key: SettingKey; raw: string; flag: string }>;
  help: boolean;
  version: boolean;
  /** Each names the flag or argument at fault. */
  problems: string[];
}

type Flag = { setting: Setting } | { alias: Alias } | { meta: 'config' | 'help' | 'version' };

const META: Array<{ name: 'config' | 'help' | 'version'; kind: Kind; short?: string }> = [
  { name: 'config', kind: 'string' },
  { name: 'help', kind: 'bool', short: 'h' },
  { name: 'version', kind: 'bool' },
];

/** Flag name -> what it is, for every flag the command line accepts. */
const FLAGS = new Map<string, { flag: Flag; kind: Kind; short?: string }>([
  ...META.map((m) => [m.name, { flag: { meta: m.name }, kind: m.kind, ...(m.short ? { short: m.short } : {}) }] as const),
  ...SETTINGS.map((s) => [s.flag, { flag: { setting: s }, kind: s.kind }] as const),
  ...ALIASES.map((a) => [a.flag, { flag: { alias: a }, kind: aliasKind(a), ...(a.short ? { short: a.short } : {}) }] as const),
]);

const PARSE_OPTIONS = Object.fromEntries(
  [...FLAGS].map(([name, f]) => [name, { type: f.kind === 'bool' ? ('boolean' as const) : ('string' as const), ...(f.short ? { short: f.short } : {}) }]),
);
const SHORTS = new Set([...FLAGS.values()].flatMap((f) => (f.short ? [`-${f.short}`] : [])));

/** An argument in place of one that is not a flag here; tokenises as one unknown option. */
const NOT_A_FLAG = '--\0';

/**
 * argv with single-dash words such as `-leader-election` (Go's spelling of a long flag) replaced
 * by NOT_A_FLAG: parseArgs would read them as groups of one-letter flags, a `-` inside as the end
 * of all flags. The only one-letter flags are -h and -v, and -v takes a value (`-v4`, `-v=4`).
 * Negative numbers (`-10`) stay: they are values.
 */
function withoutShortGroups(argv: readonly string[]): string[] {
  const end = argv.indexOf('--');
  return argv.map((a, i) => ((end < 0 || i < end) && /^-[^-v\d.]./.test(a) ? NOT_A_FLAG : a));
}

/**
 * Reads argv. parseArgs runs in its tolerant mode only to tokenise; the checks of its strict
 * mode (unknown flags, missing values, positionals) are made here so that all of them are
 * reported together, as loadConfig reports every problem at once.
 */
export function readCommandLine(argv: readonly string[]): CommandLine {
  const out: CommandLine = { values: [], help: false, version: false, problems: [] };
  const { tokens } = parseArgs({ args: withoutShortGroups(argv), options: PARSE_OPTIONS, strict: false, allowPositionals: true, tokens: true });
  const reportedIndex = new Set<number>();
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.kind === 'option-terminator') continue;
    if (t.kind === 'positional') {
      out.problems.push(`unexpected argument "${t.value}" (flags are --name value or --name=value)`);
      continue;
    }
    const next = tokens[i + 1];
    const nextArg = next?.kind === 'positional' && next.index === t.index + 1 ? next.value : undefined;
    const known = t.rawName.startsWith('--') || SHORTS.has(t.rawName) ? FLAGS.get(t.name) : undefined;
    if (!known) {
      // `-abc` tokenises as -a -b -c: one problem for the argument as written.
      if (reportedIndex.has(t.index)) continue;
      reportedIndex.add(t.index);
      const written = argv[t.index]!.split('=')[0]!;
      const hint = /^-[^-]{2,}/.test(written) ? ` (long flags take two dashes: -${written})` : ' (see --help)';
      out.problems.push(`unknown flag ${written}${hint}`);
      if (t.value === undefined && nextArg !== undefined) i++; // its value, not an argument of its own
      continue;
    }
    let value = t.value;
    if (known.kind === 'bool' && value === undefined) {
      if (nextArg !== undefined && parseBool(nextArg) !== undefined) {
        value = nextArg;
        i++;
      } else value = 'true';
    }
    if (value === undefined) {
      out.problems.push(`flag ${t.rawName} needs a value`);
      continue;
    }
    // A flag-like word (`--x`, `-x`) after a flag is a forgotten value; a negative number is a value.
    if (known.kind !== 'bool' && !t.inlineValue && /^-(-|[^\d.])/.test(value)) {
      const written = argv[t.index + 1] ?? value;
      out.problems.push(`flag ${t.rawName} needs a value, got ${written} (write ${t.rawName}=${written} for a value starting with "-")`);
      continue;
    }
    if (t.rawName === '-v' && t.inlineValue && value.startsWith('=')) value = value.slice(1); // klog's -v=4
    record(out, known.flag, t.rawName, value);
  }
  return out;
}

function record(out: CommandLine, f: Flag, flag: string, raw: string): void {
  if ('meta' in f) {
    if (f.meta === 'config') out.configFile = raw;
    else if (parseBool(raw) === undefined) out.problems.push(`${flag}: expected true or false, got ${JSON.stringify(raw)}`);
    else out[f.meta] = parseBool(raw)!;
  } else if ('setting' in f) out.values.push({ key: f.setting.key, raw, flag });
  else if ('target' in f.alias) out.values.push({ key: f.alias.target, raw, flag });
  else {
    const e = f.alias.expand(raw);
    if ('problem' in e) out.problems.push(`${flag}: ${e.problem}`);
    else for (const [key, v] of e) out.values.push({ key, raw: v, flag });
  }
}
