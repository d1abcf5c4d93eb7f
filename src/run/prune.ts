/**
 * Applies a retention policy to every place separately: each etcd node keeps its newest N,
 * and the S3 folder keeps its newest N (cluster-wide, as k3s). Selection is pure
 * (plan/retention.ts); this walks the places, lists, deletes and reports.
 */
import type { ClusterConfig } from '../config/types.js';
import { listSnapshotDir, removeSnapshotFiles } from '../node/files.js';
import { type PlaceFile, type RetentionPolicy, type RetentionSelection, selectForDeletion } from '../plan/retention.js';
import { type S3Settings, deleteSnapshot, objectKeyFor } from '../storage/index.js';
import { type PlaceDeps, type PlaceResult, inS3, localLocation, onEveryEtcdNode, s3Location, s3SnapshotFiles } from './places.js';
import { nodeImages } from '../plan/etcd.js';

export interface PruneTargets {
  /** Prune each etcd node's snapshot directory. */
  local: boolean;
  /** Prune this S3 folder. */
  s3?: S3Settings;
}

export interface PruneOptions {
  dryRun: boolean;
  now: Date;
}

export interface PlacePrune {
  selection: RetentionSelection;
  /** Locations removed (or, with dryRun, that would be). */
  removed: string[];
}

export async function pruneSnapshots(
  config: ClusterConfig,
  policy: RetentionPolicy,
  targets: PruneTargets,
  deps: PlaceDeps,
  options: PruneOptions,
): Promise<Array<PlaceResult<PlacePrune>>> {
  // Deletions are logged as they happen; a dry run's list is the caller's to print.
  const results: Array<PlaceResult<PlacePrune>> = [];
  const tasks: Array<Promise<void>> = [];

  if (targets.local) {
    const images = nodeImages(config);
    tasks.push(
      onEveryEtcdNode(config, deps, async (session, node) => {
        const files: PlaceFile[] = (await listSnapshotDir(session, images)).map((file) => ({ name: file.name, modified: file.modified }));
        const selection = selectForDeletion(files, policy, options.now);
        const doomed = selection.deleted.flatMap((group) => group.files);
        if (!options.dryRun) await removeSnapshotFiles(session, images, doomed);
        const removed = doomed.map((file) => localLocation(node, file));
        if (!options.dryRun) for (const location of removed) deps.log.info(`Removed local snapshot ${location}`);
        return { selection, removed };
      }).then((local) => {
        results.push(...local);
      }),
    );
  }

  const settings = targets.s3;
  if (settings) {
    tasks.push(
      inS3(settings, deps, async (client) => {
        const call = { client, ...(deps.signal ? { signal: deps.signal } : {}) };
        const found = await s3SnapshotFiles(settings, call);
        const files: PlaceFile[] = [...found].map(([name, file]) => ({ name, modified: file.modified }));
        const selection = selectForDeletion(files, policy, options.now);
        const removed: string[] = [];
        for (const name of selection.deleted.flatMap((group) => group.files)) {
          const key = found.get(name)?.key ?? objectKeyFor(settings, name);
          if (!options.dryRun) await deleteSnapshot(settings, key, call);
          removed.push(s3Location(settings, key));
          if (!options.dryRun) deps.log.info(`Removed S3 snapshot ${s3Location(settings, key)}`);
        }
        return { selection, removed };
      }).then((result) => {
        results.push(result);
      }),
    );
  }
  await Promise.all(tasks);
  deps.signal?.throwIfAborted();
  // Nodes in cluster.yml order, then S3: stable output for people and scripts.
  return results.sort((a, b) => (a.kind === b.kind ? 0 : a.kind === 'local' ? -1 : 1));
}
