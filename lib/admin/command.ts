// SPDX-License-Identifier: Apache-2.0
// The contract between the command dispatcher (lib/admin/commands.ts) and each admin command:
// what a command may touch (CommandIo, injectable for tests; processIo is the real process), the
// shape of a command module, and the exit codes every command keeps.
import { readFileSync } from 'node:fs';
import type { KubeConfig } from '@kubernetes/client-node';
import { loadKubeConfig } from '../kube/kubeconfig.js';

/**
 * Exit codes shared by every command: 0 done with nothing to report, 1 the command found what it
 * looks for (a refused claim, invalid templates, an orphan...), 2 usage: bad flags or unreadable input.
 */
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

/** A command: its `--help` text and its body, which returns the exit code. */
export interface CommandModule {
  /** Usage, flags and examples; printed for `--help`/`-h`. */
  help: string;
  /** Runs with the arguments after the command word; never throws for bad input (exit 2 instead). */
  run(argv: string[], io: CommandIo): Promise<number>;
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
