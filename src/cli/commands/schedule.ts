import type { Command } from 'commander';
import { addConnectionOptions, addS3Options } from '../options.js';
import type { ProgramDeps } from '../program.js';
import { addCompressOption, addRetentionOptions } from './lifecycle-options.js';

export function registerSnapshotSchedule(etcd: Command, deps: ProgramDeps): void {
  const command = etcd
    .command('snapshot-schedule')
    .description('take recurring snapshots in the foreground (for systemd), pruning after each successful one; stops on SIGTERM/SIGINT')
    .option('--cron <expression>', 'cron schedule, 5 fields (k3s default "0 */12 * * *") or 6 with seconds; "@every 6h" too')
    .option('--interval <duration>', 'fixed interval as a Go duration (e.g. 12h, 30m, 2s); default backup_config.interval_hours, else services.etcd.creation')
    .option('--safe-timestamp', 'name snapshots 2024-05-01T12-00-00Z_etcd (no colons) instead of 2024-05-01T12:00:00Z_etcd', false);
  addRetentionOptions(command, 'recurring snapshots to keep per place (default backup_config.retention, else 6)');
  addCompressOption(command);
  addConnectionOptions(command, deps.env);
  addS3Options(command);
  command.action(async (flags: Record<string, unknown>, self: Command) => {
    const { snapshotSchedule } = await import('../schedule.js');
    await snapshotSchedule(flags, deps.makeContext(self.optsWithGlobals()));
  });
}
