import type Docker from 'dockerode';
import { RemoteCommandError } from '../errors.js';
import type { NodeRestorePlan } from '../plan/restore.js';
import { ETCD_CONTAINER, KUBE_COMPONENT_CONTAINERS, ROLLING_SNAPSHOT_CONTAINER } from '../plan/restore.js';
import { ContainerTimeoutError, execIn, removeContainerIfExists, runOnce, startContainer } from './containers.js';

/**
 * The etcd data directory and the etcd container of one node during a restore. Each function
 * does one step and says what it changed, so the executor can report every node's state.
 */
export interface DataSession {
  docker: Docker;
  label: string;
}

/** Seconds for the small helper containers (swap, cleanup). */
const HELPER_TIMEOUT_SECONDS = 120;
/**
 * `docker stop` grace period before etcd is killed: none, like RKE's forced removal. When
 * every member stops at once the leader would spend the grace trying to hand over leadership;
 * etcd's data is crash-safe, kept aside, and replaced anyway.
 */
const ETCD_STOP_SECONDS = 0;

function lastLines(output: string, count = 3): string {
  return output.split('\n').filter((line) => line.trim() !== '').slice(-count).join(' | ');
}

/**
 * Runs `etcdctl snapshot restore` into the work directory. Nothing of the running etcd is
 * touched; a corrupted snapshot (sha256 trailer, bbolt) fails here.
 */
export async function restoreIntoWorkDir(
  session: DataSession,
  nodePlan: NodeRestorePlan,
  timeoutSeconds: number,
  options: { signal?: AbortSignal; onStarted?: () => void },
): Promise<void> {
  let result;
  try {
    result = await runOnce(session.docker, nodePlan.restore, { timeoutSeconds, ...options });
  } catch (error) {
    if (error instanceof ContainerTimeoutError) {
      throw new RemoteCommandError(`${session.label}: etcd-restore did not finish within ${timeoutSeconds}s`, {
        cause: error,
        hint: 'raise services.etcd.backup_config.timeout in cluster.yml',
      });
    }
    throw error;
  }
  if (result.exitCode !== 0) {
    throw new RemoteCommandError(`${session.label}: Failed to run etcd restore container, exit status is: ${result.exitCode}, container logs: ${lastLines(result.output)}`);
  }
}

/** Removes the work directory (after a refusal or a failure before the swap). */
export async function removeWorkDir(session: DataSession, nodePlan: NodeRestorePlan): Promise<void> {
  const result = await runOnce(session.docker, nodePlan.cleanup, { timeoutSeconds: HELPER_TIMEOUT_SECONDS });
  if (result.exitCode !== 0) throw new RemoteCommandError(`${session.label}: cannot remove ${nodePlan.workDir}: ${lastLines(result.output)}`);
}

export interface StoppedEtcd {
  /** The etcd container existed and was running (it is now stopped, not removed). */
  wasRunning: boolean;
  /** An etcd-rolling-snapshots container was removed (`rke up` recreates it). */
  removedRollingSnapshots: boolean;
}

/**
 * Stops etcd but keeps its container, so that a failure before any data moved can be undone
 * with a plain start. The rolling-snapshot container goes (it would snapshot mid-restore);
 * `rke up` recreates it.
 */
export async function stopEtcd(session: DataSession): Promise<StoppedEtcd> {
  const removedRollingSnapshots = await removeContainerIfExists(session.docker, ROLLING_SNAPSHOT_CONTAINER);
  const container = session.docker.getContainer(ETCD_CONTAINER);
  let running: boolean;
  try {
    running = (await container.inspect()).State.Running;
  } catch (error) {
    if ((error as { statusCode?: number }).statusCode === 404) return { wasRunning: false, removedRollingSnapshots };
    throw error;
  }
  // The restart policy is `always`: an explicit stop is what keeps it down.
  if (running) await container.stop({ t: ETCD_STOP_SECONDS });
  return { wasRunning: running, removedRollingSnapshots };
}

/** Undoes stopEtcd. */
export async function restartStoppedEtcd(session: DataSession): Promise<void> {
  await session.docker.getContainer(ETCD_CONTAINER).start();
}

export interface SwappedData {
  /** Host path of the old data, undefined when there was none (a node new to etcd). */
  oldData?: string;
}

/** Moves the old data aside and the restored data in (renames only: instant at any size). */
export async function swapDataDir(session: DataSession, nodePlan: NodeRestorePlan): Promise<SwappedData> {
  const result = await runOnce(session.docker, nodePlan.swap, { timeoutSeconds: HELPER_TIMEOUT_SECONDS });
  const outcome = /old-data (moved|mount|none)/.exec(result.output)?.[1];
  if (result.exitCode !== 0 || !outcome) {
    throw new RemoteCommandError(`${session.label}: swapping ${nodePlan.dataDir} failed, exit status ${result.exitCode}: ${lastLines(result.output)}`);
  }
  if (outcome === 'moved') return { oldData: nodePlan.oldDataDir };
  if (outcome === 'mount') return { oldData: `${nodePlan.oldDataDirOnMount}/member` };
  return {};
}

/** Replaces the old etcd container with one exactly as RKE runs it, on the restored data. */
export async function startRestoredEtcd(session: DataSession, nodePlan: NodeRestorePlan): Promise<void> {
  await startContainer(session.docker, nodePlan.etcd);
}

/** One health probe of this node's member: exit 0 and no "unhealthy". */
export async function isMemberHealthy(session: DataSession, nodePlan: NodeRestorePlan): Promise<{ healthy: boolean; output: string }> {
  try {
    const result = await execIn(session.docker, nodePlan.healthCheck);
    return { healthy: result.exitCode === 0 && !/unhealthy/.test(result.output), output: lastLines(result.output, 2) };
  } catch (error) {
    return { healthy: false, output: (error as Error).message };
  }
}

/** Members as etcd lists them (`member list -w json`), by name. */
export async function memberNames(session: DataSession, nodePlan: NodeRestorePlan): Promise<string[]> {
  const result = await execIn(session.docker, { ...nodePlan.healthCheck, cmd: [nodePlan.healthCheck.cmd[0]!, 'member', 'list', '-w', 'json'] });
  if (result.exitCode !== 0) throw new RemoteCommandError(`${session.label}: etcdctl member list failed: ${lastLines(result.output)}`);
  const json = result.output.slice(result.output.indexOf('{'));
  const parsed = JSON.parse(json) as { members?: Array<{ name?: string }> };
  return (parsed.members ?? []).map((member) => member.name ?? '').sort();
}

/**
 * Restarts the Kubernetes components and network containers present on the node (RKE docs:
 * `docker restart kube-apiserver kubelet ...` and `docker ps | grep flannel|calico | xargs
 * docker restart`). Pod sandboxes (k8s_POD_*) are left alone: kubelet manages those.
 */
export async function restartKubeComponents(session: DataSession, networkPatterns: readonly string[]): Promise<string[]> {
  const running = await session.docker.listContainers({ all: false });
  const names = running.map((info) => ({ id: info.Id, name: (info.Names[0] ?? '').replace(/^\//, '') }));
  const components = KUBE_COMPONENT_CONTAINERS.flatMap((component) => names.filter((entry) => entry.name === component));
  const network = names.filter((entry) => !entry.name.startsWith('k8s_POD_') && networkPatterns.some((pattern) => entry.name.includes(pattern)));
  const restarted: string[] = [];
  for (const entry of [...components, ...network]) {
    await session.docker.getContainer(entry.id).restart({ t: 10 });
    restarted.push(entry.name);
  }
  return restarted;
}
