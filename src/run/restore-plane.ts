import { PartialFailureError, RemoteCommandError, describeError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { containerOutputTail } from '../node/containers.js';
import {
  isMemberHealthy,
  memberNames,
  removeWorkDir,
  restartStoppedEtcd,
  startRestoredEtcd,
  stopEtcd,
  swapDataDir,
} from '../node/etcd-data.js';
import { ETCD_CONTAINER, type NodeRestorePlan, type RestorePlan } from '../plan/restore.js';
import { type NodeSession, onEach } from './sessions.js';

/**
 * The destructive part of a restore, run on all etcd nodes in parallel, one step at a time
 * across the cluster: stop etcd everywhere, then swap the data everywhere, then start etcd
 * everywhere. Every node's progress is tracked so that a failure is reported with the exact
 * state of each node (RKE #2424: a half-restored cluster must never go unnoticed).
 */
export type NodeStage = 'prepared' | 'stopped' | 'swapped' | 'started' | 'healthy';

export interface NodeProgress {
  nodePlan: NodeRestorePlan;
  session: NodeSession;
  stage: NodeStage;
  /** Where the node's previous data is now (after the swap); undefined if it had none. */
  oldData?: string;
  /** Its etcd-rolling-snapshots container was removed (recurring snapshots are off until `rke up`). */
  removedRollingSnapshots?: boolean;
  error?: unknown;
}

export interface PlaneDeps {
  log: Logger;
  signal?: AbortSignal;
  /** The command that runs the restore again (secrets redacted), printed on failure. */
  retryCommand: string;
}

/** How often members are asked whether they are healthy. */
const HEALTH_POLL_MS = 250;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function describeStage(progress: NodeProgress): string {
  const { nodePlan } = progress;
  const old = progress.oldData ? `old data in ${progress.oldData}` : 'no old data';
  switch (progress.stage) {
    case 'prepared':
      return `untouched: etcd still on its old data in ${nodePlan.dataDir}`;
    case 'stopped':
      return `etcd stopped (container kept), data untouched in ${nodePlan.dataDir}`;
    case 'swapped':
      return `restored data in ${nodePlan.dataDir} (${old}); etcd NOT started`;
    case 'started':
      return `etcd started on the restored data (${old}); health not confirmed`;
    case 'healthy':
      return `etcd healthy on the restored data (${old})`;
  }
}

/** Logs every node's state and the retry command, then builds the error to throw. */
export function restoreFailure(plan: RestorePlan, progress: NodeProgress[], deps: PlaneDeps, what: string): Error {
  const failed = progress.filter((entry) => entry.error !== undefined);
  for (const entry of failed) deps.log.error(`[etcd] ${what} failed on host [${entry.nodePlan.node.address}]: ${describeError(entry.error)}`);
  deps.log.error(`[etcd] Restore of snapshot [${plan.name}] stopped; state of every etcd host:`);
  for (const entry of progress) deps.log.error(`[etcd]   host [${entry.nodePlan.node.address}]: ${describeStage(entry)}`);
  deps.log.error(`[etcd] To retry: ${deps.retryCommand}`);
  const message = `[etcd] Restore of snapshot [${plan.name}] failed: ${what} failed on host(s) [${failed.map((entry) => entry.nodePlan.node.address).join(', ')}]; the state of every etcd host is listed above`;
  const options = { hint: `fix the cause and run: ${deps.retryCommand}` };
  return failed.length < progress.length ? new PartialFailureError(message, options) : new RemoteCommandError(message, options);
}

const nodeOfEntry = (entry: NodeProgress) => entry.nodePlan.node;

async function step(progress: NodeProgress[], work: (entry: NodeProgress) => Promise<void>): Promise<NodeProgress[]> {
  const results = await onEach(progress, nodeOfEntry, work);
  return results.flatMap((result) => {
    if (result.ok) return [];
    result.item.error = result.error;
    return [result.item];
  });
}

/** Stops etcd, swaps in the restored data and starts etcd again, on every node. */
export async function switchToRestoredData(plan: RestorePlan, progress: NodeProgress[], deps: PlaneDeps): Promise<void> {
  const { log } = deps;
  // From here on an interrupt would leave the cluster half-switched: finish the switch first.
  const onAbort = () => log.warn('[etcd] Interrupted while etcd is being switched over: finishing the switch first');
  deps.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const running = new Set<NodeProgress>();
    log.info('[etcd] Stopping etcd on all etcd hosts');
    const stopFailures = await step(progress, async (entry) => {
      const stopped = await stopEtcd(entry.session);
      if (stopped.wasRunning) running.add(entry);
      if (stopped.removedRollingSnapshots) entry.removedRollingSnapshots = true;
      entry.stage = 'stopped';
    });
    if (stopFailures.length > 0) {
      // Nothing moved yet: put every node back as it was.
      await onEach([...running], nodeOfEntry, (entry) => restartStoppedEtcd(entry.session));
      await onEach(progress, nodeOfEntry, (entry) => removeWorkDir(entry.session, entry.nodePlan));
      for (const entry of progress) entry.stage = 'prepared';
      const first = stopFailures[0]!;
      throw new RemoteCommandError(
        `[etcd] cannot stop etcd on host [${first.nodePlan.node.address}]: ${describeError(first.error)}; etcd was started again where it had been stopped, nothing was changed`,
      );
    }

    const swapFailures = await step(progress, async (entry) => {
      const swapped = await swapDataDir(entry.session, entry.nodePlan);
      entry.stage = 'swapped';
      if (swapped.oldData) {
        entry.oldData = swapped.oldData;
        log.info(`[etcd] Moved old etcd data on host [${entry.nodePlan.node.address}] to [${swapped.oldData}]`);
      } else log.info(`[etcd] No old etcd data on host [${entry.nodePlan.node.address}]`);
    });
    if (swapFailures.length > 0) throw restoreFailure(plan, progress, deps, 'swapping in the restored data');

    log.info('[etcd] Building up etcd plane..');
    const startFailures = await step(progress, async (entry) => {
      await startRestoredEtcd(entry.session, entry.nodePlan);
      entry.stage = 'started';
      log.info(`[etcd] Successfully started [${ETCD_CONTAINER}] container on host [${entry.nodePlan.node.address}]`);
    });
    if (startFailures.length > 0) throw restoreFailure(plan, progress, deps, 'starting etcd');
  } finally {
    deps.signal?.removeEventListener('abort', onAbort);
  }
}

