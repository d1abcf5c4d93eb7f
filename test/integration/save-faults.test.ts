import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readClusterConfig } from '../../src/config/index.js';
import { silentLogger } from '../../src/log/logger.js';
import { planSave } from '../../src/plan/save.js';
import { executeSave } from '../../src/run/save.js';
import { errorLines, runCli } from '../support/cli.js';
import { type TestCluster, type TestNode, startTestCluster } from '../support/cluster.js';
import { leftoverContainers, snapshotFiles } from '../support/snapshots.js';

/**
 * Faults on one node of three: each must give one clear line naming the node, a non-zero
 * exit, no snapshot file on the failing node and no leftover container or partial file
 * anywhere. The healthy nodes still get their snapshot (RKE keeps those too).
 */
let cluster: TestCluster;
let victim: TestNode;

beforeAll(async () => {
  cluster = await startTestCluster({ name: 'faults', slot: 2, nodes: 3 });
  victim = cluster.node(2);
});

afterAll(async () => {
  await cluster?.down();
});

async function expectCleanNodes(name: string, failedNodes: TestNode[]): Promise<void> {
  for (const node of cluster.nodes) {
    expect(await leftoverContainers(cluster, node), `containers left on ${node.address}`).toEqual([]);
    const files = snapshotFiles(cluster, node);
    expect(files.filter((file) => file.includes('.part'))).toEqual([]);
    if (failedNodes.includes(node)) expect(files).not.toContain(name);
    else expect(files).toContain(name);
  }
}

function withVictim(file: string, overrides: Record<string, unknown>): string {
  return cluster.writeClusterYml({
    file,
    nodes: cluster.nodes.map((node) => (node === victim ? { node, ...overrides } : node)),
  });
}

describe('snapshot-save faults', () => {
  it('one node unreachable', async () => {
    const unreachable = `10.177.${cluster.slot}.99`;
    const config = cluster.writeClusterYml({
      file: 'unreachable.yml',
      nodes: [...cluster.nodes, { address: unreachable, user: cluster.user, role: ['etcd'], ssh_key_path: cluster.sshKeyPath }],
    });
    const result = await runCli(['etcd', 'snapshot-save', '--config', config, '--name', 'unreachable']);
    expect(result.code).toBe(3);
    expect(errorLines(result.stderr).join('\n')).toMatch(new RegExp(`node ${unreachable.replace(/\./g, '\\.')}: ssh: cannot connect to ${unreachable.replace(/\./g, '\\.')}:22: (host unreachable|connection timed out|timed out)`));
    expect(result.stderr).not.toMatch(/\n\s+at /);
    await expectCleanNodes('unreachable', []);
  });

  it('wrong SSH key', async () => {
    const result = await runCli(['etcd', 'snapshot-save', '--config', withVictim('wrong-key.yml', { ssh_key_path: cluster.wrongKeyPath }), '--name', 'wrong-key']);
    expect(result.code).toBe(3);
    expect(errorLines(result.stderr).join('\n')).toContain(`node ${victim.address}: ssh: authentication failed (user rkets, key ${cluster.wrongKeyPath})`);
    await expectCleanNodes('wrong-key', [victim]);
  });

  it('docker socket missing', async () => {
    const result = await runCli(['etcd', 'snapshot-save', '--config', withVictim('no-socket.yml', { docker_socket: '/var/run/missing.sock' }), '--name', 'no-socket']);
    expect(result.code).toBe(3);
    expect(errorLines(result.stderr).join('\n')).toContain(`node ${victim.address}: docker socket /var/run/missing.sock: no such socket`);
    await expectCleanNodes('no-socket', [victim]);
  });

  it('docker socket not allowed for the ssh user', async () => {
    const result = await runCli(['etcd', 'snapshot-save', '--config', withVictim('denied.yml', { user: cluster.noDockerUser }), '--name', 'denied']);
    expect(result.code).toBe(3);
    expect(errorLines(result.stderr).join('\n')).toContain(`node ${victim.address}: docker socket /var/run/docker.sock: permission denied`);
    await expectCleanNodes('denied', [victim]);
  });

  it('etcd stopped on one node', async () => {
    await cluster.stopEtcd(victim);
    try {
      const result = await runCli(['etcd', 'snapshot-save', '--config', cluster.writeClusterYml(), '--name', 'etcd-stopped']);
      expect(result.code).toBe(3);
      expect(errorLines(result.stderr).join('\n')).toContain(`node ${victim.address}: etcd is not running on host [${victim.address}]`);
      await expectCleanNodes('etcd-stopped', [victim]);
    } finally {
      await cluster.startEtcd(victim);
    }
  });

  it('every node failing exits 1 with RKE’s message', async () => {
    const config = cluster.writeClusterYml({ file: 'all-wrong.yml', nodes: cluster.nodes.map((node) => ({ node, ssh_key_path: cluster.wrongKeyPath })) });
    const result = await runCli(['etcd', 'snapshot-save', '--config', config, '--name', 'all-wrong']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('[etcd] Failed to take snapshot on all etcd hosts: node');
    await expectCleanNodes('all-wrong', cluster.nodes);
  });

  it('a name with ../ is refused before any node is touched', async () => {
    const result = await runCli(['etcd', 'snapshot-save', '--config', cluster.writeClusterYml(), '--name', '../escape']);
    expect(result.code).toBe(2);
    expect(errorLines(result.stderr)).toEqual(['FATA[0000] --name "../escape": a snapshot name must not contain a path separator (use a plain file name such as rke_etcd_snapshot_2024-05-01)']);
    expect(result.stderr).not.toContain('Setup tunnel');
    for (const node of cluster.nodes) expect(snapshotFiles(cluster, node).some((file) => file.includes('escape'))).toBe(false);
  });

  // A real etcd snapshot is too fast to time out reliably, so these two run the real
  // executor with the snapshot command swapped for one that writes a partial file and hangs.
  async function hangingSave(name: string, timeoutSeconds: number, signal?: AbortSignal) {
    const config = await readClusterConfig(cluster.writeClusterYml({ file: 'hang.yml', set: { system_images: { etcd: cluster.etcdImage, alpine: cluster.toolsImage } } }));
    const plan = planSave(config, { name, timeoutSeconds });
    for (const nodePlan of plan.nodes) {
      nodePlan.snapshot = {
        ...nodePlan.snapshot,
        image: cluster.toolsImage,
        entrypoint: ['sh', '-c'],
        cmd: [`echo partial > /backup/${name}.part && sleep 60`],
      };
    }
    return executeSave(config, plan, { env: process.env, log: silentLogger(), ...(signal ? { signal } : {}) });
  }

  it('a snapshot that exceeds backup_config.timeout is killed and leaves nothing behind', async () => {
    const outcome = await hangingSave('too-slow', 2);
    expect(outcome.saved).toEqual([]);
    expect(outcome.failed.map((failure) => (failure.error as Error).message)).toEqual(
      cluster.nodes.map((node) => `node ${node.address}: snapshot [too-slow] did not finish within 2s`),
    );
    await expectCleanNodes('too-slow', cluster.nodes);
  });

  it('an interrupted run kills its containers and removes partial files', async () => {
    const abort = new AbortController();
    setTimeout(() => abort.abort(new Error('interrupted by SIGINT')), 2_000);
    await expect(hangingSave('interrupted', 120, abort.signal)).rejects.toThrow();
    await expectCleanNodes('interrupted', cluster.nodes);
  });
});
