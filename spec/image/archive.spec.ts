// SPDX-License-Identifier: Apache-2.0
// The image archive writer (manifests/image/archive.ts) on a small fixture rootfs: layer tars
// read back with GNU tar and with the module's own reader, the archive's digests and JSON, byte
// reproducibility, and the errors for bad input. No network, no container runtime.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { expect } from 'chai';
import {
  entriesFromDir,
  ImageBuildError,
  layerTar,
  normaliseEntries,
  normaliseReference,
  readTar,
  writeImageArchive,
  type ImageSpec,
  type LayerEntry,
} from '../../manifests/image/archive.js';

const LONG_DIR = 'node_modules/@scope/a-package-with-a-rather-long-name/lib/esm/internal/deeply/nested/directory/layout';
const LONG_FILE = `${LONG_DIR}/${'x'.repeat(120)}.js`; // no ustar prefix/name split fits: needs a PAX path
const LONG_TARGET = `../${'t'.repeat(130)}`; // longer than ustar's 100-byte linkname

async function collect(gen: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const b of Readable.from(gen)) parts.push(b as Buffer);
  return Buffer.concat(parts);
}

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

describe('image archive writer', () => {
  let tmp: string;
  let rootfs: string;

  beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'image-spec-'));
    rootfs = path.join(tmp, 'rootfs');
    fs.mkdirSync(path.join(rootfs, 'bin'), { recursive: true });
    fs.mkdirSync(path.join(rootfs, LONG_DIR), { recursive: true });
    fs.writeFileSync(path.join(rootfs, 'bin/tool'), '#!/bin/sh\necho tool\n', { mode: 0o700 });
    fs.writeFileSync(path.join(rootfs, 'secret-looking.conf'), 'a=1\n', { mode: 0o600 });
    fs.writeFileSync(path.join(rootfs, LONG_FILE), 'export {};\n');
    fs.symlinkSync('tool', path.join(rootfs, 'bin/alias'));
    fs.symlinkSync(LONG_TARGET, path.join(rootfs, 'bin/far'));
  });

  afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('a layer from a fixture dir extracts with GNU tar to the same files, modes normalised to 0755/0644, links and long (PAX) names intact', async () => {
    const tar = await collect(layerTar(await entriesFromDir(rootfs, 'app'), 1234));
    const out = path.join(tmp, 'out');
    fs.mkdirSync(out);
    execFileSync('tar', ['-x', '-C', out, '-f', '-'], { input: tar });
    expect(fs.readFileSync(path.join(out, 'app/bin/tool'), 'utf8')).to.equal('#!/bin/sh\necho tool\n');
    expect(fs.statSync(path.join(out, 'app/bin/tool')).mode & 0o7777).to.equal(0o755);
    expect(fs.statSync(path.join(out, 'app/secret-looking.conf')).mode & 0o7777).to.equal(0o644);
    expect(fs.readFileSync(path.join(out, 'app', LONG_FILE), 'utf8')).to.equal('export {};\n');
    expect(fs.readlinkSync(path.join(out, 'app/bin/alias'))).to.equal('tool');
    expect(fs.readlinkSync(path.join(out, 'app/bin/far'))).to.equal(LONG_TARGET);
    expect(fs.statSync(path.join(out, 'app/bin/tool')).mtimeMs).to.equal(1234_000);
  });

  it('layer entries read back sorted, parents before children, all owned 0:0 with the given mtime', async () => {
    const entries = readTar(await collect(layerTar(await entriesFromDir(rootfs, 'app'), 1234)));
    const names = entries.map((e) => e.name);
    expect(names[0]).to.equal('app/');
    expect(names).to.include.members(['app/bin/', 'app/bin/tool', `app/${LONG_FILE}`, `app/${LONG_DIR}/`]);
    expect([...names].sort()).to.deep.equal(names);
    for (const e of entries) {
      const parent = e.name.replace(/\/?[^/]+\/?$/, '');
      if (parent) expect(names.indexOf(`${parent}/`), `${e.name} after its parent`).to.be.lessThan(names.indexOf(e.name));
      expect([e.uid, e.gid, e.mtime], e.name).to.deep.equal([0, 0, 1234]);
    }
    const far = entries.find((e) => e.name === 'app/bin/far');
    expect([far?.type, far?.linkname]).to.deep.equal(['2', LONG_TARGET]);
  });

  it('the archive is a docker-archive and an OCI layout whose blobs match their digests, diff_ids and references', async () => {
    const spec: ImageSpec = {
      refs: ['example/tool:1.0'],
      mtime: 0,
      config: { User: '65534:65534', Entrypoint: ['/app/bin/tool'], WorkingDir: '/app' },
      layers: [
        { entries: [{ path: 'etc/hostname', type: 'file', mode: 0o644, size: 5, content: Buffer.from('host\n') }], createdBy: 'base' },
        { entries: await entriesFromDir(rootfs, 'app'), createdBy: 'app' },
      ],
    };
    const built = await writeImageArchive(spec, path.join(tmp, 'img.tar'), path.join(tmp, 'blobs'));
    const files = new Map(readTar(fs.readFileSync(built.file)).filter((e) => e.type === '0').map((e) => [e.name, e.data]));
    for (const [name, data] of files) {
      if (name.startsWith('blobs/sha256/')) expect(sha256(data), name).to.equal(name.slice('blobs/sha256/'.length));
    }
    expect(JSON.parse(files.get('oci-layout')!.toString())).to.deep.equal({ imageLayoutVersion: '1.0.0' });

    const docker = JSON.parse(files.get('manifest.json')!.toString()) as { Config: string; RepoTags: string[]; Layers: string[] }[];
    expect(docker).to.have.length(1);
    expect(docker[0]!.RepoTags).to.deep.equal(['example/tool:1.0']);
    const config = JSON.parse(files.get(docker[0]!.Config)!.toString());
    expect(config.config).to.deep.equal(spec.config);
    expect([config.os, config.architecture, config.created]).to.deep.equal(['linux', 'amd64', '1970-01-01T00:00:00Z']);
    expect(config.rootfs.diff_ids).to.deep.equal(docker[0]!.Layers.map((l) => `sha256:${sha256(gunzipSync(files.get(l)!))}`));
    expect(config.history.map((h: { created_by: string }) => h.created_by)).to.deep.equal(['base', 'app']);
    const appLayer = readTar(gunzipSync(files.get(docker[0]!.Layers[1]!)!));
    expect(appLayer.find((e) => e.name === 'app/bin/tool')?.data.toString()).to.equal('#!/bin/sh\necho tool\n');

    const index = JSON.parse(files.get('index.json')!.toString());
    expect(index.manifests).to.have.length(1);
    const desc = index.manifests[0];
    expect(desc.annotations).to.deep.equal({ 'io.containerd.image.name': 'docker.io/example/tool:1.0', 'org.opencontainers.image.ref.name': '1.0' });
    const manifestBytes = files.get(`blobs/sha256/${desc.digest.slice(7)}`)!;
    expect(desc.size).to.equal(manifestBytes.length);
    const manifest = JSON.parse(manifestBytes.toString());
    expect(manifest.config.digest).to.equal(`sha256:${docker[0]!.Config.slice('blobs/sha256/'.length)}`);
    expect(manifest.layers.map((l: { digest: string }) => `blobs/sha256/${l.digest.slice(7)}`)).to.deep.equal(docker[0]!.Layers);
    expect(manifest.layers.map((l: { size: number }) => l.size)).to.deep.equal(docker[0]!.Layers.map((l) => files.get(l)!.length));
  });

  it('unchanged inputs give byte-identical archives (even without the blob cache); a changed file changes only its own layer', async () => {
    const spec = async (): Promise<ImageSpec> => ({
      refs: ['busybox:1.36'],
      mtime: 0,
      config: { Cmd: ['sh'] },
      layers: [
        { entries: [{ path: 'etc/motd', type: 'file', mode: 0o644, size: 3, content: Buffer.from('hi\n') }], createdBy: 'one' },
        { entries: await entriesFromDir(rootfs, ''), createdBy: 'two' },
      ],
    });
    const a = await writeImageArchive(await spec(), path.join(tmp, 'a.tar'), path.join(tmp, 'blobs-a'));
    const b = await writeImageArchive(await spec(), path.join(tmp, 'b.tar'), path.join(tmp, 'blobs-b'));
    expect(sha256(fs.readFileSync(b.file))).to.equal(sha256(fs.readFileSync(a.file)));
    fs.writeFileSync(path.join(rootfs, 'bin/tool'), '#!/bin/sh\necho changed\n');
    const c = await writeImageArchive(await spec(), path.join(tmp, 'c.tar'), path.join(tmp, 'blobs-a'));
    expect(c.layers[0]!.digest).to.equal(a.layers[0]!.digest);
    expect(c.layers[1]!.digest).to.not.equal(a.layers[1]!.digest);
    expect(c.manifestDigest).to.not.equal(a.manifestDigest);
  });

  it('references normalise the way containerd names images', () => {
    expect(normaliseReference('busybox:1.36')).to.equal('docker.io/library/busybox:1.36');
    expect(normaliseReference('datera/k8s-provisioner:0.1.0')).to.equal('docker.io/datera/k8s-provisioner:0.1.0');
    expect(normaliseReference('registry.k8s.io/pause:3.10')).to.equal('registry.k8s.io/pause:3.10');
    expect(normaliseReference('localhost:5000/x/y')).to.equal('localhost:5000/x/y:latest');
    expect(normaliseReference('busybox')).to.equal('docker.io/library/busybox:latest');
  });

  it('bad input is refused with ImageBuildError naming the problem', async () => {
    const file = (p: string): LayerEntry => ({ path: p, type: 'file', mode: 0o644, size: 0, content: Buffer.alloc(0) });
    expect(() => normaliseEntries([file('/etc/passwd')])).to.throw(ImageBuildError, 'relative and clean');
    expect(() => normaliseEntries([file('a/../b')])).to.throw(ImageBuildError, 'relative and clean');
    expect(() => normaliseEntries([file('a'), file('a')])).to.throw(ImageBuildError, 'two entries for a');
    expect(() => normaliseEntries([file('a'), file('a/b')])).to.throw(ImageBuildError, 'a/b lies under a, which is not a directory');
    expect(() => normaliseReference('Not A Ref')).to.throw(ImageBuildError, 'not an image reference');
    const spec: ImageSpec = { refs: [], mtime: 0, config: {}, layers: [] };
    await writeImageArchive(spec, path.join(tmp, 'x.tar'), path.join(tmp, 'blobs')).then(
      () => expect.fail('an archive without references was written'),
      (err: unknown) => expect(err).to.be.instanceOf(ImageBuildError).with.property('message', 'an image archive needs at least one reference'),
    );
    expect(fs.existsSync(path.join(tmp, 'x.tar'))).to.equal(false);
    const sizeLie: LayerEntry = { path: 'f', type: 'file', mode: 0o644, size: 9, content: Buffer.from('abc') };
    await collect(layerTar([sizeLie], 0)).then(
      () => expect.fail('a file whose content disagrees with its size was packed'),
      (err: unknown) => expect(err).to.be.instanceOf(ImageBuildError).with.property('message').that.includes('size 9 does not match'),
    );
  });

  it('readTar refuses a header whose checksum does not match', async () => {
    const tar = await collect(layerTar([{ path: 'f', type: 'file', mode: 0o644, size: 3, content: Buffer.from('abc') }], 0));
    tar[0] = 'g'.charCodeAt(0);
    expect(() => readTar(tar)).to.throw(ImageBuildError, 'bad checksum');
  });
});
