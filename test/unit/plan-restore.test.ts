import { describe, expect, it } from 'vitest';
import { parseClusterConfig } from '../../src/config/index.js';
import { retryCommandFor, snapshotNameForRestore } from '../../src/cli/restore.js';
import { renderRestorePlan } from '../../src/cli/render.js';
import {
  type SnapshotFacts,
  chooseSnapshotSource,
  nearestSnapshotNames,
  planRestore,
  stateFilePaths,
} from '../../src/plan/restore.js';
import { pickZipEntries } from '../../src/run/restore-source.js';
import type { ZipEntry } from '../../src/archive/unzip.js';

const yml = `
nodes:
  - address: 1.2.3.4
    internal_address: 10.0.0.1
    hostname_override: Node-A
    user: rancher
    role: [controlplane, etcd]
  - address: 1.2.3.5
    user: rancher
    role: [etcd]
  - address: 1.2.3.6
    user: rancher
    role: [worker]
prefix_path: /opt/custom
system_images:
  etcd: rancher/mirrored-coreos-etcd:v3.5.16
  alpine: rancher/rke-tools:v0.1.105
services:
  etcd:
    extra_env: [GODEBUG=x509sha1=1]
    extra_args:
      election-timeout: 6000
    uid: 52034
    gid: 52034
    backup_config:
      timeout: 900
`;

const now = new Date('2024-05-01T12:00:00Z');
const stamp = now.getTime() / 1000;

