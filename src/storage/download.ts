/**
 * Fetching a snapshot by name, verifying it while it streams.
 *
 * Lookup follows rke-tools: list `[folder/]<name>` without recursion and take the key that is
 * the name itself or the name plus `.zip` (RKE stores `<name>.zip`; k3s stores `<name>` or
 * `<name>.zip`). Objects that carry our `sha256` metadata are checked against it; objects put
 * by other tools (s3cmd, rke-tools, k3s) carry none and get the size check only. Objects still
 * marked `upload: incomplete` by an upload of ours are refused.
 */
import type { Readable } from 'node:stream';

import type { S3Client } from '@aws-sdk/client-s3';
import type { Logger } from 'pino';

import { StorageError } from '../errors.js';
import { VerifyingStream } from './checksum-streams.js';
import { createS3Client } from './client.js';
import { objectKeyFor } from './keys.js';
import { type SnapshotMetadata, parseUserMetadata } from './metadata.js';
import { toStorageError } from './s3-errors.js';
import type { S3Settings } from './settings.js';

export interface DownloadSnapshotOptions {
  settings: S3Settings;
  /** Snapshot name, with or without `.zip`. */
  name: string;
  log: Logger;
  signal?: AbortSignal;
  client?: S3Client;
}

export interface DownloadedSnapshot {
  key: string;
  size: number;
  /** From the object's metadata; undefined for objects uploaded by other tools. */
  sha256?: string;
  metadata: SnapshotMetadata;
  /** The content. Fails with a StorageError at its end if size or sha256 don't match. */
  stream: Readable;
}

export async function downloadSnapshot(options: DownloadSnapshotOptions): Promise<DownloadedSnapshot> {
  const { settings, name, log, signal } = options;
  const { GetObjectCommand } = await import('@aws-sdk/client-s3');
  const client = options.client ?? (await createS3Client(settings, { log }));
  const release = (): void => {
    if (options.client === undefined) client.destroy();
  };
  const sendOptions = signal ? { abortSignal: signal } : {};

  try {
    const key = await findSnapshotKey(client, settings, name, signal);
    const action = `download snapshot [${key}]`;
    log.info({ bucket: settings.bucket, key }, `Retrieving etcd snapshot ${name} from S3`);
    const response = await client
      .send(new GetObjectCommand({ Bucket: settings.bucket, Key: key }), sendOptions)
      .catch((error: unknown) => {
        throw toStorageError(error, { settings, action });
      });
    const body = response.Body as Readable | undefined;
    if (body === undefined || response.ContentLength === undefined) {
      throw new StorageError(`failed to ${action}: the server sent no body or no Content-Length`);
    }
    const metadata = parseUserMetadata(response.Metadata);
    const size = response.ContentLength;
    if (metadata.incomplete) {
      body.destroy();
      throw new StorageError(`snapshot object [${key}] is marked incomplete: its upload never recorded a sha256`, {
        hint: 'its upload failed or is still running; use another snapshot, or delete it and upload the snapshot again',
      });
    }
    if (metadata.size !== undefined && metadata.size !== size) {
      body.destroy();
      throw new StorageError(
        `size mismatch for snapshot object [${key}]: it has ${size} bytes, its metadata says ${metadata.size}`,
        { hint: 'the copy in S3 is damaged or was replaced; restore from another snapshot' },
      );
    }

    const verifier = new VerifyingStream({ key, size, ...(metadata.sha256 ? { sha256: metadata.sha256 } : {}) });
    // Network failures mid-body become one clear StorageError on the stream the caller reads.
    body.on('error', (error) => verifier.destroy(toStorageError(error, { settings, action })));
    verifier.once('close', () => {
      if (!body.destroyed) body.destroy();
      release();
    });
    body.pipe(verifier);
    return { key, size, ...(metadata.sha256 ? { sha256: metadata.sha256 } : {}), metadata, stream: verifier };
  } catch (error) {
    release();
    throw error;
  }
}

/** The key of snapshot `name`: exact name first, then `name.zip`. */
export async function findSnapshotKey(
  client: S3Client,
  settings: S3Settings,
  name: string,
  signal?: AbortSignal,
): Promise<string> {
  const { ListObjectsV2Command } = await import('@aws-sdk/client-s3');
  const prefix = objectKeyFor(settings, name);
  const candidates = name.endsWith('.zip') ? [prefix] : [prefix, `${prefix}.zip`];
  const found = new Set<string>();
  let continuationToken: string | undefined;
  do {
    const page = await client
      .send(
        new ListObjectsV2Command({
          Bucket: settings.bucket,
          Prefix: prefix,
          Delimiter: '/',
          ...(continuationToken ? { ContinuationToken: continuationToken } : {}),
        }),
        signal ? { abortSignal: signal } : {},
      )
      .catch((error: unknown) => {
        throw toStorageError(error, { settings, action: `find snapshot [${name}]` });
      });
    for (const object of page.Contents ?? []) {
      if (object.Key !== undefined && candidates.includes(object.Key)) found.add(object.Key);
    }
    continuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (continuationToken !== undefined);

  const key = candidates.find((candidate) => found.has(candidate));
  if (key === undefined) {
    const where = settings.folder === '' ? '' : ` folder [${settings.folder}]`;
    // "no backups found" is rke-tools' wording for the same situation.
    throw new StorageError(
      `failed to download s3 backup: no backups found: no snapshot [${name}] in bucket [${settings.bucket}]${where} at S3 endpoint [${settings.endpoint.url}]`,
      { hint: `expected object ${candidates.join(' or ')}; check the name and the folder` },
    );
  }
  return key;
}
