/**
 * One run at a time per cluster: a lock file on the admin box, so that a cron job that fires
 * while the previous run (or an operator's manual save or prune) is still going exits with
 * LockedError (exit code 4) instead of racing it.
 *
 * Where: next to cluster.yml, as `.<file name>.rke-ts.lock` (RKE keeps cluster.rkestate
 * there, so the directory is writable in practice and every user of that cluster.yml sees the
 * same lock). When that directory cannot be written (read-only mount), the lock lives in
 * $RKE_TS_LOCK_DIR, else $XDG_RUNTIME_DIR, else the temp dir, named after a hash of the
 * config's absolute path. $RKE_TS_LOCK_DIR, when set, is always used.
 *
 * How: O_EXCL creation; the file holds the owner's pid, host and command as JSON. A lock whose
 * owner is a dead process on this host is stale and is taken over. The owner's start time
 * (Linux /proc) tells it apart from an unrelated process that got the same pid after a crash or
 * reboot. Takeover is serialized by a second short-lived O_EXCL file, so two runs finding the
 * same stale lock cannot both win.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { open, readFile, realpath, stat, unlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { LockedError, StorageError } from './errors.js';

export interface LockOwner {
  pid: number;
  hostname: string;
  command: string;
  config: string;
  startedAt: string;
  /** The owner's start time as the kernel counts it (/proc/<pid>/stat), when known. */
  processStart?: string;
}

export interface LockOptions {
  env: NodeJS.ProcessEnv;
  /** What holds the lock, shown to the run that is refused (e.g. "snapshot-save"). */
  command: string;
  now?: () => Date;
  pid?: number;
  hostname?: string;
  /** Whether a pid on this host is running; injectable for tests. */
  isAlive?: (pid: number) => boolean;
  /** The start time of a running pid on this host; injectable for tests. */
  startTime?: (pid: number) => string | undefined;
}

export interface ClusterLock {
  path: string;
  release(): Promise<void>;
}

/** An unreadable lock (being written, or truncated by a crash) younger than this counts as held. */
const UNREADABLE_LOCK_GRACE_MS = 30_000;
/** A takeover guard older than this was left by a crash in the middle of a takeover. */
const TAKEOVER_GUARD_STALE_MS = 10_000;
const ACQUIRE_ATTEMPTS = 5;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function errno(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException).code;
}

export function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, it just isn't ours.
    return errno(error) === 'EPERM';
  }
}

/**
 * The fields of /proc/<pid>/stat from field 3 (state) on, so field N is at index N - 3 (Linux);
 * undefined elsewhere or if the process is gone. The command name before them, in parentheses,
 * may contain spaces; the fields after it are plain.
 */
export function processStatFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** When a running process started, in clock ticks since boot (field 22, starttime). */
export function processStartTime(pid: number): string | undefined {
  return processStatFields(pid)?.[19];
}

/** Candidate lock files for a config path, in order of preference. */
export function lockFilesFor(absoluteConfig: string, env: NodeJS.ProcessEnv): string[] {
  const hashed = `rke-ts-${createHash('sha256').update(absoluteConfig).digest('hex').slice(0, 16)}.lock`;
  if (env.RKE_TS_LOCK_DIR) return [path.join(env.RKE_TS_LOCK_DIR, hashed)];
  return [
    path.join(path.dirname(absoluteConfig), `.${path.basename(absoluteConfig)}.rke-ts.lock`),
    path.join(env.XDG_RUNTIME_DIR || os.tmpdir(), hashed),
  ];
}

export function parseLockOwner(text: string): LockOwner | undefined {
  try {
    const value = JSON.parse(text) as Partial<LockOwner>;
    if (typeof value.pid !== 'number' || typeof value.hostname !== 'string') return undefined;
    return {
      pid: value.pid,
      hostname: value.hostname,
      command: String(value.command ?? 'rke-ts'),
      config: String(value.config ?? ''),
      startedAt: String(value.startedAt ?? ''),
      ...(typeof value.processStart === 'string' ? { processStart: value.processStart } : {}),
    };
  } catch {
    return undefined;
  }
}

export interface LocalProcesses {
  hostname: string;
  isAlive: (pid: number) => boolean;
  startTime: (pid: number) => string | undefined;
}

/**
 * A lock is stale only when we can prove its owner is gone: same host, and its pid is not
 * running or now belongs to a process that started at another time.
 */
export function isStaleOwner(owner: LockOwner, here: LocalProcesses): boolean {
  if (owner.hostname !== here.hostname) return false;
  if (!here.isAlive(owner.pid)) return true;
  if (owner.processStart === undefined) return false;
  const running = here.startTime(owner.pid);
  return running !== undefined && running !== owner.processStart;
}

