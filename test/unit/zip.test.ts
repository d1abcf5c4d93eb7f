import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { createRkeSnapshotZip, createZipStream, rkeZipEntryNames } from '../../src/archive/zip.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'rke-ts-zip-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Compressible but not trivial, like a bbolt file: runs of a pattern with random noise. */
function snapshotLike(size: number): Buffer {
  const data = Buffer.alloc(size);
  let seed = 42;
  for (let i = 0; i < size; i++) {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    data[i] = i % 4096 < 512 ? seed & 0xff : i & 0x0f;
  }
  return data;
}

function chunked(data: Buffer, chunk = 64 * 1024): Readable {
  return Readable.from((function* () {
    for (let offset = 0; offset < data.length; offset += chunk) yield data.subarray(offset, offset + chunk);
  })());
}

const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');

async function writeZip(file: string, stream: Readable): Promise<void> {
  await pipeline(stream, createWriteStream(file));
}

describe('RKE-layout snapshot zip', () => {
  it('holds /backup/<name> and /etc/kubernetes/<name>.rkestate, deflated, byte-identical', async () => {
    const name = 'rke_etcd_snapshot_2024-05-01T12:00:00+02:00';
    const snapshot = snapshotLike(6 * 1024 * 1024 + 123);
    const state = Buffer.from('{"desiredState":{},"currentState":{}}\n');
    const file = path.join(dir, 'rke.zip');
    await writeZip(file, await createRkeSnapshotZip({ name, snapshot: chunked(snapshot), size: snapshot.length, stateFile: state, mtime: new Date('2024-05-01T10:00:00Z') }));

    const listing = execFileSync('unzip', ['-Z', '-v', file], { encoding: 'utf8' });
    expect(listing).toContain('compression method:                             deflated');
    const names = execFileSync('unzip', ['-Z1', file], { encoding: 'utf8' }).trim().split('\n');
    expect(names).toEqual([rkeZipEntryNames(name).snapshot, rkeZipEntryNames(name).stateFile]);
    expect(names).toEqual([`/backup/${name}`, `/etc/kubernetes/${name}.rkestate`]);

    const extracted = execFileSync('unzip', ['-p', file, `/backup/${name}`], { maxBuffer: 64 * 1024 * 1024 });
    expect(sha(extracted)).toBe(sha(snapshot));
    expect(execFileSync('unzip', ['-p', file, `/etc/kubernetes/${name}.rkestate`]).equals(state)).toBe(true);
    expect(readFileSync(file).length).toBeLessThan(snapshot.length / 2);
    execFileSync('unzip', ['-tq', file]);
  });

  it('has only the snapshot when there is no state file', async () => {
    const file = path.join(dir, 'nostate.zip');
    await writeZip(file, await createRkeSnapshotZip({ name: 'snap', snapshot: chunked(Buffer.from('x'.repeat(1000))), size: 1000, mtime: new Date() }));
    expect(execFileSync('unzip', ['-Z1', file], { encoding: 'utf8' }).trim().split('\n')).toEqual(['/backup/snap']);
  });

  it('writes relative names as they are (k3s layout: one entry named like the snapshot)', async () => {
    const file = path.join(dir, 'k3s.zip');
    await writeZip(file, await createZipStream([{ name: 'on-demand-n1-1714564800', data: Buffer.from('etcd') }], new Date()));
    expect(execFileSync('unzip', ['-Z1', file], { encoding: 'utf8' }).trim()).toBe('on-demand-n1-1714564800');
  });

  it('fails the zip stream when the snapshot stream fails or is short', async () => {
    const failing = new Readable({
      read() {
        this.destroy(new Error('node went away'));
      },
    });
    const broken = await createRkeSnapshotZip({ name: 'snap', snapshot: failing, size: 10, mtime: new Date() });
    await expect(writeZip(path.join(dir, 'broken.zip'), broken)).rejects.toThrow('node went away');
    const short = await createRkeSnapshotZip({ name: 'snap', snapshot: chunked(Buffer.from('abc')), size: 10, mtime: new Date() });
    await expect(writeZip(path.join(dir, 'short.zip'), short)).rejects.toThrow(/unexpected number of bytes/);
  });
});
