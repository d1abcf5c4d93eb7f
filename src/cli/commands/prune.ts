import type { Command } from 'commander';
import { addConnectionOptions, addS3Options } from '../options.js';
import type { ProgramDeps } from '../program.js';
import { addPlaceOptions, addRetentionOptions } from './lifecycle-options.js';

export function registerSnapshotPrune(etcd: Command, deps: ProgramDeps): void {
  const command = etcd
    .command('snapshot-prune')
    .alias('prune')
    .description('keep the newest N snapshots (or those younger than --max-age) on each etcd node and in S3')
    .option('--name <prefix>', 'only snapshots whose names start with this prefix (default rke_etcd_snapshot_)')
    .option('--recurring', 'only recurring snapshots named <RFC3339>_etcd (snapshot-schedule, RKE etcd-rolling-snapshots)', false)
    .option('--dry-run', 'print what would be deleted, delete nothing', false);
  addRetentionOptions(command, 'snapshots to keep per place (default backup_config.retention, else 6)');
  addPlaceOptions(command);
  addConnectionOptions(command, deps.env);
  addS3Options(command);
  command.action(async (flags: Record<string, unknown>, self: Command) => {
    const { snapshotPrune } = await import('../prune.js');
    await snapshotPrune(flags, deps.makeContext(self.optsWithGlobals()));
  });
}
