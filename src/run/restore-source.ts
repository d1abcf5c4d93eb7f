import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { S3Client } from '@aws-sdk/client-s3';
import { ZIP_TAIL_BYTES, type ZipEntry, extractZipEntries, readCentralDirectory } from '../archive/unzip.js';
import { StorageError, UsageError, describeError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { type NodeFileImages, listSnapshotDir, openSnapshotFile, readSnapshotFileTail } from '../node/files.js';
import { SNAPSHOT_DIR } from '../plan/names.js';
import { type RestorePlan, type SnapshotFacts, type SnapshotSource, nearestSnapshotNames } from '../plan/restore.js';
import { type S3Settings, createS3Client, downloadSnapshot, findSnapshotKey, listSnapshots, toStorageError } from '../storage/index.js';
import type { NodeSession } from './sessions.js';

/**
 * Finding the snapshot (nodes and S3) and opening it as one stream of the plain etcd snapshot,
 * unzipping RKE and k3s zips on the way.
 */
export interface SourceContext {
  plan: RestorePlan;
  sessions: NodeSession[];
  images: NodeFileImages;
  s3?: S3Settings;
  log: Logger;
  signal?: AbortSignal;
}

/** A state file bigger than this is not one (they are tens of KiB). */
const MAX_STATE_FILE_BYTES = 64 * 1024 * 1024;

export async function gatherSnapshotFacts(context: SourceContext): Promise<SnapshotFacts> {
  const listings = await Promise.all(
    context.sessions.map(async (session) => ({ node: session.node, files: await listSnapshotDir(session, context.images) })),
  );
  const facts: SnapshotFacts = { nodes: listings };
  if (context.s3) {
    try {
      const client = await createS3Client(context.s3, { log: context.log });
      try {
        facts.s3 = { key: await findSnapshotKey(client, context.s3, context.plan.name, context.signal) };
      } finally {
        client.destroy();
      }
    } catch (error) {
      context.signal?.throwIfAborted();
      facts.s3 = /no backups found/.test(describeError(error)) ? {} : { problem: describeError(error) };
    }
  }
  return facts;
}

/** The refusal for a name found nowhere, with the nearest names that do exist. */
export async function snapshotNotFound(context: SourceContext, facts: SnapshotFacts): Promise<UsageError> {
  const names = facts.nodes.flatMap((entry) => entry.files.map((file) => file.name));
  let where = `${SNAPSHOT_DIR} on etcd hosts [${facts.nodes.map((entry) => entry.node.address).join(', ')}]`;
  if (context.s3 && context.plan.s3) {
    where += ` nor in s3://${context.s3.bucket}/${context.plan.s3.keys[0]}[.zip]`;
    if (facts.s3?.problem) where += ` (S3 lookup failed: ${facts.s3.problem})`;
    else names.push(...(await listSnapshots(context.s3, { log: context.log }).catch(() => [])).map((object) => object.name));
  }
  const nearest = nearestSnapshotNames(context.plan.name, names);
  return new UsageError(`snapshot [${context.plan.name}] not found in ${where}; nothing was changed`, {
    hint: nearest.length > 0 ? `nearest existing names: ${nearest.join(', ')}` : 'no snapshots exist there at all',
  });
}

export interface SnapshotContent {
  /** Bytes of the plain etcd snapshot. */
  size: number;
  stream: Readable;
  /**
   * Settles after the stream was consumed or destroyed and the source released its resources
   * (a carrier container on a node): the state file found in a zip, or errors at the end of the source.
   */
  finished: Promise<{ stateFile?: Buffer }>;
}

export function describeSource(source: SnapshotSource, s3?: S3Settings): string {
  return source.kind === 's3' ? `s3://${s3?.bucket ?? ''}/${source.key}` : `${SNAPSHOT_DIR}/${source.file} on host [${source.node.address}]`;
}

export async function openSnapshotContent(context: SourceContext, source: SnapshotSource): Promise<SnapshotContent> {
  const { log, signal } = context;
  if (source.kind === 's3') {
    const settings = context.s3!;
    const objectName = source.key.slice(source.key.lastIndexOf('/') + 1);
    if (!source.zip) {
      const download = await downloadSnapshot({ settings, name: objectName, log, ...(signal ? { signal } : {}) });
      return { size: download.size, stream: download.stream, finished: Promise.resolve({}) };
    }
    const { tail, totalSize } = await readObjectTail(settings, source.key, ZIP_TAIL_BYTES, signal);
    const entries = readCentralDirectory(tail, totalSize);
    const download = await downloadSnapshot({ settings, name: objectName, log, ...(signal ? { signal } : {}) });
    return unzipSnapshot(context.plan.name, download.stream, entries, describeSource(source, settings));
  }
  const session = context.sessions.find((candidate) => candidate.node === source.node)!;
  if (!source.zip) {
    const file = await openSnapshotFile(session, context.images, source.file);
    return { size: file.size, stream: file.stream, finished: file.released.then(() => ({})) };
  }
  const tail = await readSnapshotFileTail(session, context.images, source.file, ZIP_TAIL_BYTES);
  const entries = readCentralDirectory(tail, source.size);
  const file = await openSnapshotFile(session, context.images, source.file);
  let unzipped: SnapshotContent;
  try {
    unzipped = unzipSnapshot(context.plan.name, file.stream, entries, describeSource(source));
  } catch (error) {
    await file.released;
    throw error;
  }
  // Done when the zip was read and the carrier container is gone, whatever happened.
  const finished = unzipped.finished.finally(() => file.released);
  finished.catch(() => undefined);
  return { ...unzipped, finished };
}

/**
 * RKE zips hold `/backup/<name>` and maybe `/etc/kubernetes/<name>.rkestate`; k3s zips one
 * entry named `<name>`. Entries are matched by their last path segment, never used as paths.
 */
export function pickZipEntries(name: string, entries: ZipEntry[]): { snapshot?: ZipEntry; stateFile?: ZipEntry } {
  const base = (entry: ZipEntry) => entry.name.slice(entry.name.lastIndexOf('/') + 1);
  const states = entries.filter((entry) => entry.name.endsWith('.rkestate'));
  const others = entries.filter((entry) => !entry.name.endsWith('.rkestate') && !entry.name.endsWith('/'));
  const snapshot = others.find((entry) => base(entry) === name) ?? (others.length === 1 ? others[0] : undefined);
  const stateFile = states.find((entry) => base(entry) === `${name}.rkestate`) ?? (states.length === 1 ? states[0] : undefined);
  return { ...(snapshot ? { snapshot } : {}), ...(stateFile ? { stateFile } : {}) };
}

function unzipSnapshot(name: string, zip: Readable, entries: ZipEntry[], where: string): SnapshotContent {
  const { snapshot, stateFile } = pickZipEntries(name, entries);
  if (!snapshot) {
    zip.destroy();
    throw new StorageError(`${where} holds no snapshot entry for [${name}] (entries: ${entries.map((entry) => entry.name).join(', ') || 'none'})`);
  }
  if (stateFile && stateFile.uncompressedSize > MAX_STATE_FILE_BYTES) {
    zip.destroy();
    throw new StorageError(`${where}: the state file entry ${stateFile.name} is ${stateFile.uncompressedSize} bytes, too big to be a state file`);
  }
  const output = new PassThrough();
  let state: Buffer | undefined;
  const finished = extractZipEntries(zip, entries, (entry, content) => {
    if (entry === snapshot) return pipeline(content, output);
    if (entry === stateFile) {
      return (async () => {
        const chunks: Buffer[] = [];
        for await (const chunk of content) chunks.push(chunk as Buffer);
        state = Buffer.concat(chunks);
      })();
    }
    return undefined;
  }).then(
    () => (state ? { stateFile: state } : {}),
    (error: unknown) => {
      output.destroy(error as Error);
      throw error;
    },
  );
  // Whoever reads `output` sees the failure; `finished` is awaited later.
  finished.catch(() => undefined);
  return { size: snapshot.uncompressedSize, stream: output, finished };
}

/** The last `bytes` of an object (a zip's central directory) with one ranged GET. */
async function readObjectTail(settings: S3Settings, key: string, bytes: number, signal?: AbortSignal): Promise<{ tail: Buffer; totalSize: number }> {
  const { GetObjectCommand } = await import('@aws-sdk/client-s3');
  const client: S3Client = await createS3Client(settings);
  try {
    const response = await client.send(new GetObjectCommand({ Bucket: settings.bucket, Key: key, Range: `bytes=-${bytes}` }), signal ? { abortSignal: signal } : {});
    const tail = Buffer.from(await response.Body!.transformToByteArray());
    const total = /\/(\d+)$/.exec(response.ContentRange ?? '')?.[1];
    // A server that ignores Range sends the whole (small) object.
    return { tail, totalSize: total ? Number(total) : tail.length };
  } catch (error) {
    throw toStorageError(error, { settings, action: `read the end of snapshot zip [${key}]` });
  } finally {
    client.destroy();
  }
}
