import type { Command } from 'commander';
import { addConnectionOptions, addS3Options } from '../options.js';
import type { ProgramDeps } from '../program.js';

export function registerSnapshotSave(etcd: Command, deps: ProgramDeps): void {
  const command = etcd
    .command('snapshot-save')
    .description('take an etcd snapshot on every etcd node (and upload it to S3 when configured)')
    .option('--name <name>', 'snapshot name (default rke_etcd_snapshot_<RFC3339 local time>)')
    .option('--dry-run', 'print the plan without reading keys or connecting to anything', false);
  addConnectionOptions(command, deps.env);
  addS3Options(command);
  command.action(async (flags: Record<string, unknown>, self: Command) => {
    const { snapshotSave } = await import('../save.js');
    await snapshotSave(flags, deps.makeContext(self.optsWithGlobals()));
  });
}