/**
 * Waits until every member answers healthy and the member list is exactly the planned one
 * (a node joining some other cluster would show up here), bounded by backup_config.timeout.
 */
export async function waitForHealthyCluster(plan: RestorePlan, progress: NodeProgress[], deps: PlaneDeps): Promise<void> {
  const deadline = Date.now() + plan.timeoutSeconds * 1000;
  const last = new Map<NodeProgress, string>();
  for (;;) {
    if (deps.signal?.aborted) throw restoreFailure(plan, progress, deps, 'waiting for etcd to become healthy (interrupted)');
    await Promise.all(
      progress
        .filter((entry) => entry.stage === 'started')
        .map(async (entry) => {
          const health = await isMemberHealthy(entry.session, entry.nodePlan);
          last.set(entry, health.output);
          if (health.healthy) {
            entry.stage = 'healthy';
            deps.log.info(`[etcd] etcd member [${entry.nodePlan.memberName}] on host [${entry.nodePlan.node.address}] is healthy`);
          }
        }),
    );
    if (progress.every((entry) => entry.stage === 'healthy')) break;
    if (Date.now() > deadline) {
      for (const entry of progress.filter((candidate) => candidate.stage !== 'healthy')) {
        const logs = await containerOutputTail(entry.session.docker, ETCD_CONTAINER).catch(() => '');
        entry.error = new RemoteCommandError(
          `etcd is not healthy after ${plan.timeoutSeconds}s: ${last.get(entry) ?? 'no answer'}; etcd logs: ${logs.split('\n').slice(-3).join(' | ')}`,
        );
      }
      throw restoreFailure(plan, progress, deps, 'waiting for etcd to become healthy');
    }
    await sleep(HEALTH_POLL_MS);
  }
  const expected = plan.nodes.map((nodePlan) => nodePlan.memberName).sort();
  const first = progress[0]!;
  const actual = await memberNames(first.session, first.nodePlan);
  if (actual.join(',') !== expected.join(',')) {
    first.error = new RemoteCommandError(`etcd reports members [${actual.join(', ')}], expected [${expected.join(', ')}]`);
    throw restoreFailure(plan, progress, deps, 'checking the etcd members');
  }
  deps.log.info('[etcd] Successfully started etcd plane..');
}
