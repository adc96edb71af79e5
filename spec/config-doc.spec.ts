// SPDX-License-Identifier: Apache-2.0
// Text generated from the flag table: --help, --version, README's configuration table.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../lib/config.js';
import { README_BEGIN, README_END, helpOrVersion, helpText, readmeTable, versionText, withReadmeTable } from '../lib/config-doc.js';
import { ALIASES, SETTINGS } from '../lib/config-flags.js';
import { VERSION } from '../lib/version.js';

const root = new URL('../', import.meta.url);
const packageVersion = (JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as { version: string }).version;
const oneLine = (s: string) => s.replace(/\s+/g, ' ');

/** --help entries by their first line: `--flag ...` -> the entry's text on one line. */
function helpEntries(): Map<string, string> {
  const entries = new Map<string, string>();
  let head = '';
  for (const line of helpText().split('\n')) {
    if (/^ {2}-/.test(line)) {
      head = line.trim();
      entries.set(head, '');
    } else if (head && /^ {8}/.test(line)) entries.set(head, oneLine(`${entries.get(head)} ${line}`).trim());
    else head = '';
  }
  return entries;
}

describe('configuration documentation', () => {
  it("README's configuration table is the one generated from the flag table (npx tsx lib/config-readme.ts)", () => {
    const readme = readFileSync(new URL('README.md', root), 'utf8');
    expect(readme).to.include(README_BEGIN).and.include(README_END);
    expect(withReadmeTable(readme) === readme, 'README.md differs from the flag table: run npx tsx lib/config-readme.ts').to.equal(true);
  });

  it('withReadmeTable replaces only what is between the markers, and refuses a README without them', () => {
    const doc = `intro\n${README_BEGIN}\n| stale |\n${README_END}\noutro\n`;
    expect(withReadmeTable(doc)).to.equal(`intro\n${readmeTable()}\noutro\n`);
    expect(() => withReadmeTable('no markers')).to.throw(/README has no/);
  });

  it('the README table has one row per setting and per alias, each naming its flag', () => {
    const table = readmeTable();
    for (const s of SETTINGS) expect(table, s.key).to.include(`| \`${s.key}\` | \`--${s.flag}\` |`);
    for (const a of ALIASES) expect(table, a.flag).to.match(new RegExp(`^\\| (\`-${a.short}\`, )?\`--${a.flag}\` \\| `, 'm'));
  });

  it('--help shows every flag with its description, default, environment variable and config-file key', () => {
    const entries = helpEntries();
    for (const s of SETTINGS) {
      const head = [...entries.keys()].find((h) => h.split(' ')[0] === `--${s.flag}`);
      expect(head, `--${s.flag}`).to.not.equal(undefined);
      const text = entries.get(head!)!;
      expect(text, s.flag).to.include(`${oneLine(s.help)} (default `);
      expect(text, s.flag).to.include(`config file key ${s.key}`);
      if (s.env) expect(text, s.flag).to.include(`env ${s.env}`);
    }
    expect(entries.get('--retry-max duration')).to.include('(default 5m)');
    expect(entries.get('--leader-elect')).to.include('(default true)');
    expect(entries.get('--provisioner-name string')).to.include('(default "datera.io/provisioner-datera")');
    expect(entries.get('--identity string')).to.include('(default <hostname>_<pid>)');
  });

  it('--help lists every alias with the flag it maps to', () => {
    const entries = helpEntries();
    for (const a of ALIASES) {
      const head = [...entries.keys()].find((h) => h.split(' ').includes(`--${a.flag}`));
      expect(head, a.flag).to.not.equal(undefined);
      expect(entries.get(head!), a.flag).to.equal(oneLine(`-> ${a.mapsTo.replace(/`/g, '')}`));
    }
    expect(entries.get('--worker-threads int')).to.equal('-> --workers');
    expect(entries.get('-v, --v N')).to.match(/^-> --log-level: klog verbosity 0-3 is info, 4 and above debug/);
  });

  it('--help lines fit in 100 columns', () => {
    for (const line of helpText().split('\n')) expect(line.length, line).to.be.at.most(100);
  });

  it("the version is package.json's; --version prints it; --help wins over --version; other argv starts the provisioner", () => {
    expect(VERSION).to.equal(packageVersion);
    expect(versionText()).to.equal(`datera-provisioner ${packageVersion}\n`);
    expect(helpOrVersion(['--version'])).to.equal(versionText());
    expect(helpOrVersion(['--version', '--help'])).to.equal(helpText());
    expect(helpOrVersion(['-h'])).to.equal(helpText());
    expect(helpOrVersion(['--workers', '3'])).to.equal(undefined);
  });

  it('every setting of a loaded configuration has a row in the flag table (credentials apart)', () => {
    const files: Record<string, string> = { '/etc/datera/credentials/username': 'u', '/etc/datera/credentials/password': 'p_secret', '/etc/datera/credentials/server': 'h:7717' };
    const c = loadConfig({ argv: ['--datera-ca-bundle', '/ca.pem', '--kubeconfig', '/kc'], env: {}, readFile: (p) => files[p] }) as unknown as Record<string, unknown>;
    const keys: string[] = [];
    for (const [k, v] of Object.entries(c)) {
      if (['datera', 'credentialsSecret', 'leaderElection'].includes(k)) keys.push(...Object.keys(v as object).map((n) => `${k}.${n}`));
      else keys.push(k);
    }
    const credentials = ['datera.username', 'datera.password', 'datera.ldapServer'];
    expect(keys.filter((k) => !credentials.includes(k)).sort()).to.deep.equal(SETTINGS.map((s) => s.key).sort());
  });
});

describe('datera-provisioner (lib/main.ts) --version', () => {
  it('prints the version and exits 0 without loading the configuration', function () {
    this.timeout(60_000); // a whole process loading every module through tsx, on a shared machine
    const main = fileURLToPath(new URL('lib/main.ts', root));
    const r = spawnSync(process.execPath, ['--import', 'tsx', main, '--version'], { encoding: 'utf8', timeout: 50_000, env: { PATH: process.env.PATH ?? '' } });
    expect(r.stdout).to.equal(`datera-provisioner ${packageVersion}\n`);
    expect(r.status).to.equal(0);
  });
});
