/**
 * Smoke test of the test cluster itself (test/cluster/cluster.sh): if this fails, every other
 * integration test will too, and this one says why.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { type TestCluster, startTestCluster } from '../support/cluster.js';

describe('test cluster', () => {
  let cluster: TestCluster;

  beforeAll(async () => {
    cluster = await startTestCluster({ name: 'smoke', slot: 1, nodes: 3 });
  });

  afterAll(async () => {
    await cluster?.down();
  });

  it('runs a healthy 3-member etcd cluster', async () => {
    const health = await cluster.etcdctl(cluster.node(1), 'endpoint', 'health', '--cluster', '-w', 'json');
    const endpoints = JSON.parse(health) as Array<{ endpoint: string; health: boolean }>;
    expect(endpoints.map((e) => e.endpoint).sort()).toEqual(cluster.nodes.map((n) => `https://${n.address}:2379`).sort());
    expect(endpoints.every((e) => e.health)).toBe(true);

    const members = await cluster.etcdctl(cluster.node(2), 'member', 'list');
    for (const node of cluster.nodes) expect(members).toContain(node.etcdName);
  });

  it('replicates a key written through node 1 to node 3', async () => {
    await cluster.etcdctl(cluster.node(1), 'put', 'smoke-key', 'smoke-value');
    const value = await cluster.etcdctl(cluster.node(3), 'get', 'smoke-key', '--print-value-only');
    expect(value.trim()).toBe('smoke-value');
  });

  it('runs etcd as RKE does and keeps node directories private', async () => {
    const node = cluster.node(1);
    const inspect = await cluster.docker(node, 'inspect', 'etcd', '--format', '{{json .HostConfig.Binds}} {{.HostConfig.NetworkMode}}');
    expect(inspect.code).toBe(0);
    expect(inspect.stdout).toContain('/var/lib/etcd:/var/lib/rancher/etcd:z');
    expect(inspect.stdout).toContain('host');
    // The node's /etc/kubernetes/ssl is under node.root on the host.
    const cert = cluster.hostPath(node, `/etc/kubernetes/ssl/kube-etcd-${node.address.replaceAll('.', '-')}.pem`);
    expect(existsSync(cert)).toBe(true);
    expect(cluster.hostPath(node, '/var/run/docker.sock')).toBe(node.dockerSocket);
  });

  it('accepts ssh with the cluster key (and a certificate), refuses the wrong key', async () => {
    const node = cluster.node(2);
    const ok = await cluster.ssh(node, 'id -nG; docker ps --format "{{.Names}}"');
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/\bdocker\b/);
    expect(ok.stdout).toMatch(/^etcd$/m);

    const withCert = await cluster.ssh(node, 'echo cert', { keyPath: cluster.certKeyPath, certPath: cluster.certPath });
    expect(withCert.stdout.trim()).toBe('cert');

    const wrong = await cluster.ssh(node, 'true', { keyPath: cluster.wrongKeyPath });
    expect(wrong.code).toBe(255);
    expect(wrong.stderr).toMatch(/Permission denied/);

    const noDocker = await cluster.ssh(node, 'docker ps', { user: cluster.noDockerUser });
    expect(noDocker.code).not.toBe(0);
    expect(noDocker.stderr).toMatch(/permission denied/i);
  });

  it("reaches the node's docker.sock through ssh stream-local forwarding", async () => {
    const node = cluster.node(2);
    const socket = `/tmp/rke-ts-smoke-${process.pid}.sock`;
    rmSync(socket, { force: true });
    const ssh = spawn('ssh', [
      '-N', '-F', '/dev/null',
      '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
      '-o', 'ExitOnForwardFailure=yes', '-o', 'LogLevel=ERROR',
      '-i', cluster.sshKeyPath,
      '-L', `${socket}:/var/run/docker.sock`,
      `${cluster.user}@${node.address}`,
    ], { stdio: 'ignore' });
    try {
      for (let i = 0; i < 100 && !existsSync(socket); i++) await sleep(100);
      expect(existsSync(socket)).toBe(true);
      const names = execFileSync('docker', ['-H', `unix://${socket}`, 'ps', '--format', '{{.Names}}'], { encoding: 'utf8' });
      expect(names.trim()).toBe('etcd');
    } finally {
      ssh.kill();
      rmSync(socket, { force: true });
    }
  });

  it('has both etcd images and the tools image; the distroless one has no shell', async () => {
    const node = cluster.node(3);
    const noShell = await cluster.docker(node, 'run', '--rm', cluster.etcdImages.distroless, '/bin/sh', '-c', 'true');
    expect(noShell.code).not.toBe(0);
    expect(noShell.stderr).toMatch(/no such file or directory/);
    const etcdctl = await cluster.docker(node, 'run', '--rm', cluster.etcdImages.distroless, 'etcdctl', 'version');
    expect(etcdctl.stdout).toContain('etcdctl version: 3.4');
    const shell = await cluster.docker(node, 'run', '--rm', cluster.etcdImages.shell, 'sh', '-c', 'sha256sum /usr/local/bin/etcd >/dev/null && echo ok');
    expect(shell.stdout.trim()).toBe('ok');
    const tools = await cluster.docker(node, 'run', '--rm', cluster.toolsImage, 'tar', '--help');
    expect(tools.code).toBe(0);
  });

  it('writes a cluster.yml for the etcd nodes', () => {
    const file = cluster.writeClusterYml();
    const doc = parse(readFileSync(file, 'utf8')) as {
      nodes: Array<Record<string, unknown>>;
      system_images: Record<string, string>;
    };
    expect(doc.nodes).toHaveLength(3);
    expect(doc.nodes[0]).toMatchObject({ address: cluster.node(1).address, port: '22', user: 'rkets', role: ['etcd'] });
    expect(doc.system_images).toEqual({ etcd: cluster.etcdImage, alpine: cluster.toolsImage });
  });
});
