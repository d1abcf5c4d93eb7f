/**
 * Upload of a stream of unknown length into one S3 object, through a fixed pool of part buffers.
 *
 * Incoming chunks are copied once, into a pooled part buffer that is reused as soon as S3 has
 * acknowledged its part. Memory therefore stays at partSize × (queueSize + 1) with no garbage
 * per part; lib-storage instead concatenates every part into a fresh buffer, which doubles the
 * copying and leaves tens of MiB of garbage between collections. A stream shorter than one part
 * becomes a single PutObject. Each request is retried by the client's own retry strategy.
 */
import type { Readable } from 'node:stream';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import type { CompletedPart, S3Client } from '@aws-sdk/client-s3';

/** How long a failed upload waits for its parts in flight before cancelling them. */
const IN_FLIGHT_GRACE_MS = 10_000;

export interface StreamUploadRequest {
  client: S3Client;
  bucket: string;
  key: string;
  contentType: string;
  /** User metadata (x-amz-meta-*), set when the upload starts. */
  metadata?: Record<string, string>;
  partSize: number;
  /** Parts sent at once; one more buffer is being filled meanwhile. */
  queueSize: number;
  signal?: AbortSignal;
  /** Called with the bytes acknowledged by S3 so far. */
  onProgress?: (bytes: number) => void;
  /** Called when a multipart upload could not be aborted after a failure (its parts stay stored). */
  onAbortFailed?: (uploadId: string, error: unknown) => void;
}

/** What S3 reports for an object it has just stored. */
export interface StoredObject {
  etag?: string;
  /** Version of the new object, in a versioned bucket. */
  versionId?: string;
}

export async function uploadStream(body: Readable, request: StreamUploadRequest): Promise<StoredObject> {
  const s3 = await import('@aws-sdk/client-s3');
  const { client, bucket, key, partSize } = request;
  // Cancels the requests in flight when any part fails or the caller aborts.
  const requests = new AbortController();
  const onCallerAbort = (): void => requests.abort(request.signal?.reason);
  request.signal?.addEventListener('abort', onCallerAbort, { once: true });

  const freeBuffers: Buffer[] = [];
  let allocatedBuffers = 0;
  let filling: Buffer | undefined;
  let filled = 0;
  let nextPartNumber = 1;
  let acknowledged = 0;
  let creating: Promise<string> | undefined;
  const inFlight = new Set<Promise<void>>();
  const parts: CompletedPart[] = [];
  let partFailure: { error: unknown } | undefined;

  const inFlightOptions = { abortSignal: requests.signal };

  const acknowledge = (bytes: number): void => {
    acknowledged += bytes;
    request.onProgress?.(acknowledged);
  };

  const uploadId = (): Promise<string> =>
    (creating ??= client.send(
      new s3.CreateMultipartUploadCommand({
        Bucket: bucket,
        Key: key,
        ContentType: request.contentType,
        Metadata: request.metadata,
      }),
      inFlightOptions,
    ).then(({ UploadId }) => {
      if (!UploadId) throw new Error('CreateMultipartUpload returned no UploadId');
      return UploadId;
    }));

  const dispatch = (buffer: Buffer, length: number): void => {
    const partNumber = nextPartNumber++;
    const sending = (async () => {
      const { ETag } = await client.send(
        new s3.UploadPartCommand({
          Bucket: bucket,
          Key: key,
          UploadId: await uploadId(),
          PartNumber: partNumber,
          Body: buffer.subarray(0, length),
          ContentLength: length,
        }),
        inFlightOptions,
      );
      if (ETag === undefined) throw new Error(`UploadPart ${partNumber} returned no ETag`);
      parts.push({ PartNumber: partNumber, ETag });
      freeBuffers.push(buffer);
      acknowledge(length);
    })().catch((error: unknown) => {
      partFailure ??= { error };
      requests.abort();
      // Stop reading now rather than at the next chunk, which may be long in coming.
      sink.destroy(partFailure.error as Error);
    });
    const tracked = sending.finally(() => inFlight.delete(tracked));
    inFlight.add(tracked);
  };

  const throwIfFailed = (): void => {
    if (partFailure) throw partFailure.error;
  };

  const takeBuffer = async (): Promise<Buffer> => {
    // Every buffer is either free, being filled or in flight; a failed part's buffer is none of
    // these, so check for failures before waiting for a part in flight to come back.
    while (freeBuffers.length === 0 && allocatedBuffers > request.queueSize) {
      throwIfFailed();
      await Promise.race(inFlight);
    }
    throwIfFailed();
    const reused = freeBuffers.pop();
    if (reused) return reused;
    allocatedBuffers++;
    return Buffer.allocUnsafeSlow(partSize);
  };

  const take = async (chunk: Buffer): Promise<void> => {
    for (let offset = 0; offset < chunk.length; ) {
      throwIfFailed();
      filling ??= await takeBuffer();
      const copied = chunk.copy(filling, filled, offset);
      offset += copied;
      filled += copied;
      if (filled === partSize) {
        dispatch(filling, filled);
        filling = undefined;
        filled = 0;
      }
    }
  };

  const finish = async (): Promise<StoredObject> => {
    if (nextPartNumber === 1) {
      // Shorter than one part: one request.
      const { ETag, VersionId } = await client.send(
        new s3.PutObjectCommand({
          Bucket: bucket,
          Key: key,
          Body: filling?.subarray(0, filled) ?? Buffer.alloc(0),
          ContentLength: filled,
          ContentType: request.contentType,
          Metadata: request.metadata,
        }),
        inFlightOptions,
      );
      acknowledge(filled);
      return storedObject(ETag, VersionId);
    }
    if (filling && filled > 0) dispatch(filling, filled);
    filling = undefined;
    await Promise.all(inFlight);
    throwIfFailed();
    parts.sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0));
    const { ETag, VersionId } = await client.send(
      new s3.CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: await uploadId(), MultipartUpload: { Parts: parts } }),
      inFlightOptions,
    );
    return storedObject(ETag, VersionId);
  };

  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      take(chunk).then(() => callback(), callback);
    },
  });

  try {
    await (request.signal ? pipeline(body, sink, { signal: request.signal }) : pipeline(body, sink));
    return await finish();
  } catch (error) {
    // Decided before cancelling: the parts cancelled below fail too, with an abort error.
    const cause = partFailure?.error ?? error;
    if (partFailure === undefined && !request.signal?.aborted) {
      // The source failed, not S3: let the parts in flight land first. S3 may still store a
      // part that arrives after AbortMultipartUpload, which would keep it billed.
      await Promise.race([Promise.allSettled(inFlight), new Promise((resolve) => setTimeout(resolve, IN_FLIGHT_GRACE_MS).unref())]);
    }
    requests.abort();
    await Promise.allSettled(inFlight);
    const started = creating ? await creating.catch(() => undefined) : undefined;
    if (started !== undefined) {
      await client
        .send(new s3.AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: started }))
        .catch((abortError: unknown) => request.onAbortFailed?.(started, abortError));
    }
    // The part that failed first explains the failure; the others were cancelled because of it.
    throw cause;
  } finally {
    request.signal?.removeEventListener('abort', onCallerAbort);
  }
}

export function storedObject(etag: string | undefined, versionId: string | undefined): StoredObject {
  return { ...(etag !== undefined ? { etag } : {}), ...(versionId !== undefined ? { versionId } : {}) };
}
