// SPDX-License-Identifier: Apache-2.0
// The admin commands of the provisioner binary: `datera-provisioner <command> [flags]`. Owns the
// registry (one line per command, loaded only when run, so the provisioner itself evaluates none
// of them), the dispatch from argv, and the exit-code contract every command keeps:
//   0 done (nothing to report), 1 the command found what it looks for (a refused claim, invalid
//   templates, an orphan...), 2 usage: bad flags or unreadable input. Without a command word the
//   binary is the provisioner, with its flags unchanged (lib/main.ts).
import { readFileSync } from 'node:fs';
import type { KubeConfig } from '@kubernetes/client-node';
import { loadKubeConfig } from '../kube/kubeconfig.js';

/** Exit codes shared by every command. */
export const EXIT = { ok: 0, found: 1, usage: 2 } as const;

/** What a command may touch; tests inject every part. */
export interface CommandIo {
  stdout(text: string): void;
  stderr(text: string): void;
  env: NodeJS.ProcessEnv;
  /** Reads a file as UTF-8; throws (ENOENT...) like fs.readFileSync. */
  readFile(path: string): string;
  /**
   * The Kubernetes configuration as the provisioner finds it (`--kubeconfig`, $KUBECONFIG,
   * in-cluster, ~/.kube/config). Called only by commands that need the cluster, and only then.
   */
  kubeConfig(kubeconfig: string | undefined): KubeConfig;
}

/** A command's module: its `--help` text and its body, which returns the exit code. */
export interface CommandModule {
  /** Usage, flags and examples; printed for `--help`/`-h`. */
  help: string;
  /** Runs with the arguments after the command word; never throws for bad input (exit 2 instead). */
  run(argv: string[], io: CommandIo): Promise<number>;
}

interface CommandEntry {
  name: string;
  /** One line for the command list. */
  summary: string;
  load: () => Promise<{ command: CommandModule }>;
}

/** The commands, in the order `--help` lists them. Add one with a single line here. */
const COMMANDS: readonly CommandEntry[] = [
  { name: 'explain', summary: 'the Datera request and PV a claim would get, and where each setting came from', load: () => import('./explain.js') },
  { name: 'validate-templates', summary: 'check AppTemplates files offline, as the provisioner checks its ConfigMap', load: () => import('./validate-templates.js') },
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
export function wantsHelp(argv: readonly string[]): boolean {
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
  const { command } = await entry.load();
  if (wantsHelp(rest)) {
    io.stdout(command.help);
    return EXIT.ok;
  }
  return command.run(rest, io);
}

/** The real process: its streams and environment, the file system, the provisioner's kubeconfig search. */
export function processIo(): CommandIo {
  return {
    stdout: (t) => void process.stdout.write(t),
    stderr: (t) => void process.stderr.write(t),
    env: process.env,
    readFile: (path) => readFileSync(path, 'utf8'),
    kubeConfig: (kubeconfig) => loadKubeConfig({ kubeconfig }),
  };
}
