// SPDX-License-Identifier: Apache-2.0
// Command-line flags of the admin commands (lib/admin/commands.ts): a small parser that reports
// every problem at once (unknown flag, missing value, stray argument), and the provisioner
// settings a command shares with the provisioner, read as the provisioner reads them (defaults <
// config file < environment < flags, same flag names and variables, from lib/config-flags.ts), so
// that a command run with the Deployment's flags and environment sees what the provisioner sees.
import { join } from 'node:path';
import { CONFIG_FILE_ENV, SETTINGS, convert, type Setting, type SettingKey } from '../config-flags.js';
import { HELP_INDENT, wrap } from '../config-doc.js';
import { suggest } from '../provision/values.js';
import { parseYaml } from '../yaml.js';

/** One flag of a command. `multi`: a string flag that may be repeated (values in order). */
export interface OptionSpec {
  name: string;
  short?: string;
  kind: 'string' | 'bool' | 'multi';
  /** Name of the value in `--help`, e.g. FILE. */
  valueName?: string;
  help: string;
}

export interface ParsedArgs {
  strings: Map<string, string>;
  bools: Map<string, boolean>;
  multi: Map<string, string[]>;
  positionals: string[];
  /** Each names the flag or argument at fault. */
  problems: string[];
}

const TRUE = ['true', '1', 'yes'];
const FALSE = ['false', '0', 'no'];

/**
 * Reads argv: `--name value`, `--name=value`, `-x value`, `-x=value`; a bool flag alone is true,
 * `--name=false` false. After `--` everything is positional. At most `maxPositionals` positionals.
 */
export function parseCommandArgs(argv: readonly string[], options: readonly OptionSpec[], maxPositionals = 0): ParsedArgs {
  const out: ParsedArgs = { strings: new Map(), bools: new Map(), multi: new Map(), positionals: [], problems: [] };
  const byName = new Map(options.map((o) => [o.name, o]));
  const byShort = new Map(options.filter((o) => o.short).map((o) => [o.short!, o]));
  const names = options.map((o) => `--${o.name}`);
  let onlyPositionals = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (onlyPositionals || !arg.startsWith('-') || arg === '-') {
      if (out.positionals.length >= maxPositionals) {
        out.problems.push(maxPositionals === 0 ? `unexpected argument "${arg}" (this command takes flags only)` : `unexpected argument "${arg}" (at most ${maxPositionals})`);
      } else out.positionals.push(arg);
      continue;
    }
    if (arg === '--') {
      onlyPositionals = true;
      continue;
    }
    const long = arg.startsWith('--');
    const eq = arg.indexOf('=');
    const written = eq > 0 ? arg.slice(0, eq) : arg;
    const inline = eq > 0 ? arg.slice(eq + 1) : undefined;
    const opt = long ? byName.get(written.slice(2)) : byShort.get(written.slice(1));
    if (opt === undefined) {
      const hint = suggest(written, names);
      out.problems.push(`unknown flag ${written}${hint ? ` (did you mean ${hint}?)` : ''}; see --help`);
      continue;
    }
    if (opt.kind === 'bool') {
      if (inline === undefined) out.bools.set(opt.name, true);
      else if (TRUE.includes(inline.toLowerCase())) out.bools.set(opt.name, true);
      else if (FALSE.includes(inline.toLowerCase())) out.bools.set(opt.name, false);
      else out.problems.push(`flag ${written} takes true or false, got ${JSON.stringify(inline)}`);
      continue;
    }
    let value = inline;
    if (value === undefined) {
      const next = argv[i + 1];
      if (next === undefined || (next.startsWith('-') && next !== '-')) {
        out.problems.push(`flag ${written} needs a value${opt.valueName ? ` (${opt.valueName})` : ''}`);
        continue;
      }
      value = next;
      i++;
    }
    if (opt.kind === 'multi') out.multi.set(opt.name, [...(out.multi.get(opt.name) ?? []), value]);
    else out.strings.set(opt.name, value);
  }
  return out;
}

/** `text` in lines of at most 100 columns after the help indent, as the provisioner's own --help. */
function wrapped(text: string): string {
  return wrap(text).map((l) => HELP_INDENT + l).join('\n');
}

