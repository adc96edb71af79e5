// SPDX-License-Identifier: Apache-2.0
// Writes container images without Docker: layer tars (reproducible: sorted entries, one fixed
// mtime, numeric owner root:root, normalised modes) and an image archive that is both a
// docker-archive (`manifest.json` with RepoTags, for `docker load` and `ctr images import`) and an
// OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/...`). The same inputs give the same
// bytes, so an unchanged layer keeps its digest.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { constants as zc, createGzip } from 'node:zlib';

/** One entry of a layer; `path` is relative to the image root, without a leading or trailing '/'. */
export type LayerEntry =
  | { path: string; type: 'dir'; mode: number }
  | { path: string; type: 'file'; mode: number; size: number; content: Buffer }
  | { path: string; type: 'file'; mode: number; size: number; sourceFile: string }
  | { path: string; type: 'symlink'; target: string };

export class ImageBuildError extends Error {
  override name = 'ImageBuildError';
}

const BLOCK = 512;

function octal(value: number, width: number): string {
  // width includes the trailing NUL
  const s = value.toString(8);
  if (s.length > width - 1) throw new ImageBuildError(`tar field overflow: ${value} does not fit in ${width - 1} octal digits`);
  return s.padStart(width - 1, '0') + '\0';
}

function paxRecord(key: string, value: string): Buffer {
  const body = ` ${key}=${value}\n`;
  const bodyLen = Buffer.byteLength(body);
  // the length prefix counts its own digits
  let len = bodyLen + String(bodyLen).length;
  while (String(len).length + bodyLen !== len) len = String(len).length + bodyLen;
  return Buffer.from(`${len}${body}`);
}

/** Splits a name into ustar (prefix, name) or returns undefined when it does not fit. */
function ustarName(name: string): { prefix: string; name: string } | undefined {
  if (Buffer.byteLength(name) <= 100) return { prefix: '', name };
  for (let i = name.indexOf('/'); i > 0; i = name.indexOf('/', i + 1)) {
    const prefix = name.slice(0, i);
    const rest = name.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(rest) <= 100 && rest.length > 0) return { prefix, name: rest };
  }
  return undefined;
}

function header(fields: { name: string; prefix: string; mode: number; size: number; mtime: number; type: string; linkname: string }): Buffer {
  const h = Buffer.alloc(BLOCK);
  h.write(fields.name, 0, 100, 'utf8');
  h.write(octal(fields.mode, 8), 100, 'ascii');
  h.write(octal(0, 8), 108, 'ascii');
  h.write(octal(0, 8), 116, 'ascii');
  h.write(octal(fields.size, 12), 124, 'ascii');
  h.write(octal(fields.mtime, 12), 136, 'ascii');
  h.write('        ', 148, 'ascii');
  h.write(fields.type, 156, 'ascii');
  h.write(fields.linkname, 157, 100, 'utf8');
  h.write('ustar\0', 257, 'ascii');
  h.write('00', 263, 'ascii');
  h.write(octal(0, 8), 329, 'ascii');
  h.write(octal(0, 8), 337, 'ascii');
  h.write(fields.prefix, 345, 155, 'utf8');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii');
  return h;
}

function padding(size: number): Buffer {
  const rem = size % BLOCK;
  return Buffer.alloc(rem === 0 ? 0 : BLOCK - rem);
}

/** Header blocks (a PAX header first when the name or link target does not fit ustar). */
function entryHeaders(entry: LayerEntry, mtime: number): Buffer[] {
  const name = entry.type === 'dir' ? `${entry.path}/` : entry.path;
  const linkname = entry.type === 'symlink' ? entry.target : '';
  const split = ustarName(name);
  const linkFits = Buffer.byteLength(linkname) <= 100;
  const out: Buffer[] = [];
  if (!split || !linkFits) {
    const records = Buffer.concat([...(split ? [] : [paxRecord('path', name)]), ...(linkFits ? [] : [paxRecord('linkpath', linkname)])]);
    const paxName = `PaxHeaders/${path.posix.basename(entry.path)}`.slice(0, 100);
    out.push(header({ name: paxName, prefix: '', mode: 0o644, size: records.length, mtime, type: 'x', linkname: '' }), records, padding(records.length));
  }
  const shortName = split ?? { prefix: '', name: name.slice(0, 100) };
  const mode = entry.type === 'symlink' ? 0o777 : entry.mode;
  const size = entry.type === 'file' ? entry.size : 0;
  const type = entry.type === 'dir' ? '5' : entry.type === 'symlink' ? '2' : '0';
  out.push(header({ ...shortName, mode, size, mtime, type, linkname: linkFits ? linkname : '' }));
  return out;
}

