import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import yazl from 'yazl';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliResult, errorLines, runCli } from '../support/cli.js';
import { type TestCluster, type TestNode, startTestCluster } from '../support/cluster.js';
import { leftoverContainers, snapshotHostPath } from '../support/snapshots.js';

/** Restores on a real 3-node cluster: local snapshots, an RKE zip with its state file, both etcd images, prefix_path. */
let cluster: TestCluster;

beforeAll(async () => {
  cluster = await startTestCluster({ name: 'restore', slot: 5, nodes: 3 });
});

afterAll(async () => {
  await cluster?.down();
});

async function cli(...args: string[]): Promise<CliResult> {
  return runCli(['etcd', ...args]);
}

async function get(node: TestNode, key: string): Promise<string> {
  return (await cluster.etcdctl(node, 'get', key, '--print-value-only')).trim();
}

async function revisions(): Promise<number[]> {
  const status = JSON.parse(await cluster.etcdctl(cluster.node(1), 'endpoint', 'status', '--cluster', '-w', 'json')) as Array<{ Status: { header: { revision: number } } }>;
  return status.map((entry) => entry.Status.header.revision);
}

function sha256(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

/** Work directories of a run must never stay behind. */
function workDirs(node: TestNode, dataDir = '/var/lib/etcd'): string[] {
  const dir = cluster.hostPath(node, dataDir);
  return existsSync(dir) ? readdirSync(dir).filter((entry) => entry.startsWith('etcd-restore-')) : [];
}

async function expectCleanNodes(): Promise<void> {
  for (const node of cluster.nodes) {
    expect(await leftoverContainers(cluster, node), `containers left on ${node.address}`).toEqual([]);
    expect(workDirs(node)).toEqual([]);
  }
}

function oldDataPaths(stderr: string): Map<string, string> {
  return new Map([...stderr.matchAll(/Moved old etcd data on host \[([\d.]+)\] to \[([^\]]+)\]/g)].map((match) => [match[1]!, match[2]!]));
}

