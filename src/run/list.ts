/**
 * `snapshot-list`: what every etcd node and the S3 folder hold. Checksums of local files are
 * computed on the node (nothing crosses the network); S3 objects carry theirs in metadata
 * when rke-ts uploaded them.
 */
import type { ClusterConfig } from '../config/types.js';
import { listSnapshotDir, sha256OnNode } from '../node/files.js';
import { isNeverPruned } from '../plan/retention.js';
import { type S3Settings, listSnapshots } from '../storage/index.js';
import { type PlaceDeps, type PlaceKind, type PlaceResult, inS3, localLocation, onEveryEtcdNode, s3Location } from './places.js';
import { nodeImages } from '../plan/etcd.js';

export interface ListedFile {
  name: string;
  kind: PlaceKind;
  /** Node address for local files. */
  node?: string;
  location: string;
  size: number;
  /** mtime on the node, LastModified in S3. */
  modified: Date;
  sha256?: string;
  /** An S3 object whose upload never recorded its sha256 (restore refuses it). */
  incomplete?: true;
}

export interface ListTargets {
  local: boolean;
  s3?: S3Settings;
  /** sha256 of every local file (reads each file once on its node). */
  checksums: boolean;
}

export async function listEverywhere(config: ClusterConfig, targets: ListTargets, deps: PlaceDeps): Promise<Array<PlaceResult<ListedFile[]>>> {
  const tasks: Array<Promise<Array<PlaceResult<ListedFile[]>>>> = [];
  if (targets.local) {
    const images = nodeImages(config);
    tasks.push(
      onEveryEtcdNode(config, deps, async (session, node) => {
        // Hidden files are our transfers in progress, `.part` is etcdctl's: not snapshots (yet).
        const files = (await listSnapshotDir(session, images)).filter((file) => !isNeverPruned(file.name));
        const sums = targets.checksums ? await sha256OnNode(session, images, files.map((file) => file.name)) : new Map<string, string>();
        return files.map((file) => ({
          name: file.name,
          kind: 'local' as const,
          node: node.address,
          location: localLocation(node, file.name),
          size: file.size,
          modified: file.modified,
          ...(sums.has(file.name) ? { sha256: sums.get(file.name)! } : {}),
        }));
      }),
    );
  }
  const settings = targets.s3;
  if (settings) {
    tasks.push(
      inS3(settings, deps, async (client) => {
        const objects = await listSnapshots(settings, { client, ...(deps.signal ? { signal: deps.signal } : {}) });
        return objects.map((object) => ({
          name: object.name,
          kind: 's3' as const,
          location: s3Location(settings, object.key),
          size: object.size,
          modified: object.lastModified,
          ...(object.metadata.sha256 ? { sha256: object.metadata.sha256 } : {}),
          ...(object.metadata.incomplete ? { incomplete: true as const } : {}),
        }));
      }).then((result) => [result]),
    );
  }
  const results = (await Promise.all(tasks)).flat();
  deps.signal?.throwIfAborted();
  return results;
}
