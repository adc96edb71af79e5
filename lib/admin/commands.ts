// SPDX-License-Identifier: Apache-2.0
// The admin commands of the provisioner binary: `datera-provisioner <command> [flags]`. Owns the
// registry (an import and one line per command), the dispatch from argv, `--help` per command,
// and the error for an unknown command. Without a command word the binary is the provisioner,
// with its flags unchanged (lib/main.ts). Commands are imported statically: a dynamic import()
// makes esbuild wrap the command's whole import graph, which drags client-node's generated
// models into dist/provisioner.mjs (spec/bundle.spec.ts); their modules have no start-up work.
import { EXIT, type CommandIo, type CommandModule } from './command.js';
import { command as audit } from './audit.js';
import { command as explain } from './explain.js';
import { command as validateTemplates } from './validate-templates.js';

interface CommandEntry {
  name: string;
  /** One line for the command list (keep `--help` lines within 100 columns). */
  summary: string;
  command: CommandModule;
}

/** The commands, in the order `--help` lists them. */
const COMMANDS: readonly CommandEntry[] = [
  { name: 'explain', summary: 'the Datera request and PV a claim would get, and where each setting came from', command: explain },
  { name: 'validate-templates', summary: 'check AppTemplates files offline, as the provisioner checks its ConfigMap', command: validateTemplates },
  { name: 'audit', summary: 'Datera against the cluster: orphans, missing volumes, drift, foreign volumes', command: audit },
];

/** The command list, for the provisioner's `--help` and for errors. */
export function commandList(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n');
}

/** Is argv a command invocation (its first word is not a flag)? Otherwise it is the provisioner's. */
export function isCommand(argv: readonly string[]): boolean {
  const first = argv[0];
  return first !== undefined && first !== '' && !first.startsWith('-');
}

/** `--help` or `-h` anywhere before a `--`. */
function wantsHelp(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).some((a) => a === '--help' || a === '-h' || a === '--help=true');
}

/**
 * Runs the command argv[0] names with the rest of argv; resolves to the exit code. An unknown
 * command is a usage error listing the commands.
 */
export async function runCommand(argv: readonly string[], io: CommandIo): Promise<number> {
  const [name, ...rest] = argv;
  const entry = COMMANDS.find((c) => c.name === name);
  if (entry === undefined) {
    io.stderr(`datera-provisioner: unknown command "${name ?? ''}"; the commands are:\n${commandList()}\nWithout a command it runs the provisioner (see --help).\n`);
    return EXIT.usage;
  }
  if (wantsHelp(rest)) {
    io.stdout(entry.command.help);
    return EXIT.ok;
  }
  return entry.command.run(rest, io);
}
