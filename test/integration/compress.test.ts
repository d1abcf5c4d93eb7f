/**
 * snapshot-save --compress on a real 3-node cluster with a multi-MiB etcd database: RKE's zip
 * layout on every node and in S3, streamed back onto the nodes through docker attach.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readClusterConfig } from '../../src/config/index.js';
import { silentLogger } from '../../src/log/logger.js';
import { planSave } from '../../src/plan/save.js';
import { compressSavedSnapshots } from '../../src/run/compress.js';
import { errorLines, runCli } from '../support/cli.js';
import { type TestCluster, startTestCluster } from '../support/cluster.js';
import { s3cmdFor } from '../support/s3cmd.js';
import { type TestS3Server, startS3Server } from '../support/s3server.js';
import { fileContains, leftoverContainers, snapshotFiles, snapshotHostPath, snapshotStatus } from '../support/snapshots.js';

let cluster: TestCluster;
let server: TestS3Server;
let s3cmd: (...args: string[]) => string;
let config: string;
let stateFile: string;
const scratch = mkdtempSync(path.join(tmpdir(), 'rke-ts-compress-'));
const marker = `compress-marker-${Date.now()}`;
const MiB = 1024 * 1024;
const STATE = JSON.stringify({ desiredState: { rkeConfig: { nodes: [] } }, currentState: {} });

beforeAll(async () => {
  [cluster, server] = await Promise.all([startTestCluster({ name: 'lifezip', slot: 10, nodes: 3 }), startS3Server({ buckets: ['etcd-backups'] })]);
  s3cmd = s3cmdFor(server);
  // ~6 MiB of values for a multi-MiB snapshot; each value stays below the 128 KiB limit of
  // one command-line argument.
  for (let batch = 0; batch < 7; batch++) {
    await Promise.all(
      Array.from({ length: 8 }, (_, index) => cluster.etcdctl(cluster.node(1), 'put', `/registry/bulk/${batch}-${index}`, randomBytes(90 * 1024).toString('base64'))),
    );
  }
  await cluster.etcdctl(cluster.node(1), 'put', '/registry/test/marker', marker);
  config = cluster.writeClusterYml();
  stateFile = config.replace(/\.yml$/, '.rkestate');
  writeFileSync(stateFile, STATE);
});

afterAll(async () => {
  await Promise.all([cluster?.down(), server?.stop()]);
  rmSync(scratch, { recursive: true, force: true });
});

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
const entries = (zip: string) => execFileSync('unzip', ['-Z1', zip], { encoding: 'utf8' }).trim().split('\n');

function extract(zip: string, entry: string): string {
  const target = path.join(mkdtempSync(path.join(scratch, 'x-')), path.basename(entry));
  writeFileSync(target, execFileSync('unzip', ['-p', zip, entry], { maxBuffer: 256 * MiB }));
  return target;
}

async function expectNothingLeftOver(name: string): Promise<void> {
  for (const node of cluster.nodes) {
    expect(snapshotFiles(cluster, node).filter((file) => file.startsWith('.rke-ts-incoming-') || file.endsWith('.part'))).toEqual([]);
    expect(await leftoverContainers(cluster, node), `containers on ${node.address}`).toEqual([]);
    expect(snapshotFiles(cluster, node), `raw ${name} on ${node.address}`).not.toContain(name);
  }
}

describe('snapshot-save --compress', () => {
  it('writes <name>.zip in RKE layout on every node and uploads it to S3', async () => {
    const s3 = ['--s3', '--s3-endpoint', server.endpoint, '--bucket-name', 'etcd-backups', '--access-key', server.accessKey, '--secret-key', server.secretKey, '--folder', 'zips'];
    const result = await runCli(['etcd', 'snapshot-save', '--config', config, '--name', 'zipped', '--compress', ...s3]);
    expect(result.code, result.stderr).toBe(0);
    await expectNothingLeftOver('zipped');
    for (const node of cluster.nodes) {
      const zip = snapshotHostPath(cluster, node, 'zipped.zip');
      expect(entries(zip)).toEqual(['/backup/zipped', '/etc/kubernetes/zipped.rkestate']);
      expect(execFileSync('unzip', ['-Zv', zip], { encoding: 'utf8' })).toContain('compression method:                             deflated');
      execFileSync('unzip', ['-tq', zip]);
      const snapshot = extract(zip, '/backup/zipped');
      expect(statSync(snapshot).size).toBeGreaterThan(4 * MiB);
      expect((await snapshotStatus(snapshot)).totalKey).toBeGreaterThan(56);
      expect(fileContains(snapshot, marker)).toBe(true);
      expect(readFileSync(extract(zip, '/etc/kubernetes/zipped.rkestate'), 'utf8')).toBe(STATE);
      expect(statSync(zip).size).toBeLessThan(statSync(snapshot).size);
    }
    const object = path.join(scratch, 'zipped-from-s3.zip');
    s3cmd('get', 's3://etcd-backups/zips/zipped.zip', object);
    expect(cluster.nodes.map((node) => sha256(snapshotHostPath(cluster, node, 'zipped.zip')))).toContain(sha256(object));
  });

  it('keeps the snapshot byte-identical inside the zip', async () => {
    const saved = await runCli(['-q', 'etcd', 'snapshot-save', '--config', config, '--name', 'identical']);
    expect(saved.code, saved.stderr).toBe(0);
    const node = cluster.node(2);
    const original = path.join(scratch, 'identical.raw');
    copyFileSync(snapshotHostPath(cluster, node, 'identical'), original);

    const clusterConfig = await readClusterConfig(config);
    const plan = planSave(clusterConfig, { name: 'identical' });
    const outcome = { saved: [{ node: node.address, path: '', durationMs: 0 }], failed: [] };
    const fileName = await compressSavedSnapshots(clusterConfig, plan, outcome, { env: process.env, log: silentLogger(), now: () => new Date() });
    expect(fileName).toBe('identical.zip');
    expect(outcome.failed).toEqual([]);
    const inside = extract(snapshotHostPath(cluster, node, 'identical.zip'), '/backup/identical');
    expect(sha256(inside)).toBe(sha256(original));
    expect(snapshotFiles(cluster, node)).not.toContain('identical');
  });

  it('on a node where compressing fails, keeps its complete snapshot and says so (exit 3)', async () => {
    const victim = cluster.node(3);
    // A directory where the writer wants its temp file: `cat >` fails there.
    const blocker = snapshotHostPath(cluster, victim, '.rke-ts-incoming-broken.zip');
    mkdirSync(blocker, { recursive: true });
    try {
      const result = await runCli(['etcd', 'snapshot-save', '--config', config, '--name', 'broken', '--compress']);
      expect(result.code).toBe(3);
      expect(errorLines(result.stderr).join('\n')).toContain(`Failed to compress snapshot [broken] on host [${victim.address}], the uncompressed snapshot is kept at /opt/rke/etcd-snapshots/broken`);
      expect(snapshotFiles(cluster, victim)).toContain('broken');
      expect(snapshotFiles(cluster, victim)).not.toContain('broken.zip');
      expect((await snapshotStatus(snapshotHostPath(cluster, victim, 'broken'))).totalKey).toBeGreaterThan(56);
      for (const node of cluster.nodes.filter((candidate) => candidate !== victim)) {
        expect(snapshotFiles(cluster, node)).toContain('broken.zip');
        expect(snapshotFiles(cluster, node)).not.toContain('broken');
      }
      for (const node of cluster.nodes) expect(await leftoverContainers(cluster, node)).toEqual([]);
    } finally {
      rmSync(blocker, { recursive: true, force: true });
    }
  });

  it('zips the snapshot alone, with RKE’s warning, when there is no state file', async () => {
    rmSync(stateFile);
    const result = await runCli(['etcd', 'snapshot-save', '--config', config, '--name', 'stateless', '--compress']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain('Snapshot will be created without cluster state file');
    for (const node of cluster.nodes) expect(entries(snapshotHostPath(cluster, node, 'stateless.zip'))).toEqual(['/backup/stateless']);
    await expectNothingLeftOver('stateless');
  });

  it('restores its own zip with snapshot-restore (found as <name>.zip on the nodes)', async () => {
    const node = cluster.node(1);
    await cluster.etcdctl(node, 'put', '/registry/test/roundtrip', 'before');
    writeFileSync(stateFile, STATE);
    const saved = await runCli(['etcd', 'snapshot-save', '--config', config, '--name', 'roundtrip', '--compress']);
    expect(saved.code, saved.stderr).toBe(0);
    await cluster.etcdctl(node, 'put', '/registry/test/roundtrip', 'after');
    await cluster.etcdctl(node, 'put', '/registry/test/only-after', 'x');
    writeFileSync(stateFile, '{"changed":"after the snapshot"}');
    const restored = await runCli(['etcd', 'snapshot-restore', '--config', config, '--name', 'roundtrip']);
    expect(restored.code, restored.stderr).toBe(0);
    expect(restored.stderr).toContain('roundtrip.zip');
    for (const member of cluster.nodes) {
      expect((await cluster.etcdctl(member, 'get', '/registry/test/roundtrip', '--print-value-only')).trim()).toBe('before');
      expect((await cluster.etcdctl(member, 'get', '/registry/test/only-after', '--print-value-only')).trim()).toBe('');
    }
    // The state file inside the zip was installed next to cluster.yml, the newer one kept aside.
    expect(readFileSync(stateFile, 'utf8')).toBe(STATE);
    const backups = readdirSync(path.dirname(stateFile)).filter((file) => file.startsWith(`${path.basename(stateFile)}.`) && file.endsWith('.bak'));
    expect(backups.map((file) => readFileSync(path.join(path.dirname(stateFile), file), 'utf8'))).toContain('{"changed":"after the snapshot"}');
  });
});
