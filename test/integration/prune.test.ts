/**
 * snapshot-prune and snapshot-save --retention on a real 3-node cluster and S3 server.
 * Snapshot files are planted straight into the nodes' directories (names and mtimes chosen
 * by the test); the commands see them like any snapshot.
 */
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatRfc3339 } from '../../src/plan/names.js';
import { runCli } from '../support/cli.js';
import { type TestCluster, type TestNode, startTestCluster } from '../support/cluster.js';
import { s3cmdFor } from '../support/s3cmd.js';
import { type TestS3Server, startS3Server } from '../support/s3server.js';
import { leftoverContainers, snapshotFiles, snapshotHostPath } from '../support/snapshots.js';

let cluster: TestCluster;
let server: TestS3Server;
let s3cmd: (...args: string[]) => string;
let config: string;
const FOLDER = 'backups/rke';
const day = 24 * 3_600_000;

beforeAll(async () => {
  [cluster, server] = await Promise.all([startTestCluster({ name: 'lifeprune', slot: 9, nodes: 3 }), startS3Server({ buckets: ['etcd-backups'] })]);
  s3cmd = s3cmdFor(server);
  config = cluster.writeClusterYml();
});

afterAll(async () => {
  await Promise.all([cluster?.down(), server?.stop()]);
  rmSync(scratch, { recursive: true, force: true });
});

function s3Flags(): string[] {
  return ['--s3', '--s3-endpoint', server.endpoint, '--bucket-name', 'etcd-backups', '--access-key', server.accessKey, '--secret-key', server.secretKey, '--folder', FOLDER];
}

function plant(node: TestNode, names: string[], modified = new Date('2020-01-01T00:00:00Z')): void {
  for (const name of names) {
    const file = snapshotHostPath(cluster, node, name);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, `planted ${name}`);
    utimesSync(file, modified, modified);
  }
}

const scratch = mkdtempSync(path.join(tmpdir(), 'rke-ts-prune-'));
function plantS3(keys: string[]): void {
  const file = path.join(scratch, 'object');
  writeFileSync(file, 'planted object');
  for (const key of keys) s3cmd('put', file, `s3://etcd-backups/${key}`);
}

function s3Keys(): string[] {
  return s3cmd('ls', '--recursive', 's3://etcd-backups/')
    .trim()
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => line.slice(line.indexOf('s3://etcd-backups/') + 's3://etcd-backups/'.length))
    .sort();
}

const rke = (date: string) => `rke_etcd_snapshot_${date}`;
const recurring = (time: number) => `${formatRfc3339(new Date(time), 0)}_etcd`;

/** Names no prune of rke_etcd_snapshot_ may touch. */
const BYSTANDERS = ['before-upgrade', 'pki.bundle.tar.gz', '2024-05-01T00:00:00Z_etcd', '.rke-ts-incoming-rke_etcd_snapshot_2024-01-01T00:00:00Z.zip', `${rke('2019-01-01T00:00:00Z')}.part`];

