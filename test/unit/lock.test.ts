import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ExitCode, LockedError } from '../../src/errors.js';
import { acquireClusterLock, isStaleOwner, lockFilesFor, parseLockOwner, processStartTime, withClusterLock } from '../../src/lock.js';

const root = mkdtempSync(path.join(os.tmpdir(), 'rke-ts-lock-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let counter = 0;
function clusterYml(): string {
  const dir = path.join(root, `c${++counter}`);
  mkdirSync(dir);
  const file = path.join(dir, 'cluster.yml');
  writeFileSync(file, 'nodes: []\n');
  return file;
}
const env = {} as NodeJS.ProcessEnv;
const lockFile = (config: string) => path.join(path.dirname(config), '.cluster.yml.rke-ts.lock');

describe('cluster lock', () => {
  it('lives next to cluster.yml, falls back to a hashed name in the runtime dir', () => {
    const [primary, fallback] = lockFilesFor('/etc/rke/prod/cluster.yml', { XDG_RUNTIME_DIR: '/run/user/1000' });
    expect(primary).toBe('/etc/rke/prod/.cluster.yml.rke-ts.lock');
    expect(fallback).toMatch(/^\/run\/user\/1000\/rke-ts-[0-9a-f]{16}\.lock$/);
    expect(lockFilesFor('/etc/rke/other/cluster.yml', { XDG_RUNTIME_DIR: '/run/user/1000' })[1]).not.toBe(fallback);
    expect(lockFilesFor('/etc/rke/prod/cluster.yml', { RKE_TS_LOCK_DIR: '/var/lock/rke' })).toEqual([expect.stringMatching(/^\/var\/lock\/rke\/rke-ts-[0-9a-f]{16}\.lock$/)]);
  });

  it('refuses a second holder with LockedError (exit code 4) naming the first, and frees on release', async () => {
    const config = clusterYml();
    const first = await acquireClusterLock(config, { env, command: 'snapshot-save' });
    expect(first.path).toBe(lockFile(config));
    expect(parseLockOwner(readFileSync(first.path, 'utf8'))).toMatchObject({ pid: process.pid, command: 'snapshot-save', config });
    const refused = await acquireClusterLock(config, { env, command: 'snapshot-prune' }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(LockedError);
    expect((refused as LockedError).exitCode).toBe(ExitCode.locked);
    expect((refused as Error).message).toContain(`snapshot-save (pid ${process.pid}`);
    expect((refused as Error).message).toContain(first.path);
    await first.release();
    expect(existsSync(first.path)).toBe(false);
    const again = await acquireClusterLock(config, { env, command: 'snapshot-prune' });
    await again.release();
  });

  it('lets exactly one of many simultaneous runs win', async () => {
    const config = clusterYml();
    const attempts = await Promise.allSettled(Array.from({ length: 8 }, (_, index) => acquireClusterLock(config, { env, command: `run-${index}` })));
    const won = attempts.filter((attempt) => attempt.status === 'fulfilled');
    expect(won).toHaveLength(1);
    expect(attempts.filter((attempt) => attempt.status === 'rejected' && attempt.reason instanceof LockedError)).toHaveLength(7);
    await (won[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof acquireClusterLock>>>).value.release();
  });

  it('takes over the lock of a dead process on this host, once, even when several runs race for it', async () => {
    const config = clusterYml();
    const dead = { pid: 999_999, hostname: os.hostname(), command: 'snapshot-save', config, startedAt: '2024-01-01T00:00:00Z' };
    writeFileSync(lockFile(config), JSON.stringify(dead));
    const isAlive = (pid: number) => pid !== 999_999;
    const attempts = await Promise.allSettled(Array.from({ length: 6 }, () => acquireClusterLock(config, { env, command: 'snapshot-save', isAlive })));
    const won = attempts.filter((attempt) => attempt.status === 'fulfilled');
    expect(won).toHaveLength(1);
    expect(existsSync(`${lockFile(config)}.takeover`)).toBe(false);
    await (won[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof acquireClusterLock>>>).value.release();
  });

  it('does not take over a live process’s lock, nor one from another host', async () => {
    const config = clusterYml();
    writeFileSync(lockFile(config), JSON.stringify({ pid: 999_999, hostname: 'other-admin-box', command: 'snapshot-save', config, startedAt: '' }));
    await expect(acquireClusterLock(config, { env, command: 'x', isAlive: () => false })).rejects.toBeInstanceOf(LockedError);
    writeFileSync(lockFile(config), JSON.stringify({ pid: process.pid, hostname: os.hostname(), command: 'snapshot-save', config, startedAt: '' }));
    await expect(acquireClusterLock(config, { env, command: 'x' })).rejects.toBeInstanceOf(LockedError);
  });

  it('treats an unreadable lock as held while young', async () => {
    const config = clusterYml();
    writeFileSync(lockFile(config), '');
    await expect(acquireClusterLock(config, { env, command: 'x' })).rejects.toThrow(/still being written/);
  });

  it('release never removes a lock that a later run took over', async () => {
    const config = clusterYml();
    const lock = await acquireClusterLock(config, { env, command: 'first' });
    writeFileSync(lock.path, JSON.stringify({ pid: 1, hostname: 'x', command: 'second', config, startedAt: '' }));
    await lock.release();
    expect(existsSync(lock.path)).toBe(true);
  });

  it('falls back to the runtime dir when the config directory is read-only', async () => {
    if (process.getuid?.() === 0) {
      // root writes anywhere: simulate with a config path whose directory does not exist.
      const config = path.join(root, 'missing-dir', 'cluster.yml');
      const runtime = mkdtempSync(path.join(root, 'run-'));
      const lock = await acquireClusterLock(config, { env: { XDG_RUNTIME_DIR: runtime }, command: 'x' });
      expect(path.dirname(lock.path)).toBe(runtime);
      await lock.release();
      return;
    }
    const config = clusterYml();
    chmodSync(path.dirname(config), 0o555);
    const runtime = mkdtempSync(path.join(root, 'run-'));
    const lock = await acquireClusterLock(config, { env: { XDG_RUNTIME_DIR: runtime }, command: 'x' });
    expect(path.dirname(lock.path)).toBe(runtime);
    await lock.release();
  });

  it('withClusterLock releases when the work throws', async () => {
    const config = clusterYml();
    await expect(withClusterLock(config, { env, command: 'x' }, async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(existsSync(lockFile(config))).toBe(false);
  });

  it('stale means: same host, and the pid is gone or now another process', () => {
    const owner = { pid: 5, hostname: 'a', command: '', config: '', startedAt: '' };
    const started = (at: string | undefined) => () => at;
    expect(isStaleOwner(owner, { hostname: 'a', isAlive: () => false, startTime: started(undefined) })).toBe(true);
    expect(isStaleOwner(owner, { hostname: 'a', isAlive: () => true, startTime: started('100') })).toBe(false);
    expect(isStaleOwner(owner, { hostname: 'b', isAlive: () => false, startTime: started(undefined) })).toBe(false);
    const recorded = { ...owner, processStart: '100' };
    expect(isStaleOwner(recorded, { hostname: 'a', isAlive: () => true, startTime: started('100') })).toBe(false);
    expect(isStaleOwner(recorded, { hostname: 'a', isAlive: () => true, startTime: started('250') })).toBe(true);
    // Start time unreadable: cannot prove anything, so the lock stands.
    expect(isStaleOwner(recorded, { hostname: 'a', isAlive: () => true, startTime: started(undefined) })).toBe(false);
    expect(isStaleOwner({ ...recorded, hostname: 'b' }, { hostname: 'a', isAlive: () => true, startTime: started('250') })).toBe(false);
    expect(parseLockOwner('not json')).toBeUndefined();
  });

  it('records its start time and takes over a lock whose pid now belongs to another process', async () => {
    const config = clusterYml();
    const lock = await acquireClusterLock(config, { env, command: 'snapshot-save' });
    const owner = parseLockOwner(readFileSync(lock.path, 'utf8'));
    expect(owner?.processStart).toBe(processStartTime(process.pid));
    await lock.release();
    // A crashed run whose pid was reused by this (live) process: same pid, another start time.
    const reused = { pid: process.pid, hostname: os.hostname(), command: 'snapshot-save', config, startedAt: '', processStart: '1' };
    writeFileSync(lockFile(config), JSON.stringify(reused));
    const taken = await acquireClusterLock(config, { env, command: 'snapshot-save' });
    expect(parseLockOwner(readFileSync(taken.path, 'utf8'))?.command).toBe('snapshot-save');
    expect(parseLockOwner(readFileSync(taken.path, 'utf8'))?.processStart).not.toBe('1');
    await taken.release();
  });

  it('reads a process start time from /proc', () => {
    expect(processStartTime(process.pid)).toMatch(/^\d+$/);
    expect(processStartTime(process.ppid)).toMatch(/^\d+$/);
    expect(processStartTime(process.pid)).not.toBe(processStartTime(1));
    expect(processStartTime(2 ** 22 + 1)).toBeUndefined();
  });
});
