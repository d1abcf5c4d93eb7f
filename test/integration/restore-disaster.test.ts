import { readFileSync } from 'node:fs';
import path from 'node:path';
import { writeFileSync } from 'node:fs';
import yazl from 'yazl';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliResult, runCli } from '../support/cli.js';
import { type ClusterYmlNode, type TestCluster, type TestNode, startTestCluster } from '../support/cluster.js';
import { s3cmdFor } from '../support/s3cmd.js';
import { type TestS3Server, startS3Server } from '../support/s3server.js';
import { leftoverContainers, snapshotHostPath } from '../support/snapshots.js';

/**
 * The disaster recovery example of the RKE docs: node1 [controlplane, worker], node2 [etcd];
 * a snapshot goes to S3 with an independent client, node2 dies, a fresh node3 takes the etcd
 * role in cluster.yml, and the restore brings etcd up there with the data.
 */
let cluster: TestCluster;
let server: TestS3Server;
let s3cmd: (...args: string[]) => string;
let etcdNode: TestNode;

beforeAll(async () => {
  [cluster, server] = await Promise.all([startTestCluster({ name: 'rdisaster', slot: 7, nodes: 2, etcdNodes: [2] }), startS3Server()]);
  s3cmd = s3cmdFor(server);
  etcdNode = cluster.node(2);
});

afterAll(async () => {
  await Promise.all([cluster?.down(), server?.stop()]);
});

function clusterYml(file: string, set: Record<string, unknown> = {}): string {
  const nodes: Array<ClusterYmlNode & { node: TestNode }> = [
    { node: cluster.node(1), role: ['controlplane', 'worker'] },
    { node: etcdNode, role: ['etcd'] },
  ];
  return cluster.writeClusterYml({ file, nodes, set });
}

function s3Flags(...extra: string[]): string[] {
  return ['--s3', '--s3-endpoint', server.endpoint, '--bucket-name', server.bucket, '--access-key', server.accessKey, '--secret-key', server.secretKey, ...extra];
}

async function cli(...args: string[]): Promise<CliResult> {
  return runCli(['etcd', ...args]);
}

async function get(key: string): Promise<string> {
  return (await cluster.etcdctl(etcdNode, 'get', key, '--print-value-only')).trim();
}

describe('disaster recovery onto a new etcd node', () => {
  it('restores the S3 copy onto a fresh node after the etcd node died, and restarts the kube components', async () => {
    await cluster.etcdctl(etcdNode, 'put', '/registry/deployments/default/nginx', 'replicas: 3');
    const saved = await cli('snapshot-save', '--config', clusterYml('before.yml'), '--name', 'snapshot.db');
    expect(saved.code, saved.stderr).toBe(0);
    // What the docs do on node2: s3cmd put /opt/rke/etcd-snapshots/snapshot.db s3://bucket/
    s3cmd('put', snapshotHostPath(cluster, etcdNode, 'snapshot.db'), `s3://${server.bucket}/snapshot.db`);

    await cluster.killNode(etcdNode);
    etcdNode = await cluster.addNode();
    const controlplane = cluster.node(1);
    const fakes = ['kube-apiserver', 'kubelet', 'kube-proxy', 'k8s_calico-node_calico-node-x_kube-system_0'];
    for (const name of fakes) {
      const run = await cluster.docker(controlplane, 'run', '-d', '--name', name, '--network', 'none', cluster.toolsImage, 'sh', '-c', 'trap "exit 0" TERM; sleep 3600 & wait');
      expect(run.code, run.stderr).toBe(0);
    }

    const result = await cli('snapshot-restore', '--config', clusterYml('after.yml'), '--name', 'snapshot.db', '--restart-kube-components', ...s3Flags());
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain(`[etcd] Copying snapshot [snapshot.db] from s3://${server.bucket}/snapshot.db to etcd hosts [${etcdNode.address}]`);
    expect(result.stderr).toContain(`[etcd] No old etcd data on host [${etcdNode.address}]`);
    expect(result.stderr).toContain(`[etcd] Successfully started [etcd] container on host [${etcdNode.address}]`);
    expect(result.stderr).toContain(`[restart] Restarted [${fakes.join(', ')}] on host [${controlplane.address}]`);
    expect(result.stderr).toContain(`[restart] No Kubernetes components run on host [${etcdNode.address}]`);
    expect(await get('/registry/deployments/default/nginx')).toBe('replicas: 3');
    const members = JSON.parse(await cluster.etcdctl(etcdNode, 'member', 'list', '-w', 'json')) as { members: Array<{ name: string }> };
    expect(members.members.map((member) => member.name)).toEqual([etcdNode.etcdName]);
    expect(result.stdout).toContain(`If the etcd hosts changed, run \`rke up --config ${path.join(cluster.stateDir, 'after.yml')}\``);
    for (const name of fakes) await cluster.docker(controlplane, 'rm', '-f', name);
    for (const node of [controlplane, etcdNode]) expect(await leftoverContainers(cluster, node)).toEqual([]);
  });

  it('restores a k3s zip from an S3 folder, given the name without .zip', async () => {
    await cluster.etcdctl(etcdNode, 'put', '/k3s/marker', 'from-k3s-zip');
    expect((await cli('snapshot-save', '--config', clusterYml('after.yml'), '--name', 'k3s-source')).code).toBe(0);
    await cluster.etcdctl(etcdNode, 'put', '/k3s/marker', 'later');
    const name = 'on-demand-node3-1714564800';
    const zip = new yazl.ZipFile();
    zip.addBuffer(readFileSync(snapshotHostPath(cluster, etcdNode, 'k3s-source')), name);
    zip.end();
    const parts: Buffer[] = [];
    for await (const part of zip.outputStream) parts.push(part as Buffer);
    const file = path.join(cluster.stateDir, `${name}.zip`);
    writeFileSync(file, Buffer.concat(parts));
    s3cmd('put', file, `s3://${server.bucket}/k3s/${name}.zip`);

    const result = await cli('snapshot-restore', '--config', clusterYml('after.yml'), '--name', name, ...s3Flags('--folder', 'k3s'));
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain(`from s3://${server.bucket}/k3s/${name}.zip to etcd hosts [${etcdNode.address}]`);
    expect(await get('/k3s/marker')).toBe('from-k3s-zip');
    expect(await leftoverContainers(cluster, etcdNode)).toEqual([]);
  });

  it('falls back to the local copy when cluster.yml has s3backupconfig but S3 lacks the snapshot', async () => {
    await cluster.etcdctl(etcdNode, 'put', '/fallback/marker', 'local');
    const backupConfig = {
      services: {
        etcd: { backup_config: { s3backupconfig: { endpoint: server.endpoint, bucket_name: server.bucket, access_key: server.accessKey, secret_key: server.secretKey } } },
      },
    };
    const config = clusterYml('s3-in-yml.yml', backupConfig);
    expect((await cli('snapshot-save', '--config', clusterYml('after.yml'), '--name', 'local-only')).code).toBe(0);
    await cluster.etcdctl(etcdNode, 'put', '/fallback/marker', 'changed');

    const result = await cli('snapshot-restore', '--config', config, '--name', 'local-only');
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain(`[etcd] snapshot [local-only] is not taken from S3 (it is not in s3://${server.bucket}/local-only[.zip]); using /opt/rke/etcd-snapshots/local-only on host [${etcdNode.address}]`);
    expect(await get('/fallback/marker')).toBe('local');
  });
});
