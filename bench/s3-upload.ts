/**
 * Upload throughput and memory of `snapshot-save --s3` with a large snapshot, against an
 * independent client (awscli `s3 cp`) uploading the same file to the same server. The upload
 * time of rke-ts is read from the command's own log (from "Uploading snapshot" to "Finished
 * uploading"): the executable as operators run it, its node flags included.
 * Targets: throughput ≥ 0.8× awscli; peak RSS ≤ 150 MiB, and about the same for a small
 * snapshot (memory must not grow with size).
 *
 *   npx tsx bench/s3-upload.ts          (BENCH_MB=1024 by default; BENCH_SMALL_MB=100)
 *   BENCH_TLS=1 npx tsx bench/s3-upload.ts   (both clients over HTTPS, the server's test CA trusted)
 */
import { statSync } from 'node:fs';
import { CLI } from '../test/support/cli.js';
import { type TestCluster, startTestCluster } from '../test/support/cluster.js';
import { startS3Server } from '../test/support/s3server.js';
import { envNumber, growEtcd, run, timed } from './common.js';
import { runMeasured } from './rss.js';

const largeMiB = envNumber('BENCH_MB', 1024);
const smallMiB = envNumber('BENCH_SMALL_MB', 100);
const overTls = process.env.BENCH_TLS === '1';

const server = await startS3Server({ buckets: ['bench'] });
let cluster: TestCluster | undefined;
try {
  cluster = await startTestCluster({ name: 'bench-s3', slot: 12, nodes: 1, image: 'distroless' });
  const node = cluster.node(1);
  const config = cluster.writeClusterYml();
  const endpoint = overTls ? server.httpsEndpoint : server.endpoint;
  const tlsFlags = overTls ? ['--s3-endpoint-ca', server.caFile] : [];
  const s3Flags = ['--s3', '--s3-endpoint', endpoint, ...tlsFlags, '--bucket-name', 'bench', '--access-key', server.accessKey, '--s3-secret-key', server.secretKey];
  console.log(`S3 endpoint: ${endpoint}`);
  const awsEnv = { ...process.env, AWS_ACCESS_KEY_ID: server.accessKey, AWS_SECRET_ACCESS_KEY: server.secretKey, AWS_DEFAULT_REGION: 'us-east-1' };

  let grown = 0;
  for (const [label, megabytes] of [['small', smallMiB], ['large', largeMiB]] as const) {
    await growEtcd(cluster, megabytes - grown, grown);
    grown = megabytes;
    const name = `bench-${label}`;
    const save = await runMeasured(CLI, ['--log-format', 'json', 'etcd', 'snapshot-save', '--config', config, '--name', name, ...s3Flags]);
    if (save.code !== 0) throw new Error(`snapshot-save failed: ${save.stderr}`);
    const file = cluster.hostPath(node, `/opt/rke/etcd-snapshots/${name}`);
    const bytes = statSync(file).size;
    const mib = bytes / 1024 / 1024;

    const ours = { ms: uploadMs(save.stderr) };
    const aws = await timed(() => run('aws', ['--endpoint-url', endpoint, ...(overTls ? ['--ca-bundle', server.caFile] : []), 's3', 'cp', '--only-show-errors', file, `s3://bench/awscli-${name}`], { env: awsEnv, maxBuffer: 1 << 20 }));
    const oursRate = mib / (ours.ms / 1000);
    const awsRate = mib / (aws.ms / 1000);
    console.log(`${label} snapshot: ${mib.toFixed(0)} MiB`);
    console.log(`  snapshot-save --s3 (whole command): ${(save.wallMs / 1000).toFixed(1)} s, peak RSS ${save.peakRssMiB.toFixed(0)} MiB (target ≤ 150)`);
    console.log(`  upload, rke-ts (node → SSH → Docker archive → S3): ${(ours.ms / 1000).toFixed(1)} s = ${oursRate.toFixed(0)} MiB/s`);
    console.log(`  upload, awscli s3 cp (local file → S3):            ${(aws.ms / 1000).toFixed(1)} s = ${awsRate.toFixed(0)} MiB/s`);
    console.log(`  throughput ratio rke-ts/awscli: ${(oursRate / awsRate).toFixed(2)}× (target ≥ 0.80×)`);
  }
} finally {
  await cluster?.down();
  await server.stop();
}

/** Milliseconds from the first "Uploading snapshot" log line to "Finished uploading". */
function uploadMs(jsonLog: string): number {
  const lines = jsonLog.split('\n').flatMap((line) => {
    try {
      return [JSON.parse(line) as { time: number | string; msg?: string }];
    } catch {
      return [];
    }
  });
  const at = (pattern: RegExp) => {
    const line = lines.find((entry) => pattern.test(entry.msg ?? ''));
    if (!line) throw new Error(`no log line matching ${pattern} in the snapshot-save output`);
    return typeof line.time === 'number' ? line.time : Date.parse(line.time);
  };
  return at(/^\[etcd\] Finished uploading/) - at(/^\[etcd\] Uploading snapshot/);
}
