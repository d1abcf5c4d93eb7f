import { openSync, readSync, writeSync, closeSync, statSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorLines, runCli } from '../support/cli.js';
import { type TestCluster, startTestCluster } from '../support/cluster.js';
import { s3cmdFor } from '../support/s3cmd.js';
import { type TestS3Server, startS3Server } from '../support/s3server.js';
import { leftoverContainers, snapshotFiles, snapshotHostPath } from '../support/snapshots.js';

let cluster: TestCluster;
let server: TestS3Server;

beforeAll(async () => {
  [cluster, server] = await Promise.all([startTestCluster({ name: 'verify', slot: 4, nodes: 2, image: 'distroless' }), startS3Server({ buckets: ['snaps'] })]);
  await cluster.etcdctl(cluster.node(1), 'put', '/verify/a', 'one');
  await cluster.etcdctl(cluster.node(1), 'put', '/verify/b', 'two');
  const save = await runCli(['etcd', 'snapshot-save', '--config', cluster.writeClusterYml(), '--name', 'good']);
  expect(save.code, save.stderr).toBe(0);
});

afterAll(async () => {
  await Promise.all([cluster?.down(), server?.stop()]);
});

async function expectUntouched(): Promise<void> {
  for (const node of cluster.nodes) {
    expect(await leftoverContainers(cluster, node)).toEqual([]);
    expect(snapshotFiles(cluster, node).filter((file) => file.startsWith('.'))).toEqual([]);
  }
  // etcd itself kept running the whole time.
  expect(await cluster.etcdctl(cluster.node(1), 'get', '/verify/a', '--print-value-only')).toContain('one');
}

describe('snapshot-verify', () => {
  it('reports revision and key count of a local snapshot and leaves nothing behind', async () => {
    const result = await runCli(['etcd', 'snapshot-verify', '--config', cluster.writeClusterYml(), '--name', 'good', '-o', 'json']);
    expect(result.code, result.stderr).toBe(0);
    const report = JSON.parse(result.stdout) as { revision: number; totalKey: number; sha256: string; source: string };
    expect(report.revision).toBeGreaterThan(1);
    expect(report.totalKey).toBeGreaterThanOrEqual(2);
    expect(report.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(report.source).toContain('/opt/rke/etcd-snapshots/good');
    await expectUntouched();
  });

  it('verifies a snapshot stored in S3 by another client', async () => {
    const s3cmd = s3cmdFor(server);
    s3cmd('put', snapshotHostPath(cluster, cluster.node(1), 'good'), 's3://snaps/backups/from-s3cmd');
    const result = await runCli([
      'etcd', 'snapshot-verify', '--config', cluster.writeClusterYml(), '--name', 'from-s3cmd',
      '--s3', '--s3-endpoint', server.endpoint, '--bucket-name', 'snaps', '--folder', 'backups', '--access-key', server.accessKey, '--secret-key', server.secretKey,
    ]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('Snapshot from-s3cmd: restorable');
    expect(result.stdout).toContain('s3://snaps/backups/from-s3cmd');
    await expectUntouched();
  });

  it('refuses a corrupted snapshot with one clear line', async () => {
    const good = snapshotHostPath(cluster, cluster.node(2), 'good');
    const bad = snapshotHostPath(cluster, cluster.node(2), 'corrupted');
    const size = statSync(good).size;
    const buffer = Buffer.alloc(size);
    const input = openSync(good, 'r');
    readSync(input, buffer, 0, size, 0);
    closeSync(input);
    buffer[Math.floor(size / 2)]! ^= 0xff;
    const output = openSync(bad, 'w');
    writeSync(output, buffer);
    closeSync(output);
    const result = await runCli(['etcd', 'snapshot-verify', '--config', cluster.writeClusterYml(), '--name', 'corrupted']);
    expect(result.code).toBe(1);
    expect(errorLines(result.stderr).at(-1)).toMatch(/corrupted: its content does not match its sha256 trailer/);
    await expectUntouched();
  });

  it('names the nearest snapshots when the name does not exist', async () => {
    const result = await runCli(['etcd', 'snapshot-verify', '--config', cluster.writeClusterYml(), '--name', 'goood']);
    expect(result.code).toBe(2);
    expect(errorLines(result.stderr).at(-1)).toContain('nearest existing names: good');
  });
});
