/**
 * Cron-style runs on a real 3-node cluster: the cluster lock between overlapping runs, and
 * snapshot-schedule in the foreground with a seconds cron, retention and SIGTERM.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRecurringName } from '../../src/plan/retention.js';
import { CLI, errorLines, runCli } from '../support/cli.js';
import { type TestCluster, startTestCluster } from '../support/cluster.js';
import { leftoverContainers, snapshotFiles, snapshotHostPath, snapshotStatus } from '../support/snapshots.js';

let cluster: TestCluster;
let config: string;
let lockFile: string;

beforeAll(async () => {
  cluster = await startTestCluster({ name: 'lifecron', slot: 8, nodes: 3 });
  config = cluster.writeClusterYml();
  lockFile = path.join(path.dirname(config), '.cluster.yml.rke-ts.lock');
});

afterAll(async () => {
  await cluster?.down();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(condition: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

interface Running {
  child: ChildProcess;
  stderr: () => string;
  exit: Promise<number | null>;
}

function start(args: string[]): Running {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, SSH_AUTH_SOCK: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  child.stdout!.resume();
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : null))));
  return { child, stderr: () => stderr, exit };
}

function recurringOn(index: number): string[] {
  return snapshotFiles(cluster, cluster.node(index)).filter((file) => isRecurringName(file));
}

async function expectClean(): Promise<void> {
  for (const node of cluster.nodes) {
    expect(snapshotFiles(cluster, node).filter((file) => file.endsWith('.part') || file.startsWith('.'))).toEqual([]);
    expect(await leftoverContainers(cluster, node)).toEqual([]);
  }
  expect(existsSync(lockFile)).toBe(false);
}

describe('cluster lock (cron runs that overlap)', () => {
  it('lets one of two simultaneous saves run; the other exits 4 naming the holder', async () => {
    const first = start(['etcd', 'snapshot-save', '--config', config, '--name', 'lock-first']);
    await waitFor(() => existsSync(lockFile), 'the first run to take the lock');
    // Held still while the second run starts, so that a quick first save cannot finish before
    // the second one looks at the lock.
    first.child.kill('SIGSTOP');
    let second: Awaited<ReturnType<typeof runCli>>;
    try {
      second = await runCli(['etcd', 'snapshot-save', '--config', config, '--name', 'lock-second']);
    } finally {
      first.child.kill('SIGCONT');
    }
    expect(await first.exit).toBe(0);
    expect(second.code).toBe(4);
    const [line] = errorLines(second.stderr);
    expect(line).toContain('another rke-ts run holds the lock');
    expect(line).toContain(`snapshot-save (pid ${first.child.pid}`);
    expect(line).toContain(lockFile);
    for (const node of cluster.nodes) {
      expect(snapshotFiles(cluster, node)).toContain('lock-first');
      expect(snapshotFiles(cluster, node)).not.toContain('lock-second');
    }
    await expectClean();
  });

  it('takes over the lock a killed run left behind', async () => {
    const dead = spawnSync(process.execPath, ['-e', '']).pid;
    writeFileSync(lockFile, JSON.stringify({ pid: dead, hostname: os.hostname(), command: 'snapshot-save', config, startedAt: '2024-01-01T00:00:00Z' }));
    const result = await runCli(['-q', 'etcd', 'snapshot-save', '--config', config, '--name', 'after-stale-lock']);
    expect(result.code, result.stderr).toBe(0);
    expect(existsSync(lockFile)).toBe(false);
  });
});

describe('snapshot-schedule', () => {
  it('takes recurring snapshots, applies retention after each, skips while locked, and stops on SIGTERM', async () => {
    const run = start(['etcd', 'snapshot-schedule', '--config', config, '--cron', '*/2 * * * * *', '--retention', '2']);
    const created = () => (run.stderr().match(/Created backup \[/g) ?? []).length;
    await waitFor(() => created() >= 3, 'three scheduled snapshots', 45_000);

    // Another run holds the lock (our own live pid): the next tick is skipped, not queued.
    writeFileSync(lockFile, JSON.stringify({ pid: process.pid, hostname: os.hostname(), command: 'snapshot-prune', config, startedAt: new Date().toISOString() }));
    await waitFor(() => /Skipping the scheduled snapshot \[[^\]]+\]: another rke-ts run holds the lock/.test(run.stderr()), 'a tick skipped for the lock', 10_000);
    rmSync(lockFile);
    const before = created();
    await waitFor(() => created() > before, 'snapshots to resume after the lock is gone', 10_000);
    run.child.kill('SIGTERM');
    expect(await run.exit).toBe(130);

    const stderr = run.stderr();
    expect(stderr).toContain('Initializing Rolling Backups: cron "*/2 * * * * *"');
    expect(stderr).toMatch(/Removed local snapshot file:\/\/[\d.]+\/opt\/rke\/etcd-snapshots\/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ_etcd/);
    expect(stderr).toMatch(/Stopped after \d+ run\(s\)/);
    for (let index = 1; index <= 3; index++) {
      const files = recurringOn(index);
      // Retention 2 after each success; a run stopped by SIGTERM before its prune may add one.
      expect(files.length, `node ${index}: ${files.join(', ')}`).toBeGreaterThanOrEqual(2);
      expect(files.length).toBeLessThanOrEqual(3);
      for (const file of files) expect(file).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ_etcd$/);
      // etcdctl renames its .part file only when complete: every listed snapshot is whole.
      for (const file of files) expect((await snapshotStatus(snapshotHostPath(cluster, cluster.node(index), file))).totalKey).toBeGreaterThan(0);
    }
    await expectClean();
  });

  it('cleans up a run interrupted by SIGTERM and exits 130', async () => {
    const run = start(['etcd', 'snapshot-schedule', '--config', config, '--cron', '*/2 * * * * *', '--retention', '10', '--safe-timestamp']);
    await waitFor(() => /\[etcd\] Saving snapshot \[[^\]]+\] on host/.test(run.stderr()), 'a run to start');
    run.child.kill('SIGTERM');
    expect(await run.exit).toBe(130);
    expect(run.stderr()).toMatch(/Stopping: waiting for the current snapshot run to clean up|Stopped after/);
    // Whatever the run got to, nothing partial remains; safe names have no colons.
    for (const node of cluster.nodes) {
      for (const file of snapshotFiles(cluster, node).filter((name) => /-\d\d-\d\dZ_etcd$/.test(name))) {
        expect(file).not.toContain(':');
        expect((await snapshotStatus(snapshotHostPath(cluster, node, file))).totalKey).toBeGreaterThan(0);
      }
    }
    await expectClean();
  });

  it('refuses a bad schedule at once', async () => {
    const result = await runCli(['etcd', 'snapshot-schedule', '--config', config, '--cron', '99 * * * *']);
    expect(result.code).toBe(2);
    expect(errorLines(result.stderr).join('\n')).toContain('--cron "99 * * * *"');
  });
});
