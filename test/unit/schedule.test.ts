import { describe, expect, it } from 'vitest';
import type { ClusterConfig } from '../../src/config/types.js';
import { UsageError } from '../../src/errors.js';
import { silentLogger } from '../../src/log/logger.js';
import { isRecurringName, snapshotTimeFromName } from '../../src/plan/retention.js';
import { type ScheduleSpec, nextTick, recurringSnapshotName, resolveSchedule } from '../../src/plan/schedule.js';
import { runSchedule } from '../../src/run/schedule.js';

const hour = 3_600_000;

function config(etcd: Partial<ClusterConfig['services']['etcd']> = {}): ClusterConfig {
  return { services: { etcd: { snapshot: true, creation: '12h', retention: '72h', ...etcd } } } as unknown as ClusterConfig;
}
const backup = (fields: Partial<{ enabled: boolean; intervalHours: number; retention: number }> = {}) => ({
  enabled: true,
  intervalHours: 12,
  retention: 6,
  safeTimestamp: false,
  timeout: 300,
  ...fields,
});

describe('resolveSchedule', () => {
  it('takes --cron (5 fields, or 6 with seconds)', () => {
    expect(resolveSchedule({ cron: '0 */12 * * *' }, config())).toEqual({ kind: 'cron', expression: '0 */12 * * *', source: '--cron' });
    expect(resolveSchedule({ cron: '*/2 * * * * *' }, config())).toMatchObject({ kind: 'cron' });
  });

  it('reads robfig’s @every as an interval', () => {
    expect(resolveSchedule({ cron: '@every 90m' }, config())).toMatchObject({ kind: 'interval', intervalMs: 1.5 * hour });
  });

  it('takes --interval as a Go duration', () => {
    expect(resolveSchedule({ interval: '2s' }, config())).toMatchObject({ kind: 'interval', intervalMs: 2000 });
  });

  it('falls back to backup_config.interval_hours, then the legacy services.etcd.creation', () => {
    expect(resolveSchedule({}, config({ backupConfig: backup({ intervalHours: 6 }) }))).toEqual({
      kind: 'interval',
      intervalMs: 6 * hour,
      source: 'services.etcd.backup_config.interval_hours',
    });
    expect(resolveSchedule({}, config({ creation: '5m0s' }))).toMatchObject({ kind: 'interval', intervalMs: 5 * 60_000, source: 'services.etcd.creation' });
  });

  it.each([
    [{ cron: 'bad' }, config()],
    [{ cron: '0 0 * * * * 2030' }, config()],
    [{ cron: '61 * * * *' }, config()],
    [{ interval: '500ms' }, config()],
    [{ interval: 'often' }, config()],
    [{ cron: '* * * * *', interval: '1h' }, config()],
    [{}, config({ backupConfig: backup({ enabled: false }) })],
    [{}, config({ snapshot: false })],
    [{}, config({ creation: 'soon' })],
  ])('refuses %j', (flags, cluster) => {
    expect(() => resolveSchedule(flags, cluster)).toThrow(UsageError);
  });

  it('lets explicit flags schedule a cluster whose recurring snapshots are disabled', () => {
    expect(resolveSchedule({ interval: '1h' }, config({ backupConfig: backup({ enabled: false }) }))).toMatchObject({ kind: 'interval' });
  });
});

describe('nextTick', () => {
  const start = new Date('2024-05-01T10:17:00Z');

  it('runs an interval one period after the start (as RKE’s ticker), then on the grid', () => {
    const spec: ScheduleSpec = { kind: 'interval', intervalMs: hour, source: 'test' };
    expect(nextTick(spec, start, start).toISOString()).toBe('2024-05-01T11:17:00.000Z');
    expect(nextTick(spec, new Date('2024-05-01T11:17:00Z'), start).toISOString()).toBe('2024-05-01T12:17:00.000Z');
    // A run that overran two periods: the next tick stays on the grid.
    expect(nextTick(spec, new Date('2024-05-01T13:30:00Z'), start).toISOString()).toBe('2024-05-01T14:17:00.000Z');
  });

  it('follows the cron expression', () => {
    const spec: ScheduleSpec = { kind: 'cron', expression: '0 */12 * * *', source: 'test' };
    const first = nextTick(spec, start, start);
    expect(first.getTime()).toBeGreaterThan(start.getTime());
    expect(first.getMinutes()).toBe(0);
    expect(first.getHours() % 12).toBe(0);
    expect(nextTick(spec, first, start).getTime() - first.getTime()).toBe(12 * hour);
  });
});

describe('recurringSnapshotName', () => {
  const tick = new Date('2024-05-01T12:00:00.700Z');
  it('is RKE’s <RFC3339 UTC>_etcd, in whole seconds', () => {
    expect(recurringSnapshotName(tick, false)).toBe('2024-05-01T12:00:00Z_etcd');
  });
  it('has no colons with --safe-timestamp', () => {
    expect(recurringSnapshotName(tick, true)).toBe('2024-05-01T12-00-00Z_etcd');
  });
  it('is found again by retention, both ways', () => {
    for (const safe of [false, true]) {
      const name = recurringSnapshotName(tick, safe);
      expect(isRecurringName(name)).toBe(true);
      expect(snapshotTimeFromName(name)?.toISOString()).toBe('2024-05-01T12:00:00.000Z');
    }
  });
});

describe('runSchedule', () => {
  it('runs at each tick, skips ticks while a run is going, and waits for the run on stop', async () => {
    const abort = new AbortController();
    const warnings: string[] = [];
    const log = Object.assign(silentLogger(), { warn: (message: string) => warnings.push(message) }) as unknown as ReturnType<typeof silentLogger>;
    const ticks: Date[] = [];
    let finished = 0;
    const summary = runSchedule(
      { kind: 'interval', intervalMs: 40, source: 'test' },
      async (tick) => {
        ticks.push(tick);
        // The first run overlaps two ticks; later ones are quick.
        await new Promise((resolve) => setTimeout(resolve, ticks.length === 1 ? 100 : 5));
        finished++;
      },
      { signal: abort.signal, log, now: () => new Date() },
    );
    await new Promise((resolve) => setTimeout(resolve, 330));
    abort.abort();
    const result = await summary;
    expect(result.started).toBe(ticks.length);
    expect(result.started).toBeGreaterThanOrEqual(3);
    expect(result.skipped).toBeGreaterThanOrEqual(1);
    expect(warnings.some((line) => line.includes('the previous run is still going'))).toBe(true);
    expect(finished).toBe(ticks.length);
    // Ticks stay on the 40 ms grid from the start.
    const gaps = ticks.slice(1).map((tick, index) => tick.getTime() - ticks[index]!.getTime());
    for (const gap of gaps) expect(gap % 40).toBe(0);
  });

  it('stops at once when aborted while idle', async () => {
    const abort = new AbortController();
    const started = Date.now();
    const summary = runSchedule({ kind: 'interval', intervalMs: hour, source: 'test' }, async () => undefined, { signal: abort.signal, log: silentLogger(), now: () => new Date() });
    setTimeout(() => abort.abort(), 20);
    expect(await summary).toEqual({ started: 0, skipped: 0 });
    expect(Date.now() - started).toBeLessThan(1000);
  });
});
