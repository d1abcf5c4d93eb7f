/**
 * The bucket must exist before anything is uploaded; like rke-tools (`bucket %s is not found`)
 * and k3s we never create it: a typo would otherwise scatter snapshots into a new bucket that
 * nobody backs up or restores from.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { Logger } from 'pino';

import type { StorageError } from '../errors.js';
import { classifyS3Error, toStorageError } from './s3-errors.js';
import type { S3Settings } from './settings.js';

export async function checkBucket(
  client: S3Client,
  settings: S3Settings,
  options: { log?: Logger; signal?: AbortSignal } = {},
): Promise<void> {
  const { HeadBucketCommand, ListObjectsV2Command } = await import('@aws-sdk/client-s3');
  const { log, signal } = options;
  const sendOptions = signal ? { abortSignal: signal } : {};
  const action = `check bucket ${settings.bucket}`;
  log?.info({ bucket: settings.bucket, endpoint: settings.endpoint.url }, `Checking if S3 bucket ${settings.bucket} exists`);

  try {
    await client.send(new HeadBucketCommand({ Bucket: settings.bucket }), sendOptions);
    return;
  } catch (error) {
    const kind = classifyS3Error(error);
    // HEAD answers carry no error body, so a 404 can only mean "no bucket" here...
    if (kind === 'no-object' || kind === 'no-bucket') {
      throw bucketMissing(settings, action);
    }
    // ...and a 403 can't tell a bad key from a missing permission. Fall through to a listing,
    // whose XML error names the cause (InvalidAccessKeyId, SignatureDoesNotMatch, AccessDenied);
    // some policies also allow listing but not HeadBucket, which is enough for us.
    if (kind !== 'access-denied' && kind !== 'wrong-region') throw toStorageError(error, { settings, action });
  }

  try {
    await client.send(new ListObjectsV2Command({ Bucket: settings.bucket, MaxKeys: 1 }), sendOptions);
  } catch (error) {
    throw toStorageError(error, { settings, action });
  }
}

/** Map a "no such bucket" met during another operation to the same message as checkBucket's. */
export function bucketMissing(settings: S3Settings, action: string): StorageError {
  return toStorageError(Object.assign(new Error('bucket not found'), { name: 'NoSuchBucket' }), { settings, action });
}
