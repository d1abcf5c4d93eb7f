import type { ClusterConfig } from '../config/types.js';
import { RemoteCommandError, StorageError, describeError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { ensureImage, runOnce } from '../node/containers.js';
import { removeSnapshotFiles } from '../node/files.js';
import { nodeImages } from '../plan/etcd.js';
import { chooseSnapshotSource, planRestore } from '../plan/restore.js';
import { type SnapshotStatusReport, parseSnapshotStatus, verifyCopyName, verifyContainers } from '../plan/verify.js';
import type { S3Settings } from '../storage/index.js';
import { distributeSnapshot } from './restore-distribute.js';
import { describeSource, gatherSnapshotFacts, openSnapshotContent, snapshotNotFound } from './restore-source.js';
import { type ConnectOptions, type NodeSession, onEveryNode, openSession } from './sessions.js';

export interface VerifyDeps extends ConnectOptions {
  log: Logger;
  signal?: AbortSignal;
  now: () => Date;
}

export interface VerifyReport extends SnapshotStatusReport {
  name: string;
  source: string;
  /** sha256 of the whole snapshot file (trailer included). */
  sha256: string;
  /** Node the throw-away restore ran on. */
  verifiedOn: string;
  unreachable: string[];
}

/**
 * Proves a snapshot restorable without touching the cluster: the snapshot is found as
 * restore finds it (S3 first when configured, else a node; zips unpacked), streamed with its
 * etcd sha256 trailer checked into a hidden copy on one etcd node, read by `etcdctl snapshot
 * status` and restored into a throw-away container there. The copy is removed afterwards.
 * etcd itself, the data directory and the snapshot files are never touched.
 */
export async function verifySnapshot(config: ClusterConfig, name: string, s3: S3Settings | undefined, deps: VerifyDeps): Promise<VerifyReport> {
  const plan = planRestore(config, { name, now: deps.now(), ...(s3 ? { s3: { bucket: s3.bucket, folder: s3.folder, endpoint: s3.endpoint.url } } : {}), useLocalState: true });
  const nodes = plan.nodes.map((nodePlan) => nodePlan.node);
  const reached = await onEveryNode(nodes, (node) => openSession(config, node, deps));
  const sessions: NodeSession[] = reached.flatMap((result) => (result.ok ? [result.value] : []));
  const unreachable = reached.flatMap((result) => (result.ok ? [] : [result.node.address]));
  for (const result of reached) if (!result.ok) deps.log.warn(`[etcd] host [${result.node.address}] is not reachable, its snapshots are not looked at: ${describeError(result.error)}`);
  try {
    if (sessions.length === 0) throw new RemoteCommandError('no etcd host could be reached to verify the snapshot on');
    const images = nodeImages(config);
    const context = { plan, sessions, images, log: deps.log, ...(s3 ? { s3 } : {}), ...(deps.signal ? { signal: deps.signal } : {}) };
    const facts = await gatherSnapshotFacts(context);
    const choice = chooseSnapshotSource(plan, facts);
    if (choice.fallback) deps.log.warn(choice.fallback);
    if (!choice.source) throw await snapshotNotFound(context, facts);
    const where = describeSource(choice.source, s3);
    // Verify on the node that holds the snapshot when it comes from one, else the first reached.
    const verifier = sessions.find((session) => choice.source?.kind === 'node' && session.node === choice.source.node) ?? sessions[0]!;
    const copy = verifyCopyName(name, Math.floor(deps.now().getTime() / 1000));
    deps.log.info(`[etcd] Verifying snapshot [${name}] from ${where} on host [${verifier.node.address}]`);
    await Promise.all([ensureImage(verifier.docker, images.carrier, config.privateRegistries, deps.log, verifier.node.address), ensureImage(verifier.docker, images.tools, config.privateRegistries, deps.log, verifier.node.address)]);
    const content = await openSnapshotContent(context, choice.source);
    let sha256: string;
    try {
      sha256 = (await distributeSnapshot(content, [verifier], copy, images, where, deps.signal)).sha256;
    } finally {
      await content.finished.catch(() => undefined);
    }
    try {
      const containers = verifyContainers(config, copy);
      const status = await runOnce(verifier.docker, containers.status, { timeoutSeconds: plan.timeoutSeconds });
      const report = parseSnapshotStatus(status.output);
      if (status.exitCode !== 0 || !report) {
        throw new StorageError(`snapshot [${name}] from ${where} is not a readable etcd snapshot: ${status.output.split('\n').slice(-2).join(' | ')}`);
      }
      const restore = await runOnce(verifier.docker, containers.restore, { timeoutSeconds: plan.timeoutSeconds });
      if (restore.exitCode !== 0) {
        throw new StorageError(`snapshot [${name}] from ${where} cannot be restored: ${restore.output.split('\n').slice(-2).join(' | ')}`);
      }
      deps.log.info(`[etcd] Snapshot [${name}] is restorable: revision ${report.revision}, ${report.totalKey} keys`);
      return { name, source: where, sha256, verifiedOn: verifier.node.address, unreachable, ...report };
    } finally {
      await removeSnapshotFiles(verifier, images, [copy]).catch((error: unknown) =>
        deps.log.warn(`${verifier.label}: could not remove the verification copy ${copy}: ${describeError(error)}`),
      );
    }
  } finally {
    for (const session of sessions) session.close();
  }
}
