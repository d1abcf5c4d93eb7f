/**
 * snapshot-save on a 3-node test cluster: rke-ts (every node at once) against the
 * RKE-style baseline (the same one-shot container, node after node, as RKE's SnapshotEtcd
 * does). Both run in this process through the same transport, so the ratio measures the
 * scheduling, not start-up. Target: rke-ts ≤ 0.5× the baseline.
 *
 *   npx tsx bench/save.ts            (BENCH_MB=200 BENCH_RUNS=3 to change the load)
 */
import { readClusterConfig } from '../src/config/index.js';
import { silentLogger } from '../src/log/logger.js';
import { planSave } from '../src/plan/save.js';
import { executeSave } from '../src/run/save.js';
import { startTestCluster } from '../test/support/cluster.js';
import { envNumber, growEtcd, median, timed } from './common.js';

const megabytes = envNumber('BENCH_MB', 100);
const runs = envNumber('BENCH_RUNS', 3);

const cluster = await startTestCluster({ name: 'bench-save', slot: 11, nodes: 3, image: 'distroless' });
try {
  await growEtcd(cluster, megabytes);
  const config = await readClusterConfig(cluster.writeClusterYml());
  const deps = { env: process.env, log: silentLogger() };

  const parallel: number[] = [];
  const sequential: number[] = [];
  for (let round = 0; round < runs; round++) {
    const plan = planSave(config, { name: `bench-parallel-${round}` });
    const together = await timed(() => executeSave(config, plan, deps));
    if (together.value.failed.length > 0) throw new Error(`parallel save failed on ${together.value.failed.map((f) => f.node).join(', ')}`);
    parallel.push(together.ms);

    const baselinePlan = planSave(config, { name: `bench-sequential-${round}` });
    const oneByOne = await timed(async () => {
      for (const nodePlan of baselinePlan.nodes) {
        const outcome = await executeSave(config, { ...baselinePlan, nodes: [nodePlan] }, deps);
        if (outcome.failed.length > 0) throw new Error(`sequential save failed on ${nodePlan.node.address}`);
      }
    });
    sequential.push(oneByOne.ms);
  }
  const ours = median(parallel);
  const baseline = median(sequential);
  console.log(`snapshot-save, 3 nodes, ~${megabytes} MiB etcd database, median of ${runs} runs`);
  console.log(`  rke-ts (parallel):           ${(ours / 1000).toFixed(2)} s   runs: ${parallel.map((ms) => (ms / 1000).toFixed(2)).join(', ')}`);
  console.log(`  RKE-style (node after node): ${(baseline / 1000).toFixed(2)} s   runs: ${sequential.map((ms) => (ms / 1000).toFixed(2)).join(', ')}`);
  console.log(`  ratio: ${(ours / baseline).toFixed(2)}× (target ≤ 0.50×)`);
} finally {
  await cluster.down();
}
