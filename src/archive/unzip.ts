/**
 * Reading snapshot zips (RKE's `/backup/<name>` + `/etc/kubernetes/<name>.rkestate`, k3s's
 * single `<name>` entry) in ONE sequential pass, without holding the snapshot in memory.
 *
 * Go's archive/zip (rke-tools, k3s) writes a data descriptor after each entry, so the local
 * headers carry no sizes; only the central directory at the end of the file has them. The
 * caller therefore reads the last bytes of the zip first (a ranged GET on S3, `tail -c` on a
 * node), passes them to readCentralDirectory, and then streams the whole zip through
 * extractZipEntries, which uses those sizes to find each entry's data. Writers that need the
 * uncompressed size up front (a tar entry through Docker's archive API) get it from there too.
 */
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import { StorageError } from '../errors.js';

export interface ZipEntry {
  name: string;
  /** 0 stored, 8 deflate; nothing else is written by the tools we read. */
  method: number;
  crc32: number;
  compressedSize: number;
  uncompressedSize: number;
  localHeaderOffset: number;
}

/** End of central directory (22 bytes) + the longest comment + zip64 records + a central directory of a few entries. */
export const ZIP_TAIL_BYTES = 128 * 1024;

const EOCD_SIGNATURE = 0x06054b50;
const ZIP64_LOCATOR_SIGNATURE = 0x07064b50;
const ZIP64_EOCD_SIGNATURE = 0x06064b50;
const CENTRAL_SIGNATURE = 0x02014b50;
const LOCAL_SIGNATURE = 0x04034b50;
const ZIP64_EXTRA_ID = 0x0001;
const U32_MAX = 0xffffffff;

function zipError(message: string): StorageError {
  return new StorageError(`invalid zip: ${message}`, { hint: 'the snapshot zip is damaged or not a zip; restore from another copy' });
}

function u64(buffer: Buffer, offset: number): number {
  const value = buffer.readBigUInt64LE(offset);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw zipError('a size or offset is too large');
  return Number(value);
}

/**
 * The entries listed in the central directory. `tail` is the end of a zip of `totalSize`
 * bytes; it must contain the whole central directory (always true for snapshot zips, which
 * have one or two entries).
 */
export function readCentralDirectory(tail: Buffer, totalSize: number): ZipEntry[] {
  const tailStart = totalSize - tail.length;
  let eocd = -1;
  for (let offset = tail.length - 22; offset >= 0; offset--) {
    if (tail.readUInt32LE(offset) === EOCD_SIGNATURE) {
      eocd = offset;
      break;
    }
  }
  if (eocd < 0) throw zipError('no end of central directory record');
  let count = tail.readUInt16LE(eocd + 10);
  let directorySize = tail.readUInt32LE(eocd + 12);
  let directoryOffset = tail.readUInt32LE(eocd + 16);
  const locator = eocd - 20;
  if (locator >= 0 && tail.readUInt32LE(locator) === ZIP64_LOCATOR_SIGNATURE) {
    const record = u64(tail, locator + 8) - tailStart;
    if (record < 0 || tail.readUInt32LE(record) !== ZIP64_EOCD_SIGNATURE) throw zipError('zip64 end of central directory not found');
    count = u64(tail, record + 32);
    directorySize = u64(tail, record + 40);
    directoryOffset = u64(tail, record + 48);
  }
  let position = directoryOffset - tailStart;
  if (position < 0) throw zipError(`central directory (${directorySize} bytes) is larger than the ${tail.length} bytes read`);
  const entries: ZipEntry[] = [];
  for (let index = 0; index < count; index++) {
    if (position + 46 > tail.length || tail.readUInt32LE(position) !== CENTRAL_SIGNATURE) throw zipError(`central directory entry ${index} is damaged`);
    const nameLength = tail.readUInt16LE(position + 28);
    const extraLength = tail.readUInt16LE(position + 30);
    const commentLength = tail.readUInt16LE(position + 32);
    const entry: ZipEntry = {
      name: tail.toString('utf8', position + 46, position + 46 + nameLength),
      method: tail.readUInt16LE(position + 10),
      crc32: tail.readUInt32LE(position + 16),
      compressedSize: tail.readUInt32LE(position + 20),
      uncompressedSize: tail.readUInt32LE(position + 24),
      localHeaderOffset: tail.readUInt32LE(position + 42),
    };
    applyZip64Extra(entry, tail.subarray(position + 46 + nameLength, position + 46 + nameLength + extraLength));
    entries.push(entry);
    position += 46 + nameLength + extraLength + commentLength;
  }
  return entries;
}

/** Zip64 sizes and offsets replace the 32-bit fields that hold 0xffffffff, in this order. */
function applyZip64Extra(entry: ZipEntry, extra: Buffer): void {
  for (let offset = 0; offset + 4 <= extra.length; ) {
    const id = extra.readUInt16LE(offset);
    const size = extra.readUInt16LE(offset + 2);
    if (id === ZIP64_EXTRA_ID) {
      let field = offset + 4;
      for (const key of ['uncompressedSize', 'compressedSize', 'localHeaderOffset'] as const) {
        if (entry[key] === U32_MAX && field + 8 <= offset + 4 + size) {
          entry[key] = u64(extra, field);
          field += 8;
        }
      }
    }
    offset += 4 + size;
  }
}

