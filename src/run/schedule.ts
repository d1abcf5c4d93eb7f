/**
 * The foreground scheduler loop: waits for each tick, starts the job unless the previous run
 * is still going (then the tick is skipped and logged, like k3s's cron.SkipIfStillRunning),
 * and on abort stops scheduling and waits for the current run to finish its cleanup.
 */
import type { Logger } from '../log/logger.js';
import { type ScheduleSpec, nextTick } from '../plan/schedule.js';

/** Sleeps are cut into slices, so a clock change (suspend, NTP step) is noticed within one. */
const SLEEP_SLICE_MS = 60_000;

export interface ScheduleLoopOptions {
  signal: AbortSignal;
  log: Logger;
  now: () => Date;
}

export interface ScheduleSummary {
  started: number;
  skipped: number;
}

/** Resolves at `when` or as soon as `signal` aborts. */
async function sleepUntil(when: Date, options: ScheduleLoopOptions): Promise<void> {
  while (!options.signal.aborted) {
    const remaining = when.getTime() - options.now().getTime();
    if (remaining <= 0) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        options.signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, Math.min(remaining, SLEEP_SLICE_MS));
      options.signal.addEventListener('abort', done, { once: true });
    });
  }
}

/**
 * Runs `job` at every tick of `spec` until `options.signal` aborts. The job gets the tick's
 * time and must not throw (failures are the job's to log); a throw is logged here anyway.
 */
export async function runSchedule(spec: ScheduleSpec, job: (tick: Date) => Promise<void>, options: ScheduleLoopOptions): Promise<ScheduleSummary> {
  const startedAt = options.now();
  const summary: ScheduleSummary = { started: 0, skipped: 0 };
  let running: Promise<void> | undefined;
  let after = startedAt;
  while (!options.signal.aborted) {
    const tick = nextTick(spec, after, startedAt);
    options.log.debug(`next scheduled snapshot at ${tick.toISOString()}`);
    await sleepUntil(tick, options);
    if (options.signal.aborted) break;
    after = tick;
    if (running) {
      summary.skipped++;
      options.log.warn(`Skipping the scheduled snapshot of ${tick.toISOString()}: the previous run is still going`);
      continue;
    }
    summary.started++;
    const run: Promise<void> = job(tick)
      .catch((error: unknown) => options.log.error(`scheduled snapshot of ${tick.toISOString()} failed: ${(error as Error).message}`))
      .finally(() => {
        if (running === run) running = undefined;
      });
    running = run;
  }
  if (running) {
    options.log.info('Stopping: waiting for the current snapshot run to clean up');
    await running;
  }
  return summary;
}
