import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readClusterConfig } from '../../src/config/index.js';
import { silentLogger } from '../../src/log/logger.js';
import { nodeImages } from '../../src/plan/etcd.js';
import { planRestore } from '../../src/plan/restore.js';
import { verifyIdenticalCopies } from '../../src/run/restore-distribute.js';
import { connectEtcdNodes } from '../../src/run/restore.js';
import { type CliResult, errorLines, runCli } from '../support/cli.js';
import { type TestCluster, type TestNode, startTestCluster } from '../support/cluster.js';
import { s3cmdFor } from '../support/s3cmd.js';
import { type TestS3Server, startS3Server } from '../support/s3server.js';
import { leftoverContainers, snapshotFiles, snapshotHostPath } from '../support/snapshots.js';

/**
 * Every refusal must happen before anything is changed: etcd keeps running in the same
 * container on the same data, nothing is moved or left behind, and no node's snapshot copy
 * is replaced by a bad one.
 */
let cluster: TestCluster;
let server: TestS3Server;
let s3cmd: (...args: string[]) => string;
const marker = `restore-refusals-${Date.now()}`;

beforeAll(async () => {
  [cluster, server] = await Promise.all([startTestCluster({ name: 'rrefuse', slot: 6, nodes: 3 }), startS3Server()]);
  s3cmd = s3cmdFor(server);
  await cluster.etcdctl(cluster.node(1), 'put', '/refusals/marker', marker);
  const saved = await runCli(['etcd', 'snapshot-save', '--config', cluster.writeClusterYml(), '--name', 'good']);
  expect(saved.code, saved.stderr).toBe(0);
  await cluster.etcdctl(cluster.node(1), 'put', '/refusals/later', 'x');
  const later = await runCli(['etcd', 'snapshot-save', '--config', cluster.writeClusterYml(), '--name', 'later']);
  expect(later.code, later.stderr).toBe(0);
});

afterAll(async () => {
  await Promise.all([cluster?.down(), server?.stop()]);
});

function s3Flags(): string[] {
  return ['--s3', '--s3-endpoint', server.endpoint, '--bucket-name', server.bucket, '--access-key', server.accessKey, '--secret-key', server.secretKey];
}

async function restore(...args: string[]): Promise<CliResult> {
  return runCli(['etcd', 'snapshot-restore', '--config', cluster.writeClusterYml(), ...args]);
}

