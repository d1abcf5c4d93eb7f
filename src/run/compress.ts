/**
 * `snapshot-save --compress`: after the snapshots are taken, every node's snapshot becomes
 * `<name>.zip` in RKE's layout (src/archive/zip.ts). Each node's own snapshot travels to the
 * admin box, is deflated on the way and streamed back (node/attach.ts), so nodes need no zip
 * tool and nothing is held whole in memory. The zip appears under its final name only when
 * complete and checked; only then is the uncompressed file removed.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { createRkeSnapshotZip } from '../archive/zip.js';
import type { ClusterConfig, NodeConfig } from '../config/types.js';
import { describeError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { writeSnapshotStream } from '../node/attach.js';
import { type OpenSnapshotFile, openSnapshotFile, removeSnapshotFiles } from '../node/files.js';
import { nodeImages } from '../plan/etcd.js';
import { SNAPSHOT_DIR } from '../plan/names.js';
import type { SavePlan } from '../plan/save.js';
import type { SaveOutcome } from './save.js';
import { type ConnectOptions, onEveryNode, openSession } from './sessions.js';

/** Deflating and copying back takes longer than etcdctl's save; never less than this. */
const MIN_COMPRESS_TIMEOUT_SECONDS = 900;

export interface CompressDeps extends ConnectOptions {
  log: Logger;
  signal?: AbortSignal;
  now: () => Date;
}

/** RKE's state file: the cluster file's path with its extension swapped for `.rkestate`. */
export function stateFilePathFor(configFile: string): string {
  const extension = path.extname(configFile);
  return `${extension ? configFile.slice(0, -extension.length) : configFile}.rkestate`;
}

/** The local state file's bytes, or undefined (with RKE's warning) when there is none. */
export async function readStateFile(configFile: string, log: Logger): Promise<Buffer | undefined> {
  const file = stateFilePathFor(configFile);
  try {
    return await readFile(file);
  } catch (error) {
    log.warn(`Could not read cluster state file from [${file}]: ${(error as Error).message}. Snapshot will be created without cluster state file`);
    return undefined;
  }
}

interface CompressJob {
  name: string;
  stateFile: Buffer | undefined;
  createdAt: Date;
  timeoutSeconds: number;
}

async function compressOnNode(config: ClusterConfig, node: NodeConfig, job: CompressJob, deps: CompressDeps): Promise<number> {
  const session = await openSession(config, node, deps);
  const images = nodeImages(config);
  let reader: OpenSnapshotFile | undefined;
  try {
    reader = await openSnapshotFile(session, images, job.name);
    const zip = await createRkeSnapshotZip({ name: job.name, snapshot: reader.stream, size: reader.size, mtime: job.createdAt, ...(job.stateFile ? { stateFile: job.stateFile } : {}) });
    const written = await writeSnapshotStream(session, images, `${job.name}.zip`, zip, {
      timeoutSeconds: job.timeoutSeconds,
      ...(deps.signal ? { signal: deps.signal } : {}),
    });
    await reader.close();
    // Only now, with the complete zip in place, does the uncompressed snapshot go.
    await removeSnapshotFiles(session, images, [job.name]);
    deps.log.info(`[etcd] Compressed snapshot [${job.name}] on host [${node.address}] to ${SNAPSHOT_DIR}/${job.name}.zip (${reader.size} → ${written.size} bytes)`);
    return written.size;
  } finally {
    // Before the session closes: a transfer given up half-way must remove its container.
    await reader?.close();
    session.close();
  }
}

/**
 * Zips the snapshot on every node where it was saved, in parallel. A node where compressing
 * fails moves from `saved` to `failed` and keeps its complete uncompressed snapshot.
 * Returns the file name the snapshot now has on the nodes (and gets in S3): `<name>.zip`.
 */
export async function compressSavedSnapshots(config: ClusterConfig, plan: SavePlan, outcome: SaveOutcome, deps: CompressDeps): Promise<string> {
  const fileName = `${plan.name}.zip`;
  if (outcome.saved.length === 0) return fileName;
  const job: CompressJob = {
    name: plan.name,
    stateFile: await readStateFile(config.file, deps.log),
    createdAt: deps.now(),
    timeoutSeconds: Math.max(plan.timeoutSeconds, MIN_COMPRESS_TIMEOUT_SECONDS),
  };
  const savedNodes = outcome.saved.map((saved) => config.nodes.find((node) => node.address === saved.node)!);
  const results = await onEveryNode(savedNodes, (node) => compressOnNode(config, node, job, deps));
  for (const result of results) {
    if (result.ok) continue;
    // Interrupted: the abort is the story, not one error per node.
    if (deps.signal?.aborted) break;
    const kept = `${SNAPSHOT_DIR}/${plan.name}`;
    deps.log.error(`[etcd] Failed to compress snapshot [${plan.name}] on host [${result.node.address}], the uncompressed snapshot is kept at ${kept}: ${describeError(result.error)}`);
    outcome.saved = outcome.saved.filter((saved) => saved.node !== result.node.address);
    outcome.failed.push({ node: result.node.address, error: result.error });
  }
  deps.signal?.throwIfAborted();
  for (const saved of outcome.saved) saved.path = `${SNAPSHOT_DIR}/${fileName}`;
  return fileName;
}