/**
 * Adds the missing parent directories (mode 0755), rejects duplicates and unsafe paths, and sorts
 * by path so every parent precedes its children.
 */
export function normaliseEntries(entries: readonly LayerEntry[]): LayerEntry[] {
  const byPath = new Map<string, LayerEntry>();
  for (const e of entries) {
    if (e.path === '' || e.path.startsWith('/') || e.path.endsWith('/') || e.path.split('/').some((p) => p === '' || p === '.' || p === '..')) {
      throw new ImageBuildError(`layer entry path must be relative and clean: ${JSON.stringify(e.path)}`);
    }
    if (byPath.has(e.path)) throw new ImageBuildError(`layer has two entries for ${e.path}`);
    byPath.set(e.path, e);
  }
  for (const e of entries) {
    const parts = e.path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      const existing = byPath.get(dir);
      if (!existing) byPath.set(dir, { path: dir, type: 'dir', mode: 0o755 });
      else if (existing.type !== 'dir') throw new ImageBuildError(`${e.path} lies under ${dir}, which is not a directory in this layer`);
    }
  }
  return [...byPath.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** The uncompressed tar stream of a layer; files are read from disk as it goes. */
export async function* layerTar(entries: readonly LayerEntry[], mtime: number): AsyncGenerator<Buffer> {
  for (const e of normaliseEntries(entries)) {
    yield* entryHeaders(e, mtime);
    if (e.type !== 'file') continue;
    if ('content' in e) {
      if (e.content.length !== e.size) throw new ImageBuildError(`${e.path}: size ${e.size} does not match its content (${e.content.length} bytes)`);
      yield e.content;
    } else {
      let read = 0;
      for await (const chunk of createReadStream(e.sourceFile)) {
        read += (chunk as Buffer).length;
        yield chunk as Buffer;
      }
      if (read !== e.size) throw new ImageBuildError(`${e.sourceFile} changed while it was packed (${e.size} -> ${read} bytes)`);
    }
    yield padding(e.size);
  }
  yield Buffer.alloc(2 * BLOCK);
}

/**
 * Lists a directory tree as layer entries under `prefix` (e.g. 'app'): regular files, dirs and
 * symlinks, in sorted order. Modes are normalised (0755 if any execute bit was set, else 0644;
 * dirs 0755) so the umask of whoever extracted the inputs does not change the digest. Other
 * file types (devices, sockets) are refused.
 */
export async function entriesFromDir(root: string, prefix: string, skip?: (rel: string) => boolean): Promise<LayerEntry[]> {
  const out: LayerEntry[] = [];
  async function walk(dir: string, rel: string): Promise<void> {
    const names = (await fs.readdir(dir)).sort();
    for (const name of names) {
      const relPath = rel ? `${rel}/${name}` : name;
      if (skip?.(relPath)) continue;
      const full = path.join(dir, name);
      const st = await fs.lstat(full);
      const at = prefix ? `${prefix}/${relPath}` : relPath;
      if (st.isSymbolicLink()) out.push({ path: at, type: 'symlink', target: await fs.readlink(full) });
      else if (st.isDirectory()) {
        out.push({ path: at, type: 'dir', mode: 0o755 });
        await walk(full, relPath);
      } else if (st.isFile()) out.push({ path: at, type: 'file', mode: st.mode & 0o111 ? 0o755 : 0o644, size: st.size, sourceFile: full });
      else throw new ImageBuildError(`${full}: not a regular file, directory or symlink`);
    }
  }
  await walk(root, '');
  return out;
}

function hashing(hash: ReturnType<typeof createHash>, count: { bytes: number }): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      count.bytes += chunk.length;
      cb(null, chunk);
    },
  });
}

interface BuiltLayer {
  /** sha256 of the uncompressed tar (the config's rootfs.diff_ids). */
  diffId: string;
  /** sha256 of the gzip blob. */
  digest: string;
  size: number;
  /** The gzip blob on disk. */
  file: string;
}

/**
 * Writes a layer as a gzip blob into `blobDir` (named by its digest). The uncompressed tar is
 * hashed first; when `blobDir` already holds the blob for that diff_id (recorded in
 * `<diffId>.layer.json`), it is reused without compressing again.
 */
