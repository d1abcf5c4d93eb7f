/**
 * Listing and deleting snapshot objects under the configured folder.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { Logger } from 'pino';

import { createS3Client } from './client.js';
import { folderPrefix, isInternalKey, snapshotNameFromKey } from './keys.js';
import { type SnapshotMetadata, parseUserMetadata } from './metadata.js';
import { isNotFound, toStorageError } from './s3-errors.js';
import type { S3Settings } from './settings.js';

/** HEAD requests in flight while collecting metadata for a listing. */
const METADATA_CONCURRENCY = 8;

export interface SnapshotObject {
  /** Key relative to the folder, e.g. "rke_etcd_snapshot_2024-05-01T12:00:00Z.zip". */
  name: string;
  key: string;
  size: number;
  lastModified: Date;
  metadata: SnapshotMetadata;
}

export interface StorageCallOptions {
  client?: S3Client;
  log?: Logger;
  signal?: AbortSignal;
}

/**
 * Snapshots directly under the folder (not recursive, like rke-tools' lookup), oldest first.
 * Hidden keys such as k3s's `.metadata/` sidecars are skipped. Listing does not return user
 * metadata, so each object gets a HEAD (k3s does the same, #8926: some servers fail when
 * metadata is requested in the listing itself).
 */
export async function listSnapshots(settings: S3Settings, options: StorageCallOptions = {}): Promise<SnapshotObject[]> {
  const { ListObjectsV2Command, HeadObjectCommand } = await import('@aws-sdk/client-s3');
  const client = options.client ?? (await createS3Client(settings, options.log ? { log: options.log } : {}));
  const sendOptions = options.signal ? { abortSignal: options.signal } : {};
  const action = 'list snapshots';
  try {
    const listed: Array<Omit<SnapshotObject, 'metadata'>> = [];
    let continuationToken: string | undefined;
    do {
      const page = await client.send(
        new ListObjectsV2Command({
          Bucket: settings.bucket,
          Prefix: folderPrefix(settings),
          Delimiter: '/',
          ...(continuationToken ? { ContinuationToken: continuationToken } : {}),
        }),
        sendOptions,
      );
      for (const object of page.Contents ?? []) {
        const key = object.Key;
        const name = key === undefined ? undefined : snapshotNameFromKey(settings, key);
        if (key === undefined || name === undefined || isInternalKey(settings, key)) continue;
        listed.push({ name, key, size: object.Size ?? 0, lastModified: object.LastModified ?? new Date(0) });
      }
      continuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (continuationToken !== undefined);

    const withMetadata: SnapshotObject[] = [];
    let next = 0;
    const headWorker = async (): Promise<void> => {
      for (let entry = listed[next++]; entry !== undefined; entry = listed[next++]) {
        try {
          const head = await client.send(new HeadObjectCommand({ Bucket: settings.bucket, Key: entry.key }), sendOptions);
          withMetadata.push({ ...entry, metadata: parseUserMetadata(head.Metadata) });
        } catch (error) {
          if (isNotFound(error)) continue; // deleted since the listing: not a snapshot any more
          throw error;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(METADATA_CONCURRENCY, listed.length) }, headWorker));
    return withMetadata.sort(
      (a, b) => a.lastModified.getTime() - b.lastModified.getTime() || a.name.localeCompare(b.name),
    );
  } catch (error) {
    throw toStorageError(error, { settings, action });
  } finally {
    if (options.client === undefined) client.destroy();
  }
}

/** Delete one snapshot object; false when it did not exist. */
export async function deleteSnapshot(
  settings: S3Settings,
  key: string,
  options: StorageCallOptions = {},
): Promise<boolean> {
  const { HeadObjectCommand, DeleteObjectCommand } = await import('@aws-sdk/client-s3');
  const client = options.client ?? (await createS3Client(settings, options.log ? { log: options.log } : {}));
  const sendOptions = options.signal ? { abortSignal: options.signal } : {};
  try {
    try {
      await client.send(new HeadObjectCommand({ Bucket: settings.bucket, Key: key }), sendOptions);
    } catch (error) {
      if (isNotFound(error)) return false;
      throw error;
    }
    options.log?.info({ bucket: settings.bucket, key }, `Removing S3 snapshot: s3://${settings.bucket}/${key}`);
    await client.send(new DeleteObjectCommand({ Bucket: settings.bucket, Key: key }), sendOptions);
    return true;
  } catch (error) {
    throw toStorageError(error, { settings, action: `delete snapshot [${key}]` });
  } finally {
    if (options.client === undefined) client.destroy();
  }
}
