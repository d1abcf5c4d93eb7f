/**
 * Replacing an object's user metadata: S3 has no call for it, only a copy of the object onto
 * itself with MetadataDirective REPLACE. Servers with a metadata-only path for such a copy
 * (MinIO, s3rver) move no data; AWS copies inside S3. The object stays readable throughout: the
 * copy replaces it only when complete.
 */
import type { S3Client } from '@aws-sdk/client-s3';

import { copySourceFor } from './keys.js';
import { type StoredObject, storedObject } from './multipart.js';
import type { S3Settings } from './settings.js';

/** CopyObject's limit (S3 API); bigger objects are copied part by part with UploadPartCopy. */
export const COPY_OBJECT_MAX_BYTES = 5 * 1024 ** 3;
/**
 * Part size of multipart copies. 512 MiB keeps the request count low (16 for an 8 GiB etcd
 * database) while each part copies in well under the default 5 m timeout on any real S3.
 */
export const COPY_PART_SIZE = 512 * 1024 ** 2;
/** UploadPartCopy requests in flight; server-side copies cost us no memory. */
const COPY_CONCURRENCY = 4;

export interface MetadataCopyRequest {
  key: string;
  /** ETag of the object the metadata is meant for: if another write replaced it, the copy fails. */
  etag?: string;
  size: number;
  metadata: Record<string, string>;
  contentType: string;
  signal?: AbortSignal;
  /** Tests lower these to exercise the multipart path with small objects. */
  singleCopyMaxBytes?: number;
  copyPartSize?: number;
}

export async function replaceMetadata(client: S3Client, settings: S3Settings, request: MetadataCopyRequest): Promise<StoredObject> {
  const s3 = await import('@aws-sdk/client-s3');
  const sendOptions = request.signal ? { abortSignal: request.signal } : {};
  const copySource = copySourceFor(settings.bucket, request.key);
  const ifMatch = request.etag !== undefined ? { CopySourceIfMatch: request.etag } : {};

  if (request.size <= (request.singleCopyMaxBytes ?? COPY_OBJECT_MAX_BYTES)) {
    const copied = await client.send(
      new s3.CopyObjectCommand({
        Bucket: settings.bucket,
        Key: request.key,
        CopySource: copySource,
        ...ifMatch,
        MetadataDirective: 'REPLACE',
        Metadata: request.metadata,
        ContentType: request.contentType,
      }),
      sendOptions,
    );
    return storedObject(copied.CopyObjectResult?.ETag, copied.VersionId);
  }

  const created = await client.send(
    new s3.CreateMultipartUploadCommand({
      Bucket: settings.bucket,
      Key: request.key,
      Metadata: request.metadata,
      ContentType: request.contentType,
    }),
    sendOptions,
  );
  const uploadId = created.UploadId;
  if (uploadId === undefined) throw new Error('CreateMultipartUpload returned no UploadId');
  try {
    const partSize = request.copyPartSize ?? COPY_PART_SIZE;
    const ranges: Array<{ partNumber: number; start: number; end: number }> = [];
    for (let start = 0, partNumber = 1; start < request.size; start += partSize, partNumber++) {
      ranges.push({ partNumber, start, end: Math.min(start + partSize, request.size) - 1 });
    }
    const parts: Array<{ PartNumber: number; ETag: string }> = [];
    let next = 0;
    let failed = false;
    const copyWorker = async (): Promise<void> => {
      for (let range = ranges[next++]; range !== undefined && !failed; range = ranges[next++]) {
        const copied = await client.send(
          new s3.UploadPartCopyCommand({
            Bucket: settings.bucket,
            Key: request.key,
            UploadId: uploadId,
            PartNumber: range.partNumber,
            CopySource: copySource,
            ...ifMatch,
            CopySourceRange: `bytes=${range.start}-${range.end}`,
          }),
          sendOptions,
        ).catch((error: unknown) => {
          failed = true; // stop the other workers from starting more parts
          throw error;
        });
        const etag = copied.CopyPartResult?.ETag;
        if (etag === undefined) throw new Error(`UploadPartCopy of part ${range.partNumber} returned no ETag`);
        parts.push({ PartNumber: range.partNumber, ETag: etag });
      }
    };
    await Promise.all(Array.from({ length: Math.min(COPY_CONCURRENCY, ranges.length) }, copyWorker));
    parts.sort((a, b) => a.PartNumber - b.PartNumber);
    const completed = await client.send(
      new s3.CompleteMultipartUploadCommand({
        Bucket: settings.bucket,
        Key: request.key,
        UploadId: uploadId,
        MultipartUpload: { Parts: parts },
      }),
      sendOptions,
    );
    return storedObject(completed.ETag, completed.VersionId);
  } catch (error) {
    // Leave no orphaned parts behind (they are billed and invisible in listings).
    await client
      .send(new s3.AbortMultipartUploadCommand({ Bucket: settings.bucket, Key: request.key, UploadId: uploadId }))
      .catch(() => undefined);
    throw error;
  }
}
