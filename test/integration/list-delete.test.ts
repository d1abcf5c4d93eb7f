/**
 * snapshot-list and snapshot-delete on a real 3-node cluster and a real S3 server.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import type { SnapshotListing } from '../../src/cli/list.js';
import { errorLines, runCli } from '../support/cli.js';
import { type TestCluster, startTestCluster } from '../support/cluster.js';
import { s3cmdFor } from '../support/s3cmd.js';
import { type TestS3Server, startS3Server } from '../support/s3server.js';
import { leftoverContainers, snapshotFiles, snapshotHostPath } from '../support/snapshots.js';

let cluster: TestCluster;
let server: TestS3Server;
let s3cmd: (...args: string[]) => string;
let config: string;
const FOLDER = 'rke/prod';

beforeAll(async () => {
  [cluster, server] = await Promise.all([startTestCluster({ name: 'lifelist', slot: 8, nodes: 3 }), startS3Server({ buckets: ['etcd-backups'] })]);
  s3cmd = s3cmdFor(server);
  config = cluster.writeClusterYml();
  const saved = await runCli(['-q', 'etcd', 'snapshot-save', '--config', config, '--name', 'snap-a', ...s3Flags()]);
  expect(saved.code, saved.stderr).toBe(0);
  const local = await runCli(['-q', 'etcd', 'snapshot-save', '--config', config, '--name', 'snap-b']);
  expect(local.code, local.stderr).toBe(0);
  // What other tools leave in the bucket: a k3s snapshot with its .metadata sidecar.
  const dir = mkdtempSync(path.join(tmpdir(), 'rke-ts-k3s-'));
  const file = path.join(dir, 'k3s');
  writeFileSync(file, 'k3s snapshot bytes');
  s3cmd('put', file, `s3://etcd-backups/${FOLDER}/on-demand-n1-1714564800`);
  s3cmd('put', file, `s3://etcd-backups/${FOLDER}/.metadata/on-demand-n1-1714564800`);
  rmSync(dir, { recursive: true, force: true });
});

afterAll(async () => {
  await Promise.all([cluster?.down(), server?.stop()]);
});

function s3Flags(): string[] {
  return ['--s3', '--s3-endpoint', server.endpoint, '--bucket-name', 'etcd-backups', '--access-key', server.accessKey, '--secret-key', server.secretKey, '--folder', FOLDER];
}

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

async function listJson(args: string[] = []): Promise<SnapshotListing> {
  const result = await runCli(['etcd', 'snapshot-list', '--config', config, '-o', 'json', ...s3Flags(), ...args]);
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as SnapshotListing;
}

describe('snapshot-list', () => {
  it('shows every copy on every node and in S3 with size, time and sha256 (json)', async () => {
    const listing = await listJson();
    const addresses = cluster.nodes.map((node) => node.address);
    for (const node of cluster.nodes) {
      for (const name of ['snap-a', 'snap-b']) {
        const row = listing.snapshots.find((candidate) => candidate.location === `file://${node.address}/opt/rke/etcd-snapshots/${name}`);
        const hostFile = snapshotHostPath(cluster, node, name);
        expect(row, `${name} on ${node.address}`).toMatchObject({ name, storage: 'local', node: node.address, size: statSync(hostFile).size, sha256: sha256(hostFile), createdFrom: 'modified' });
        expect(row!.nodes.sort()).toEqual([...addresses].sort());
      }
    }
    const s3Rows = listing.snapshots.filter((row) => row.storage === 's3');
    expect(s3Rows.map((row) => row.location).sort()).toEqual([`s3://etcd-backups/${FOLDER}/on-demand-n1-1714564800`, `s3://etcd-backups/${FOLDER}/snap-a`]);
    const uploaded = s3Rows.find((row) => row.name === 'snap-a')!;
    expect(uploaded.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(cluster.nodes.some((node) => sha256(snapshotHostPath(cluster, node, 'snap-a')) === uploaded.sha256)).toBe(true);
    // k3s names carry their time; .metadata/ objects are not snapshots.
    expect(s3Rows.find((row) => row.name === 'on-demand-n1-1714564800')).toMatchObject({ created: '2024-05-01T12:00:00.000Z', createdFrom: 'name' });
    expect(listing.unreachable).toEqual([]);
  });

  it('prints a table with short checksums, and yaml that parses to the same as json', async () => {
    const table = await runCli(['etcd', 'ls', '--config', config, ...s3Flags()]);
    expect(table.code, table.stderr).toBe(0);
    const lines = table.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^NAME\s+LOCATION\s+SIZE\s+CREATED\s+SHA256\s+NODES$/);
    const node = cluster.node(2);
    const row = lines.find((line) => line.includes(`file://${node.address}/opt/rke/etcd-snapshots/snap-b`))!;
    expect(row).toContain(sha256(snapshotHostPath(cluster, node, 'snap-b')).slice(0, 12));
    expect(row).toContain(` ${statSync(snapshotHostPath(cluster, node, 'snap-b')).size} `);

    const yaml = await runCli(['etcd', 'list', '--config', config, '-o', 'yaml', ...s3Flags()]);
    expect(yaml.code, yaml.stderr).toBe(0);
    const fromYaml = parseYaml(yaml.stdout) as SnapshotListing;
    const fromJson = await listJson();
    expect(fromYaml.snapshots.map((item) => [item.location, item.size, item.sha256])).toEqual(fromJson.snapshots.map((item) => [item.location, item.size, item.sha256]));
  });

  it('reports a node it cannot reach instead of hiding it, and still lists the others (exit 3)', async () => {
    const withGhost = cluster.writeClusterYml({
      file: 'ghost.yml',
      nodes: [...cluster.nodes, { address: '10.177.8.99', user: cluster.user, role: ['etcd'], ssh_key_path: cluster.sshKeyPath }],
    });
    const result = await runCli(['etcd', 'ls', '--config', withGhost, '--local-only', '--no-checksums']);
    expect(result.code).toBe(3);
    expect(result.stdout).toContain(`file://${cluster.node(1).address}/opt/rke/etcd-snapshots/snap-a`);
    expect(result.stdout).toMatch(/^UNREACHABLE node 10\.177\.8\.99: /m);
    expect(errorLines(result.stderr).join('\n')).toContain('node 10.177.8.99');
    const json = await runCli(['etcd', 'ls', '--config', withGhost, '--local-only', '--no-checksums', '-o', 'json']);
    expect((JSON.parse(json.stdout) as SnapshotListing).unreachable.map((entry) => entry.place)).toEqual(['node 10.177.8.99']);
  });
});

describe('snapshot-delete', () => {
  it('refuses names with path parts before touching anything', async () => {
    for (const name of ['../snap-a', '/opt/rke/etcd-snapshots/snap-a', '.hidden']) {
      const result = await runCli(['etcd', 'snapshot-delete', '--config', config, name]);
      expect(result.code, name).toBe(2);
      expect(result.stderr).not.toContain('Setup tunnel');
    }
    for (const node of cluster.nodes) expect(snapshotFiles(cluster, node)).toContain('snap-a');
  });

  it('deletes from every node and from S3, prints each deletion, and fails for a name that exists nowhere', async () => {
    const result = await runCli(['etcd', 'snapshot-delete', '--config', config, ...s3Flags(), 'snap-a', 'no-such-snapshot']);
    expect(result.code).toBe(1);
    for (const node of cluster.nodes) {
      expect(snapshotFiles(cluster, node)).not.toContain('snap-a');
      expect(result.stderr).toContain(`Snapshot snap-a deleted: file://${node.address}/opt/rke/etcd-snapshots/snap-a`);
      expect(await leftoverContainers(cluster, node)).toEqual([]);
    }
    expect(result.stderr).toContain(`Snapshot snap-a deleted: s3://etcd-backups/${FOLDER}/snap-a`);
    expect(s3cmd('ls', `s3://etcd-backups/${FOLDER}/`)).not.toContain('snap-a');
    expect(errorLines(result.stderr).at(-1)).toContain('not found on any etcd node or S3: no-such-snapshot');
  });

  it('NAME also removes NAME.zip; --local-only keeps S3 and --s3-only keeps the nodes', async () => {
    const saved = await runCli(['-q', 'etcd', 'snapshot-save', '--config', config, '--name', 'snap-c', ...s3Flags()]);
    expect(saved.code, saved.stderr).toBe(0);
    writeFileSync(snapshotHostPath(cluster, cluster.node(1), 'snap-c.zip'), 'zip');

    const local = await runCli(['etcd', 'snapshot-delete', '--config', config, ...s3Flags(), '--local-only', 'snap-c']);
    expect(local.code, local.stderr).toBe(0);
    for (const node of cluster.nodes) expect(snapshotFiles(cluster, node).filter((file) => file.startsWith('snap-c'))).toEqual([]);
    expect(s3cmd('ls', `s3://etcd-backups/${FOLDER}/`)).toContain('snap-c');

    const again = await runCli(['etcd', 'snapshot-delete', '--config', config, '--local-only', 'snap-c']);
    expect(again.code).toBe(1);

    const remote = await runCli(['etcd', 'snapshot-delete', '--config', config, ...s3Flags(), '--s3-only', 'snap-c']);
    expect(remote.code, remote.stderr).toBe(0);
    expect(remote.stderr).not.toContain('file://');
    expect(s3cmd('ls', `s3://etcd-backups/${FOLDER}/`)).not.toContain('snap-c');
    // k3s's sidecars are never touched.
    expect(s3cmd('ls', `s3://etcd-backups/${FOLDER}/.metadata/`)).toContain('on-demand-n1-1714564800');
    for (const node of cluster.nodes) expect(snapshotFiles(cluster, node)).toContain('snap-b');
  });
});
