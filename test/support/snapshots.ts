import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import type { TestCluster, TestNode } from './cluster.js';

const run = promisify(execFile);

export const SNAPSHOT_DIR = '/opt/rke/etcd-snapshots';

/** File names in the node's /opt/rke/etcd-snapshots (empty if the directory is missing). */
export function snapshotFiles(cluster: TestCluster, node: TestNode): string[] {
  const dir = cluster.hostPath(node, SNAPSHOT_DIR);
  return existsSync(dir) ? readdirSync(dir).sort() : [];
}

export function snapshotHostPath(cluster: TestCluster, node: TestNode, name: string): string {
  return cluster.hostPath(node, `${SNAPSHOT_DIR}/${name}`);
}

/** Every container on the node other than RKE's own `etcd` (what a run may have left behind). */
export async function leftoverContainers(cluster: TestCluster, node: TestNode): Promise<string[]> {
  const result = await cluster.docker(node, 'ps', '-a', '--format', '{{.Names}}');
  if (result.code !== 0) throw new Error(`docker ps on ${node.address}: ${result.stderr}`);
  return result.stdout.split('\n').filter((name) => name !== '' && name !== 'etcd');
}

export interface SnapshotStatus {
  hash: number;
  revision: number;
  totalKey: number;
  totalSize: number;
}

/** `etcdctl snapshot status` on the host's etcdctl: proves the file is a valid etcd snapshot. */
export async function snapshotStatus(file: string): Promise<SnapshotStatus> {
  const { stdout } = await run('etcdctl', ['snapshot', 'status', file, '-w', 'json'], { env: { ...process.env, ETCDCTL_API: '3' } });
  return JSON.parse(stdout) as SnapshotStatus;
}

/** bbolt stores values verbatim, so a unique value written before the save shows up in the file. */
export function fileContains(file: string, text: string): boolean {
  return readFileSync(file).includes(Buffer.from(text));
}
