import { LockedError, describeError } from '../errors.js';
import { withClusterLock } from '../lock.js';
import { describePolicy, resolveRetentionPolicy } from '../plan/retention.js';
import { describeSchedule, recurringSnapshotName, resolveSchedule } from '../plan/schedule.js';
import { runSchedule } from '../run/schedule.js';
import { compressRequested, retentionFlagsFrom } from './commands/lifecycle-options.js';
import type { CommandContext } from './context.js';
import { lockOptions } from './prune.js';
import { saveThenPrune } from './save-and-prune.js';
import { loadClusterForCommand, s3SettingsFor } from './save.js';

/**
 * `snapshot-schedule`: RKE's etcd-rolling-snapshots from the admin box. Every tick runs the
 * same code as `snapshot-save --retention` in this process: lock, save `<RFC3339 UTC>_etcd` on
 * every node (and S3), then prune the recurring snapshots if the save fully succeeded.
 * cluster.yml is read again at every tick, so edits apply without a restart.
 */
export async function snapshotSchedule(flags: Record<string, unknown>, context: CommandContext): Promise<void> {
  const { log } = context;
  // Everything that can be wrong with the flags or the file fails now, not at the first tick.
  const config = await loadClusterForCommand(flags);
  const spec = resolveSchedule(
    { ...(typeof flags.cron === 'string' ? { cron: flags.cron } : {}), ...(typeof flags.interval === 'string' ? { interval: flags.interval } : {}) },
    config,
  );
  const policy = resolveRetentionPolicy(retentionFlagsFrom(flags), config, { kind: 'recurring' });
  const safeTimestamp = Boolean(flags.safeTimestamp) || Boolean(config.services.etcd.backupConfig?.safeTimestamp);
  const s3 = s3SettingsFor(flags, config, context);
  log.info(
    `Initializing Rolling Backups: ${describeSchedule(spec)}, ${describePolicy(policy)}, ` +
      `local snapshots on every etcd node${s3 ? ` and s3://${s3.bucket}` : ''}${compressRequested(flags) ? ', compressed' : ''}`,
  );

  const summary = await runSchedule(
    spec,
    async (tick) => {
      const name = recurringSnapshotName(tick, safeTimestamp);
      const started = Date.now();
      try {
        await withClusterLock(String(flags.config), lockOptions(context, 'snapshot-schedule'), async () => {
          // Re-read: the prune must use the cluster.yml the save just used.
          const current = await loadClusterForCommand(flags);
          const currentPolicy = resolveRetentionPolicy(retentionFlagsFrom(flags), current, { kind: 'recurring' });
          await saveThenPrune({ ...flags, name }, context, { config: current, policy: currentPolicy });
        });
        log.info(`Created backup [${name}] in ${((Date.now() - started) / 1000).toFixed(1)}s`);
      } catch (error) {
        if (context.signal.aborted) return;
        if (error instanceof LockedError) log.warn(`Skipping the scheduled snapshot [${name}]: ${describeError(error)}`);
        else log.error(`Failed to take scheduled snapshot [${name}]: ${describeError(error)}`);
      }
    },
    { signal: context.signal, log, now: context.now },
  );
  log.info(`Stopped after ${summary.started} run(s), ${summary.skipped} skipped tick(s)`);
}
