/**
 * Streams that hash while data flows, so a snapshot of any size is checksummed without being
 * held in memory or read twice.
 */
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

import { StorageError } from '../errors.js';

/**
 * Pass-through that counts bytes and computes their sha256. Given the size the source promised,
 * it fails the stream itself on a different count, so that what it feeds is never completed.
 */
export class Sha256Meter extends Transform {
  private readonly hash: Hash = createHash('sha256');
  private byteCount = 0;
  private digest: string | undefined;

  constructor(private readonly expectedSize?: number) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hash.update(chunk);
    this.byteCount += chunk.length;
    if (this.expectedSize !== undefined && this.byteCount > this.expectedSize) {
      callback(this.sizeMismatch(`got more than the expected ${this.expectedSize} bytes`));
      return;
    }
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    if (this.expectedSize !== undefined && this.byteCount !== this.expectedSize) {
      callback(this.sizeMismatch(`got ${this.byteCount} bytes, expected ${this.expectedSize}`));
      return;
    }
    this.digest = this.hash.digest('hex');
    callback();
  }

  /** The error for a byte count other than the expected size; `detail` says both. */
  protected sizeMismatch(detail: string): Error {
    // Named for the one-line summary: "...: size mismatch: got N bytes, expected M; ...".
    return Object.assign(new Error(`${detail}; the file changed while it was read`), { name: 'size mismatch' });
  }

  get bytes(): number {
    return this.byteCount;
  }

  /** Hex sha256 of everything that went through; only after the stream has ended. */
  get sha256(): string {
    if (this.digest === undefined) throw new Error('Sha256Meter: sha256 read before the end of the stream');
    return this.digest;
  }
}

export interface ExpectedContent {
  /** Object key, for the error message. */
  key: string;
  size: number;
  /** Hex sha256; undefined when the object carries none (uploaded by another tool). */
  sha256?: string;
}

/**
 * Pass-through that checks size and sha256 of what went through against what the object's
 * metadata promises, and fails the stream at its end on a mismatch. Consumers that write to a
 * temp file and rename on success therefore never keep a corrupted snapshot.
 */
export class VerifyingStream extends Sha256Meter {
  constructor(private readonly expected: ExpectedContent) {
    super(expected.size);
  }

  override _flush(callback: TransformCallback): void {
    super._flush((error) => {
      if (error) {
        callback(error);
        return;
      }
      const { sha256 } = this.expected;
      if (sha256 !== undefined && this.sha256 !== sha256.toLowerCase()) {
        callback(this.mismatch('checksum', `sha256 is ${this.sha256}, expected ${sha256}`));
        return;
      }
      callback();
    });
  }

  protected override sizeMismatch(detail: string): StorageError {
    return this.mismatch('size', detail);
  }

  private mismatch(what: 'size' | 'checksum', detail: string): StorageError {
    return new StorageError(`${what} mismatch for snapshot object [${this.expected.key}]: ${detail}`, {
      hint: 'the copy in S3 is damaged or was replaced; restore from another snapshot',
    });
  }
}
