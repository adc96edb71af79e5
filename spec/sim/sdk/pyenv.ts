// SPDX-License-Identifier: Apache-2.0
// The Python virtualenv holding Datera's own SDK (dfs-sdk from PyPI) for the simulator's client
// tier (spec/sim/python-sdk.spec.ts). Made once and cached outside the work tree, keyed by the SDK
// version and the Python minor version:
//   ${XDG_CACHE_HOME:-~/.cache}/datera-provisioner/pyenv-dfs-sdk-<sdk>-py<major.minor>
// (DATERA_SDK_PYENV overrides the directory, DATERA_SDK_PYTHON the interpreter, default python3).
//
// Contract: `sdkPython()` answers the venv's interpreter, with dfs-sdk importable, or a reason to
// skip when the machine cannot have one (no python3; no venv module and no way to install it; pip
// cannot reach PyPI). With DATERA_SDK_TIER=require those reasons are errors instead. A venv that
// was built but cannot import the SDK is always an error, never a skip. Concurrent callers are
// safe: each builds in its own temporary directory and renames it into place; a loser of the race
// discards its copy and uses the winner's. (After the rename, run `<dir>/bin/python` and
// `<dir>/bin/python -m pip`; the other scripts in bin/ still name the temporary directory.)
//
// The SDK predates Python 3.10, which removed `collections.Mapping` (dfs_sdk/base.py subclasses
// it). The venv gets a compatibility hook, not an edited SDK: `dfs_sdk_compat.pth` in its
// site-packages imports `dfs_sdk_compat`, which sets `collections.Mapping` when it is missing.
// A `.pth` hook rather than sitecustomize.py, because Debian's python3 ships its own
// sitecustomize.py in the standard library directory, which comes first on sys.path and would
// hide one in the venv.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

export const SDK_VERSION = '1.2.27';

export type PyEnv = { python: string; dir: string; built: boolean } | { skip: string };

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  missing?: boolean;
}

function run(cmd: string, args: string[], timeoutMs = 300_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 16 << 20, env: { ...process.env, PIP_DISABLE_PIP_VERSION_CHECK: '1' } }, (err, stdout, stderr) => {
      const e = err as (NodeJS.ErrnoException & { code?: number | string }) | null;
      if (e && e.code === 'ENOENT') resolve({ code: null, stdout: '', stderr: `${cmd}: not found`, missing: true });
      else resolve({ code: e ? (typeof e.code === 'number' ? e.code : 1) : 0, stdout, stderr: stderr || (e ? e.message : '') });
    });
  });
}

const tail = (s: string, n = 600): string => (s.length > n ? `...${s.slice(-n)}` : s).trim();

const COMPAT_MODULE = `# Installed by the datera-provisioner test setup (spec/sim/sdk/pyenv.ts), not part of dfs-sdk.
# dfs-sdk ${SDK_VERSION} subclasses collections.Mapping, which Python 3.10 removed (it lives in
# collections.abc since 3.3). Loaded at start-up by dfs_sdk_compat.pth.
import collections
import collections.abc

if not hasattr(collections, 'Mapping'):
    collections.Mapping = collections.abc.Mapping
`;

function cacheRoot(): string {
  return path.join(process.env['XDG_CACHE_HOME'] || path.join(os.homedir(), '.cache'), 'datera-provisioner');
}