describe('planRestore', () => {
  const config = parseClusterConfig(yml, '/home/ops/cluster.yml');
  const plan = planRestore(config, { name: 'snap1', now });
  const [first, second] = plan.nodes;

  it('restores every etcd node, with the initial cluster of all of them', () => {
    expect(plan.nodes.map((nodePlan) => nodePlan.node.address)).toEqual(['1.2.3.4', '1.2.3.5']);
    expect(plan.initialCluster).toBe('etcd-node-a=https://10.0.0.1:2380,etcd-1.2.3.5=https://1.2.3.5:2380');
    expect(plan.timeoutSeconds).toBe(900);
    expect(plan.stamp).toBe(stamp);
  });

  it('runs etcdctl snapshot restore directly (no shell) into a work directory inside the data directory', () => {
    expect(first!.restore).toMatchObject({
      name: 'etcd-restore',
      image: 'rancher/mirrored-coreos-etcd:v3.5.16',
      entrypoint: ['/usr/local/bin/etcdctl'],
      cmd: [
        'snapshot',
        'restore',
        '/opt/rke/etcd-snapshots/snap1',
        `--data-dir=/var/lib/rancher/etcd/etcd-restore-${stamp}`,
        '--name=etcd-node-a',
        `--initial-cluster=${plan.initialCluster}`,
        '--initial-cluster-token=etcd-cluster-1',
        '--initial-advertise-peer-urls=https://10.0.0.1:2380',
      ],
      binds: ['/opt/rke/etcd-snapshots:/opt/rke/etcd-snapshots:ro', '/opt/custom/var/lib/etcd:/var/lib/rancher/etcd'],
      networkMode: 'none',
      labels: { 'io.rke-ts.owner': 'snapshot-restore' },
    });
    expect(second!.restore.cmd).toContain('--name=etcd-1.2.3.5');
    expect(second!.restore.cmd).toContain('--initial-advertise-peer-urls=https://1.2.3.5:2380');
  });

  it('applies prefix_path to the data, old-data and work directories and to the certificates', () => {
    expect(first).toMatchObject({
      dataDir: '/opt/custom/var/lib/etcd',
      oldDataDir: `/opt/custom/var/lib/etcd-old-${stamp}`,
      oldDataDirOnMount: `/opt/custom/var/lib/etcd/etcd-old-${stamp}`,
      workDir: `/opt/custom/var/lib/etcd/etcd-restore-${stamp}`,
      kubernetesDir: '/opt/custom/etc/kubernetes',
      certFiles: {
        cacert: '/etc/kubernetes/ssl/kube-ca.pem',
        cert: '/etc/kubernetes/ssl/kube-etcd-10-0-0-1.pem',
        key: '/etc/kubernetes/ssl/kube-etcd-10-0-0-1-key.pem',
      },
    });
    expect(first!.swap.binds).toEqual(['/opt/custom/var/lib:/rke-ts/var-lib']);
    expect(first!.swap.cmd.slice(1)).toEqual(['sh', `etcd-old-${stamp}`, `etcd-restore-${stamp}`, '52034:52034']);
    expect(first!.cleanup).toMatchObject({ entrypoint: ['rm'], cmd: ['-rf', '--', `/var/lib/rancher/etcd/etcd-restore-${stamp}`] });
  });

  it('starts etcd again exactly as RKE runs it, as a new cluster', () => {
    const etcd = first!.etcd;
    expect(etcd).toMatchObject({ name: 'etcd', restartPolicy: 'always', networkMode: 'host', user: '52034:52034' });
    expect(etcd.cmd).toContain('--initial-cluster-state=new');
    expect(etcd.cmd).toContain('--election-timeout=6000');
    expect(etcd.env).toContain('GODEBUG=x509sha1=1');
    expect(etcd.binds).toContain('/opt/custom/var/lib/etcd:/var/lib/rancher/etcd:z');
    expect(etcd.labels).toMatchObject({ 'io.rancher.rke.container.name': 'etcd', 'io.rke-ts.owner': 'snapshot-restore' });
    expect(first!.healthCheck.env).toContain('ETCDCTL_ENDPOINTS=https://10.0.0.1:2379');
  });

  it('looks for the snapshot in S3 under the folder, plain and zipped, and on the nodes', () => {
    const withS3 = planRestore(config, { name: 'snap1', now, s3: { bucket: 'b', folder: '/prod//etcd/', endpoint: 'https://s3.example' } });
    expect(withS3.s3).toEqual({ bucket: 'b', keys: ['prod/etcd/snap1', 'prod/etcd/snap1.zip'], endpoint: 'https://s3.example' });
    expect(withS3.localFiles).toEqual(['snap1', 'snap1.zip']);
  });

  it('writes the state file next to cluster.yml unless --use-local-state', () => {
    expect(plan.stateFile).toEqual({ path: '/home/ops/cluster.rkestate', backupPath: `/home/ops/cluster.rkestate.${stamp}.bak` });
    expect(planRestore(config, { name: 'x', now, useLocalState: true }).stateFile).toBeUndefined();
    expect(stateFilePaths('conf/prod.yaml', 1).path).toBe('conf/prod.rkestate');
  });

  it('restarts the kube components on every node of cluster.yml only when asked', () => {
    expect(plan.kubeRestart).toBeUndefined();
    const restart = planRestore(config, { name: 'x', now, restartKubeComponents: true }).kubeRestart!;
    expect(restart.nodes.map((node) => node.address)).toEqual(['1.2.3.4', '1.2.3.5', '1.2.3.6']);
    expect(restart.containers).toEqual(['kube-apiserver', 'kubelet', 'kube-controller-manager', 'kube-scheduler', 'kube-proxy']);
  });

  it('renders a dry run with every host and step, without secrets', () => {
    const text = renderRestorePlan(plan, config);
    expect(text).toContain('Plan: restore etcd snapshot [snap1] of cluster [local] on 2 etcd host(s)');
    expect(text).toContain('host [1.2.3.5]');
    expect(text).toContain('/opt/custom/etc/kubernetes/ssl/kube-etcd-10-0-0-1.pem');
    expect(text).not.toContain('x509sha1');
  });
});