async function writeLayer(entries: readonly LayerEntry[], mtime: number, blobDir: string): Promise<BuiltLayer> {
  await fs.mkdir(blobDir, { recursive: true });
  const diffHash = createHash('sha256');
  const diffCount = { bytes: 0 };
  await pipeline(Readable.from(layerTar(entries, mtime)), hashing(diffHash, diffCount), new Writable({ write: (_c, _e, cb) => cb() }));
  const diffId = `sha256:${diffHash.digest('hex')}`;
  const metaFile = path.join(blobDir, `${diffId.slice(7)}.layer.json`);
  try {
    const meta = JSON.parse(await fs.readFile(metaFile, 'utf8')) as BuiltLayer;
    const st = await fs.stat(meta.file);
    if (meta.diffId === diffId && st.size === meta.size) return meta;
  } catch {
    // not cached (or the cache entry is incomplete): compress below
  }
  const tmp = path.join(blobDir, `.tmp-${process.pid}-${diffId.slice(7, 19)}`);
  const blobHash = createHash('sha256');
  const blobCount = { bytes: 0 };
  await pipeline(
    Readable.from(layerTar(entries, mtime)),
    createGzip({ level: 6, strategy: zc.Z_DEFAULT_STRATEGY }),
    hashing(blobHash, blobCount),
    createWriteStream(tmp),
  );
  const digest = `sha256:${blobHash.digest('hex')}`;
  const file = path.join(blobDir, `${digest.slice(7)}.tar.gz`);
  await fs.rename(tmp, file);
  const built: BuiltLayer = { diffId, digest, size: blobCount.bytes, file };
  await fs.writeFile(metaFile, JSON.stringify(built));
  return built;
}

/** The parts of an OCI/Docker image config that these images set. */
interface RuntimeConfig {
  User?: string;
  ExposedPorts?: Record<string, Record<string, never>>;
  Env?: string[];
  Entrypoint?: string[];
  Cmd?: string[];
  WorkingDir?: string;
  Labels?: Record<string, string>;
}

/**
 * Normalises an image reference the way containerd and kubelet do: `busybox:1.36` ->
 * `docker.io/library/busybox:1.36`, `datera/x` -> `docker.io/datera/x:latest`.
 */
export function normaliseReference(ref: string): string {
  if (!/^[a-z0-9]+([._:/-][a-zA-Z0-9_.-]+)*$/.test(ref) || ref.includes('@')) throw new ImageBuildError(`not an image reference of the form [registry/]name[:tag]: ${JSON.stringify(ref)}`);
  const [first, ...rest] = ref.split('/') as [string, ...string[]];
  let name: string;
  if (rest.length > 0 && (first.includes('.') || first.includes(':') || first === 'localhost')) name = ref;
  else name = rest.length === 0 ? `docker.io/library/${first}` : `docker.io/${ref}`;
  const lastSlash = name.lastIndexOf('/');
  if (!name.slice(lastSlash).includes(':')) name += ':latest';
  return name;
}

/** The short form `docker load` shows: docker.io/library/busybox:1.36 -> busybox:1.36. */
export function familiarReference(normalised: string): string {
  if (normalised.startsWith('docker.io/library/')) return normalised.slice('docker.io/library/'.length);
  if (normalised.startsWith('docker.io/')) return normalised.slice('docker.io/'.length);
  return normalised;
}

export interface ImageSpec {
  /** References the archive carries, e.g. ['datera/k8s-provisioner:0.1.0']. */
  refs: string[];
  config: RuntimeConfig;
  /** Layers bottom-up, each with a history line (what produced it). */
  layers: { entries: readonly LayerEntry[]; createdBy: string }[];
  /** Seconds since the epoch, for every mtime and the `created` fields. */
  mtime: number;
}

export interface BuiltImage {
  file: string;
  refs: string[];
  manifestDigest: string;
  configDigest: string;
  layers: BuiltLayer[];
}

