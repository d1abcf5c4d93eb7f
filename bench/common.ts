import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { CLUSTER_SCRIPT, type TestCluster } from '../test/support/cluster.js';

export const run = promisify(execFile);

/** Median of a few timings: benchmarks here run on a shared 2-core machine. */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

export async function timed<T>(action: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const started = process.hrtime.bigint();
  const value = await action();
  return { ms: Number(process.hrtime.bigint() - started) / 1e6, value };
}

/**
 * Grows etcd's database to about `megabytes` MiB with 1 MiB values (etcd refuses requests
 * over 1.5 MiB), several writers at a time.
 */
export async function growEtcd(cluster: TestCluster, megabytes: number, firstIndex = 0): Promise<void> {
  const value = Buffer.alloc(1024 * 1024 - 64, 'v');
  const writers = 4;
  let next = firstIndex;
  const end = firstIndex + megabytes;
  await Promise.all(
    Array.from({ length: writers }, async () => {
      while (next < end) {
        const index = next++;
        await putFromStdin(cluster, `/bench/${index}`, value);
      }
    }),
  );
}

/** `etcdctl put KEY` reads the value from stdin: large values do not fit in argv. */
function putFromStdin(cluster: TestCluster, key: string, value: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [CLUSTER_SCRIPT, 'etcdctl', cluster.name, '1', 'put', key], { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`etcdctl put ${key}: ${stderr}`))));
    child.stdin.end(value);
  });
}

export function envNumber(name: string, fallback: number): number {
  const value = Number(process.env[name]);
  return Number.isFinite(value) && value > 0 ? value : fallback;
}