describe('snapshot-restore on a 3-node cluster', () => {
  it('brings back the keys of the snapshot, drops later ones, and keeps the old data', async () => {
    const node = cluster.node(1);
    await cluster.etcdctl(node, 'put', '/restore/before', 'v1');
    const saved = await cli('snapshot-save', '--config', cluster.writeClusterYml(), '--name', 'base');
    expect(saved.code, saved.stderr).toBe(0);
    await cluster.etcdctl(node, 'put', '/restore/after', 'v2');
    await cluster.etcdctl(node, 'put', '/restore/before', 'changed');

    // RKE's recurring snapshots would snapshot mid-restore: the restore removes them.
    const rolling = await cluster.docker(node, 'run', '-d', '--name', 'etcd-rolling-snapshots', '--network', 'none', cluster.toolsImage, 'sleep', '3600');
    expect(rolling.code, rolling.stderr).toBe(0);

    const result = await cli('snapshot-restore', '--config', cluster.writeClusterYml(), '--name', 'base');
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain(`Recurring snapshots (etcd-rolling-snapshots) were stopped on host(s) [${node.address}]; \`rke up\` starts them again.`);
    for (const line of ['Starting restore on etcd hosts', '[etcd] Checking if all snapshots are identical', '[etcd] Building up etcd plane..', '[etcd] Successfully started etcd plane..', 'Finished restoring on all etcd hosts']) {
      expect(result.stderr).toContain(line);
    }
    for (const member of cluster.nodes) {
      expect(result.stderr).toContain(`[etcd] Restoring [base] snapshot on etcd host [${member.address}]`);
      expect(result.stderr).toContain(`[etcd] Successfully started [etcd-restore] container on host [${member.address}]`);
      expect(result.stderr).toMatch(new RegExp(`\\[etcd\\] Checksum of etcd snapshot on host \\[${member.address.replace(/\./g, '\\.')}\\] is \\[[0-9a-f]{64}\\]`));
      expect(await get(member, '/restore/before')).toBe('v1');
      expect(await get(member, '/restore/after')).toBe('');
    }
    expect(new Set(await revisions()).size).toBe(1);
    expect(result.stdout).toContain('docker restart kube-apiserver kubelet kube-controller-manager kube-scheduler kube-proxy');

    // The test nodes' /var/lib/etcd is a mount point: the old member/ stays on that mount.
    const old = oldDataPaths(result.stderr);
    expect(old.size).toBe(3);
    for (const member of cluster.nodes) {
      const oldData = old.get(member.address)!;
      expect(oldData).toMatch(/^\/var\/lib\/etcd\/etcd-old-\d+\/member$/);
      expect(existsSync(path.join(cluster.hostPath(member, oldData), 'snap'))).toBe(true);
      expect(result.stdout).toContain(`host [${member.address}]: old data kept in ${oldData}`);
    }
    const sums = cluster.nodes.map((member) => sha256(snapshotHostPath(cluster, member, 'base')));
    expect(new Set(sums).size).toBe(1);
    await expectCleanNodes();
  });

  it('restores an RKE zip found on one node only (--name X.zip), with the distroless etcd image, and installs its state file', async () => {
    const node = cluster.node(1);
    await cluster.etcdctl(node, 'put', '/restore/zipped', 'yes');
    const config = cluster.writeClusterYml({ file: 'zip.yml', set: { system_images: { etcd: cluster.etcdImages.distroless, alpine: cluster.toolsImage } } });
    expect((await cli('snapshot-save', '--config', config, '--name', 'raw-for-zip')).code).toBe(0);
    await cluster.etcdctl(node, 'put', '/restore/zipped', 'later');

    const state = JSON.stringify({ currentState: { rkeConfig: { nodes: [] } }, note: 'from the zip' });
    const zip = new yazl.ZipFile();
    // rke-tools' layout; yazl refuses absolute names, so same-length stand-ins are patched below.
    zip.addReadStream(Readable.from([readFileSync(snapshotHostPath(cluster, node, 'raw-for-zip'))]), 'Xbackup/rkezip');
    zip.addReadStream(Readable.from([Buffer.from(state)]), 'Xetc/kubernetes/rkezip.rkestate');
    zip.end();
    const parts: Buffer[] = [];
    for await (const part of zip.outputStream) parts.push(part as Buffer);
    const bytes = Buffer.from(Buffer.concat(parts).toString('latin1').replaceAll('Xbackup/', '/backup/').replaceAll('Xetc/kubernetes/', '/etc/kubernetes/'), 'latin1');
    writeFileSync(snapshotHostPath(cluster, node, 'rkezip.zip'), bytes);
    const stateFile = path.join(cluster.stateDir, 'zip.rkestate');
    writeFileSync(stateFile, '{"old":true}');

    const result = await cli('snapshot-restore', '--config', config, '--name', 'rkezip.zip');
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain('WARN[0000] Snapshot name [rkezip.zip] ends in .zip');
    expect(result.stderr).toContain(`[etcd] Copying snapshot [rkezip] from /opt/rke/etcd-snapshots/rkezip.zip on host [${node.address}] to etcd hosts [${cluster.nodes.map((n) => n.address).join(', ')}]`);
    for (const member of cluster.nodes) {
      expect(await get(member, '/restore/zipped')).toBe('yes');
      expect(sha256(snapshotHostPath(cluster, member, 'rkezip'))).toBe(sha256(snapshotHostPath(cluster, node, 'raw-for-zip')));
      const image = await cluster.docker(member, 'inspect', '-f', '{{.Config.Image}}', 'etcd');
      expect(image.stdout.trim()).toBe(cluster.etcdImages.distroless);
    }
    expect(readFileSync(stateFile, 'utf8')).toBe(state);
    const backups = readdirSync(cluster.stateDir).filter((file) => /^zip\.rkestate\.\d+\.bak$/.test(file));
    expect(backups).toHaveLength(1);
    expect(readFileSync(path.join(cluster.stateDir, backups[0]!), 'utf8')).toBe('{"old":true}');
    expect(result.stdout).toContain(`State file ${stateFile} written from the snapshot`);
    await expectCleanNodes();
  });

  it('stops when the swap fails on one node, reports every node and the retry command, and the retry completes', async () => {
    const victim = cluster.node(3);
    const now = Math.floor(Date.now() / 1000);
    // A directory in the way of the old-data rename makes the swap fail on this node only.
    const blockers = Array.from({ length: 120 }, (_, offset) => cluster.hostPath(victim, `/var/lib/etcd/etcd-old-${now - 5 + offset}`));
    for (const dir of blockers) mkdirSync(dir, { recursive: true });
    const config = cluster.writeClusterYml({ file: 'failing.yml' });
    const failed = await cli('snapshot-restore', '--config', config, '--name', 'base');
    for (const dir of blockers) rmSync(dir, { recursive: true, force: true });

    expect(failed.code, failed.stderr).toBe(3);
    const errors = errorLines(failed.stderr);
    expect(errors[0]).toMatch(new RegExp(`\\[etcd\\] swapping in the restored data failed on host \\[${victim.address}\\]: .*File exists`));
    for (const member of cluster.nodes.slice(0, 2)) {
      expect(errors).toContainEqual(expect.stringMatching(new RegExp(`host \\[${member.address}\\]: restored data in /var/lib/etcd \\(old data in /var/lib/etcd/etcd-old-\\d+/member\\); etcd NOT started`)));
    }
    expect(errors).toContainEqual(expect.stringContaining(`host [${victim.address}]: etcd stopped (container kept), data untouched in /var/lib/etcd`));
    const retry = /To retry: (rke-ts .*)$/m.exec(failed.stderr)?.[1];
    expect(retry).toBe(`rke-ts etcd snapshot-restore --config ${config} --name base`);
    expect(errors.pop()).toContain('the state of every etcd host is listed above');

    const again = await runCli(retry!.split(' ').slice(1));
    expect(again.code, again.stderr).toBe(0);
    for (const member of cluster.nodes) expect(await get(member, '/restore/before')).toBe('v1');
    expect(new Set(await revisions()).size).toBe(1);
    await expectCleanNodes();
  });

  it('with prefix_path and the shell image: renames the old data directory aside and restarts the kube components', async () => {
    const prefix = '/opt/rke/prefix';
    for (const member of cluster.nodes) {
      // As RKE lays out a node with prefix_path: certificates and an etcd data directory below it.
      cpSync(cluster.hostPath(member, '/etc/kubernetes/ssl'), cluster.hostPath(member, `${prefix}/etc/kubernetes/ssl`), { recursive: true });
      mkdirSync(cluster.hostPath(member, `${prefix}/var/lib/etcd`), { recursive: true });
      cpSync(cluster.hostPath(member, '/var/lib/etcd/member'), cluster.hostPath(member, `${prefix}/var/lib/etcd/member`), { recursive: true });
    }
    const kubeNode = cluster.node(2);
    const fakes = ['kube-apiserver', 'kubelet', 'k8s_kube-flannel_kube-flannel-ds-x_kube-system_0', 'k8s_POD_kube-flannel-ds-x_kube-system_0', 'unrelated'];
    // Like the real components, they exit on SIGTERM (docker restart would wait 10 s otherwise).
    const run = (name: string) => cluster.docker(kubeNode, 'run', '-d', '--name', name, '--network', 'none', cluster.toolsImage, 'sh', '-c', 'trap "exit 0" TERM; sleep 3600 & wait');
    for (const name of fakes) expect((await run(name)).code).toBe(0);
    const startedAt = async (name: string) => (await cluster.docker(kubeNode, 'inspect', '-f', '{{.State.StartedAt}}', name)).stdout.trim();
    const before = new Map(await Promise.all(fakes.map(async (name) => [name, await startedAt(name)] as const)));

    const config = cluster.writeClusterYml({ file: 'prefix.yml', set: { prefix_path: prefix, system_images: { etcd: cluster.etcdImages.shell, alpine: cluster.toolsImage } } });
    const result = await cli('snapshot-restore', '--config', config, '--name', 'base', '--restart-kube-components');
    expect(result.code, result.stderr).toBe(0);
    const old = oldDataPaths(result.stderr);
    for (const member of cluster.nodes) {
      expect(old.get(member.address)).toMatch(new RegExp(`^${prefix}/var/lib/etcd-old-\\d+$`));
      expect(existsSync(cluster.hostPath(member, `${old.get(member.address)!}/member/snap`))).toBe(true);
      expect(existsSync(cluster.hostPath(member, `${prefix}/var/lib/etcd/member/snap`))).toBe(true);
      expect(await get(member, '/restore/before')).toBe('v1');
      expect((await cluster.docker(member, 'inspect', '-f', '{{.Config.Image}}', 'etcd')).stdout.trim()).toBe(cluster.etcdImages.shell);
      expect(workDirs(member, `${prefix}/var/lib/etcd`)).toEqual([]);
    }
    expect(result.stderr).toContain(`[restart] Restarted [kube-apiserver, kubelet, k8s_kube-flannel_kube-flannel-ds-x_kube-system_0] on host [${kubeNode.address}]`);
    for (const name of fakes) {
      const restarted = (await startedAt(name)) !== before.get(name);
      expect(restarted, name).toBe(!name.includes('POD') && name !== 'unrelated');
    }
    expect(result.stdout).not.toContain('docker restart kube-apiserver');
    for (const name of fakes) await cluster.docker(kubeNode, 'rm', '-f', name);
    await expectCleanNodes();
  });
});
