import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import yazl from 'yazl';
import { describe, expect, it } from 'vitest';
import { ZIP_TAIL_BYTES, extractZipEntries, readCentralDirectory, type ZipEntry } from '../../src/archive/unzip.js';

interface Source {
  name: string;
  data: Buffer;
  /** Added as a stream: sizes only in the data descriptor, as Go's archive/zip writes them. */
  streamed?: boolean;
  compress?: boolean;
}

async function makeZip(sources: Source[], options: { zip64?: boolean; comment?: string } = {}): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  for (const source of sources) {
    // yazl refuses absolute names: write a same-length stand-in and patch it below.
    const name = source.name.replace(/^\//, 'X');
    const entryOptions = { compress: source.compress ?? true, forceZip64Format: options.zip64 ?? false };
    if (source.streamed) zip.addReadStream(Readable.from([source.data]), name, { ...entryOptions, size: source.data.length });
    else zip.addBuffer(source.data, name, entryOptions);
  }
  zip.end({ forceZip64Format: false, comment: options.comment ?? '' });
  const chunks: Buffer[] = [];
  for await (const chunk of zip.outputStream) chunks.push(chunk as Buffer);
  let bytes = Buffer.concat(chunks);
  for (const source of sources.filter((s) => s.name.startsWith('/'))) {
    const standIn = Buffer.from(source.name.replace(/^\//, 'X'));
    for (let at = bytes.indexOf(standIn); at >= 0; at = bytes.indexOf(standIn, at + 1)) bytes.write('/', at);
  }
  return bytes;
}

function tailOf(zip: Buffer): Buffer {
  return zip.subarray(Math.max(0, zip.length - ZIP_TAIL_BYTES));
}

function chunked(data: Buffer, size = 1000): Readable {
  const parts: Buffer[] = [];
  for (let offset = 0; offset < data.length; offset += size) parts.push(data.subarray(offset, offset + size));
  return Readable.from(parts);
}

async function extractAll(zip: Buffer, entries: ZipEntry[]): Promise<Map<string, Buffer>> {
  const contents = new Map<string, Buffer>();
  await extractZipEntries(chunked(zip), entries, async (entry, content) => {
    const parts: Buffer[] = [];
    for await (const part of content) parts.push(part as Buffer);
    contents.set(entry.name, Buffer.concat(parts));
  });
  return contents;
}

describe('snapshot zips', () => {
  const snapshot = Buffer.concat([randomBytes(300_000), Buffer.alloc(200_000, 7)]);
  const state = Buffer.from('{"currentState":{}}');

  it('reads an RKE zip (absolute names, data descriptors) in one pass', async () => {
    const zip = await makeZip([
      { name: '/backup/snap', data: snapshot, streamed: true },
      { name: '/etc/kubernetes/snap.rkestate', data: state, streamed: true },
    ]);
    const entries = readCentralDirectory(tailOf(zip), zip.length);
    expect(entries.map((entry) => [entry.name, entry.uncompressedSize])).toEqual([
      ['/backup/snap', snapshot.length],
      ['/etc/kubernetes/snap.rkestate', state.length],
    ]);
    const contents = await extractAll(zip, entries);
    expect(contents.get('/backup/snap')!.equals(snapshot)).toBe(true);
    expect(contents.get('/etc/kubernetes/snap.rkestate')!.toString()).toBe(state.toString());
  });

  it('reads a k3s zip (one entry named like the snapshot), stored or deflated, with a comment', async () => {
    for (const compress of [true, false]) {
      const zip = await makeZip([{ name: 'on-demand-node1-1700000000', data: snapshot, compress }], { comment: 'x'.repeat(500) });
      const entries = readCentralDirectory(tailOf(zip), zip.length);
      expect(entries).toHaveLength(1);
      expect(entries[0]!.method).toBe(compress ? 8 : 0);
      expect((await extractAll(zip, entries)).get('on-demand-node1-1700000000')!.equals(snapshot)).toBe(true);
    }
  });

  it('reads zip64 records', async () => {
    const zip = await makeZip([{ name: '/backup/big', data: snapshot, streamed: true }], { zip64: true });
    const entries = readCentralDirectory(tailOf(zip), zip.length);
    expect(entries[0]).toMatchObject({ name: '/backup/big', uncompressedSize: snapshot.length, localHeaderOffset: 0 });
    expect((await extractAll(zip, entries)).get('/backup/big')!.equals(snapshot)).toBe(true);
  });

  it('skips entries the handler does not want and still reads the next ones', async () => {
    const zip = await makeZip([
      { name: '/backup/snap', data: snapshot, streamed: true },
      { name: '/etc/kubernetes/snap.rkestate', data: state },
    ]);
    const entries = readCentralDirectory(tailOf(zip), zip.length);
    const seen: string[] = [];
    await extractZipEntries(chunked(zip, 4096), entries, (entry, content) => {
      if (entry.name.endsWith('.rkestate')) {
        return (async () => {
          for await (const part of content) seen.push((part as Buffer).toString());
        })();
      }
      return undefined;
    });
    expect(seen.join('')).toBe(state.toString());
  });

  it('fails on a flipped byte (CRC-32 or deflate error), on a truncated zip and on a non-zip', async () => {
    const zip = await makeZip([{ name: '/backup/snap', data: snapshot, compress: false }]);
    const entries = readCentralDirectory(tailOf(zip), zip.length);
    const flipped = Buffer.from(zip);
    flipped[1000] = flipped[1000]! ^ 0xff;
    await expect(extractAll(flipped, entries)).rejects.toThrow(/CRC-32 mismatch in entry \/backup\/snap/);

    const deflated = await makeZip([{ name: '/backup/snap', data: snapshot, streamed: true }]);
    const deflatedEntries = readCentralDirectory(tailOf(deflated), deflated.length);
    const damaged = Buffer.from(deflated);
    for (let at = 5000; at < 5100; at++) damaged[at] = 0xff;
    await expect(extractAll(damaged, deflatedEntries)).rejects.toThrow();
    await expect(extractAll(deflated.subarray(0, 20_000), deflatedEntries)).rejects.toThrow(/the zip ends early/);

    expect(() => readCentralDirectory(snapshot.subarray(0, 1000), 1000)).toThrow(/no end of central directory record/);
  });

  it('refuses when the tail read does not reach the central directory', async () => {
    const zip = await makeZip([{ name: '/backup/snap', data: snapshot, streamed: true }]);
    expect(() => readCentralDirectory(zip.subarray(zip.length - 30), zip.length)).toThrow(/larger than the 30 bytes read/);
  });
});
