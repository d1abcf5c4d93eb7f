import type { Command } from 'commander';
import { addConnectionOptions, addS3Options } from '../options.js';
import type { ProgramDeps } from '../program.js';
import { addCompressOption, addRetentionOptions } from './lifecycle-options.js';

export function registerSnapshotSave(etcd: Command, deps: ProgramDeps): void {
  const command = etcd
    .command('snapshot-save')
    .description('take an etcd snapshot on every etcd node (and upload it to S3 when configured)')
    .option('--name <name>', 'snapshot name (default rke_etcd_snapshot_<RFC3339 local time>)')
    .option('--dry-run', 'print the plan without reading keys or connecting to anything', false);
  addCompressOption(command);
  addRetentionOptions(command, 'after a successful save, keep this many snapshots per place (see --retention-prefix)');
  command.option('--retention-prefix <prefix>', 'name prefix of the snapshots --retention prunes (default rke_etcd_snapshot_; required with --name)');
  addConnectionOptions(command, deps.env);
  addS3Options(command);
  command.action(async (flags: Record<string, unknown>, self: Command) => {
    // Lock and retention wrap the save (save-and-prune.ts); --dry-run goes straight to it.
    const { snapshotSaveCommand } = await import('../save-and-prune.js');
    await snapshotSaveCommand(flags, deps.makeContext(self.optsWithGlobals()));
  });
}
