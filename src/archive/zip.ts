/**
 * Streaming zip writer for snapshots, on yazl: entries are deflated as they stream through,
 * so a snapshot is never held whole in memory.
 *
 * RKE's layout (rke-tools CreateBackup), which real RKE restores from:
 *   /backup/<name>                    the etcd snapshot
 *   /etc/kubernetes/<name>.rkestate   the cluster state file, when there is one
 * The entry names are absolute on purpose: rke-tools looks entries up by exactly these names.
 * (k3s writes one entry named `<name>`; readers accept both.)
 */
import type { Readable } from 'node:stream';
import { InternalError } from '../errors.js';

export interface ZipEntrySource {
  /** Entry name as stored, absolute names allowed. */
  name: string;
  data: Readable | Buffer;
  /** Byte count of a stream; yazl fails the archive if the stream delivers another count. */
  size?: number;
}

export interface RkeZipInput {
  name: string;
  snapshot: Readable;
  size: number;
  /** Contents of `<config>.rkestate` from the admin box, if it exists. */
  stateFile?: Buffer;
  /** Modification time of the entries. */
  mtime: Date;
}

export function rkeZipEntryNames(name: string): { snapshot: string; stateFile: string } {
  return { snapshot: `/backup/${name}`, stateFile: `/etc/kubernetes/${name}.rkestate` };
}

/** Snapshots and state files hold keys: owner-only, like rke-tools' chmod 0600. */
const ENTRY_MODE = 0o100600;

type YazlEntry = { utf8FileName: Buffer };

/**
 * A zip of `entries` as a stream. yazl refuses absolute entry names (a guard against zip-slip
 * on extraction, irrelevant when writing), so each entry is added under a relative stand-in
 * and renamed as yazl records it, before its header is written.
 */
export async function createZipStream(entries: ZipEntrySource[], mtime: Date): Promise<Readable> {
  const { ZipFile } = await import('yazl');
  const zip = new ZipFile();
  const output = zip.outputStream as unknown as Readable;
  const recorded = (zip as unknown as { entries: YazlEntry[] }).entries;
  if (!Array.isArray(recorded)) throw new InternalError('yazl: unexpected internals (no entries list); cannot write absolute entry names');
  let pendingName: string | undefined;
  recorded.push = (...items: YazlEntry[]) => {
    for (const item of items) {
      if (pendingName !== undefined) item.utf8FileName = Buffer.from(pendingName, 'utf8');
    }
    return Array.prototype.push.apply(recorded, items);
  };
  const fail = (error: Error) => output.destroy(error);
  zip.on('error', fail);
  for (const entry of entries) {
    const standIn = entry.name.replace(/^\/+/, '') || 'entry';
    pendingName = entry.name;
    if (Buffer.isBuffer(entry.data)) {
      zip.addBuffer(entry.data, standIn, { mtime, mode: ENTRY_MODE, compress: true });
    } else {
      entry.data.once('error', fail);
      zip.addReadStream(entry.data, standIn, { mtime, mode: ENTRY_MODE, compress: true, ...(entry.size !== undefined ? { size: entry.size } : {}) });
    }
    pendingName = undefined;
  }
  zip.end();
  // Whoever stops reading early (a failed upload) must not leave the sources open.
  output.once('close', () => {
    for (const entry of entries) if (!Buffer.isBuffer(entry.data) && !entry.data.readableEnded) entry.data.destroy();
  });
  return output;
}

/** `<name>.zip` in RKE's layout: the snapshot, then the state file if there is one. */
export function createRkeSnapshotZip(input: RkeZipInput): Promise<Readable> {
  const names = rkeZipEntryNames(input.name);
  const entries: ZipEntrySource[] = [{ name: names.snapshot, data: input.snapshot, size: input.size }];
  if (input.stateFile) entries.push({ name: names.stateFile, data: input.stateFile });
  return createZipStream(entries, input.mtime);
}