function sha256(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

interface NodeState {
  etcd: string;
  data: string[];
  snapshots: Record<string, string>;
}

async function nodeState(node: TestNode): Promise<NodeState> {
  const etcd = (await cluster.docker(node, 'inspect', '-f', '{{.Id}} {{.State.Running}} {{.State.StartedAt}}', 'etcd')).stdout.trim();
  const snapshots = Object.fromEntries(snapshotFiles(cluster, node).map((name) => [name, sha256(snapshotHostPath(cluster, node, name))]));
  return { etcd, data: readdirSync(cluster.hostPath(node, '/var/lib/etcd')).sort(), snapshots };
}

/** Runs `refusal` and checks that no node changed in any way. */
async function expectNothingChanged(refusal: () => Promise<void>): Promise<void> {
  const before = await Promise.all(cluster.nodes.map(nodeState));
  await refusal();
  const after = await Promise.all(cluster.nodes.map(nodeState));
  expect(after).toEqual(before);
  for (const [index, node] of cluster.nodes.entries()) {
    expect(before[index]!.etcd).toMatch(/ true /);
    expect(before[index]!.data).toEqual(['member']);
    expect(await leftoverContainers(cluster, node), `containers left on ${node.address}`).toEqual([]);
  }
  expect((await cluster.etcdctl(cluster.node(1), 'get', '/refusals/marker', '--print-value-only')).trim()).toBe(marker);
}

describe('snapshot-restore refuses without changing anything', () => {
  it('without --name', async () => {
    await expectNothingChanged(async () => {
      const result = await runCli(['etcd', 'snapshot-restore', '--config', cluster.writeClusterYml()]);
      expect(result.code).toBe(2);
      expect(errorLines(result.stderr)).toEqual(['FATA[0000] you must specify the snapshot name to restore (pass --name <snapshot>, a file name in /opt/rke/etcd-snapshots on the etcd nodes or an object in S3)']);
      expect(result.stderr).not.toContain('Setup tunnel');
    });
  });

  it('for an unknown name, listing the nearest names on the nodes and in S3', async () => {
    s3cmd('put', snapshotHostPath(cluster, cluster.node(1), 'good'), `s3://${server.bucket}/only-in-s3-snapshot`);
    await expectNothingChanged(async () => {
      const result = await restore('--name', 'only-in-s3-snapshoot.zip', ...s3Flags());
      expect(result.code).toBe(2);
      const line = errorLines(result.stderr).join('\n');
      expect(line).toContain('snapshot [only-in-s3-snapshoot] not found in /opt/rke/etcd-snapshots on etcd hosts [');
      expect(line).toContain(`nor in s3://${server.bucket}/only-in-s3-snapshoot[.zip]; nothing was changed (nearest existing names: only-in-s3-snapshot, `);
      expect(line).toMatch(/nearest existing names: .*\bgood\b/);
      const local = await restore('--name', 'goood');
      expect(local.code).toBe(2);
      expect(errorLines(local.stderr).join('\n')).toMatch(/snapshot \[goood\] not found .* \(nearest existing names: good\b/);
    });
  });

  it('when one etcd node cannot be reached (no silent split)', async () => {
    const unreachable = `10.177.${cluster.slot}.99`;
    const config = cluster.writeClusterYml({
      file: 'unreachable.yml',
      nodes: [...cluster.nodes, { address: unreachable, user: cluster.user, role: ['etcd'], ssh_key_path: cluster.sshKeyPath }],
    });
    await expectNothingChanged(async () => {
      const result = await runCli(['etcd', 'snapshot-restore', '--config', config, '--name', 'good']);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain(`[dialer] Failed to set up SSH tunneling for host [${unreachable}]`);
      expect(errorLines(result.stderr).pop()).toContain(`[etcd] Cannot restore: etcd host(s) [${unreachable}] cannot be reached, and restoring without them would split etcd; nothing was changed`);
    });
  });

  it('when a node lacks its etcd certificate key', async () => {
    const victim = cluster.node(2);
    const key = cluster.hostPath(victim, `/etc/kubernetes/ssl/kube-etcd-${victim.address.replace(/\./g, '-')}-key.pem`);
    renameSync(key, `${key}.hidden`);
    try {
      await expectNothingChanged(async () => {
        const result = await restore('--name', 'good');
        expect(result.code).toBe(1);
        expect(errorLines(result.stderr)[0]).toMatch(/^ERRO\[\d{4}\] /);
        expect(errorLines(result.stderr)[0]!.slice(11)).toBe(`[certificates] host [${victim.address}]: /etc/kubernetes/ssl/kube-etcd-${victim.address.replace(/\./g, '-')}-key.pem is missing`);
        expect(errorLines(result.stderr).pop()).toMatch(/\[etcd\] Failed to restore etcd snapshot: invalid certs: .*; nothing was changed/);
      });
    } finally {
      renameSync(`${key}.hidden`, key);
    }
  });

  it('when the source copy on a node has a flipped byte (the other nodes keep their own copies)', async () => {
    // The others hold another snapshot (a later revision), so they surely need node 1's copy:
    // members' snapshots of the same revision can be byte-identical.
    for (const node of cluster.nodes) copyFileSync(snapshotHostPath(cluster, node, node.index === 1 ? 'good' : 'later'), snapshotHostPath(cluster, node, 'flipped'));
    const source = snapshotHostPath(cluster, cluster.node(1), 'flipped');
    const bytes = readFileSync(source);
    const middle = Math.floor(bytes.length / 2);
    bytes[middle] = bytes[middle]! ^ 0x01;
    writeFileSync(source, bytes);
    await expectNothingChanged(async () => {
      const result = await restore('--name', 'flipped');
      expect(result.code).toBe(1);
      expect(errorLines(result.stderr).pop()).toContain(
        `the snapshot from /opt/rke/etcd-snapshots/flipped on host [${cluster.node(1).address}] is corrupted: its content does not match its sha256 trailer`,
      );
    });
  });

  it('when another node holds a corrupted copy of the same size and trailer (its trial restore refuses it)', async () => {
    // Node 1's snapshot on every node (each node's own snapshot differs a little).
    for (const node of cluster.nodes) copyFileSync(snapshotHostPath(cluster, cluster.node(1), 'good'), snapshotHostPath(cluster, node, 'flipped-on-2'));
    const damaged = snapshotHostPath(cluster, cluster.node(2), 'flipped-on-2');
    const bytes = readFileSync(damaged);
    bytes[200] = bytes[200]! ^ 0x01;
    writeFileSync(damaged, bytes);
    await expectNothingChanged(async () => {
      const result = await restore('--name', 'flipped-on-2');
      expect(result.code).toBe(1);
      const last = errorLines(result.stderr).pop();
      expect(last).toContain(`etcdctl snapshot restore failed on host(s) [${cluster.node(2).address}]`);
      expect(last).toContain('is corrupted (its content does not match its etcd sha256): delete it on that host');
    });
  });

  it('when every node holds the same corrupted copy (etcdctl snapshot restore refuses it on each)', async () => {
    const bytes = readFileSync(snapshotHostPath(cluster, cluster.node(1), 'good'));
    bytes[100] = bytes[100]! ^ 0x01;
    for (const node of cluster.nodes) writeFileSync(snapshotHostPath(cluster, node, 'flipped-everywhere'), bytes);
    await expectNothingChanged(async () => {
      const result = await restore('--name', 'flipped-everywhere');
      expect(result.code).toBe(1);
      expect(result.stderr).toContain('[etcd] Checking if all snapshots are identical');
      expect(errorLines(result.stderr).pop()).toMatch(/etcdctl snapshot restore failed on host\(s\) \[.*\]: .*expected sha256.*; etcd was not touched, nothing was changed/);
    });
  });

  it('when the snapshot in S3 has a flipped byte', async () => {
    s3cmd('put', snapshotHostPath(cluster, cluster.node(2), 'good'), `s3://${server.bucket}/s3-flipped`);
    const object = server.objectFile('s3-flipped');
    const bytes = readFileSync(object);
    bytes[bytes.length - 40] = bytes[bytes.length - 40]! ^ 0x01;
    writeFileSync(object, bytes);
    await expectNothingChanged(async () => {
      const result = await restore('--name', 's3-flipped', ...s3Flags());
      expect(result.code).toBe(1);
      expect(errorLines(result.stderr).pop()).toContain(`the snapshot from s3://${server.bucket}/s3-flipped is corrupted`);
    });
    for (const node of cluster.nodes) expect(snapshotFiles(cluster, node).filter((file) => file.includes('s3-flipped'))).toEqual([]);
  });

  it('when the copies on the nodes differ (the check run before anything destructive)', async () => {
    const config = await readClusterConfig(cluster.writeClusterYml());
    const plan = planRestore(config, { name: 'differ', now: new Date() });
    // Two valid snapshots of different moments: node 1 has one, nodes 2 and 3 the other.
    for (const node of cluster.nodes) copyFileSync(snapshotHostPath(cluster, node, node.index === 1 ? 'good' : 'later'), snapshotHostPath(cluster, node, 'differ'));
    const sourceBytes = readFileSync(snapshotHostPath(cluster, cluster.node(1), 'differ'));
    const expected = { size: sourceBytes.length, trailer: sourceBytes.subarray(-32).toString('hex') };
    await expectNothingChanged(async () => {
      const sessions = await connectEtcdNodes(config, plan, { env: process.env, log: silentLogger(), now: () => new Date(), retryCommand: '' });
      try {
        const images = nodeImages(config);
        await expect(verifyIdenticalCopies(sessions, 'differ', expected, images, silentLogger())).rejects.toThrow(
          new RegExp(
            `etcd snapshots are not consistent: host \\[${cluster.node(2).address}\\] has \\[[0-9a-f]{64}\\] \\(\\d+ bytes\\), ` +
              `host \\[${cluster.node(3).address}\\] has \\[[0-9a-f]{64}\\] \\(\\d+ bytes\\), expected \\[${expected.trailer}\\] \\(${expected.size} bytes\\); nothing was changed`,
          ),
        );
      } finally {
        for (const session of sessions) session.close();
      }
    });
    expect(existsSync(snapshotHostPath(cluster, cluster.node(2), 'differ'))).toBe(true);
  });
});