function jsonBlob(value: unknown): { bytes: Buffer; digest: string } {
  const bytes = Buffer.from(JSON.stringify(value));
  return { bytes, digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}` };
}

/**
 * Writes `spec` as one tar at `file` that is a docker-archive and an OCI layout at once.
 * `blobDir` caches compressed layers between builds. Written to a temporary name and renamed,
 * so a failed build never leaves a truncated archive under the final name.
 */
export async function writeImageArchive(spec: ImageSpec, file: string, blobDir: string): Promise<BuiltImage> {
  if (spec.refs.length === 0) throw new ImageBuildError('an image archive needs at least one reference');
  const refs = spec.refs.map(normaliseReference);
  const layers: BuiltLayer[] = [];
  for (const l of spec.layers) layers.push(await writeLayer(l.entries, spec.mtime, blobDir));
  const created = new Date(spec.mtime * 1000).toISOString().replace('.000Z', 'Z');
  const config = jsonBlob({
    created,
    architecture: 'amd64',
    os: 'linux',
    config: spec.config,
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    history: spec.layers.map((l) => ({ created, created_by: l.createdBy })),
  });
  const manifest = jsonBlob({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config.digest, size: config.bytes.length },
    layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: l.digest, size: l.size })),
  });
  const blobPath = (digest: string): string => `blobs/sha256/${digest.slice(7)}`;
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: refs.map((ref) => ({
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: manifest.digest,
        size: manifest.bytes.length,
        platform: { architecture: 'amd64', os: 'linux' },
        annotations: { 'io.containerd.image.name': ref, 'org.opencontainers.image.ref.name': ref.slice(ref.lastIndexOf(':') + 1) },
      })),
    }),
  );
  const dockerManifest = Buffer.from(
    JSON.stringify([{ Config: blobPath(config.digest), RepoTags: refs.map(familiarReference), Layers: layers.map((l) => blobPath(l.digest)) }]),
  );
  const ociLayout = Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const entries: LayerEntry[] = [
    { path: 'oci-layout', type: 'file', mode: 0o644, size: ociLayout.length, content: ociLayout },
    { path: 'index.json', type: 'file', mode: 0o644, size: index.length, content: index },
    { path: 'manifest.json', type: 'file', mode: 0o644, size: dockerManifest.length, content: dockerManifest },
    { path: blobPath(config.digest), type: 'file', mode: 0o644, size: config.bytes.length, content: config.bytes },
    { path: blobPath(manifest.digest), type: 'file', mode: 0o644, size: manifest.bytes.length, content: manifest.bytes },
  ];
  const seen = new Set<string>();
  for (const l of layers) {
    if (seen.has(l.digest)) continue; // two identical layers share one blob
    seen.add(l.digest);
    entries.push({ path: blobPath(l.digest), type: 'file', mode: 0o644, size: l.size, sourceFile: l.file });
  }
  await fs.mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    await pipeline(Readable.from(layerTar(entries, spec.mtime)), createWriteStream(tmp));
    await fs.rename(tmp, file);
  } finally {
    await fs.rm(tmp, { force: true });
  }
  return { file, refs, manifestDigest: manifest.digest, configDigest: config.digest, layers };
}

/** One entry read back from a tar (PAX path/linkpath applied); for checks and specs. */
export interface TarEntry {
  name: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkname: string;
  data: Buffer;
}

/** Parses a whole uncompressed tar held in memory; throws on a bad checksum or truncation. */
export function readTar(buf: Buffer): TarEntry[] {
  const out: TarEntry[] = [];
  const num = (off: number, len: number): number => parseInt(buf.toString('ascii', off, off + len).replace(/\0.*$/s, '').trim() || '0', 8);
  const str = (off: number, len: number): string => buf.toString('utf8', off, off + len).replace(/\0.*$/s, '');
  let pax: Record<string, string> = {};
  for (let off = 0; off + BLOCK <= buf.length; ) {
    if (buf.subarray(off, off + BLOCK).every((b) => b === 0)) break;
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : buf[off + i]!;
    if (sum !== num(off + 148, 8)) throw new ImageBuildError(`tar header at ${off}: bad checksum`);
    const size = num(off + 124, 12);
    const type = String.fromCharCode(buf[off + 156]!);
    const dataStart = off + BLOCK;
    if (dataStart + size > buf.length) throw new ImageBuildError(`tar entry at ${off}: truncated`);
    const data = buf.subarray(dataStart, dataStart + size);
    off = dataStart + Math.ceil(size / BLOCK) * BLOCK;
    if (type === 'x') {
      pax = {};
      for (let i = 0; i < data.length; ) {
        const sp = data.indexOf(0x20, i);
        const len = Number(data.toString('ascii', i, sp));
        if (sp < 0 || !(len > 0) || i + len > data.length) throw new ImageBuildError(`tar PAX header at ${dataStart - BLOCK}: malformed record`);
        const kv = data.toString('utf8', sp + 1, i + len - 1);
        const eq = kv.indexOf('=');
        pax[kv.slice(0, eq)] = kv.slice(eq + 1);
        i += len;
      }
      continue;
    }
    const hdr = dataStart - BLOCK;
    const prefix = str(hdr + 345, 155);
    const name = pax.path ?? (prefix ? `${prefix}/${str(hdr, 100)}` : str(hdr, 100));
    out.push({ name, type, mode: num(hdr + 100, 8), uid: num(hdr + 108, 8), gid: num(hdr + 116, 8), size, mtime: num(hdr + 136, 12), linkname: pax.linkpath ?? str(hdr + 157, 100), data });
    pax = {};
  }
  return out;
}
