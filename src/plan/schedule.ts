/**
 * When snapshot-schedule takes snapshots and what it calls them: pure resolution of the
 * schedule from flags and cluster.yml, the next tick after a time, and recurring names.
 */
import { Cron } from 'croner';
import type { ClusterConfig } from '../config/types.js';
import { UsageError } from '../errors.js';
import { formatDuration, parseGoDuration } from '../storage/go-duration.js';
import { formatRfc3339 } from './names.js';
import { RECURRING_SUFFIX } from './retention.js';

/** k3s's default --etcd-snapshot-schedule-cron. */
export const K3S_DEFAULT_CRON = '0 */12 * * *';
/** Shorter intervals would start a snapshot before the previous one could reasonably finish. */
export const MIN_INTERVAL_MS = 1000;

export type ScheduleSpec =
  | { kind: 'cron'; expression: string; source: string }
  | { kind: 'interval'; intervalMs: number; source: string };

export interface ScheduleFlags {
  cron?: string;
  interval?: string;
}

function cronJob(expression: string): Cron {
  // Paused: the job only answers nextRun(); our loop does the waiting.
  return new Cron(expression, { paused: true, mode: '5-or-6-parts' });
}

function intervalSpec(text: string, source: string): ScheduleSpec {
  const intervalMs = parseGoDuration(text);
  if (intervalMs === undefined || intervalMs < MIN_INTERVAL_MS) {
    throw new UsageError(`${source} ${JSON.stringify(text)}: expected a duration of at least 1s, such as 12h, 30m or 2s`);
  }
  return { kind: 'interval', intervalMs, source };
}

/**
 * `--cron` (5 fields as k3s/robfig, or 6 with seconds; robfig's `@every 5m` too), else
 * `--interval`, else cluster.yml: `backup_config.interval_hours`, else the legacy
 * `services.etcd.creation` (RKE before v0.2.0), as RKE's etcd-rolling-snapshots does.
 */
export function resolveSchedule(flags: ScheduleFlags, config: ClusterConfig): ScheduleSpec {
  if (flags.cron !== undefined && flags.interval !== undefined) {
    throw new UsageError('--cron and --interval are mutually exclusive');
  }
  if (flags.cron !== undefined) {
    const expression = flags.cron.trim();
    const every = /^@every\s+(\S+)$/.exec(expression);
    if (every) return intervalSpec(every[1]!, '--cron @every');
    try {
      cronJob(expression);
    } catch (error) {
      throw new UsageError(`--cron ${JSON.stringify(expression)}: ${(error as Error).message.replace(/^CronPattern: /, '')}`, {
        hint: `a cron expression with 5 fields (minute hour day month weekday, e.g. "${K3S_DEFAULT_CRON}") or 6 with seconds first`,
      });
    }
    return { kind: 'cron', expression, source: '--cron' };
  }
  if (flags.interval !== undefined) return intervalSpec(flags.interval, '--interval');

  const etcd = config.services.etcd;
  const backup = etcd.backupConfig;
  if (backup) {
    if (!backup.enabled) {
      throw new UsageError('recurring snapshots are disabled in cluster.yml (services.etcd.backup_config.enabled: false)', {
        hint: 'pass --cron or --interval to schedule snapshots anyway',
      });
    }
    return { kind: 'interval', intervalMs: backup.intervalHours * 3_600_000, source: 'services.etcd.backup_config.interval_hours' };
  }
  if (!etcd.snapshot) {
    throw new UsageError('recurring snapshots are disabled in cluster.yml (services.etcd.snapshot: false)', {
      hint: 'pass --cron or --interval to schedule snapshots anyway',
    });
  }
  return intervalSpec(etcd.creation, 'services.etcd.creation');
}

export function describeSchedule(spec: ScheduleSpec): string {
  return spec.kind === 'cron'
    ? `cron "${spec.expression}" (${spec.source}, local time)`
    : `every ${formatDuration(spec.intervalMs)} (${spec.source})`;
}

/**
 * The first tick strictly after `after`. Intervals count from `startedAt`, so the first
 * snapshot comes one interval after the start, as with RKE's ticker, and a slow run does not
 * shift later ticks.
 */
export function nextTick(spec: ScheduleSpec, after: Date, startedAt: Date): Date {
  if (spec.kind === 'interval') {
    const elapsed = after.getTime() - startedAt.getTime();
    const periods = Math.max(1, Math.floor(elapsed / spec.intervalMs) + 1);
    return new Date(startedAt.getTime() + periods * spec.intervalMs);
  }
  const next = cronJob(spec.expression).nextRun(after);
  if (!next) throw new UsageError(`--cron "${spec.expression}" has no future run`);
  return next;
}

/**
 * RKE's recurring name `<RFC3339 UTC>_etcd` (e.g. 2024-05-01T12:00:00Z_etcd), with whole
 * seconds. `safe` replaces the colons (2024-05-01T12-00-00Z_etcd): colons break some S3
 * servers and Windows tools (rancher#22019).
 */
export function recurringSnapshotName(tick: Date, safe: boolean): string {
  const stamp = formatRfc3339(new Date(Math.floor(tick.getTime() / 1000) * 1000), 0);
  return `${safe ? stamp.replace(/:/g, '-') : stamp}${RECURRING_SUFFIX}`;
}
