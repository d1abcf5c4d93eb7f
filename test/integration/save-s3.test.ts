import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliResult, errorLines, runCli } from '../support/cli.js';
import { type TestCluster, startTestCluster } from '../support/cluster.js';
import { s3cmdFor } from '../support/s3cmd.js';
import { type TestS3Server, startS3Server } from '../support/s3server.js';
import { leftoverContainers, snapshotFiles, snapshotHostPath } from '../support/snapshots.js';

let cluster: TestCluster;
let server: TestS3Server;
let s3cmd: (...args: string[]) => string;
const outputs: string[] = [];

beforeAll(async () => {
  [cluster, server] = await Promise.all([startTestCluster({ name: 's3save', slot: 3, nodes: 3 }), startS3Server({ buckets: ['etcd-backups', 'other'] })]);
  s3cmd = s3cmdFor(server);
});

const downloads = mkdtempSync(path.join(tmpdir(), 'rke-ts-get-'));

afterAll(async () => {
  await Promise.all([cluster?.down(), server?.stop()]);
  rmSync(downloads, { recursive: true, force: true });
});

async function save(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  const result = await runCli(['etcd', 'snapshot-save', ...args], { env });
  outputs.push(result.stdout, result.stderr);
  return result;
}

function s3Flags(endpoint = server.endpoint, extra: string[] = []): string[] {
  return ['--s3', '--s3-endpoint', endpoint, '--bucket-name', 'etcd-backups', '--access-key', server.accessKey, '--secret-key', server.secretKey, ...extra];
}

function sha256(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

function download(key: string, bucket = 'etcd-backups'): string {
  const target = path.join(mkdtempSync(path.join(downloads, 'object-')), 'object');
  s3cmd('get', `s3://${bucket}/${key}`, target);
  return target;
}

async function expectLocalSnapshots(name: string): Promise<void> {
  for (const node of cluster.nodes) {
    expect(snapshotFiles(cluster, node)).toContain(name);
    expect(await leftoverContainers(cluster, node)).toEqual([]);
  }
}

describe('snapshot-save to S3', () => {
  it('uploads one object, byte-identical to the snapshot on the node it came from, with sha256 metadata', async () => {
    const result = await save(['--config', cluster.writeClusterYml(), '--name', 'to-s3', ...s3Flags(server.endpoint, ['--folder', 'prod/etcd'])]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain('[etcd] Snapshots configured to S3 compatible backend at');
    expect(result.stderr).toContain('Finished saving/uploading snapshot [to-s3] on all etcd hosts');
    const source = /Uploading snapshot \[to-s3\] from host \[([\d.]+)\]/.exec(result.stderr)?.[1];
    const node = cluster.nodes.find((candidate) => candidate.address === source)!;
    expect(node).toBeDefined();
    const object = download('prod/etcd/to-s3');
    expect(sha256(object)).toBe(sha256(snapshotHostPath(cluster, node, 'to-s3')));
    const client = new S3Client({ endpoint: server.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: server.accessKey, secretAccessKey: server.secretKey } });
    const head = await client.send(new HeadObjectCommand({ Bucket: 'etcd-backups', Key: 'prod/etcd/to-s3' }));
    client.destroy();
    expect(head.Metadata).toMatchObject({ sha256: sha256(object), 'cluster-name': 'local', node: node.address, size: String(head.ContentLength) });
    await expectLocalSnapshots('to-s3');
  });

  it('accepts k3s spellings of the S3 flags', async () => {
    const result = await save([
      '--config', cluster.writeClusterYml(), '--name', 'k3s-flags', '--s3',
      `--s3-endpoint=${server.endpoint}`, '--s3-bucket', 'other', '--s3-access-key', server.accessKey, '--s3-secret-key', server.secretKey, '--s3-folder', 'k3s',
    ]);
    expect(result.code, result.stderr).toBe(0);
    expect(s3cmd('ls', 's3://other/k3s/')).toContain('s3://other/k3s/k3s-flags');
  });

  it('uses cluster.yml s3backupconfig without --s3, over HTTPS with custom_ca', async () => {
    const config = cluster.writeClusterYml({
      file: 'file-s3.yml',
      set: {
        services: {
          etcd: {
            backup_config: {
              s3backupconfig: { endpoint: server.httpsEndpoint.replace(/^https:\/\//, ''), bucket_name: 'etcd-backups', access_key: server.accessKey, secret_key: server.secretKey, custom_ca: server.caPem, folder: 'from-file' },
            },
          },
        },
      },
    });
    const result = await save(['--config', config, '--name', 'from-file']);
    expect(result.code, result.stderr).toBe(0);
    expect(s3cmd('ls', 's3://etcd-backups/from-file/')).toContain('from-file/from-file');
  });

  it('refuses an endpoint whose certificate it cannot verify, and --s3-skip-ssl-verify accepts it', async () => {
    const bad = await save(['--config', cluster.writeClusterYml(), '--name', 'tls-bad', ...s3Flags(server.httpsEndpoint)]);
    expect(bad.code).toBe(1);
    expect(errorLines(bad.stderr).at(-1)).toMatch(/certificate|TLS/i);
    await expectLocalSnapshots('tls-bad');
    const ok = await save(['--config', cluster.writeClusterYml(), '--name', 'tls-skip', ...s3Flags(server.httpsEndpoint, ['--s3-skip-ssl-verify'])]);
    expect(ok.code, ok.stderr).toBe(0);
  });

  it('prints the S3 part of the plan with --dry-run, without the secret', async () => {
    const result = await save(['--config', cluster.writeClusterYml(), '--name', 'dry', '--dry-run', ...s3Flags()]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('s3://etcd-backups/dry');
    expect(result.stdout).toContain(server.accessKey);
  });
});

describe('S3 faults keep the local snapshots and say so', () => {
  it.each([
    ['wrong keys', () => ['--s3', '--s3-endpoint', server.endpoint, '--bucket-name', 'etcd-backups', '--access-key', server.accessKey, '--secret-key', 'not-the-secret']],
    ['a missing bucket', () => ['--s3', '--s3-endpoint', server.endpoint, '--bucket-name', 'no-such-bucket', '--access-key', server.accessKey, '--secret-key', server.secretKey]],
    ['a server that is down', () => s3Flags('http://127.0.0.1:9')],
  ])('%s', async (label, flags) => {
    const name = `fault-${label.replace(/\W+/g, '-')}`;
    const result = await save(['--config', cluster.writeClusterYml(), '--name', name, ...flags()], {});
    expect(result.code).toBe(1);
    const last = errorLines(result.stderr).at(-1)!;
    expect(last).toContain('the local snapshots are intact:');
    for (const node of cluster.nodes) expect(last).toContain(`${node.address}:/opt/rke/etcd-snapshots/${name}`);
    expect(result.stderr).not.toMatch(/\n\s+at /);
    await expectLocalSnapshots(name);
    expect(s3cmd('ls', '--recursive', 's3://etcd-backups/')).not.toContain(name);
  });

  it('never prints the secret key', () => {
    expect(outputs.length).toBeGreaterThan(10);
    for (const output of outputs) expect(output).not.toContain(server.secretKey);
  });
});
