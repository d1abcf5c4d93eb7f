/**
 * snapshot-restore of a 3-node cluster from one copy of a large snapshot: rke-ts (one
 * stream to all nodes at once, every node's restore in parallel, the whole command
 * including its start-up, listing and certificate checks) against an RKE-style baseline
 * that does RKE's restore steps node after node, in-process with connections already open:
 * copy the file to each other host, md5sum it on each host ("Checking if all snapshots are
 * identical"), stop etcd and restore each host in turn, start etcd host after host (RKE's
 * etcd plane), then wait until the cluster is healthy. The baseline uses rke-ts's transport
 * for the copy and leaves out RKE's fixed waits (the 5 s check of its serve container) and
 * the rest of `rke up`, so it flatters RKE. Target: ≤ 0.6× the baseline; peak RSS ≤ 150 MiB.
 *
 *   npx tsx bench/restore.ts            (BENCH_MB=1024 by default)
 */
import { rmSync, statSync } from 'node:fs';
import { readClusterConfig } from '../src/config/index.js';
import { silentLogger } from '../src/log/logger.js';
import { runOnce } from '../src/node/containers.js';
import { restoreIntoWorkDir, startRestoredEtcd, stopEtcd, swapDataDir } from '../src/node/etcd-data.js';
import { nodeImages } from '../src/plan/etcd.js';
import { type RestorePlan, planRestore } from '../src/plan/restore.js';
import { distributeSnapshot } from '../src/run/restore-distribute.js';
import { type NodeProgress, waitForHealthyCluster } from '../src/run/restore-plane.js';
import { openSnapshotContent } from '../src/run/restore-source.js';
import { type NodeSession, openSession } from '../src/run/sessions.js';
import { CLI } from '../test/support/cli.js';
import { type TestCluster, startTestCluster } from '../test/support/cluster.js';
import { envNumber, growEtcd, median, run, timed } from './common.js';
import { runMeasured } from './measure.js';

const megabytes = envNumber('BENCH_MB', 1024);
const rounds = envNumber('BENCH_ROUNDS', 3);
const name = 'bench-restore';

const cluster: TestCluster = await startTestCluster({ name: 'bench-restore', slot: 13, nodes: 3, image: 'distroless' });
try {
  await growEtcd(cluster, megabytes);
  const configFile = cluster.writeClusterYml();
  const save = await runMeasured(CLI, ['etcd', 'snapshot-save', '--config', configFile, '--name', name]);
  if (save.code !== 0) throw new Error(`snapshot-save failed: ${save.stderr}`);
  // One copy, on node 1, as after a disaster or a download: the others must receive it.
  for (const node of cluster.nodes.slice(1)) rmSync(cluster.hostPath(node, `/opt/rke/etcd-snapshots/${name}`));
  const size = statSync(cluster.hostPath(cluster.node(1), `/opt/rke/etcd-snapshots/${name}`)).size;

  const config = await readClusterConfig(configFile);
  const log = silentLogger();
  const images = nodeImages(config);
  const removeCopies = async () => {
    for (const node of cluster.nodes.slice(1)) rmSync(cluster.hostPath(node, `/opt/rke/etcd-snapshots/${name}`), { force: true });
    // Each run starts with the previous run's dirty pages on disk, not competing with it.
    await run('sync', []);
  };

  async function rkeStyleRestore(sessions: NodeSession[], plan: RestorePlan): Promise<void> {
    // PrepareBackup: the other hosts get the file, one after the other.
    for (const target of sessions.slice(1)) {
      const content = await openSnapshotContent({ plan, sessions, images, log }, { kind: 'node', node: sessions[0]!.node, file: name, size, zip: false });
      await distributeSnapshot(content, [target], name, images, 'node 1');
      await content.finished;
    }
    // "[etcd] Checking if all snapshots are identical": md5sum on each host in turn.
    for (const session of sessions) {
      const md5 = await runOnce(session.docker, {
        name: 'etcd-checksum-checker', image: images.tools, entrypoint: ['md5sum'], cmd: [`/opt/rke/etcd-snapshots/${name}`],
        env: [], binds: ['/opt/rke/:/opt/rke/'], networkMode: 'none',
      }, { timeoutSeconds: 600 });
      if (md5.exitCode !== 0) throw new Error(`md5sum failed: ${md5.output}`);
    }
    // Remove etcd and restore each host in turn (RKE: etcd-restore container per host).
    for (const [index, session] of sessions.entries()) {
      await stopEtcd(session);
      await restoreIntoWorkDir(session, plan.nodes[index]!, plan.timeoutSeconds, {});
      await swapDataDir(session, plan.nodes[index]!);
    }
    // The etcd plane, host after host, then the cluster health check.
    const progress: NodeProgress[] = plan.nodes.map((nodePlan, index) => ({ nodePlan, session: sessions[index]!, stage: 'swapped' }));
    for (const [index, session] of sessions.entries()) {
      await startRestoredEtcd(session, plan.nodes[index]!);
      progress[index]!.stage = 'started';
    }
    await waitForHealthyCluster(plan, progress, { log, retryCommand: '' });
  }

  const baselineMs: number[] = [];
  const oursMs: number[] = [];
  let peakRssMiB = 0;
  for (let round = 1; round <= rounds; round++) {
    await removeCopies();
    const plan = planRestore(config, { name, now: new Date(), useLocalState: true });
    const sessions = await Promise.all(plan.nodes.map((nodePlan) => openSession(config, nodePlan.node, { env: process.env, log })));
    try {
      baselineMs.push((await timed(() => rkeStyleRestore(sessions, plan))).ms);
    } finally {
      for (const session of sessions) session.close();
    }
    await removeCopies();
    const ours = await runMeasured(CLI, ['etcd', 'snapshot-restore', '--config', configFile, '--name', name, '--use-local-state']);
    if (ours.code !== 0) throw new Error(`snapshot-restore failed: ${ours.stderr}`);
    oursMs.push(ours.wallMs);
    peakRssMiB = Math.max(peakRssMiB, ours.peakRssMiB);
  }
  const oursMedian = median(oursMs);
  const baselineMedian = median(baselineMs);
  const seconds = (values: number[]) => values.map((ms) => (ms / 1000).toFixed(1)).join(', ');
  console.log(`snapshot-restore, 3 nodes, ${(size / 1024 / 1024).toFixed(0)} MiB snapshot on one node, ${rounds} round(s), medians`);
  console.log(`  rke-ts (whole restore, incl. etcd restart and health): ${(oursMedian / 1000).toFixed(1)} s [${seconds(oursMs)}], peak RSS ${peakRssMiB.toFixed(0)} MiB (target ≤ 150)`);
  console.log(`  RKE-style baseline, node after node:                  ${(baselineMedian / 1000).toFixed(1)} s [${seconds(baselineMs)}]`);
  console.log(`  ratio: ${(oursMedian / baselineMedian).toFixed(2)}× (target ≤ 0.60×)`);
} finally {
  await cluster.down();
}
