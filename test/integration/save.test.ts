import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorLines, runCli } from '../support/cli.js';
import { type TestCluster, startTestCluster } from '../support/cluster.js';
import { fileContains, leftoverContainers, snapshotFiles, snapshotHostPath, snapshotStatus } from '../support/snapshots.js';

let cluster: TestCluster;
const marker = `value-written-before-save-${Date.now()}`;

beforeAll(async () => {
  cluster = await startTestCluster({ name: 'save', slot: 1, nodes: 3 });
  await cluster.etcdctl(cluster.node(1), 'put', '/registry/test/before', marker);
});

afterAll(async () => {
  await cluster?.down();
});

async function expectNoLeftovers(): Promise<void> {
  for (const node of cluster.nodes) {
    expect(await leftoverContainers(cluster, node), `containers left on ${node.address}`).toEqual([]);
    expect(snapshotFiles(cluster, node).filter((file) => file.endsWith('.part'))).toEqual([]);
  }
}

describe('snapshot-save on a 3-node cluster', () => {
  it.each(['distroless', 'shell'] as const)('writes the same valid snapshot on every etcd node (%s etcd image)', async (flavor) => {
    const name = `snap-${flavor}`;
    const config = cluster.writeClusterYml({ file: `${flavor}.yml`, set: { system_images: { etcd: cluster.etcdImages[flavor], alpine: cluster.toolsImage } } });
    const result = await runCli(['etcd', 'snapshot-save', '--config', config, '--name', name]);
    expect(result.stderr).toContain(`Finished saving snapshot [${name}] on all etcd hosts`);
    expect(result.code).toBe(0);
    for (const node of cluster.nodes) {
      expect(result.stderr).toContain(`[etcd] Saving snapshot [${name}] on host [${node.address}]`);
      const file = snapshotHostPath(cluster, node, name);
      const status = await snapshotStatus(file);
      expect(status.totalKey).toBeGreaterThan(0);
      expect(fileContains(file, marker), `marker in snapshot of ${node.address}`).toBe(true);
    }
    await expectNoLeftovers();
  });

  it('prints RKE’s warning and default name when --name is missing', async () => {
    const result = await runCli(['etcd', 'snapshot-save', '--config', cluster.writeClusterYml()]);
    expect(result.code).toBe(0);
    const name = /Name of the snapshot is not specified, using \[(rke_etcd_snapshot_[^\]]+)\]/.exec(result.stderr)?.[1];
    expect(name).toBeDefined();
    for (const node of cluster.nodes) expect(snapshotFiles(cluster, node)).toContain(name);
  });

  it('writes JSON log lines with --log-format json', async () => {
    const result = await runCli(['--log-format', 'json', 'etcd', 'snapshot-save', '--config', cluster.writeClusterYml(), '--name', 'json-logs']);
    expect(result.code).toBe(0);
    const records = result.stderr.trim().split('\n').map((line) => JSON.parse(line) as { level: number; msg: string });
    expect(records.map((record) => record.msg)).toContain('Finished saving snapshot [json-logs] on all etcd hosts');
  });

  it('prints nothing but errors with --quiet', async () => {
    const result = await runCli(['--quiet', 'etcd', 'snapshot-save', '--config', cluster.writeClusterYml(), '--name', 'quiet']);
    expect(result.code).toBe(0);
    expect(result.stderr).toBe('');
  });
});

describe('ways to reach the nodes', () => {
  it('authenticates with an inline ssh_key', async () => {
    const key = readFileSync(cluster.sshKeyPath, 'utf8');
    const config = cluster.writeClusterYml({
      file: 'inline-key.yml',
      nodes: cluster.nodes.map((node) => ({ node, ssh_key_path: undefined, ssh_key: key })),
    });
    const result = await runCli(['etcd', 'snapshot-save', '--config', config, '--name', 'inline-key']);
    expect(result.code, result.stderr).toBe(0);
  });

  it('authenticates with the SSH agent when ssh_agent_auth is set', async () => {
    const agentDir = path.join(cluster.stateDir, 'agent');
    execFileSync('mkdir', ['-p', agentDir]);
    const socket = path.join(agentDir, 'agent.sock');
    const agent = spawn('ssh-agent', ['-D', '-a', socket], { stdio: 'ignore' });
    try {
      for (let i = 0; i < 50; i++) {
        try {
          execFileSync('ssh-add', [cluster.sshKeyPath], { env: { ...process.env, SSH_AUTH_SOCK: socket }, stdio: 'ignore' });
          break;
        } catch {
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
      const config = cluster.writeClusterYml({
        file: 'agent.yml',
        nodes: cluster.nodes.map((node) => ({ node, ssh_key_path: '/nonexistent/key' })),
        set: { ssh_agent_auth: true },
      });
      const result = await runCli(['etcd', 'snapshot-save', '--config', config, '--name', 'agent'], { env: { SSH_AUTH_SOCK: socket } });
      expect(result.code, result.stderr).toBe(0);
    } finally {
      agent.kill();
    }
  });

  it('authenticates with an SSH user certificate (ssh_cert_path)', async () => {
    const config = cluster.writeClusterYml({
      file: 'cert.yml',
      nodes: cluster.nodes.map((node) => ({ node, ssh_key_path: cluster.certKeyPath, ssh_cert_path: cluster.certPath })),
    });
    const result = await runCli(['etcd', 'snapshot-save', '--config', config, '--name', 'ssh-cert']);
    expect(result.code, result.stderr).toBe(0);
    for (const node of cluster.nodes) expect(snapshotFiles(cluster, node)).toContain('ssh-cert');
  });

  it('goes through bastion_host', async () => {
    const bastion = cluster.node(1);
    const config = cluster.writeClusterYml({
      file: 'bastion.yml',
      set: { bastion_host: { address: bastion.address, user: cluster.user, ssh_key_path: cluster.sshKeyPath } },
    });
    const result = await runCli(['--debug', 'etcd', 'snapshot-save', '--config', config, '--name', 'via-bastion']);
    expect(result.code, result.stderr).toBe(0);
    for (const node of cluster.nodes) expect(snapshotFiles(cluster, node)).toContain('via-bastion');
  });

  it('checks host keys against --known-hosts and refuses a changed key', async () => {
    const config = cluster.writeClusterYml();
    const ok = await runCli(['etcd', 'snapshot-save', '--config', config, '--name', 'known-hosts', '--known-hosts', cluster.knownHostsPath]);
    expect(ok.code, ok.stderr).toBe(0);

    const tampered = path.join(cluster.stateDir, 'known_hosts.tampered');
    const lines = readFileSync(cluster.knownHostsPath, 'utf8').split('\n');
    const victim = cluster.node(2).address;
    const otherKey = lines.find((line) => line.startsWith(`${cluster.node(1).address} `))!.split(' ').slice(1).join(' ');
    writeFileSync(tampered, lines.map((line) => (line.startsWith(`${victim} `) ? `${victim} ${otherKey}` : line)).join('\n'));
    const bad = await runCli(['etcd', 'snapshot-save', '--config', config, '--name', 'tampered', '--known-hosts', tampered]);
    expect(bad.code).toBe(3);
    expect(errorLines(bad.stderr).join('\n')).toContain(`node ${victim}: ssh: host key does not match the known_hosts file`);
    expect(snapshotFiles(cluster, cluster.node(2))).not.toContain('tampered');
  });
});
