/**
 * Streaming snapshot upload.
 *
 * The object's metadata must carry the sha256 of its content, but S3 takes metadata when an
 * upload *starts* (CreateMultipartUpload), before the stream has been read. So:
 *
 * 1. stream the body into a multipart upload at the final key, created with the metadata known
 *    up front and `upload: incomplete` (memory: partSize × (queueSize + 1), see multipart.ts),
 *    hashing as it goes. A stream that fails or ends short of the size the node reported is
 *    aborted before CompleteMultipartUpload: S3 shows nothing under the key until then;
 * 2. replace the metadata with the full set (sha256 included) by copying the object onto itself
 *    (metadata-copy.ts), then check size and sha256 metadata with a HEAD.
 *
 * Between the two steps the key holds the complete content still marked incomplete, which
 * restore refuses; if step 2 fails, the object is deleted again. A crash (SIGKILL) during step
 * 1 leaves an incomplete multipart upload, invisible but billed: a bucket lifecycle rule
 * "AbortIncompleteMultipartUpload after 1 day" cleans those up on AWS.
 *
 * Alternatives rejected: a hidden temporary key copied into place at the end (one full copy
 * more on servers that update metadata in place), hashing on the node before the upload (a
 * second full read, slower than the copy it saves), buffering to a local temp file first (needs
 * disk space and reads the snapshot twice), a sidecar checksum object (the checksum could go
 * missing independently of the object), S3 additional checksums (composite for multipart,
 * unsupported by many S3-compatible servers).
 */
import type { Readable } from 'node:stream';

import type { S3Client } from '@aws-sdk/client-s3';
import type { Logger } from 'pino';

import { InterruptedError, StorageError } from '../errors.js';
import { Sha256Meter } from './checksum-streams.js';
import { uploadStream } from './multipart.js';
import { createS3Client, errorSummary } from './client.js';
import { contentTypeFor } from './keys.js';
import { type SnapshotOrigin, buildUserMetadata, incompleteUserMetadata, parseUserMetadata } from './metadata.js';
import { type MetadataCopyRequest, replaceMetadata } from './metadata-copy.js';
import { scrubSecrets } from './redact.js';
import { toStorageError } from './s3-errors.js';
import type { S3Settings } from './settings.js';

/**
 * 5 MiB parts, S3's minimum: memory is held per part, and measured throughput is the same as
 * with 8 MiB; a small retry unit on a flaky link. 10,000 parts still cover 48 GiB.
 */
export const UPLOAD_PART_SIZE = 5 * 1024 ** 2;
/** Parts in flight. Part buffers take UPLOAD_PART_SIZE × (UPLOAD_QUEUE_SIZE + 1) = 25 MiB. */
export const UPLOAD_QUEUE_SIZE = 4;
/** S3's limit on parts per multipart upload. */
export const MAX_UPLOAD_PARTS = 10_000;

export interface UploadSnapshotOptions {
  settings: S3Settings;
  /** Final object key, from objectKeyFor(). */
  key: string;
  /** The snapshot bytes. Consumed, and destroyed if the upload fails. */
  body: Readable;
  /** Expected byte count; when given, a different count fails the upload. */
  size?: number;
  metadata: SnapshotOrigin;
  log: Logger;
  signal?: AbortSignal;
  /** Reuse a client from createS3Client(); otherwise one is created and destroyed here. */
  client?: S3Client;
  /** Called with the bytes acknowledged by S3 so far. */
  onProgress?: (uploadedBytes: number) => void;
  /** Tuning, for tests: part size/queue of the upload and the copy limits. */
  partSize?: number;
  queueSize?: number;
  metadataCopy?: Pick<MetadataCopyRequest, 'singleCopyMaxBytes' | 'copyPartSize'>;
}

export interface UploadedSnapshot {
  key: string;
  size: number;
  sha256: string;
  etag?: string;
}

export function partSizeFor(size: number | undefined): number {
  if (size === undefined) return UPLOAD_PART_SIZE;
  const needed = Math.ceil(size / MAX_UPLOAD_PARTS);
  return Math.max(UPLOAD_PART_SIZE, Math.ceil(needed / 1024 ** 2) * 1024 ** 2);
}

