import type { ClusterConfig, NodeConfig } from '../config/types.js';
import { StorageError, describeError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { type OpenSnapshotFile, openSnapshotFile } from '../node/files.js';
import { nodeImages } from '../plan/etcd.js';
import { SNAPSHOT_DIR } from '../plan/names.js';
import { type S3Settings, checkBucket, createS3Client, objectKeyFor, uploadSnapshot } from '../storage/index.js';
import { type ConnectOptions, openSession } from './sessions.js';
import { withEarlyScavenges } from './young-generation.js';

export interface UploadDeps extends ConnectOptions {
  log: Logger;
  signal?: AbortSignal;
  now: () => Date;
}

export interface UploadedFromNode {
  node: string;
  key: string;
  size: number;
  sha256: string;
}

/**
 * Streams `/opt/rke/etcd-snapshots/<fileName>` from `source` straight into S3: Docker's
 * archive API → tar entry → multipart upload. Nothing is buffered whole or written on
 * the admin box. One upload per snapshot (RKE uploads from every node; the last wins).
 */
export async function uploadFromNode(
  config: ClusterConfig,
  source: NodeConfig,
  fileName: string,
  settings: S3Settings,
  deps: UploadDeps,
): Promise<UploadedFromNode> {
  const key = objectKeyFor(settings, fileName);
  const client = await createS3Client(settings, { log: deps.log });
  const session = await openSession(config, source, deps);
  let file: OpenSnapshotFile | undefined;
  try {
    await checkBucket(client, settings, { log: deps.log, ...(deps.signal ? { signal: deps.signal } : {}) });
    deps.log.info(`[etcd] Uploading snapshot [${fileName}] from host [${source.address}] to s3://${settings.bucket}/${key}`);
    const opened = await openSnapshotFile(session, nodeImages(config), fileName);
    file = opened;
    const uploaded = await withEarlyScavenges(() =>
      uploadSnapshot({
        settings,
        key,
        body: opened.stream,
        size: opened.size,
        metadata: { node: source.hostnameOverride, clusterName: config.clusterName, createdAt: deps.now() },
        log: deps.log,
        client,
        ...(deps.signal ? { signal: deps.signal } : {}),
      }),
    );
    deps.log.info(`[etcd] Finished uploading etcd snapshot file [${fileName}] to s3://${settings.bucket}/${key}`);
    return { node: source.address, key: uploaded.key, size: uploaded.size, sha256: uploaded.sha256 };
  } finally {
    // A transfer given up half-way must remove its carrier container before the session closes.
    await file?.close();
    session.close();
    client.destroy();
  }
}

/** Wraps an upload failure so the operator knows the local copies are safe and where. */
export function uploadFailure(error: unknown, fileName: string, savedOn: string[]): StorageError {
  const places = savedOn.map((node) => `${node}:${SNAPSHOT_DIR}/${fileName}`).join(', ');
  return new StorageError(`${describeError(error)}; the local snapshots are intact: ${places}`, { cause: error });
}
