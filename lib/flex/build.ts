// SPDX-License-Identifier: Apache-2.0
// Bundles the node driver and its installer into single ESM files (`npm run build:flex`):
// dist/flex/driver.mjs (what the shim runs on the node) and dist/flex/install.mjs (what the
// DaemonSet runs). Dependencies are inlined, so the node needs only the copied node binary.
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export async function buildFlex(outdir = path.join(repoRoot, 'dist', 'flex')): Promise<{ driver: string; installer: string }> {
  await build({
    entryPoints: {
      driver: path.join(repoRoot, 'lib/flex/main.ts'),
      install: path.join(repoRoot, 'lib/flex/install.ts'),
    },
    outdir,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    // CommonJS dependencies (winston) call require() for Node built-ins; give the ESM bundle one.
    banner: { js: "import { createRequire as __flexRequire } from 'node:module'; const require = __flexRequire(import.meta.url);" },
    legalComments: 'none',
    logLevel: 'warning',
  });
  return { driver: path.join(outdir, 'driver.mjs'), installer: path.join(outdir, 'install.mjs') };
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const outdir = process.argv[2] ? path.resolve(process.argv[2]) : undefined;
  const { driver, installer } = await buildFlex(outdir);
  process.stdout.write(`built ${path.relative(process.cwd(), driver)} and ${path.relative(process.cwd(), installer)}\n`);
}
