/**
 * Streaming snapshot upload.
 *
 * The object's metadata must carry the sha256 of its content, but S3 takes metadata when an
 * upload *starts* (CreateMultipartUpload), before the stream has been read. So:
 *
 * 1. stream the body, hashing as it goes, into a multipart upload at a partial key
 *    `[folder/].rke-ts-partial/<name>.<random>` (memory: partSize × (queueSize + 1), see multipart.ts);
 * 2. server-side copy it to the final key with MetadataDirective REPLACE and the full metadata
 *    (UploadPartCopy above CopyObject's 5 GiB limit), then check the final object's size and
 *    sha256 metadata with a HEAD;
 * 3. delete the partial key.
 *
 * The final key therefore only ever holds a complete object with its checksum. A failed or
 * interrupted upload aborts the multipart upload and deletes the partial key. A crash (SIGKILL)
 * can leave an incomplete multipart upload, which is invisible but billed: a bucket lifecycle
 * rule "AbortIncompleteMultipartUpload after 1 day" cleans those up on AWS.
 *
 * Alternatives rejected: buffering to a local temp file first (needs disk space and reads the
 * snapshot twice), a sidecar checksum object (the checksum could go missing independently of
 * the object), S3 additional checksums (composite for multipart, unsupported by many
 * S3-compatible servers).
 */
import type { Readable } from 'node:stream';

import type { S3Client } from '@aws-sdk/client-s3';
import type { Logger } from 'pino';

import { InterruptedError, StorageError } from '../errors.js';
import { Sha256Meter } from './checksum-streams.js';
import { uploadStream } from './multipart.js';
import { createS3Client, errorSummary } from './client.js';
import { contentTypeFor, partialKeyFor } from './keys.js';
import { type SnapshotOrigin, buildUserMetadata, parseUserMetadata } from './metadata.js';
import { type PromoteRequest, promoteToFinalKey } from './promote.js';
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
  promote?: Pick<PromoteRequest, 'singleCopyMaxBytes' | 'copyPartSize'>;
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
  const tempKey = partialKeyFor(settings, key);
  const contentType = contentTypeFor(key);
  const meter = new Sha256Meter();

  // Remember a failure of the source itself, to blame it rather than S3. `pipe`, not pipeline:
  // a failure on the S3 side must not be passed back into the source and look like its own.
  let sourceError: unknown;
  body.once('error', (error) => {
    sourceError ??= error;
    meter.destroy(error);
  });

  log.info(
    { bucket: settings.bucket, key, partialKey: tempKey, endpoint: settings.endpoint.url },
    `invoking uploading backup file [${key}] to s3`,
  );
  let tempVersionId: string | undefined;
  let stored = false;
  try {
    if (signal?.aborted) throw signal.reason;
    body.pipe(meter);
    const uploaded = await uploadStream(meter, {
      client,
      bucket: settings.bucket,
      key: tempKey,
      contentType,
      partSize: options.partSize ?? partSizeFor(options.size),
      queueSize: options.queueSize ?? UPLOAD_QUEUE_SIZE,
      ...(signal ? { signal } : {}),
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      onAbortFailed: (uploadId, error) =>
        log.warn(
          { bucket: settings.bucket, key: tempKey, uploadId },
          `could not abort the multipart upload of [${tempKey}] (${scrubSecrets(errorSummary(error), settings)}); ` +
            'its parts stay invisible but stored until a bucket lifecycle rule (AbortIncompleteMultipartUpload) removes them',
        ),
    });
    stored = true;
    // In a versioned bucket a plain delete only hides the partial object; delete its version.
    tempVersionId = uploaded.versionId;
    log.debug({ partialKey: tempKey }, 'partial object stored');
    if (sourceError !== undefined) throw sourceError;

    const size = meter.bytes;
    const sha256 = meter.sha256;
    if (options.size !== undefined && size !== options.size) {
      throw new StorageError(`failed to ${action}: read ${size} bytes from the snapshot, expected ${options.size}`);
    }
    const { etag } = await promoteToFinalKey(client, settings, {
      fromKey: tempKey,
      toKey: key,
      size,
      metadata: buildUserMetadata(options.metadata, { sha256, size }),
      contentType,
      ...(signal ? { signal } : {}),
      ...options.promote,
    });
    await verifyFinalObject(client, settings, { key, size, sha256, action });
    await removePartial(client, settings, tempKey, tempVersionId, log);
    log.info({ bucket: settings.bucket, key, size, sha256 }, `Successfully uploaded [${key}]`);
    return { key, size, sha256, ...(etag !== undefined ? { etag } : {}) };
  } catch (error) {
    meter.destroy();
    body.destroy();
    if (stored) await removePartial(client, settings, tempKey, tempVersionId, log);
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
  const { HeadObjectCommand, DeleteObjectCommand } = await import('@aws-sdk/client-s3');
  const head = await client.send(new HeadObjectCommand({ Bucket: settings.bucket, Key: expected.key }));
  const stored = parseUserMetadata(head.Metadata);
  const problem =
    head.ContentLength !== expected.size
      ? `S3 reports ${head.ContentLength} bytes, ${expected.size} were sent`
      : stored.sha256 !== expected.sha256
        ? 'the server did not keep the sha256 metadata (MetadataDirective REPLACE unsupported?)'
        : undefined;
  if (problem === undefined) return;
  // What sits under the final key can't be trusted; don't leave it for a restore to pick up.
  await client.send(new DeleteObjectCommand({ Bucket: settings.bucket, Key: expected.key })).catch(() => undefined);
  throw new StorageError(`failed to ${expected.action}: ${problem}; the object was removed`);
}

async function removePartial(
  client: S3Client,
  settings: S3Settings,
  tempKey: string,
  versionId: string | undefined,
  log: Logger,
): Promise<void> {
  const { DeleteObjectCommand } = await import('@aws-sdk/client-s3');
  try {
    await client.send(
      new DeleteObjectCommand({ Bucket: settings.bucket, Key: tempKey, ...(versionId ? { VersionId: versionId } : {}) }),
    );
  } catch (error) {
    log.warn(
      { bucket: settings.bucket, key: tempKey },
      `could not remove partial upload [${tempKey}] (${scrubSecrets(errorSummary(error), settings)}); it is not a snapshot and can be deleted`,
    );
  }
}
