// SPDX-License-Identifier: Apache-2.0
// Backing files of the simulator's volumes (SimOptions.backingDir, `datera-sim --backing-dir`):
// one sparse file per volume, as large as the volume, so that a stand-in for the node's iSCSI
// initiator can attach it as a loop device and the volume holds real data.
//
// Contract: a file exists for every volume of the simulator's state, named by an id the
// simulator chose (never a name or uuid a client sent); it grows with the volume and never
// shrinks; it is removed with the volume. Failures are SimErrors (InternalError, 500) naming the
// volume and the file system's reason; the operation that needed the file is not performed.
import fs from 'node:fs';
import path from 'node:path';
import { SimError } from './errors.js';

const GiB = 1024 ** 3;
/** The ids the simulator gives backing files: lower-case UUIDs (randomUUID). */
const BACKING_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export class BackingStore {
  /** Absolute directory holding the files. */
  readonly dir: string;

  /** Creates `dir` (and its parents) when missing; throws when it cannot be made or written. */
  constructor(dir: string) {
    if (!dir) throw new Error('simulator: backingDir is empty');
    this.dir = path.resolve(dir);
    makeDirs(this.dir);
    fs.accessSync(this.dir, fs.constants.W_OK);
  }

  /** The file of a backing id; refuses anything that is not an id the simulator makes. */
  pathOf(id: string): string {
    if (!BACKING_ID.test(id)) throw new Error(`simulator: ${JSON.stringify(id)} is not a backing file id`);
    return path.join(this.dir, `${id}.img`);
  }

  /** Bytes for a size in GiB (sizes may be fractional; rounded up to a whole byte). */
  static bytes(sizeGiB: number): number {
    return Math.ceil(sizeGiB * GiB);
  }

  /**
   * A new, empty (all zeros, sparse) file of `sizeGiB`. An existing file of that id is an error:
   * ids are fresh UUIDs, so one would mean another simulator shares the directory.
   */
  create(id: string, sizeGiB: number, what: string): void {
    const file = this.pathOf(id);
    let fd: number | undefined;
    try {
      fd = fs.openSync(file, 'wx', 0o600);
      fs.ftruncateSync(fd, BackingStore.bytes(sizeGiB));
    } catch (err) {
      if (fd !== undefined) fs.rmSync(file, { force: true });
      throw failure(`create the backing file ${file} of ${what}`, err);
    } finally {
      if (fd !== undefined) fs.closeSync(fd);
    }
  }

  /** Grows the file to `sizeGiB`; a file already that large (or larger) is left as it is. */
  grow(id: string, sizeGiB: number, what: string): void {
    const file = this.pathOf(id);
    try {
      const want = BackingStore.bytes(sizeGiB);
      if (fs.statSync(file).size < want) fs.truncateSync(file, want);
    } catch (err) {
      throw failure(`grow the backing file ${file} of ${what} to ${sizeGiB} GiB`, err);
    }
  }

  /**
   * Removes the file; a missing file is fine. A loop device still attached to it keeps the
   * data until it is detached (the kernel holds the inode), as a deleted LUN stays readable
   * to an initiator until it rescans.
   */
  remove(id: string): void {
    fs.rmSync(this.pathOf(id), { force: true });
  }
}

/**
 * mkdir -p, one level at a time: Node 20's recursive mkdirSync never returns when the kernel
 * answers ENOENT for a directory it cannot create (e.g. under /proc).
 */
function makeDirs(dir: string): void {
  const missing: string[] = [];
  for (let d = dir; !fs.existsSync(d); d = path.dirname(d)) missing.unshift(d);
  for (const d of missing) fs.mkdirSync(d);
}

function failure(doing: string, err: unknown): SimError {
  const e = err as NodeJS.ErrnoException;
  return new SimError('InternalError', `Simulator cannot ${doing}: ${e.code ?? ''} ${e.message ?? String(err)}`.replace(/\s+/g, ' ').trim());
}