async function readLock(file: string): Promise<{ text: string; ageMs: number } | undefined> {
  try {
    const [text, info] = await Promise.all([readFile(file, 'utf8'), stat(file)]);
    return { text, ageMs: Date.now() - info.mtimeMs };
  } catch (error) {
    if (errno(error) === 'ENOENT') return undefined;
    throw error;
  }
}

/** Removes `file` if it still holds exactly `staleText`; false if another run is taking over. */
async function takeOver(file: string, staleText: string): Promise<boolean> {
  const guard = `${file}.takeover`;
  let handle;
  try {
    handle = await open(guard, 'wx', 0o644);
  } catch (error) {
    if (errno(error) !== 'EEXIST') throw error;
    const info = await stat(guard).catch(() => undefined);
    if (info && Date.now() - info.mtimeMs > TAKEOVER_GUARD_STALE_MS) await unlink(guard).catch(() => undefined);
    return false;
  }
  try {
    const current = await readLock(file);
    if (current?.text === staleText) await unlink(file);
    return true;
  } finally {
    await handle.close();
    await unlink(guard).catch(() => undefined);
  }
}

function lockedError(file: string, owner: LockOwner | undefined): LockedError {
  const who = owner
    ? `${owner.command} (pid ${owner.pid} on ${owner.hostname}, since ${owner.startedAt})`
    : 'a run whose lock file is still being written';
  return new LockedError(`another rke-ts run holds the lock for ${owner?.config || 'this cluster'}: ${who}; lock file ${file}`, {
    hint: 'wait for it to finish; if that process no longer exists, delete the lock file',
  });
}

async function acquireAt(file: string, owner: LockOwner, options: LocalProcesses): Promise<ClusterLock> {
  const text = `${JSON.stringify(owner)}\n`;
  for (let attempt = 1; attempt <= ACQUIRE_ATTEMPTS; attempt++) {
    try {
      const handle = await open(file, 'wx', 0o644);
      try {
        await handle.writeFile(text);
      } finally {
        await handle.close();
      }
      return { path: file, release: () => releaseLock(file, text) };
    } catch (error) {
      if (errno(error) !== 'EEXIST') throw error;
    }
    const existing = await readLock(file);
    if (existing === undefined) continue; // released meanwhile
    const holder = parseLockOwner(existing.text);
    const stale = holder ? isStaleOwner(holder, options) : existing.ageMs > UNREADABLE_LOCK_GRACE_MS;
    if (!stale) throw lockedError(file, holder);
    if (!(await takeOver(file, existing.text))) await sleep(20 * attempt);
  }
  throw lockedError(file, parseLockOwner((await readLock(file))?.text ?? ''));
}

async function releaseLock(file: string, text: string): Promise<void> {
  // Only our own lock: never delete one a later run took over.
  const current = await readLock(file).catch(() => undefined);
  if (current?.text === text) await unlink(file).catch(() => undefined);
}

/** Takes the cluster lock for `configPath` or throws LockedError naming the holder. */
export async function acquireClusterLock(configPath: string, options: LockOptions): Promise<ClusterLock> {
  const absolute = await realpath(configPath).catch(() => path.resolve(configPath));
  const hostname = options.hostname ?? os.hostname();
  const startTime = options.startTime ?? processStartTime;
  const pid = options.pid ?? process.pid;
  const processStart = startTime(pid);
  const owner: LockOwner = {
    pid,
    hostname,
    command: options.command,
    config: absolute,
    startedAt: (options.now ?? (() => new Date()))().toISOString(),
    ...(processStart !== undefined ? { processStart } : {}),
  };
  const candidates = lockFilesFor(absolute, options.env);
  let lastError: unknown;
  for (const file of candidates) {
    try {
      return await acquireAt(file, owner, { hostname, isAlive: options.isAlive ?? processIsAlive, startTime });
    } catch (error) {
      if (error instanceof LockedError) throw error;
      // Directory missing, read-only or not ours: try the next place.
      if (!['ENOENT', 'EACCES', 'EPERM', 'EROFS', 'ENOTDIR'].includes(errno(error) ?? '')) throw error;
      lastError = error;
    }
  }
  throw new StorageError(`cannot create a lock file for ${absolute} (tried ${candidates.join(', ')}): ${(lastError as Error).message}`, {
    hint: 'set RKE_TS_LOCK_DIR to a writable directory',
  });
}

export async function withClusterLock<T>(configPath: string, options: LockOptions, work: (lock: ClusterLock) => Promise<T>): Promise<T> {
  const lock = await acquireClusterLock(configPath, options);
  try {
    return await work(lock);
  } finally {
    await lock.release();
  }
}
