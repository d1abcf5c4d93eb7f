import type { ClusterConfig } from '../config/types.js';
import { PartialFailureError, RemoteCommandError, describeError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { NodeSavePlan, SavePlan } from '../plan/save.js';
import { ETCD_CONTAINER } from '../plan/save.js';
import { ContainerTimeoutError, ensureImage, execIn, isContainerRunning, runOnce } from '../node/containers.js';
import { type ConnectOptions, type NodeSession, onEveryNode, openSession } from './sessions.js';

/** Seconds allowed for the cleanup container that removes a killed snapshot's `.part` file. */
const CLEANUP_TIMEOUT_SECONDS = 60;

export interface SavedSnapshot {
  node: string;
  path: string;
  durationMs: number;
}

export interface SaveDeps extends ConnectOptions {
  log: Logger;
  signal?: AbortSignal;
  /** Called on each node after its snapshot is complete, with the session still open (S3 upload). */
  afterNodeSave?: (session: NodeSession, nodePlan: NodeSavePlan) => Promise<void>;
}

function lastLines(output: string, count = 3): string {
  return output.split('\n').filter((line) => line.trim() !== '').slice(-count).join(' | ');
}

async function checkEtcdHealth(session: NodeSession, nodePlan: NodeSavePlan): Promise<void> {
  const host = session.node.address;
  if (!(await isContainerRunning(session.docker, ETCD_CONTAINER))) {
    throw new RemoteCommandError(`${session.label}: etcd is not running on host [${host}]`, {
      hint: 'start the etcd container (rke up) or remove the node from cluster.yml',
    });
  }
  const health = await execIn(session.docker, nodePlan.healthCheck);
  if (health.exitCode !== 0 || /unhealthy/.test(health.output)) {
    throw new RemoteCommandError(`${session.label}: etcd is not healthy on host [${host}]: ${lastLines(health.output)}`);
  }
}

async function takeSnapshot(config: ClusterConfig, plan: SavePlan, nodePlan: NodeSavePlan, deps: SaveDeps): Promise<SavedSnapshot> {
  const started = Date.now();
  const session = await openSession(config, nodePlan.node, deps);
  const host = session.node.address;
  try {
    await checkEtcdHealth(session, nodePlan);
    await ensureImage(session.docker, nodePlan.snapshot.image, config.privateRegistries, deps.log, host);
    deps.log.info(`[etcd] Saving snapshot [${plan.name}] on host [${host}]`);
    let result;
    try {
      result = await runOnce(session.docker, nodePlan.snapshot, {
        timeoutSeconds: plan.timeoutSeconds,
        ...(deps.signal ? { signal: deps.signal } : {}),
        onStarted: () => deps.log.info(`[etcd] Successfully started [${nodePlan.snapshot.name}] container on host [${host}]`),
      });
    } catch (error) {
      // A killed etcdctl leaves `<name>.part` behind; nothing partial may stay on the node.
      await removePartialFile(session, nodePlan, config, deps);
      if (error instanceof ContainerTimeoutError) {
        throw new RemoteCommandError(
          `${session.label}: snapshot [${plan.name}] did not finish within ${plan.timeoutSeconds}s`,
          { cause: error, hint: 'raise services.etcd.backup_config.timeout in cluster.yml' },
        );
      }
      throw error;
    }
    if (result.exitCode !== 0) {
      throw new RemoteCommandError(
        `${session.label}: snapshot [${plan.name}] failed, exit status ${result.exitCode}: ${lastLines(result.output)}`,
      );
    }
    deps.log.info(`[etcd] Finished saving snapshot [${plan.name}] on host [${host}]`);
    await deps.afterNodeSave?.(session, nodePlan);
    return { node: host, path: nodePlan.snapshotPath, durationMs: Date.now() - started };
  } finally {
    session.close();
  }
}

async function removePartialFile(session: NodeSession, nodePlan: NodeSavePlan, config: ClusterConfig, deps: SaveDeps): Promise<void> {
  try {
    await ensureImage(session.docker, nodePlan.cleanup.image, config.privateRegistries, deps.log, session.node.address);
    await runOnce(session.docker, nodePlan.cleanup, { timeoutSeconds: CLEANUP_TIMEOUT_SECONDS });
  } catch (error) {
    deps.log.warn(`${session.label}: could not remove ${nodePlan.snapshotPath}.part: ${describeError(error)}`);
  }
}

/**
 * Takes the snapshot on every etcd node at once. Unlike RKE, a failure on any node is an
 * error: all failed → RemoteCommandError, some failed → PartialFailureError listing them.
 */
export async function executeSave(config: ClusterConfig, plan: SavePlan, deps: SaveDeps): Promise<SavedSnapshot[]> {
  const results = await onEveryNode(
    plan.nodes.map((nodePlan) => nodePlan.node),
    (node) => takeSnapshot(config, plan, plan.nodes.find((nodePlan) => nodePlan.node === node)!, deps),
  );
  const failed = results.filter((result) => !result.ok);
  for (const result of failed) {
    if (!result.ok) deps.log.error(`[etcd] Failed to save snapshot [${plan.name}]: ${describeError(result.error)}`);
  }
  deps.signal?.throwIfAborted();
  if (failed.length === results.length) {
    const first = failed[0];
    throw new RemoteCommandError(
      `[etcd] Failed to take snapshot on all etcd hosts: ${first && !first.ok ? describeError(first.error) : 'no etcd hosts'}`,
    );
  }
  if (failed.length > 0) {
    throw new PartialFailureError(
      `[etcd] Snapshot [${plan.name}] failed on ${failed.length} of ${results.length} etcd hosts: ` +
        failed.map((result) => result.node.address).join(', ') +
        `; saved on ${results.filter((result) => result.ok).map((result) => result.node.address).join(', ')}`,
    );
  }
  deps.log.info(`Finished saving snapshot [${plan.name}] on all etcd hosts`);
  return results.flatMap((result) => (result.ok ? [result.value] : []));
}
