/**
 * `snapshot-delete NAME...` on every etcd node and in S3. `NAME` stands for the snapshot in
 * both forms, `NAME` and `NAME.zip` (as rke-tools' delete); `NAME.zip` for that file only.
 */
import type { ClusterConfig } from '../config/types.js';
import { listSnapshotDir, removeSnapshotFiles } from '../node/files.js';
import { type S3Settings, deleteSnapshot } from '../storage/index.js';
import { type PlaceDeps, type PlaceResult, inS3, localLocation, onEveryEtcdNode, s3Location, s3SnapshotFiles } from './places.js';
import { nodeImages } from '../plan/etcd.js';

export interface DeleteTargets {
  local: boolean;
  s3?: S3Settings;
}

export interface Deletion {
  /** The NAME as asked for. */
  requested: string;
  location: string;
}

/** The requested names a file belongs to. */
export function requestedNamesOf(file: string, requested: string[]): string[] {
  return requested.filter((name) => file === name || file === `${name}.zip`);
}

function matchFiles(files: string[], requested: string[]): Array<{ file: string; requested: string }> {
  return files.flatMap((file) => requestedNamesOf(file, requested).map((name) => ({ file, requested: name })));
}

export async function deleteSnapshotsEverywhere(
  config: ClusterConfig,
  requested: string[],
  targets: DeleteTargets,
  deps: PlaceDeps,
): Promise<Array<PlaceResult<Deletion[]>>> {
  const tasks: Array<Promise<Array<PlaceResult<Deletion[]>>>> = [];
  if (targets.local) {
    const images = nodeImages(config);
    tasks.push(
      onEveryEtcdNode(config, deps, async (session, node) => {
        const matches = matchFiles((await listSnapshotDir(session, images)).map((file) => file.name), requested);
        await removeSnapshotFiles(session, images, [...new Set(matches.map((match) => match.file))]);
        const deletions = matches.map((match) => ({ requested: match.requested, location: localLocation(node, match.file) }));
        for (const deletion of deletions) deps.log.info(`Snapshot ${deletion.requested} deleted: ${deletion.location}`);
        return deletions;
      }),
    );
  }
  const settings = targets.s3;
  if (settings) {
    tasks.push(
      inS3(settings, deps, async (client) => {
        const call = { client, ...(deps.signal ? { signal: deps.signal } : {}) };
        const found = await s3SnapshotFiles(settings, call);
        const deletions: Deletion[] = [];
        for (const match of matchFiles([...found.keys()], requested)) {
          const key = found.get(match.file)!.key;
          // false: gone since the listing (someone else deleted it); not ours to report.
          if (!(await deleteSnapshot(settings, key, call))) continue;
          const deletion = { requested: match.requested, location: s3Location(settings, key) };
          deps.log.info(`Snapshot ${deletion.requested} deleted: ${deletion.location}`);
          deletions.push(deletion);
        }
        return deletions;
      }).then((result) => [result]),
    );
  }
  const results = (await Promise.all(tasks)).flat();
  deps.signal?.throwIfAborted();
  return results;
}
