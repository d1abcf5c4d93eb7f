/**
 * One leg of `snapshot-save --s3` on its own, for bench/s3-upload.ts to tell where the time goes:
 *
 *   s3-from-file <file> <key>        rke-ts's S3 upload (sha256, multipart, metadata) of a file on
 *                                    this machine's disk: the same input awscli gets
 *   read-from-node <cluster.yml> <snapshot>
 *                                    the snapshot streamed out of the node (SSH → Docker archive
 *                                    → tar entry) and hashed, without S3
 *
 * The S3 server comes from BENCH_S3_ENDPOINT, BENCH_S3_ACCESS_KEY, BENCH_S3_SECRET_KEY, BENCH_S3_BUCKET
 * and BENCH_S3_CA (optional): never from arguments. Prints one JSON line on stderr: when the
 * leg started and ended (ms since the epoch) and the CPU seconds this process used meanwhile;
 * start-up and connecting are outside both.
 */
import { createReadStream, statSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { readClusterConfig } from '../src/config/index.js';
import { silentLogger } from '../src/log/logger.js';
import { openSnapshotFile } from '../src/node/files.js';
import { nodeImages } from '../src/plan/etcd.js';
import { openSession } from '../src/run/sessions.js';
import { withEarlyScavenges } from '../src/run/young-generation.js';
import { Sha256Meter } from '../src/storage/checksum-streams.js';
import { createS3Client, uploadSnapshot } from '../src/storage/index.js';
import { settingsFor } from '../test/support/s3server.js';

const [mode, first, second] = process.argv.slice(2);
const log = silentLogger();

async function measured(leg: () => Promise<void>): Promise<void> {
  const start = Date.now();
  const cpuBefore = process.cpuUsage();
  await leg();
  const cpu = process.cpuUsage(cpuBefore);
  process.stderr.write(`${JSON.stringify({ start, end: Date.now(), cpuSeconds: (cpu.user + cpu.system) / 1e6 })}\n`);
}

if (mode === 's3-from-file' && first && second) {
  const env = process.env;
  const server = { endpoint: env.BENCH_S3_ENDPOINT ?? '', bucket: env.BENCH_S3_BUCKET ?? '', accessKey: env.BENCH_S3_ACCESS_KEY ?? '', secretKey: env.BENCH_S3_SECRET_KEY ?? '' };
  const settings = settingsFor(server, env.BENCH_S3_CA ? { endpointCa: env.BENCH_S3_CA } : {});
  const client = await createS3Client(settings, { log });
  try {
    await measured(() =>
      withEarlyScavenges(async () => {
        await uploadSnapshot({
          settings,
          key: second,
          body: createReadStream(first),
          size: statSync(first).size,
          metadata: { node: 'bench', clusterName: 'bench', createdAt: new Date() },
          log,
          client,
        });
      }),
    );
  } finally {
    client.destroy();
  }
} else if (mode === 'read-from-node' && first && second) {
  const config = await readClusterConfig(first);
  const session = await openSession(config, config.nodes[0]!, { env: process.env, log });
  try {
    await measured(async () => {
      const file = await openSnapshotFile(session, nodeImages(config), second);
      const drain = new Writable({ write: (_chunk, _encoding, callback) => callback() });
      await pipeline(file.stream, new Sha256Meter(file.size), drain);
      await file.released;
    });
  } finally {
    session.close();
  }
} else {
  process.stderr.write('usage: s3-stage.ts s3-from-file <file> <key> | read-from-node <cluster.yml> <snapshot>\n');
  process.exitCode = 2;
}
