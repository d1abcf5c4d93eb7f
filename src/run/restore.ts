import type { ClusterConfig, NodeConfig } from '../config/types.js';
import { ConnectionError, PartialFailureError, RemoteCommandError, describeError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { checkEtcdCertificates, readKubernetesFiles, relativeToKubernetesDir } from '../node/certs.js';
import { ensureImage } from '../node/containers.js';
import { removeWorkDir, restartKubeComponents, restoreIntoWorkDir } from '../node/etcd-data.js';
import { type NodeFileImages, type SnapshotFingerprint, snapshotFingerprintOnNode } from '../node/files.js';
import { nodeImages } from '../plan/etcd.js';
import { SNAPSHOT_DIR } from '../plan/names.js';
import { type NodeRestorePlan, RESTORE_CONTAINER, type RestorePlan, type SnapshotFacts, type SnapshotSource, chooseSnapshotSource } from '../plan/restore.js';
import type { S3Settings } from '../storage/index.js';
import { distributeSnapshot, sameFingerprint, verifyIdenticalCopies } from './restore-distribute.js';
import { type NodeProgress, switchToRestoredData, waitForHealthyCluster } from './restore-plane.js';
import { type SourceContext, describeSource, gatherSnapshotFacts, openSnapshotContent, snapshotNotFound } from './restore-source.js';
import { type StateFileResult, installStateFile } from './restore-state.js';
import { type ConnectOptions, type NodeSession, onEach, onEveryNode, openSession } from './sessions.js';

const nodeOfSession = (session: NodeSession) => session.node;

/** The node's part of the plan: sessions and plans are paired by node, not by position. */
function planOf(plan: RestorePlan, session: NodeSession): NodeRestorePlan {
  const nodePlan = plan.nodes.find((candidate) => candidate.node === session.node);
  if (!nodePlan) throw new Error(`no restore plan for host [${session.node.address}]`);
  return nodePlan;
}

export interface RestoreDeps extends ConnectOptions {
  log: Logger;
  signal?: AbortSignal;
  now: () => Date;
  s3?: S3Settings;
  /** The command that runs this restore again, secrets redacted (printed on failure). */
  retryCommand: string;
}

export interface RestoreOutcome {
  source: string;
  nodes: Array<{ address: string; oldData?: string; removedRollingSnapshots?: boolean }>;
  stateFile?: StateFileResult;
  /** With --restart-kube-components: what was restarted where. */
  restarted?: Array<{ address: string; containers: string[] }>;
}

/** Every etcd node, or none: a restore without one of them would split etcd (RKE #2424). */
export async function connectEtcdNodes(config: ClusterConfig, plan: RestorePlan, deps: RestoreDeps): Promise<NodeSession[]> {
  const results = await onEveryNode(plan.nodes.map((nodePlan) => nodePlan.node), (node) => openSession(config, node, deps));
  const failed = results.filter((result) => !result.ok);
  if (failed.length === 0) return results.map((result) => (result as { value: NodeSession }).value);
  for (const result of results) if (result.ok) result.value.close();
  for (const result of failed) deps.log.error(`[dialer] Failed to set up SSH tunneling for host [${result.node.address}]: ${describeError((result as { error: unknown }).error)}`);
  throw new ConnectionError(
    `[etcd] Cannot restore: etcd host(s) [${failed.map((result) => result.node.address).join(', ')}] cannot be reached, and restoring without them would split etcd; nothing was changed`,
    { hint: 'bring the hosts back, or remove them from cluster.yml if they are gone for good' },
  );
}

export interface PreparedRestore {
  source: string;
  stateFile?: Buffer;
}

async function checkCertificates(plan: RestorePlan, sessions: NodeSession[], images: NodeFileImages, deps: RestoreDeps): Promise<void> {
  const problems: string[] = [];
  await Promise.all(
    sessions.map(async (session) => {
      const nodePlan = planOf(plan, session);
      const paths = [nodePlan.certFiles.cacert, nodePlan.certFiles.cert, nodePlan.certFiles.key];
      const files = await readKubernetesFiles(session.docker, images.carrier, nodePlan.kubernetesDir, paths.map(relativeToKubernetesDir));
      const check = checkEtcdCertificates(files, nodePlan.node, nodePlan.certFiles, nodePlan.kubernetesDir, deps.now());
      for (const warning of check.warnings) deps.log.warn(`[certificates] host [${nodePlan.node.address}]: ${warning}`);
      for (const problem of check.problems) problems.push(`host [${nodePlan.node.address}]: ${problem}`);
    }),
  );
  if (problems.length === 0) return;
  for (const problem of problems) deps.log.error(`[certificates] ${problem}`);
  throw new RemoteCommandError(`[etcd] Failed to restore etcd snapshot: invalid certs: ${problems[0]}${problems.length > 1 ? ` (and ${problems.length - 1} more)` : ''}; nothing was changed`, {
    hint: 'deploy valid certificates first (rke up, or rke cert rotate for expired ones)',
  });
}

/** Where the snapshot is, or the refusal naming the nearest existing names. */
async function locateSnapshot(plan: RestorePlan, context: SourceContext, deps: RestoreDeps): Promise<{ source: SnapshotSource; facts: SnapshotFacts }> {
  const facts = await gatherSnapshotFacts(context);
  const choice = chooseSnapshotSource(plan, facts);
  if (!choice.source) throw await snapshotNotFound(context, facts);
  if (choice.fallback) deps.log.warn(`[etcd] ${choice.fallback}`);
  return { source: choice.source, facts };
}

interface CopyPlan {
  where: string;
  source: SnapshotSource;
  /** Nodes that need the snapshot copied onto them. */
  targets: NodeSession[];
  /** Size and trailer of the source's copy, when it is on a node. */
  expected?: SnapshotFingerprint;
}

/**
 * Which nodes need a copy. Nodes that already hold the same bytes as the source node need
 * none: size and etcd trailer pick them out cheaply, and their trial restore then checks
 * their content against that trailer.
 */
async function planCopies(plan: RestorePlan, sessions: NodeSession[], context: SourceContext, located: { source: SnapshotSource; facts: SnapshotFacts }, deps: RestoreDeps): Promise<CopyPlan> {
  const { source, facts } = located;
  const where = describeSource(source, deps.s3);
  if (source.kind !== 'node' || source.zip) return { where, source, targets: sessions };
  const holders = sessions.filter((session) => facts.nodes.find((entry) => entry.node === session.node)!.files.some((file) => file.name === plan.name));
  const prints = await Promise.all(holders.map(async (session) => ({ session, print: await snapshotFingerprintOnNode(session, context.images, plan.name) })));
  const expected = prints.find((entry) => entry.session.node === source.node)!.print;
  const targets = sessions.filter((session) => !prints.some((entry) => entry.session === session && sameFingerprint(entry.print, expected)));
  for (const entry of prints.filter((candidate) => !sameFingerprint(candidate.print, expected))) {
    deps.log.warn(`[etcd] Host [${entry.session.node.address}] holds a different copy of [${plan.name}]; it is replaced by the copy from ${where} (every member must restore the same bytes)`);
  }
  return { where, source, targets, ...(expected ? { expected } : {}) };
}

interface CopiedSnapshot extends PreparedRestore {
  /** Size and trailer every node's copy must have. */
  expected: SnapshotFingerprint;
}

/** Copies the snapshot to the nodes that need it. */
async function copySnapshot(plan: RestorePlan, context: SourceContext, copyPlan: CopyPlan, deps: RestoreDeps): Promise<CopiedSnapshot> {
  const { where, targets } = copyPlan;
  const expected = copyPlan.expected;
  if (targets.length === 0) {
    if (expected === undefined) throw new RemoteCommandError(`${where} disappeared before it could be read; nothing was changed`);
    return { source: where, expected };
  }
  deps.log.info(`[etcd] Copying snapshot [${plan.name}] from ${where} to etcd hosts [${targets.map((session) => session.node.address).join(', ')}]`);
  const content = await openSnapshotContent(context, copyPlan.source);
  let copied: SnapshotFingerprint;
  try {
    copied = await distributeSnapshot(content, targets, plan.name, context.images, where, deps.signal);
  } catch (error) {
    // Wait for the source's clean-up (its carrier container) before the sessions close.
    await content.finished.catch(() => undefined);
    throw error;
  }
  const { stateFile } = await content.finished;
  if (expected !== undefined && !sameFingerprint(copied, expected)) {
    throw new RemoteCommandError(`${where} changed while it was being copied (trailer ${expected.trailer}, then ${copied.trailer}); nothing was changed`);
  }
  return { source: where, expected: copied, ...(stateFile ? { stateFile } : {}) };
}

/**
 * Everything that can be checked or prepared while etcd keeps running: reachability,
 * images, certificates, identical verified copies, and the restored data directory built by
 * `etcdctl snapshot restore` on every node (which also checks the snapshot's hash). A
 * failure here leaves the cluster as it was (work directories are removed).
 */
export async function prepareRestore(config: ClusterConfig, plan: RestorePlan, sessions: NodeSession[], deps: RestoreDeps): Promise<PreparedRestore> {
  const images = nodeImages(config);
  const { log, signal } = deps;
  const ensure = (image: string) =>
    Promise.all(sessions.map((session) => ensureImage(session.docker, image, config.privateRegistries, log, session.node.address)));
  const context: SourceContext = { plan, sessions, images, log, ...(deps.s3 ? { s3: deps.s3 } : {}), ...(signal ? { signal } : {}) };
  // Two independent read-only lines, each a container or two per node, at the same time:
  // find the snapshot (the tools image lists the snapshot directories) and see which nodes
  // need a copy; check the certificates (read through the carrier image). Both finish (their
  // containers removed) before a failure is reported, an unknown name first.
  const located = ensure(images.tools).then(() => locateSnapshot(plan, context, deps));
  const [found, certificates, planned] = await Promise.allSettled([
    located,
    ensure(images.carrier).then(() => checkCertificates(plan, sessions, images, deps)),
    located.then((where) => planCopies(plan, sessions, context, where, deps)),
  ]);
  if (found.status === 'rejected') throw found.reason;
  if (certificates.status === 'rejected') throw certificates.reason;
  if (planned.status === 'rejected') throw planned.reason;
  const copyPlan = planned.value;
  signal?.throwIfAborted();
  const trialRestore = (subset: NodeSession[]) =>
    onEach(subset, nodeOfSession, (session) => {
      const host = session.node.address;
      log.info(`[etcd] Restoring [${plan.name}] snapshot on etcd host [${host}]`);
      return restoreIntoWorkDir(session, planOf(plan, session), plan.timeoutSeconds, {
        ...(signal ? { signal } : {}),
        onStarted: () => log.info(`[etcd] Successfully started [${RESTORE_CONTAINER}] container on host [${host}]`),
      });
    });
  // Nodes that hold the snapshot already build their restored data while it is being copied
  // to the others: the copy is network-bound, the restore disk-bound.
  const early = trialRestore(sessions.filter((session) => !copyPlan.targets.includes(session)));
  let copied: CopiedSnapshot;
  try {
    copied = await copySnapshot(plan, context, copyPlan, deps);
    signal?.throwIfAborted();
  } catch (error) {
    await early;
    await removeWorkDirs(plan, sessions, log);
    throw error;
  }
  // Every copy's size and trailer are checked while the new copies are being restored: both
  // only read the copies, and a mismatch is reported (and the work directories removed) before
  // anything is touched.
  const verification = verifyIdenticalCopies(sessions, plan.name, copied.expected, images, log).then(
    () => ({ ok: true as const }),
    (error: unknown) => ({ ok: false as const, error }),
  );
  const [verified, earlyResults, lateResults] = await Promise.all([verification, early, trialRestore(copyPlan.targets)]);
  const results = [...earlyResults, ...lateResults];
  const failed = results.filter((result) => !result.ok);
  if (!verified.ok || failed.length > 0 || signal?.aborted) {
    await removeWorkDirs(plan, sessions, log);
    if (!verified.ok) throw verified.error;
    signal?.throwIfAborted();
    for (const result of failed) log.error(`[etcd] ${describeError((result as { error: unknown }).error)}`);
    const firstError = describeError((failed[0] as { error: unknown }).error);
    throw new RemoteCommandError(
      `[etcd] etcdctl snapshot restore failed on host(s) [${failed.map((result) => result.node.address).join(', ')}]: ${firstError}; etcd was not touched, nothing was changed`,
      /expected sha256/.test(firstError)
        ? { hint: `that copy of ${SNAPSHOT_DIR}/${plan.name} is corrupted (its content does not match its etcd sha256): delete it on that host and run the restore again, or restore another snapshot` }
        : {},
    );
  }
  log.info(`[etcd] The snapshot's content matches its etcd sha256 on all etcd hosts`);
  const { expected: _checked, ...prepared } = copied;
  return prepared;
}

async function removeWorkDirs(plan: RestorePlan, sessions: NodeSession[], log: Logger): Promise<void> {
  const results = await onEach(sessions, nodeOfSession, (session) => removeWorkDir(session, planOf(plan, session)));
  for (const result of results) {
    if (!result.ok) log.warn(`[etcd] could not remove the work directory on host [${result.node.address}]: ${describeError(result.error)}`);
  }
}

export async function executeRestore(config: ClusterConfig, plan: RestorePlan, deps: RestoreDeps): Promise<RestoreOutcome> {
  const sessions = await connectEtcdNodes(config, plan, deps);
  try {
    const prepared = await prepareRestore(config, plan, sessions, deps);
    let stateFile: StateFileResult | undefined;
    try {
      if (plan.stateFile) stateFile = await installStateFile(plan.stateFile, prepared.stateFile, plan.name, deps.log);
      deps.signal?.throwIfAborted();
    } catch (error) {
      // Still before anything destructive: no work directory may stay behind.
      await removeWorkDirs(plan, sessions, deps.log);
      throw error;
    }
    const progress: NodeProgress[] = sessions.map((session) => ({ nodePlan: planOf(plan, session), session, stage: 'prepared' }));
    const planeDeps = { log: deps.log, retryCommand: deps.retryCommand, ...(deps.signal ? { signal: deps.signal } : {}) };
    await switchToRestoredData(plan, progress, planeDeps);
    await waitForHealthyCluster(plan, progress, planeDeps);
    deps.log.info('Finished restoring on all etcd hosts');
    const outcome: RestoreOutcome = {
      source: prepared.source,
      nodes: progress.map((entry) => ({
        address: entry.nodePlan.node.address,
        ...(entry.oldData ? { oldData: entry.oldData } : {}),
        ...(entry.removedRollingSnapshots ? { removedRollingSnapshots: true } : {}),
      })),
      ...(stateFile ? { stateFile } : {}),
    };
    if (plan.kubeRestart) outcome.restarted = await restartComponents(config, plan.kubeRestart, sessions, deps);
    return outcome;
  } finally {
    for (const session of sessions) session.close();
  }
}

/** With --restart-kube-components, on every node of cluster.yml that runs them. */
async function restartComponents(
  config: ClusterConfig,
  kubeRestart: NonNullable<RestorePlan['kubeRestart']>,
  etcdSessions: NodeSession[],
  deps: RestoreDeps,
): Promise<Array<{ address: string; containers: string[] }>> {
  const results = await onEveryNode(kubeRestart.nodes, async (node: NodeConfig) => {
    const existing = etcdSessions.find((session) => session.node === node);
    const session = existing ?? (await openSession(config, node, deps));
    try {
      const restarted = await restartKubeComponents(session, kubeRestart.networkPatterns);
      deps.log.info(restarted.length > 0 ? `[restart] Restarted [${restarted.join(', ')}] on host [${node.address}]` : `[restart] No Kubernetes components run on host [${node.address}]`);
      return restarted;
    } finally {
      if (!existing) session.close();
    }
  });
  const failed = results.filter((result) => !result.ok);
  for (const result of failed) deps.log.error(`[restart] Restarting Kubernetes components failed on host [${result.node.address}]: ${describeError((result as { error: unknown }).error)}`);
  if (failed.length > 0) {
    throw new PartialFailureError(
      `etcd was restored on all etcd hosts, but restarting the Kubernetes components failed on host(s) [${failed.map((result) => result.node.address).join(', ')}]`,
      { hint: 'restart them by hand: docker restart kube-apiserver kubelet kube-controller-manager kube-scheduler kube-proxy' },
    );
  }
  return results.map((result) => ({ address: result.node.address, containers: result.ok ? result.value : [] }));
}
