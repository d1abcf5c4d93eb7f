import { createHash, type Hash } from 'node:crypto';
import { PassThrough, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { StorageError, describeError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { type NodeFileImages, type SnapshotFingerprint, snapshotFingerprintOnNode, writeSnapshotFile } from '../node/files.js';
import { SNAPSHOT_DIR } from '../plan/names.js';
import type { SnapshotContent } from './restore-source.js';
import type { NodeSession } from './sessions.js';

/** etcd appends the sha256 of the database to every snapshot it streams out (32 bytes). */
const TRAILER_BYTES = 32;

/**
 * Pass-through that checks an etcd v3 snapshot's sha256 trailer while it streams. The last
 * chunk (which holds the 32-byte trailer) is held back until the check passes, so a writer
 * downstream never receives a complete corrupted file and its final name never appears
 * (writeSnapshotFile renames only after the whole entry arrived). Also computes the sha256 of the whole file, which is what
 * sha256sum on the nodes reports.
 */
export class EtcdSnapshotCheck extends Transform {
  private readonly content: Hash = createHash('sha256');
  /** The newest bytes, not passed on yet: the whole last chunk, so no chunk is copied. */
  private held: Buffer = Buffer.alloc(0);
  private total = 0;
  private trailer: Buffer | undefined;
  private digest: string | undefined;

  constructor(private readonly where: string) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.total += chunk.length;
    let released: Buffer;
    if (chunk.length >= TRAILER_BYTES) {
      // The trailer can only be within this chunk (or a later one): what was held can go.
      released = this.held;
      this.held = chunk;
    } else {
      const data = Buffer.concat([this.held, chunk]);
      const cut = Math.max(0, data.length - TRAILER_BYTES);
      released = data.subarray(0, cut);
      this.held = data.subarray(cut);
    }
    if (released.length === 0) return callback();
    this.content.update(released);
    callback(null, released);
  }

  override _flush(callback: TransformCallback): void {
    const contentEnd = this.held.length - TRAILER_BYTES;
    if (this.total % 512 !== TRAILER_BYTES || contentEnd < 0) {
      callback(this.corrupted(`it has no sha256 trailer (${this.total} bytes; an etcd snapshot has 512·n + 32), so it is not a complete etcd v3 snapshot`));
      return;
    }
    this.content.update(this.held.subarray(0, contentEnd));
    const trailer = this.held.subarray(contentEnd);
    // The whole file's hash is the content's hash continued over the trailer: one pass.
    const whole = this.content.copy();
    const actual = this.content.digest();
    if (!actual.equals(trailer)) {
      callback(this.corrupted(`its content does not match its sha256 trailer (expected ${trailer.toString('hex')}, got ${actual.toString('hex')})`));
      return;
    }
    this.trailer = trailer;
    this.digest = whole.update(trailer).digest('hex');
    callback(null, this.held);
  }

  /** sha256 of the whole file, trailer included; only after the stream has ended. */
  get sha256(): string {
    if (this.digest === undefined) throw new Error('EtcdSnapshotCheck: sha256 read before the end of the stream');
    return this.digest;
  }

  /** Size and trailer of the file that passed; only after the stream has ended. */
  get fingerprint(): SnapshotFingerprint {
    if (this.trailer === undefined) throw new Error('EtcdSnapshotCheck: fingerprint read before the end of the stream');
    return { size: this.total, trailer: this.trailer.toString('hex') };
  }

  private corrupted(why: string): StorageError {
    return new StorageError(`the snapshot from ${this.where} is corrupted: ${why}; nothing was changed`, {
      hint: 'restore from another copy or another snapshot',
    });
  }
}

export interface DistributedSnapshot extends SnapshotFingerprint {
  /** sha256 of the whole file, as sha256sum reports it. */
  sha256: string;
}

/**
 * Streams the snapshot once from its source to every target node at the same time (the
 * slowest node sets the pace; nothing is buffered whole). Resolves with its sha256, size and
 * trailer after all targets hold it under its final name; on any failure no target keeps a
 * partial file.
 */
export async function distributeSnapshot(
  content: SnapshotContent,
  targets: NodeSession[],
  name: string,
  images: NodeFileImages,
  where: string,
  signal?: AbortSignal,
): Promise<DistributedSnapshot> {
  const check = new EtcdSnapshotCheck(where);
  // A target may fall 256 KiB behind the fastest one before the source waits: the targets'
  // writes stall at different moments, and a shallow buffer made every stall stop them all.
  const branches = targets.map(() => new PassThrough({ highWaterMark: 256 * 1024 }));
  // Errors are collected from the promises below; a destroyed stream must not also raise an
  // unhandled 'error' through a pipe that has already let go of it.
  for (const stream of [content.stream, check, ...branches]) stream.on('error', () => undefined);
  const fail = (error: Error) => {
    content.stream.destroy(error);
    check.destroy(error);
    for (const branch of branches) branch.destroy(error);
  };
  check.on('error', (error) => {
    for (const branch of branches) branch.destroy(error);
  });
  for (const branch of branches) check.pipe(branch);
  const reading = pipeline(content.stream, check);
  const writes = targets.map((session, index) =>
    writeSnapshotFile(session, images, name, branches[index]!, content.size).catch((error: unknown) => {
      throw new StorageError(`${session.label}: cannot write ${SNAPSHOT_DIR}/${name}: ${describeError(error)}`, { cause: error });
    }),
  );
  const onAbort = () => fail(signal!.reason as Error);
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    if (signal?.aborted) onAbort();
    await Promise.all([reading, ...writes]);
  } catch (error) {
    fail(error as Error);
    // Let every writer finish its own cleanup (temporary file, carrier container) first.
    await Promise.allSettled([reading, ...writes]);
    // The most telling error: a corrupted source explains why every writer failed.
    const cause = await reading.then(() => error, (readError: unknown) => readError);
    throw cause;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  return { sha256: check.sha256, ...check.fingerprint };
}

export function sameFingerprint(a: SnapshotFingerprint | undefined, b: SnapshotFingerprint | undefined): boolean {
  return a !== undefined && b !== undefined && a.size === b.size && a.trailer === b.trailer;
}

/**
 * RKE's "[etcd] Checking if all snapshots are identical" (md5 there), first half: every node's
 * copy must have the expected size and etcd sha256 trailer (RKE #768: nodes restored from
 * different copies). The second half is `etcdctl snapshot restore` on every node, which
 * reads the whole copy and refuses content that does not hash to that trailer; together they
 * prove the copies byte-identical without hashing every node's copy a second time.
 */
export async function verifyIdenticalCopies(
  sessions: NodeSession[],
  name: string,
  expected: SnapshotFingerprint,
  images: NodeFileImages,
  log: Logger,
): Promise<void> {
  log.info('[etcd] Checking if all snapshots are identical');
  const prints = await Promise.all(sessions.map(async (session) => ({ session, print: await snapshotFingerprintOnNode(session, images, name) })));
  for (const { session, print } of prints) {
    log.info(`[etcd] Checksum of etcd snapshot on host [${session.node.address}] is [${print?.trailer ?? 'missing'}] (etcd sha256, ${print?.size ?? 0} bytes)`);
  }
  const different = prints.filter((entry) => !sameFingerprint(entry.print, expected));
  if (different.length > 0) {
    const describe = (print: SnapshotFingerprint | undefined) => (print ? `[${print.trailer}] (${print.size} bytes)` : 'no copy');
    throw new StorageError(
      `etcd snapshots are not consistent: ${different.map((entry) => `host [${entry.session.node.address}] has ${describe(entry.print)}`).join(', ')}, expected ${describe(expected)}; nothing was changed`,
      { hint: `the copies of ${SNAPSHOT_DIR}/${name} were changed while the restore ran; run the restore again` },
    );
  }
}
