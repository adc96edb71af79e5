// SPDX-License-Identifier: Apache-2.0
// `datera-provisioner validate-templates FILE...`: the AppTemplates ConfigMap's validation
// (parseTemplates, the function the controller runs on every ConfigMap change), offline, for CI
// and pre-commit hooks. Every problem of every file is listed; exit 1 when any file is invalid,
// 2 when a file cannot be read or the flags are wrong. Touches nothing but the named files.
import { dump } from 'js-yaml';
import { parseTemplates } from '../provision/app-templates.js';
import { optionsHelp, parseCommandArgs, type OptionSpec } from './args.js';
import { EXIT, type CommandIo, type CommandModule } from './command.js';
import { templatesTextOf } from './inputs.js';
import { SETTINGS } from '../config-flags.js';

const KEY_SETTING = SETTINGS.find((s) => s.key === 'templatesKey')!;

const OPTIONS: readonly OptionSpec[] = [
  { name: 'key', kind: 'string', valueName: 'KEY', help: `data key of a ConfigMap file holding the templates (default ${JSON.stringify(KEY_SETTING.default)}, or $${KEY_SETTING.env} like the provisioner's --${KEY_SETTING.flag})` },
  { name: 'configmap', kind: 'string', valueName: 'NAME', help: 'the ConfigMap to check when a file holds several (default: the only one with the key)' },
  { name: 'output', short: 'o', kind: 'string', valueName: 'text|json|yaml', help: 'output format (default text)' },
  { name: 'quiet', short: 'q', kind: 'bool', help: 'print problems only, nothing for a valid file' },
];

const HELP = `datera-provisioner validate-templates: check AppTemplates offline, as the provisioner does

Usage: datera-provisioner validate-templates [flags] FILE...

Each FILE is either a ConfigMap manifest (YAML or JSON; the templates are the value of --key) or a
bare templates.yaml. Every problem is listed, each naming the template, the key and what is
allowed; a file with any problem would be refused whole by the provisioner, which then keeps its
last good templates. Nothing is sent anywhere.

Exit codes: 0 every file is valid, 1 some file has problems, 2 usage error or unreadable file.

Flags:
${optionsHelp(OPTIONS)}

Examples:
  # the bare templates file kustomize turns into the ConfigMap
  datera-provisioner validate-templates manifests/base/templates.yaml
  # the rendered manifests: the ConfigMap holding the key is found among the other objects
  kubectl kustomize manifests/base > all.yaml && datera-provisioner validate-templates all.yaml
  # a ConfigMap whose templates are under another key
  datera-provisioner validate-templates --key gold.yaml my-templates-configmap.yaml
  # a pre-commit hook or CI step over every templates file, machine-readable
  datera-provisioner validate-templates -o json config/templates.yaml overlays/*/templates.yaml
  # the live ConfigMap, before editing it
  kubectl -n datera-system get configmap datera-templates -o yaml > cm.yaml
  datera-provisioner validate-templates cm.yaml
`;

interface FileResult {
  file: string;
  /** What was checked: the file, or the key of a ConfigMap in it. */
  where: string;
  valid: boolean;
  templates: string[];
  problems: string[];
}

async function run(argv: string[], io: CommandIo): Promise<number> {
  const args = parseCommandArgs(argv, OPTIONS, Number.MAX_SAFE_INTEGER);
  const output = args.strings.get('output') ?? 'text';
  if (!['text', 'json', 'yaml'].includes(output)) args.problems.push(`--output must be text, json or yaml, got ${JSON.stringify(output)}`);
  if (args.positionals.length === 0) args.problems.push('name at least one FILE to check');
  const key = args.strings.get('key') ?? (io.env[KEY_SETTING.env!] || String(KEY_SETTING.default));
  if (key === '') args.problems.push('--key must not be empty');
  if (args.problems.length > 0) {
    io.stderr(`datera-provisioner validate-templates: ${args.problems.join('\n  ')}\nSee datera-provisioner validate-templates --help.\n`);
    return EXIT.usage;
  }

  const results: FileResult[] = [];
  const unreadable: string[] = [];
  for (const file of args.positionals) {
    let text: string;
    try {
      text = io.readFile(file);
    } catch (e) {
      unreadable.push(`${file}: cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
      continue;
    }
    const found = templatesTextOf(text, file, key, args.strings.get('configmap'));
    if (!found.ok) {
      results.push({ file, where: file, valid: false, templates: [], problems: [found.error] });
      continue;
    }
    const parsed = parseTemplates(found.value.text);
    results.push(
      parsed.ok
        ? { file, where: found.value.where, valid: true, templates: [...parsed.set.templates.keys()], problems: [] }
        : { file, where: found.value.where, valid: false, templates: [], problems: parsed.errors },
    );
  }

  if (output === 'json') io.stdout(`${JSON.stringify({ results, unreadable }, null, 2)}\n`);
  else if (output === 'yaml') io.stdout(dump({ results, unreadable }, { lineWidth: -1, noRefs: true }));
  else {
    for (const r of results) {
      if (r.valid) {
        if (!args.bools.get('quiet')) io.stdout(`${r.where}: valid, ${r.templates.length} template(s)${r.templates.length > 0 ? `: ${r.templates.join(', ')}` : ''}\n`);
      } else {
        io.stdout(`${r.where}: ${r.problems.length} problem(s):\n${r.problems.map((p) => `  - ${p}\n`).join('')}`);
      }
    }
  }
  for (const u of unreadable) io.stderr(`datera-provisioner validate-templates: ${u}\n`);
  if (unreadable.length > 0) return EXIT.usage;
  return results.every((r) => r.valid) ? EXIT.ok : EXIT.found;
}

export const command: CommandModule = { help: HELP, run };