describe('snapshot-prune', () => {
  it('keeps the newest N on each node and in S3 separately, touches nothing else, and --dry-run deletes nothing', async () => {
    const [n1, n2, n3] = [cluster.node(1), cluster.node(2), cluster.node(3)];
    plant(n1, [rke('2024-05-01T00:00:00Z'), rke('2024-05-02T00:00:00+02:00'), `${rke('2024-05-03T00:00:00Z')}.zip`, rke('2024-05-04T00:00:00Z'), ...BYSTANDERS]);
    plant(n2, [rke('2024-05-01T00:00:00Z'), rke('2024-05-02T00:00:00Z'), ...BYSTANDERS]);
    plant(n3, [rke('2024-04-01T00:00:00Z'), rke('2024-04-02T00:00:00Z'), rke('2024-04-03T00:00:00Z'), ...BYSTANDERS]);
    // The name without a timestamp falls back to its mtime: recent, so it is among the kept.
    plant(n3, ['rke_etcd_snapshot_manual'], new Date());
    plantS3([
      `${FOLDER}/${rke('2024-05-01T00:00:00Z')}.zip`,
      `${FOLDER}/${rke('2024-05-02T00:00:00Z')}.zip`,
      `${FOLDER}/${rke('2024-05-03T00:00:00Z')}.zip`,
      `${FOLDER}/2024-05-01T00:00:00Z_etcd.zip`,
      `${FOLDER}/.metadata/${rke('2024-01-01T00:00:00Z')}`,
      `${FOLDER}/.hidden/${rke('2024-01-01T00_00_00Z')}.zip.abc`,
      `other/${rke('2024-01-01T00:00:00Z')}`,
    ]);
    const before = { nodes: cluster.nodes.map((node) => snapshotFiles(cluster, node)), s3: s3Keys() };

    const dry = await runCli(['etcd', 'snapshot-prune', '--config', config, ...s3Flags(), '--retention', '2', '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    expect({ nodes: cluster.nodes.map((node) => snapshotFiles(cluster, node)), s3: s3Keys() }).toEqual(before);
    expect(dry.stdout).toContain('retention=2 with prefix "rke_etcd_snapshot_"');
    const wouldRemove = dry.stdout.split('\n').filter((line) => line.startsWith('would remove ')).map((line) => line.slice('would remove '.length)).sort();
    const expected = [
      `file://${n1.address}/opt/rke/etcd-snapshots/${rke('2024-05-01T00:00:00Z')}`,
      `file://${n1.address}/opt/rke/etcd-snapshots/${rke('2024-05-02T00:00:00+02:00')}`,
      `file://${n3.address}/opt/rke/etcd-snapshots/${rke('2024-04-01T00:00:00Z')}`,
      `file://${n3.address}/opt/rke/etcd-snapshots/${rke('2024-04-02T00:00:00Z')}`,
      `s3://etcd-backups/${FOLDER}/${rke('2024-05-01T00:00:00Z')}.zip`,
    ].sort();
    expect(wouldRemove).toEqual(expected);

    const real = await runCli(['etcd', 'snapshot-prune', '--config', config, ...s3Flags(), '--retention', '2']);
    expect(real.code, real.stderr).toBe(0);
    expect(real.stderr).toContain('Applying snapshot retention=2 with prefix "rke_etcd_snapshot_"');
    for (const location of expected) expect(real.stderr).toMatch(new RegExp(`Removed (local|S3) snapshot ${location.replace(/[.+]/g, '\\$&')}`));
    expect(snapshotFiles(cluster, n1)).toEqual([...BYSTANDERS, `${rke('2024-05-03T00:00:00Z')}.zip`, rke('2024-05-04T00:00:00Z')].sort());
    expect(snapshotFiles(cluster, n2)).toEqual([...BYSTANDERS, rke('2024-05-01T00:00:00Z'), rke('2024-05-02T00:00:00Z')].sort());
    expect(snapshotFiles(cluster, n3)).toEqual([...BYSTANDERS, rke('2024-04-03T00:00:00Z'), 'rke_etcd_snapshot_manual'].sort());
    expect(s3Keys()).toEqual(before.s3.filter((key) => key !== `${FOLDER}/${rke('2024-05-01T00:00:00Z')}.zip`));
    for (const node of cluster.nodes) expect(await leftoverContainers(cluster, node)).toEqual([]);
  });

  it('prunes recurring <timestamp>_etcd names by age (RKE legacy retention), never the newest', async () => {
    const now = Date.now();
    const [n1, n2, n3] = [cluster.node(1), cluster.node(2), cluster.node(3)];
    // Each node also holds the planted 2024-05-01T00:00:00Z_etcd from the first test.
    plant(n1, [recurring(now - 1 * day), recurring(now - 5 * day), `${recurring(now - 10 * day)}.zip`]);
    plant(n2, [recurring(now - 20 * day), recurring(now - 30 * day)]);
    const result = await runCli(['etcd', 'prune', '--config', config, '--recurring', '--max-age', '72h']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain('max-age=72h with recurring names <timestamp>_etcd');
    const recurringOn = (node: TestNode) => snapshotFiles(cluster, node).filter((file) => /^\d{4}-.*_etcd(\.zip)?$/.test(file));
    expect(recurringOn(n1)).toEqual([recurring(now - 1 * day)]);
    expect(recurringOn(n2)).toEqual([recurring(now - 20 * day)]);
    // Old, but the newest recurring snapshot of node 3.
    expect(recurringOn(n3)).toEqual(['2024-05-01T00:00:00Z_etcd']);
    expect(snapshotFiles(cluster, n1)).toContain('before-upgrade');
  });

  it('takes k3s names with --name PREFIX and k3s’s spelling of the count', async () => {
    const node = cluster.node(3);
    plant(node, ['on-demand-n3-1714564800', 'on-demand-n3-1714568400.zip', 'on-demand-n3-1714572000', 'etcd-snapshot-n3-1714500000']);
    const result = await runCli(['etcd', 'snapshot-prune', '--config', config, '--local-only', '--name', 'on-demand', '--etcd-snapshot-retention', '1']);
    expect(result.code, result.stderr).toBe(0);
    const k3sFiles = snapshotFiles(cluster, node).filter((file) => /-n3-/.test(file));
    expect(k3sFiles).toEqual(['etcd-snapshot-n3-1714500000', 'on-demand-n3-1714572000']);
  });
});

describe('snapshot-save --retention (cron)', () => {
  it('prunes after each successful save, on the nodes and in S3', async () => {
    for (let run = 0; run < 3; run++) {
      // Default names have one-second resolution.
      await new Promise((resolve) => setTimeout(resolve, 1100));
      const result = await runCli(['-q', 'etcd', 'snapshot-save', '--config', config, ...s3Flags(), '--retention', '2']);
      expect(result.code, result.stderr).toBe(0);
      expect(result.stderr).toBe('');
    }
    const current = new Date().getFullYear();
    for (const node of cluster.nodes) {
      const recent = snapshotFiles(cluster, node).filter((file) => file.startsWith(`rke_etcd_snapshot_${current}`));
      expect(recent, node.address).toHaveLength(2);
      // The older planted rke_etcd_snapshot_ files were the oldest: gone.
      expect(snapshotFiles(cluster, node).filter((file) => /^rke_etcd_snapshot_2024/.test(file))).toEqual([]);
      expect(snapshotFiles(cluster, node)).toContain('before-upgrade');
    }
    expect(s3Keys().filter((key) => key.startsWith(`${FOLDER}/rke_etcd_snapshot_`))).toHaveLength(2);
  });

  it('does not prune when the save failed on a node', async () => {
    for (const node of cluster.nodes) plant(node, [rke('2023-01-01T00:00:00Z')]);
    await cluster.stopEtcd(cluster.node(3));
    try {
      const result = await runCli(['etcd', 'snapshot-save', '--config', config, '--retention', '1']);
      expect(result.code).toBe(3);
      expect(result.stderr).not.toContain('Applying snapshot retention');
      for (const node of cluster.nodes) expect(snapshotFiles(cluster, node)).toContain(rke('2023-01-01T00:00:00Z'));
    } finally {
      await cluster.startEtcd(cluster.node(3));
    }
  });
});