/** The flags part of a `--help` text, within 100 columns. */
export function optionsHelp(options: readonly OptionSpec[]): string {
  return options
    .map((o) => {
      const names = `${o.short ? `-${o.short}, ` : ''}--${o.name}${o.kind === 'bool' ? '' : ` ${o.valueName ?? 'VALUE'}`}`;
      return `  ${names}\n${wrapped(`${o.help}${o.kind === 'multi' ? ' (repeatable)' : ''}`)}`;
    })
    .join('\n');
}

// ---------------------------------------------------------------------------------------------
// Settings shared with the provisioner.

function settingOf(key: SettingKey): Setting {
  const s = SETTINGS.find((x) => x.key === key);
  if (s === undefined) throw new Error(`BUG: no setting ${key}`);
  return s;
}

/** `--config` and the flags of `keys`, with the provisioner's help text, default and variable. */
export function settingOptions(keys: readonly SettingKey[]): OptionSpec[] {
  return [
    { name: 'config', kind: 'string', valueName: 'FILE', help: `the provisioner's config file (YAML or JSON); only the keys of these flags are read (env ${CONFIG_FILE_ENV})` },
    ...keys.map((k): OptionSpec => {
      const s = settingOf(k);
      const dflt = s.defaultText !== undefined ? s.defaultText.replace(/`/g, '') : JSON.stringify(s.default);
      return { name: s.flag, kind: 'string', valueName: s.kind === 'list' ? 'a,b' : 'VALUE', help: `${s.help.replace(/`/g, '')} (default ${dflt}${s.env ? `; env ${s.env}` : ''})` };
    }),
  ];
}

function atKey(obj: unknown, key: string): unknown {
  let cur = obj;
  for (const part of key.split('.')) {
    if (typeof cur !== 'object' || cur === null || Array.isArray(cur)) return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

/**
 * The values of `keys` as the provisioner would read them: default, then the config file
 * (`--config`, env DATERA_PROVISIONER_CONFIG), then the environment, then the flags. With no
 * endpoint so far, the `server` file of the credentials directory supplies it (and its `tenant`
 * file the tenant), as for the provisioner; no other credential file is read.
 */
export function resolveSettings(
  keys: readonly SettingKey[],
  args: ParsedArgs,
  env: NodeJS.ProcessEnv,
  readFile: (path: string) => string,
): { values: Map<SettingKey, unknown>; problems: string[] } {
  const problems: string[] = [];
  const values = new Map<SettingKey, unknown>();
  for (const k of keys) values.set(k, structuredClone(settingOf(k).default));

  const configPath = args.strings.get('config') ?? env[CONFIG_FILE_ENV];
  if (configPath) {
    let doc: unknown;
    try {
      doc = parseYaml(readFile(configPath));
    } catch (e) {
      problems.push(`config file ${configPath}: ${(e as Error).message.split('\n')[0]}`);
    }
    for (const k of keys) {
      const v = atKey(doc, k);
      if (v === undefined) continue;
      const c = convert(`config file key "${k}"`, settingOf(k).kind, v, problems);
      if (c !== undefined) values.set(k, c);
    }
  }
  const fromEnvOrFlag = new Set<SettingKey>();
  for (const k of keys) {
    const s = settingOf(k);
    const e = s.env === undefined ? undefined : env[s.env];
    if (e !== undefined && e !== '') {
      const c = convert(`environment ${s.env}`, s.kind, e, problems);
      if (c !== undefined) values.set(k, c);
      fromEnvOrFlag.add(k);
    }
    const f = args.strings.get(s.flag);
    if (f !== undefined) {
      const c = convert(`--${s.flag}`, s.kind, f, problems);
      if (c !== undefined) values.set(k, c);
      fromEnvOrFlag.add(k);
    }
  }
  // The credentials directory, as loadConfig reads it: `server` when no endpoint is set, and
  // `tenant` over the config file but not over DAT_TENANT or the flag.
  if (keys.includes('credentialsDir')) {
    const dir = String(values.get('credentialsDir'));
    const file = (name: string): string | undefined => {
      try {
        return readFile(join(dir, name)).trim() || undefined;
      } catch {
        return undefined;
      }
    };
    if (keys.includes('datera.endpoint') && !values.get('datera.endpoint')) {
      const server = file('server');
      if (server !== undefined) values.set('datera.endpoint', server);
    }
    if (keys.includes('datera.tenant') && !fromEnvOrFlag.has('datera.tenant')) {
      const tenant = file('tenant');
      if (tenant !== undefined) values.set('datera.tenant', tenant);
    }
  }
  return { values, problems };
}
