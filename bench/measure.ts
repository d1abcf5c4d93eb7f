import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { processStatFields } from '../src/lock.js';

export interface ProcessRun {
  code: number;
  stderr: string;
  wallMs: number;
  /** Peak resident set size (VmHWM) in MiB, sampled from /proc until the process exits. */
  peakRssMiB: number;
  /** User + system CPU seconds, as last sampled (at most one sampling interval before exit). */
  cpuSeconds: number;
}

/** Linux's USER_HZ: /proc/<pid>/stat counts CPU time in 1/100 s. */
const TICKS_PER_SECOND = 100;

function highWaterMark(pid: number): number | undefined {
  try {
    const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** CPU seconds (user + system) a process has used so far. */
export function cpuTime(pid: number): number | undefined {
  const fields = processStatFields(pid);
  // utime and stime are fields 14 and 15.
  return fields ? (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND : undefined;
}

/** CPU seconds all cores of this machine have been busy since boot (not idle, not waiting for I/O). */
export function machineBusySeconds(): number {
  const [, user, nice, system, , , irq, softirq, steal] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).map(Number);
  return (user! + nice! + system! + irq! + softirq! + steal!) / TICKS_PER_SECOND;
}

/** Samples machineBusySeconds() over time, to tell the CPU a phase of a run used from its timestamps. */
export function sampleMachineBusy(intervalMs = 100): { between(fromMs: number, toMs: number): number; stop(): void } {
  const samples: Array<{ at: number; busy: number }> = [];
  const take = () => samples.push({ at: Date.now(), busy: machineBusySeconds() });
  take();
  const timer = setInterval(take, intervalMs).unref();
  const nearest = (at: number) => samples.reduce((best, sample) => (Math.abs(sample.at - at) < Math.abs(best.at - at) ? sample : best));
  return {
    between: (fromMs, toMs) => nearest(toMs).busy - nearest(fromMs).busy,
    stop: () => clearInterval(timer),
  };
}

/** Runs a command and records its wall time, peak RSS and CPU time. */
export function runMeasured(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<ProcessRun> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(command, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    let peak = 0;
    let cpuSeconds = 0;
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const sampler = setInterval(() => {
      const value = child.pid ? highWaterMark(child.pid) : undefined;
      if (value !== undefined) peak = Math.max(peak, value);
      cpuSeconds = (child.pid ? cpuTime(child.pid) : undefined) ?? cpuSeconds;
    }, 50);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearInterval(sampler);
      resolve({ code: code ?? -1, stderr, wallMs: Date.now() - started, peakRssMiB: peak, cpuSeconds });
    });
  });
}
