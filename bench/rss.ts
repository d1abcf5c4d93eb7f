import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface ProcessRun {
  code: number;
  stderr: string;
  wallMs: number;
  /** Peak resident set size (VmHWM) in MiB, sampled from /proc until the process exits. */
  peakRssMiB: number;
}

function highWaterMark(pid: number): number | undefined {
  try {
    const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Runs a command and records its wall time and peak RSS. */
export function runMeasured(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<ProcessRun> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(command, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    let peak = 0;
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const sampler = setInterval(() => {
      const value = child.pid ? highWaterMark(child.pid) : undefined;
      if (value !== undefined) peak = Math.max(peak, value);
    }, 50);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearInterval(sampler);
      resolve({ code: code ?? -1, stderr, wallMs: Date.now() - started, peakRssMiB: peak });
    });
  });
}
