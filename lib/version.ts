// SPDX-License-Identifier: Apache-2.0
// The version of this build: package.json's `version`, read once at start-up.
import { readFileSync } from 'node:fs';

/**
 * package.json sits one directory above the sources (lib/version.ts) and two above the compiled
 * output (dist/lib/version.js; the image ships it in /app). "unknown" when neither is readable,
 * so a missing file never stops the provisioner.
 */
function readVersion(): string {
  for (const relative of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(relative, import.meta.url), 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === 'datera-provisioner' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // not at this location: try the next one
    }
  }
  return 'unknown';
}

export const VERSION = readVersion();
