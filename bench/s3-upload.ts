/**
 * Upload throughput and memory of `snapshot-save --s3` with a large snapshot, against an
 * independent client (awscli `s3 cp`) uploading the same file to the same server. The upload
 * time of rke-ts is read from the command's own log (from "Uploading snapshot" to "Finished
 * uploading"): the executable as operators run it, its node flags included.
 * Targets: throughput ≥ 0.8× awscli; peak RSS ≤ 150 MiB, and about the same for a small
 * snapshot (memory must not grow with size).
 *
 * Everything shares this machine's cores: the node's Docker and sshd, the S3 server (in this
 * process), rke-ts and awscli. Single runs swing by a third, so the large snapshot is uploaded
 * in several rounds, both clients in each, with dirty pages flushed before every upload; the
 * ratio is that of the median times. CPU seconds per client show what each costs the machine.
 * Each round also runs the two legs of rke-ts's upload on their own (bench/s3-stage.ts): its S3
 * upload of the file awscli reads, and the read of the snapshot out of the node without S3.
 *
 *   npx tsx bench/s3-upload.ts          (BENCH_MB=1024, BENCH_SMALL_MB=100, BENCH_ROUNDS=5)
 *   BENCH_TLS=1 npx tsx bench/s3-upload.ts   (both clients over HTTPS, the server's test CA trusted)
 */
import { readFileSync, rmSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CLI } from '../test/support/cli.js';
import { type TestCluster, startTestCluster } from '../test/support/cluster.js';
import { startS3Server } from '../test/support/s3server.js';
import { envNumber, growEtcd, median, run } from './common.js';
import { type ProcessRun, cpuTime, runMeasured, sampleMachineBusy } from './measure.js';

const largeMiB = envNumber('BENCH_MB', 1024);
const smallMiB = envNumber('BENCH_SMALL_MB', 100);
const rounds = envNumber('BENCH_ROUNDS', 5);
const overTls = process.env.BENCH_TLS === '1';
const STAGE_SCRIPT = fileURLToPath(new URL('./s3-stage.ts', import.meta.url));
const PRODUCT_NODE_FLAGS = productNodeFlags();

interface Upload {
  seconds: number;
  /** CPU seconds of the client process (for rke-ts, the whole snapshot-save). */
  cpu: number;
  /** CPU seconds of the S3 server meanwhile. */
  serverCpu: number;
  /** CPU seconds of the whole machine during the upload: the part neither client nor server used is the node's Docker and sshd. */
  machineCpu: number;
  /** Not for a leg: it runs under tsx, whose compiler adds to the process's memory. */
  peakRssMiB?: number;
}

