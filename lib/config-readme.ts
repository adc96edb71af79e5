// SPDX-License-Identifier: Apache-2.0
// Rewrites README.md's configuration table from the flag table: `npx tsx lib/config-readme.ts`
// (`--check`: exit 1 when README differs, write nothing). A program of its own, imported by
// nothing, so the provisioner (and its bundle) never runs it.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { withReadmeTable } from './config-doc.js';

const path = fileURLToPath(new URL('../README.md', import.meta.url));
const readme = readFileSync(path, 'utf8');
const updated = withReadmeTable(readme);
if (process.argv.includes('--check')) {
  if (updated !== readme) {
    process.stderr.write('README.md configuration table differs from the flag table: run npx tsx lib/config-readme.ts\n');
    process.exit(1);
  }
} else if (updated !== readme) writeFileSync(path, updated);