/** Creates a venv at `dir`; installs the distribution's venv package first when Python lacks it and we are root. */
async function makeVenv(python: string, pyVersion: string, dir: string): Promise<string | undefined> {
  let r = await run(python, ['-m', 'venv', dir]);
  if (r.code === 0) return undefined;
  const first = tail(r.stderr || r.stdout);
  const canApt = process.getuid?.() === 0 && (await run('apt-get', ['--version'])).code === 0;
  if (!canApt) return `python3 cannot create a virtualenv and python3-venv cannot be installed here (not root or no apt-get): ${first}`;
  await fs.rm(dir, { recursive: true, force: true });
  const pkgs = ['python3-venv', `python${pyVersion}-venv`];
  let apt = await run('apt-get', ['install', '-y', '-q', ...pkgs]);
  if (apt.code !== 0) {
    await run('apt-get', ['update', '-q']);
    apt = await run('apt-get', ['install', '-y', '-q', ...pkgs]);
  }
  if (apt.code !== 0) return `apt-get install ${pkgs.join(' ')} failed: ${tail(apt.stderr)}`;
  r = await run(python, ['-m', 'venv', dir]);
  return r.code === 0 ? undefined : `python3 -m venv failed even after installing ${pkgs.join(' ')}: ${tail(r.stderr || r.stdout)}`;
}

async function build(python: string, pyVersion: string, dir: string): Promise<string | undefined> {
  const tmp = `${dir}.tmp-${process.pid}-${Date.now()}`;
  try {
    const venvProblem = await makeVenv(python, pyVersion, tmp);
    if (venvProblem) return venvProblem;
    const py = path.join(tmp, 'bin', 'python');
    const pip = await run(py, ['-m', 'pip', 'install', '-q', `dfs-sdk==${SDK_VERSION}`], 600_000);
    if (pip.code !== 0) return `pip install dfs-sdk==${SDK_VERSION} failed (PyPI unreachable?): ${tail(pip.stderr || pip.stdout)}`;
    const site = await run(py, ['-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])']);
    if (site.code !== 0) throw new Error(`cannot find the venv's site-packages: ${tail(site.stderr)}`);
    const purelib = site.stdout.trim();
    await fs.writeFile(path.join(purelib, 'dfs_sdk_compat.py'), COMPAT_MODULE);
    await fs.writeFile(path.join(purelib, 'dfs_sdk_compat.pth'), 'import dfs_sdk_compat\n');
    const check = await run(py, ['-c', 'import dfs_sdk, dfs_sdk.constants as c; print(c.VERSION)']);
    if (check.code !== 0 || check.stdout.trim() !== SDK_VERSION) {
      throw new Error(`the venv ${tmp} cannot import dfs-sdk ${SDK_VERSION}: ${tail(check.stderr || check.stdout)}`);
    }
    await fs.writeFile(path.join(tmp, '.ready'), `${JSON.stringify({ sdk: SDK_VERSION, python: pyVersion })}\n`);
    try {
      await fs.rename(tmp, dir);
    } catch (err) {
      // Another process finished first (the target exists and is not empty): use its venv.
      if (!existsSync(path.join(dir, '.ready'))) throw err;
    }
    return undefined;
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
}

/** The interpreter of the dfs-sdk venv (built when missing), or why this machine cannot have one. */
export async function sdkPython(): Promise<PyEnv> {
  const required = process.env['DATERA_SDK_TIER'] === 'require';
  const skip = (reason: string): PyEnv => {
    if (required) throw new Error(`DATERA_SDK_TIER=require: ${reason}`);
    return { skip: reason };
  };
  const python = process.env['DATERA_SDK_PYTHON'] || 'python3';
  const v = await run(python, ['-c', 'import sys; print("%d.%d" % sys.version_info[:2])']);
  if (v.missing || v.code !== 0) return skip(`${python} is not available: ${tail(v.stderr)}`);
  const pyVersion = v.stdout.trim();
  const dir = process.env['DATERA_SDK_PYENV'] || path.join(cacheRoot(), `pyenv-dfs-sdk-${SDK_VERSION}-py${pyVersion}`);
  const interpreter = path.join(dir, 'bin', 'python');
  if (existsSync(path.join(dir, '.ready'))) return { python: interpreter, dir, built: false };
  await fs.mkdir(path.dirname(dir), { recursive: true });
  const problem = await build(python, pyVersion, dir);
  if (problem) return skip(problem);
  return { python: interpreter, dir, built: true };
}