const server = await startS3Server({ buckets: ['bench'] });
let cluster: TestCluster | undefined;
try {
  cluster = await startTestCluster({ name: 'bench-s3', slot: 12, nodes: 1, image: 'distroless' });
  const node = cluster.node(1);
  const config = cluster.writeClusterYml();
  const endpoint = overTls ? server.httpsEndpoint : server.endpoint;
  const tlsFlags = overTls ? ['--s3-endpoint-ca', server.caFile] : [];
  const awsTlsFlags = overTls ? ['--ca-bundle', server.caFile] : [];
  const s3Flags = ['--s3', '--s3-endpoint', endpoint, ...tlsFlags, '--bucket-name', 'bench', '--access-key', server.accessKey, '--s3-secret-key', server.secretKey];
  console.log(`S3 endpoint: ${endpoint}`);
  const awsEnv = { ...process.env, AWS_ACCESS_KEY_ID: server.accessKey, AWS_SECRET_ACCESS_KEY: server.secretKey, AWS_DEFAULT_REGION: 'us-east-1' };
  const serverCpu = () => cpuTime(server.pid() ?? 0) ?? 0;
  const machine = sampleMachineBusy();
  const snapshotFile = (name: string) => cluster!.hostPath(node, `/opt/rke/etcd-snapshots/${name}`);

  /**
   * Runs one client after flushing dirty pages. `span` says when its upload started and ended
   * (ms since the epoch) and the CPU it used meanwhile, defaulting to the whole process's.
   */
  const measureUpload = async (
    label: string,
    command: string,
    args: string[],
    env: NodeJS.ProcessEnv,
    span: (measured: ProcessRun, launchedAt: number) => { start: number; end: number; cpuSeconds?: number },
    withRss = true,
  ): Promise<Upload> => {
    await run('sync', []);
    const serverBefore = serverCpu();
    const launchedAt = Date.now();
    const measured = await runMeasured(command, args, env);
    if (measured.code !== 0) throw new Error(`${label} failed: ${measured.stderr}`);
    const { start, end, cpuSeconds } = span(measured, launchedAt);
    return {
      seconds: (end - start) / 1000,
      cpu: cpuSeconds ?? measured.cpuSeconds,
      serverCpu: serverCpu() - serverBefore,
      machineCpu: machine.between(start, end),
      ...(withRss ? { peakRssMiB: measured.peakRssMiB } : {}),
    };
  };
  /** snapshot-save --s3; the upload's time comes from the log, the CPU from the whole command. */
  const rkeTsUpload = (name: string) =>
    measureUpload('snapshot-save', CLI, ['--log-format', 'json', 'etcd', 'snapshot-save', '--config', config, '--name', name, ...s3Flags], process.env, (save) =>
      uploadSpan(save.stderr),
    );
  const awsUpload = (name: string) =>
    measureUpload('aws s3 cp', 'aws', ['--endpoint-url', endpoint, ...awsTlsFlags, 's3', 'cp', '--only-show-errors', snapshotFile(name), `s3://bench/awscli-${name}`], awsEnv, (aws, launchedAt) => ({
      start: launchedAt,
      end: launchedAt + aws.wallMs,
    }));
  /** One leg of rke-ts's upload on its own; its times and CPU come from the leg's own report. */
  const stageEnv = {
    ...process.env,
    BENCH_S3_ENDPOINT: endpoint,
    BENCH_S3_BUCKET: 'bench',
    BENCH_S3_ACCESS_KEY: server.accessKey,
    BENCH_S3_SECRET_KEY: server.secretKey,
    ...(overTls ? { BENCH_S3_CA: server.caFile } : {}),
  };
  const stage = (args: string[]) =>
    measureUpload(
      `s3-stage ${args[0]}`,
      process.execPath,
      [...PRODUCT_NODE_FLAGS, '--import', 'tsx', STAGE_SCRIPT, ...args],
      stageEnv,
      (leg) => JSON.parse(leg.stderr.trim().split('\n').at(-1)!) as { start: number; end: number; cpuSeconds: number },
      false,
    );

  /** Keeps the disks from filling up over the rounds. */
  const removeCopies = async (name: string) => {
    rmSync(snapshotFile(name), { force: true });
    // The bucket holds this round's objects only: rke-ts's, awscli's and the S3 leg's.
    await run('aws', ['--endpoint-url', endpoint, ...awsTlsFlags, 's3', 'rm', '--recursive', '--only-show-errors', 's3://bench/'], { env: awsEnv });
  };

  const describe = (label: string, upload: Upload, mib: number) =>
    `  ${label} ${upload.seconds.toFixed(1)} s = ${(mib / upload.seconds).toFixed(0)} MiB/s, ` +
    `CPU s: client ${upload.cpu.toFixed(1)}, S3 server ${upload.serverCpu.toFixed(1)}, machine ${upload.machineCpu.toFixed(1)}` +
    (upload.peakRssMiB === undefined ? '' : `; peak RSS ${upload.peakRssMiB.toFixed(0)} MiB`);

  await growEtcd(cluster, smallMiB);
  const small = await rkeTsUpload('bench-small');
  const smallMib = statSync(snapshotFile('bench-small')).size / 1024 / 1024;
  const smallAws = await awsUpload('bench-small');
  await removeCopies('bench-small');
  console.log(`small snapshot: ${smallMib.toFixed(0)} MiB, one round`);
  console.log(describe('rke-ts:', small, smallMib));
  console.log(describe('awscli:', smallAws, smallMib));

  await growEtcd(cluster, largeMiB - smallMiB, smallMiB);
  const ours: Upload[] = [];
  const theirs: Upload[] = [];
  const s3Legs: Upload[] = [];
  const nodeLegs: Upload[] = [];
  let largeMib = 0;
  for (let round = 1; round <= rounds; round++) {
    const name = `bench-large-${round}`;
    ours.push(await rkeTsUpload(name));
    largeMib = statSync(snapshotFile(name)).size / 1024 / 1024;
    theirs.push(await awsUpload(name));
    s3Legs.push(await stage(['s3-from-file', snapshotFile(name), `s3-path-${name}`]));
    nodeLegs.push(await stage(['read-from-node', config, name]));
    await removeCopies(name);
    console.log(`large snapshot, round ${round}: ${largeMib.toFixed(0)} MiB`);
    console.log(describe('rke-ts:', ours.at(-1)!, largeMib));
    console.log(describe('awscli:', theirs.at(-1)!, largeMib));
    console.log(describe('rke-ts S3 leg, local file:', s3Legs.at(-1)!, largeMib));
    console.log(describe('rke-ts node leg, no S3:', nodeLegs.at(-1)!, largeMib));
  }

  const oursSeconds = median(ours.map((upload) => upload.seconds));
  const theirSeconds = median(theirs.map((upload) => upload.seconds));
  const largePeak = Math.max(...ours.map((upload) => upload.peakRssMiB!));
  const perGiB = (uploads: Upload[], pick: (upload: Upload) => number) => ((median(uploads.map(pick)) / largeMib) * 1024).toFixed(1);
  const cpuPerGiB = (uploads: Upload[]) =>
    `CPU s/GiB: client ${perGiB(uploads, (upload) => upload.cpu)}, S3 server ${perGiB(uploads, (upload) => upload.serverCpu)}, machine ${perGiB(uploads, (upload) => upload.machineCpu)}`;
  console.log(`summary, ${largeMib.toFixed(0)} MiB snapshot, medians of ${rounds} rounds:`);
  console.log(`  upload, rke-ts (node → SSH → Docker archive → S3): ${oursSeconds.toFixed(1)} s = ${(largeMib / oursSeconds).toFixed(0)} MiB/s, ${cpuPerGiB(ours)}`);
  console.log(`  upload, awscli s3 cp (local file → S3):            ${theirSeconds.toFixed(1)} s = ${(largeMib / theirSeconds).toFixed(0)} MiB/s, ${cpuPerGiB(theirs)}`);
  console.log(`  throughput ratio rke-ts/awscli: ${(theirSeconds / oursSeconds).toFixed(2)}× (target ≥ 0.80×)`);
  const s3LegSeconds = median(s3Legs.map((upload) => upload.seconds));
  const nodeLegSeconds = median(nodeLegs.map((upload) => upload.seconds));
  console.log('  the two legs of rke-ts\'s upload, each on its own:');
  console.log(`    S3 leg, the file awscli reads → S3: ${s3LegSeconds.toFixed(1)} s = ${(largeMib / s3LegSeconds).toFixed(0)} MiB/s, ratio to awscli ${(theirSeconds / s3LegSeconds).toFixed(2)}×, ${cpuPerGiB(s3Legs)}`);
  console.log(`    node leg, node → SSH → Docker archive → sha256, no S3: ${nodeLegSeconds.toFixed(1)} s = ${(largeMib / nodeLegSeconds).toFixed(0)} MiB/s, ${cpuPerGiB(nodeLegs)}`);
  console.log(`  peak RSS of snapshot-save --s3: ${largePeak.toFixed(0)} MiB large, ${small.peakRssMiB!.toFixed(0)} MiB small (target ≤ 150, within 10%)`);
  machine.stop();
} finally {
  await cluster?.down();
  await server.stop();
}

/** The Node flags bin/rke-ts.js starts with (its shebang line), so that a leg runs like the product. */
function productNodeFlags(): string[] {
  const shebang = readFileSync(CLI, 'utf8').split('\n')[0]!;
  return shebang.split(/\s+/).filter((word) => word.startsWith('--'));
}

/** Times (ms since the epoch) of the first "Uploading snapshot" log line and of "Finished uploading". */
function uploadSpan(jsonLog: string): { start: number; end: number } {
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
  return { start: at(/^\[etcd\] Uploading snapshot/), end: at(/^\[etcd\] Finished uploading/) };
}
