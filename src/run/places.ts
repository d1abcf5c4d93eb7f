/**
 * The places snapshots live in, for list, delete and prune: each etcd node's
 * /opt/rke/etcd-snapshots, and the S3 bucket+folder. Every command visits all of them and
 * reports each place's outcome; a place that fails is reported, never silently skipped.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { ClusterConfig, NodeConfig } from '../config/types.js';
import { etcdNodes } from '../config/types.js';
import { PartialFailureError, RemoteCommandError, describeError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { SNAPSHOT_DIR } from '../plan/names.js';
import { placeFileNameOfKey } from '../plan/retention.js';
import { type S3Settings, createS3Client, folderPrefix, listSnapshots } from '../storage/index.js';
import { type ConnectOptions, type NodeSession, onEveryNode, openSession } from './sessions.js';

export interface PlaceDeps extends ConnectOptions {
  log: Logger;
  signal?: AbortSignal;
}

export type PlaceKind = 'local' | 's3';

/** What happened in one place: a value, or the error that kept us from it. */
export type PlaceResult<T> =
  | { kind: PlaceKind; place: string; ok: true; value: T }
  | { kind: PlaceKind; place: string; ok: false; error: unknown };

export function localLocation(node: NodeConfig, file: string): string {
  return `file://${node.address}${SNAPSHOT_DIR}/${file}`;
}

export function s3Location(settings: S3Settings, key: string): string {
  return `s3://${settings.bucket}/${key}`;
}

export function s3PlaceName(settings: S3Settings): string {
  return `s3://${settings.bucket}/${folderPrefix(settings)}`;
}

export function nodePlaceName(node: NodeConfig): string {
  return `node ${node.address}`;
}

/** Runs `work` on every etcd node at once, each with its own session. */
export async function onEveryEtcdNode<T>(
  config: ClusterConfig,
  deps: PlaceDeps,
  work: (session: NodeSession, node: NodeConfig) => Promise<T>,
): Promise<Array<PlaceResult<T>>> {
  const settled = await onEveryNode(etcdNodes(config), async (node) => {
    const session = await openSession(config, node, deps);
    try {
      return await work(session, node);
    } finally {
      session.close();
    }
  });
  return settled.map((result) =>
    result.ok
      ? { kind: 'local' as const, place: nodePlaceName(result.node), ok: true as const, value: result.value }
      : { kind: 'local' as const, place: nodePlaceName(result.node), ok: false as const, error: result.error },
  );
}

/** Runs `work` against S3 with one client, as a place result. */
export async function inS3<T>(settings: S3Settings, deps: PlaceDeps, work: (client: S3Client) => Promise<T>): Promise<PlaceResult<T>> {
  const place = s3PlaceName(settings);
  let client: S3Client | undefined;
  try {
    client = await createS3Client(settings, { log: deps.log });
    return { kind: 's3', place, ok: true, value: await work(client) };
  } catch (error) {
    return { kind: 's3', place, ok: false, error };
  } finally {
    client?.destroy();
  }
}

/** Logs each failed place and returns the error for the exit code, if any place failed. */
export function placeFailure(results: Array<PlaceResult<unknown>>, action: string, log: Logger): Error | undefined {
  const failed = results.filter((result) => !result.ok);
  for (const result of failed) {
    if (!result.ok) log.error(`${result.place}: cannot ${action}: ${describeError(result.error)}`);
  }
  if (failed.length === 0) return undefined;
  const summary = `could not ${action} in ${failed.length} of ${results.length} places: ${failed.map((result) => result.place).join(', ')}`;
  return failed.length < results.length ? new PartialFailureError(summary) : new RemoteCommandError(summary);
}

export interface S3SnapshotFile {
  key: string;
  modified: Date;
}

/**
 * Snapshot files in the bucket folder by file name (`<name>` or `<name>.zip`). Internal keys
 * (hidden keys such as k3s metadata) and anything below a sub-folder are left out again here,
 * since callers delete what this returns.
 */
export async function s3SnapshotFiles(settings: S3Settings, call: { client: S3Client; signal?: AbortSignal }): Promise<Map<string, S3SnapshotFile>> {
  const files = new Map<string, S3SnapshotFile>();
  for (const object of await listSnapshots(settings, call)) {
    const name = placeFileNameOfKey(settings.folder, object.key);
    if (name !== undefined) files.set(name, { key: object.key, modified: object.lastModified });
  }
  return files;
}