describe('snapshot source', () => {
  const config = parseClusterConfig(yml, 'cluster.yml');
  const plan = planRestore(config, { name: 'snap1', now, s3: { bucket: 'b', folder: '', endpoint: 'e' } });
  const [a, b] = plan.nodes.map((nodePlan) => nodePlan.node);
  const nodes = (filesA: string[], filesB: string[]): SnapshotFacts['nodes'] => [
    { node: a!, files: filesA.map((name) => ({ name, size: 100 })) },
    { node: b!, files: filesB.map((name) => ({ name, size: 200 })) },
  ];

  it('takes S3 when the object is there', () => {
    expect(chooseSnapshotSource(plan, { s3: { key: 'snap1.zip' }, nodes: nodes(['snap1'], []) })).toEqual({ source: { kind: 's3', key: 'snap1.zip', zip: true } });
  });

  it('falls back to the first node holding the plain file, then a zip, saying why S3 was not used', () => {
    const plain = chooseSnapshotSource(plan, { s3: {}, nodes: nodes(['snap1.zip'], ['snap1']) });
    expect(plain.source).toEqual({ kind: 'node', node: b, file: 'snap1', size: 200, zip: false });
    expect(plain.fallback).toMatch(/it is not in s3:\/\/b\/snap1\[\.zip\]\); using \/opt\/rke\/etcd-snapshots\/snap1 on host \[1\.2\.3\.5\]/);
    const zipped = chooseSnapshotSource(plan, { s3: { problem: 'access denied' }, nodes: nodes(['snap1.zip'], []) });
    expect(zipped.source).toMatchObject({ node: a, file: 'snap1.zip', zip: true });
    expect(zipped.fallback).toContain('(access denied)');
    expect(chooseSnapshotSource({ name: 'snap1' }, { nodes: nodes([], ['snap1']) })).toEqual({ source: { kind: 'node', node: b, file: 'snap1', size: 200, zip: false } });
  });

  it('finds nothing when nobody has it', () => {
    expect(chooseSnapshotSource(plan, { s3: {}, nodes: nodes(['other'], []) })).toEqual({});
  });

  it('suggests the nearest existing names', () => {
    const names = ['rke_etcd_snapshot_2024-05-01T12:00:00Z', 'rke_etcd_snapshot_2024-05-02T12:00:00Z.zip', 'nightly.zip', 'unrelated-backup', '.rke-ts-incoming-x'];
    expect(nearestSnapshotNames('rke_etcd_snapshot_2024-05-01', names, 2)).toEqual(['rke_etcd_snapshot_2024-05-01T12:00:00Z', 'rke_etcd_snapshot_2024-05-02T12:00:00Z']);
    expect(nearestSnapshotNames('nightli', names, 1)).toEqual(['nightly']);
    expect(nearestSnapshotNames('x', [])).toEqual([]);
  });

  it('picks the snapshot and state entries of RKE and k3s zips', () => {
    const entry = (name: string): ZipEntry => ({ name, method: 8, crc32: 0, compressedSize: 1, uncompressedSize: 1, localHeaderOffset: 0 });
    const rke = [entry('/backup/snap1'), entry('/etc/kubernetes/snap1.rkestate')];
    expect(pickZipEntries('snap1', rke)).toEqual({ snapshot: rke[0], stateFile: rke[1] });
    const k3s = [entry('on-demand-n1-1700000000')];
    expect(pickZipEntries('on-demand-n1-1700000000', k3s)).toEqual({ snapshot: k3s[0] });
    expect(pickZipEntries('renamed', k3s)).toEqual({ snapshot: k3s[0] });
    expect(pickZipEntries('snap1', [entry('a'), entry('b')])).toEqual({});
  });
});

describe('command line', () => {
  it('requires --name and strips .zip', () => {
    expect(() => snapshotNameForRestore({})).toThrow('you must specify the snapshot name to restore');
    expect(snapshotNameForRestore({ name: 'snap1.zip' })).toEqual({ name: 'snap1', hadZipSuffix: true });
    expect(snapshotNameForRestore({ name: 'snap1' })).toEqual({ name: 'snap1', hadZipSuffix: false });
    expect(() => snapshotNameForRestore({ name: '../x.zip' })).toThrow(/path separator/);
  });

  it('prints a retry command without secrets', () => {
    const command = retryCommandFor(
      { config: 'my cluster.yml', s3: true, s3Endpoint: 'http://127.0.0.1:9000', bucketName: 'b', accessKey: 'AK', secretKey: 'SECRET', restartKubeComponents: true },
      'snap1',
    );
    expect(command).toBe(
      "rke-ts etcd snapshot-restore --config 'my cluster.yml' --name snap1 --s3 --access-key AK --secret-key *** --bucket-name b --s3-endpoint http://127.0.0.1:9000 --restart-kube-components",
    );
  });
});