export async function uploadSnapshot(options: UploadSnapshotOptions): Promise<UploadedSnapshot> {
  const { settings, key, body, log, signal } = options;
  const action = `upload etcd snapshot file [${key}]`;
  const client = options.client ?? (await createS3Client(settings, { log }));
  const contentType = contentTypeFor(key);
  const meter = new Sha256Meter(options.size);

  // Remember a failure of the source itself, to blame it rather than S3. `pipe`, not pipeline:
  // a failure on the S3 side must not be passed back into the source and look like its own.
  let sourceError: unknown;
  body.once('error', (error) => {
    sourceError ??= error;
    meter.destroy(error);
  });
  // The meter fails on a byte count other than the size the source promised: also the source's.
  meter.once('error', (error) => (sourceError ??= error));

  log.info({ bucket: settings.bucket, key, endpoint: settings.endpoint.url }, `invoking uploading backup file [${key}] to s3`);
  // What this upload put under `key`, to be removed again if it fails.
  const written: Array<{ versionId?: string }> = [];
  try {
    if (signal?.aborted) throw signal.reason;
    body.pipe(meter);
    const uploaded = await uploadStream(meter, {
      client,
      bucket: settings.bucket,
      key,
      contentType,
      metadata: incompleteUserMetadata(options.metadata, options.size),
      partSize: options.partSize ?? partSizeFor(options.size),
      queueSize: options.queueSize ?? UPLOAD_QUEUE_SIZE,
      ...(signal ? { signal } : {}),
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      onAbortFailed: (uploadId, error) =>
        log.warn(
          { bucket: settings.bucket, key, uploadId },
          `could not abort the multipart upload of [${key}] (${scrubSecrets(errorSummary(error), settings)}); ` +
            'its parts stay invisible but stored until a bucket lifecycle rule (AbortIncompleteMultipartUpload) removes them',
        ),
    });
    written.push(uploaded);
    if (sourceError !== undefined) throw sourceError;

    const size = meter.bytes;
    const sha256 = meter.sha256;
    log.debug({ key, size, sha256 }, 'content stored; recording its sha256');
    const copied = await replaceMetadata(client, settings, {
      key,
      ...(uploaded.etag !== undefined ? { etag: uploaded.etag } : {}),
      size,
      metadata: buildUserMetadata(options.metadata, { sha256, size }),
      contentType,
      ...(signal ? { signal } : {}),
      ...options.metadataCopy,
    });
    written.push(copied);
    await verifyFinalObject(client, settings, { key, size, sha256, action });
    // In a versioned bucket the copy is a new version; the one still marked incomplete goes.
    if (uploaded.versionId !== undefined && copied.versionId !== undefined && copied.versionId !== uploaded.versionId) {
      await removeObject(client, settings, key, uploaded.versionId, log);
    }
    log.info({ bucket: settings.bucket, key, size, sha256 }, `Successfully uploaded [${key}]`);
    return { key, size, sha256, ...(copied.etag !== undefined ? { etag: copied.etag } : {}) };
  } catch (error) {
    meter.destroy();
    body.destroy();
    await removeWritten(client, settings, key, written, log);
    throw uploadFailure(error, { settings, action, sourceError, signal });
  } finally {
    if (options.client === undefined) client.destroy();
  }
}

function uploadFailure(
  error: unknown,
  context: { settings: S3Settings; action: string; sourceError: unknown; signal: AbortSignal | undefined },
): Error {
  const { settings, action, sourceError, signal } = context;
  if (signal?.aborted) {
    return new InterruptedError(`${action} was interrupted; nothing was stored under the final key`, {
      cause: signal.reason,
    });
  }
  if (sourceError !== undefined) {
    return new StorageError(
      `failed to ${action}: reading the snapshot failed: ${scrubSecrets(errorSummary(sourceError), settings)}`,
      { cause: sourceError },
    );
  }
  return toStorageError(error, { settings, action });
}

/** Catch servers that ignore MetadataDirective REPLACE or truncate copies before we report success. */
async function verifyFinalObject(
  client: S3Client,
  settings: S3Settings,
  expected: { key: string; size: number; sha256: string; action: string },
): Promise<void> {
  const { HeadObjectCommand } = await import('@aws-sdk/client-s3');
  const head = await client.send(new HeadObjectCommand({ Bucket: settings.bucket, Key: expected.key }));
  const stored = parseUserMetadata(head.Metadata);
  const problem =
    head.ContentLength !== expected.size
      ? `S3 reports ${head.ContentLength} bytes, ${expected.size} were sent`
      : stored.sha256 !== expected.sha256
        ? 'the server did not keep the sha256 metadata (MetadataDirective REPLACE unsupported?)'
        : undefined;
  if (problem === undefined) return;
  // The caller removes it: what sits under the key can't be trusted by a restore.
  throw new StorageError(`failed to ${expected.action}: ${problem}; the object was removed`);
}

/**
 * Deletes what a failed upload wrote under `key`: its versions in a versioned bucket (an older
 * snapshot of the same name becomes current again), else the object.
 */
async function removeWritten(
  client: S3Client,
  settings: S3Settings,
  key: string,
  written: Array<{ versionId?: string }>,
  log: Logger,
): Promise<void> {
  if (written.length === 0) return;
  const versions = written.flatMap((object) => (object.versionId !== undefined ? [object.versionId] : []));
  if (versions.length === 0) {
    await removeObject(client, settings, key, undefined, log);
    return;
  }
  for (const versionId of versions) await removeObject(client, settings, key, versionId, log);
}

async function removeObject(
  client: S3Client,
  settings: S3Settings,
  key: string,
  versionId: string | undefined,
  log: Logger,
): Promise<void> {
  const { DeleteObjectCommand } = await import('@aws-sdk/client-s3');
  try {
    await client.send(
      new DeleteObjectCommand({ Bucket: settings.bucket, Key: key, ...(versionId !== undefined ? { VersionId: versionId } : {}) }),
    );
  } catch (error) {
    log.warn(
      { bucket: settings.bucket, key, ...(versionId !== undefined ? { versionId } : {}) },
      `could not remove [${key}]${versionId !== undefined ? ` version ${versionId}` : ''} (${scrubSecrets(errorSummary(error), settings)}); ` +
        'it is marked incomplete, restore refuses it; delete it',
    );
  }
}
