// SPDX-License-Identifier: Apache-2.0
// Bundles the provisioner into one ESM file (`npm run build:provisioner`): dist/provisioner.mjs,
// what the image runs. Dependencies are inlined and tree-shaken, so only the parts of
// client-node the process uses (KubeConfig and its authenticators) are loaded, not its ~700
// generated models and API classes: about 60 MB less resident memory and a faster start.
// The image then needs no node_modules.
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export async function buildProvisioner(outfile = path.join(repoRoot, 'dist', 'provisioner.mjs')): Promise<string> {
  await build({
    entryPoints: [path.join(repoRoot, 'lib/main.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    // CommonJS dependencies (winston, prom-client) call require() for Node built-ins; give the ESM bundle one.
    banner: { js: "import { createRequire as __provisionerRequire } from 'node:module'; const require = __provisionerRequire(import.meta.url);" },
    legalComments: 'none',
    logLevel: 'warning',
  });
  return outfile;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const out = await buildProvisioner(process.argv[2] ? path.resolve(process.argv[2]) : undefined);
  process.stdout.write(`built ${path.relative(process.cwd(), out)}\n`);
}