/** Sequential reads of exact byte counts from a stream. */
class ByteReader {
  private pending: Buffer = Buffer.alloc(0);
  position = 0;
  constructor(private readonly source: AsyncIterator<Buffer>) {}

  private async fill(): Promise<boolean> {
    const next = await this.source.next();
    if (next.done) return false;
    this.pending = this.pending.length === 0 ? next.value : Buffer.concat([this.pending, next.value]);
    return true;
  }

  async read(count: number): Promise<Buffer> {
    while (this.pending.length < count) {
      if (!(await this.fill())) throw zipError(`the zip ends early, at byte ${this.position + this.pending.length}`);
    }
    const bytes = this.pending.subarray(0, count);
    this.pending = this.pending.subarray(count);
    this.position += count;
    return bytes;
  }

  /** Yields the next `count` bytes in the chunks they arrive in. */
  async *take(count: number): AsyncGenerator<Buffer> {
    let left = count;
    while (left > 0) {
      if (this.pending.length === 0 && !(await this.fill())) throw zipError(`the zip ends early, at byte ${this.position}`);
      const chunk = this.pending.subarray(0, Math.min(left, this.pending.length));
      this.pending = this.pending.subarray(chunk.length);
      this.position += chunk.length;
      left -= chunk.length;
      yield chunk;
    }
  }

  async skip(count: number): Promise<void> {
    for await (const _ of this.take(count)) void _;
  }

  /** Reads to the end, so that checks at the end of the source stream (size, sha256) run. */
  async drain(): Promise<void> {
    this.pending = Buffer.alloc(0);
    while (await this.fill()) this.pending = Buffer.alloc(0);
  }
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

/** zlib.crc32 exists from Node 20.15; older Node 20 gets the table version. */
const crc32: (data: Buffer, value: number) => number =
  typeof (zlib as { crc32?: unknown }).crc32 === 'function'
    ? (data, value) => (zlib as unknown as { crc32: (d: Buffer, v: number) => number }).crc32(data, value)
    : (data, value) => {
        let c = (value ^ U32_MAX) >>> 0;
        for (const byte of data) c = CRC_TABLE[(c ^ byte) & 0xff]! ^ (c >>> 8);
        return (c ^ U32_MAX) >>> 0;
      };

/** Fails the stream at its end unless size and CRC-32 match the central directory. */
class EntryCheck extends Transform {
  private crc = 0;
  private size = 0;
  constructor(private readonly entry: ZipEntry) {
    super();
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.crc = crc32(chunk, this.crc);
    this.size += chunk.length;
    callback(null, chunk);
  }
  override _flush(callback: TransformCallback): void {
    if (this.size !== this.entry.uncompressedSize) callback(zipError(`entry ${this.entry.name} has ${this.size} bytes, expected ${this.entry.uncompressedSize}`));
    else if (this.crc >>> 0 !== this.entry.crc32) callback(zipError(`CRC-32 mismatch in entry ${this.entry.name}`));
    else callback();
  }
}

/**
 * Called for each entry in file order. Return undefined to skip the entry, or a promise that
 * settles once `content` (the uncompressed, CRC-checked bytes) has been consumed.
 */
export type ZipEntryHandler = (entry: ZipEntry, content: Readable) => Promise<void> | undefined;

/** Streams `zip` once from its first byte and hands the entries to `onEntry`. */
export async function extractZipEntries(zip: Readable, entries: ZipEntry[], onEntry: ZipEntryHandler): Promise<void> {
  const reader = new ByteReader(zip[Symbol.asyncIterator]() as AsyncIterator<Buffer>);
  let done = false;
  try {
    for (const entry of [...entries].sort((a, b) => a.localHeaderOffset - b.localHeaderOffset)) {
      if (entry.method !== 0 && entry.method !== 8) throw zipError(`entry ${entry.name} uses compression method ${entry.method}`);
      if (reader.position > entry.localHeaderOffset) throw zipError('entries overlap');
      await reader.skip(entry.localHeaderOffset - reader.position);
      const header = await reader.read(30);
      if (header.readUInt32LE(0) !== LOCAL_SIGNATURE) throw zipError(`no local header for entry ${entry.name}`);
      await reader.skip(header.readUInt16LE(26) + header.readUInt16LE(28));
      const data = reader.take(entry.compressedSize);
      const raw = Readable.from(data, { objectMode: false });
      const content = new EntryCheck(entry);
      const decoded = entry.method === 8 ? pipeline(raw, zlib.createInflateRaw(), content) : pipeline(raw, content);
      const handled = onEntry(entry, content);
      if (handled === undefined) {
        content.resume();
        await decoded;
      } else {
        // Both must finish: the handler may settle before the checks at the end of the stream.
        await Promise.all([
          handled.catch((error: unknown) => {
            content.destroy(error as Error);
            throw error;
          }),
          decoded,
        ]);
      }
    }
    await reader.drain();
    done = true;
  } finally {
    if (!done) zip.destroy();
  }
}
