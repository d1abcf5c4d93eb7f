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

export interface SaveOutcome {
  saved: SavedSnapshot[];
  failed: Array<{ node: string; error: unknown }>;
}

/** Takes the snapshot on every etcd node at once and reports each node's outcome. */
export async function executeSave(config: ClusterConfig, plan: SavePlan, deps: SaveDeps): Promise<SaveOutcome> {
  const results = await onEveryNode(
    plan.nodes.map((nodePlan) => nodePlan.node),
    (node) => takeSnapshot(config, plan, plan.nodes.find((nodePlan) => nodePlan.node === node)!, deps),
  );
  const outcome: SaveOutcome = { saved: [], failed: [] };
  for (const result of results) {
    if (result.ok) outcome.saved.push(result.value);
    else {
      outcome.failed.push({ node: result.node.address, error: result.error });
      deps.log.error(`[etcd] Failed to save snapshot [${plan.name}]: ${describeError(result.error)}`);
    }
  }
  deps.signal?.throwIfAborted();
  return outcome;
}

/**
 * Unlike RKE, a failure on any node is an error: all failed → RemoteCommandError, some
 * failed → PartialFailureError naming the failed and the saved nodes.
 */
export function checkSaveOutcome(plan: SavePlan, outcome: SaveOutcome): void {
  const total = outcome.saved.length + outcome.failed.length;
  if (outcome.saved.length === 0) {
    const first = outcome.failed[0];
    throw new RemoteCommandError(`[etcd] Failed to take snapshot on all etcd hosts: ${first ? describeError(first.error) : 'no etcd hosts'}`);
  }
  if (outcome.failed.length > 0) {
    throw new PartialFailureError(
      `[etcd] Snapshot [${plan.name}] failed on ${outcome.failed.length} of ${total} etcd hosts: ` +
        outcome.failed.map((failure) => failure.node).join(', ') +
        `; saved on ${outcome.saved.map((saved) => saved.node).join(', ')}`,
    );
  }
}
