// SPDX-License-Identifier: Apache-2.0
// Text generated from the flag table (lib/config-flags.ts): `--help`, `--version`, and README's
// configuration table between the config-table markers. No effects: the provisioner imports it.
// After changing the table, run `npx tsx lib/config-readme.ts` in the source tree to rewrite
// README.md (`--check`: exit 1 when README differs); spec/config-doc.spec.ts fails while they differ.
import { commandList } from './admin/commands.js';
import { readCommandLine } from './config-argv.js';
import { ALIASES, CREDENTIAL_ENV, CONFIG_FILE_ENV, SETTINGS, aliasKind, formatDuration, type Kind, type Setting } from './config-flags.js';
import { VERSION } from './version.js';

const VALUE_NAME: Record<Kind, string> = { string: 'string', int: 'int', float: 'number', bool: '', duration: 'duration', list: 'a,b', map: 'k=v,...' };

function defaultShown(s: Setting, style: 'help' | 'readme'): string {
  const code = (v: string) => (style === 'readme' ? `\`${v}\`` : v);
  if (s.defaultText !== undefined) return style === 'readme' ? s.defaultText : s.defaultText.replace(/`/g, '');
  if (s.kind === 'duration') return code(formatDuration(s.default as number));
  if (s.kind === 'string') return style === 'readme' ? code(String(s.default)) : JSON.stringify(s.default);
  return code(String(s.default));
}

const HELP_WIDTH = 100;
export const HELP_INDENT = '        ';

/** Words of `text` in lines of at most HELP_WIDTH columns after HELP_INDENT (a longer word gets a line of its own); also the admin commands' help. */
export function wrap(text: string): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && HELP_INDENT.length + line.length + 1 + word.length > HELP_WIDTH) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  return line ? [...lines, line] : lines;
}

function helpEntry(names: string, valueName: string, paragraphs: string[]): string {
  return [`  ${names}${valueName ? ` ${valueName}` : ''}`, ...paragraphs.flatMap(wrap).map((l) => HELP_INDENT + l)].join('\n');
}

/** `--help`: every flag with its value type, description, default, environment variable and config-file key, then the aliases. */
export function helpText(): string {
  const settings = SETTINGS.map((s) =>
    helpEntry(`--${s.flag}`, VALUE_NAME[s.kind], [
      `${s.help} (default ${defaultShown(s, 'help')})`,
      `${s.env ? `env ${s.env}, ` : ''}config file key ${s.key}`,
    ]),
  );
  const aliases = ALIASES.map((a) =>
    helpEntry(`${a.short ? `-${a.short}, ` : ''}--${a.flag}`, 'valueName' in a ? a.valueName : VALUE_NAME[aliasKind(a)], [`-> ${a.mapsTo.replace(/`/g, '')}`]),
  );
  return `datera-provisioner ${VERSION}: dynamic provisioner of Datera volumes (flexVolume datera/iscsi)

Usage: datera-provisioner [--config FILE] [--flag value | --flag=value ...]
       datera-provisioner COMMAND [flags]   (datera-provisioner COMMAND --help)

Commands (without one, the provisioner runs):
${commandList()}

Sources, later ones win: defaults < config file < environment < flags. Durations: 500ms, 2s,
1m30s, 2h45m, or a number of milliseconds. Booleans: true/false, 1/0, yes/no; a boolean flag
alone means true. Datera credentials: files username, password, server (optional tenant,
ldapServer) in --credentials-dir, else ${Object.values(CREDENTIAL_ENV).join(', ')} and DAT_MGMT.

Flags:
${helpEntry('--config', 'FILE', [`YAML or JSON file with the config file keys below (env ${CONFIG_FILE_ENV})`])}
${helpEntry('-h, --help', '', ['print this help and exit'])}
${helpEntry('--version', '', ['print the version and exit'])}
${settings.join('\n')}

external-provisioner's flags, accepted as aliases:
${aliases.join('\n')}
`;
}

export function versionText(): string {
  return `datera-provisioner ${VERSION}\n`;
}

/** What to print instead of starting when argv asks for help or the version (help wins); undefined otherwise. */
export function helpOrVersion(argv: readonly string[]): string | undefined {
  const cl = readCommandLine(argv);
  return cl.help ? helpText() : cl.version ? versionText() : undefined;
}

export const README_BEGIN = '<!-- config-table:begin (generated from lib/config-flags.ts by `npx tsx lib/config-readme.ts`; do not edit by hand) -->';
export const README_END = '<!-- config-table:end -->';

const cell = (s: string) => s.replace(/\|/g, '\\|');

/** README's configuration tables, markers included. */
export function readmeTable(): string {
  const rows = SETTINGS.map((s) => {
    const meaning = s.details ? `${s.help}. ${s.details}` : s.help;
    return `| \`${s.key}\` | \`--${s.flag}\` | ${s.env ? `\`${s.env}\`` : ''} | ${cell(defaultShown(s, 'readme'))} | ${cell(meaning)} |`;
  });
  const aliasRows = ALIASES.map((a) => `| ${a.short ? `\`-${a.short}\`, ` : ''}\`--${a.flag}\` | ${cell(a.mapsTo)} |`);
  return [
    README_BEGIN,
    '| config key | flag | environment | default | meaning |',
    '|---|---|---|---|---|',
    `| | \`--config\` | \`${CONFIG_FILE_ENV}\` | none | YAML or JSON file with the config keys of this table |`,
    ...rows,
    `| (credentials) | | ${Object.values(CREDENTIAL_ENV).map((e) => `\`${e}\``).join(', ')} | | used when the files of \`credentialsDir\` are absent |`,
    '',
    "external-provisioner's flag names are accepted too:",
    '',
    '| flag | here |',
    '|---|---|',
    ...aliasRows,
    README_END,
  ].join('\n');
}

/** README with its configuration table replaced by the generated one. Throws when the markers are missing. */
export function withReadmeTable(readme: string): string {
  const begin = readme.indexOf('<!-- config-table:begin');
  const end = readme.indexOf(README_END);
  if (begin < 0 || end < begin) throw new Error(`README has no ${README_BEGIN} ... ${README_END} section`);
  return readme.slice(0, begin) + readmeTable() + readme.slice(end + README_END.length);
}
