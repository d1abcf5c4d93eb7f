import type { Command } from 'commander';
import { addConnectionOptions, addS3Options } from '../options.js';
import type { ProgramDeps } from '../program.js';
import { addPlaceOptions } from './lifecycle-options.js';

export function registerSnapshotDelete(etcd: Command, deps: ProgramDeps): void {
  const command = etcd
    .command('snapshot-delete')
    .alias('delete')
    .description('delete snapshots by name from every etcd node and from S3 (NAME also removes NAME.zip)')
    .argument('<name...>', 'snapshot names (plain file names, no paths)');
  addPlaceOptions(command);
  addConnectionOptions(command, deps.env);
  addS3Options(command);
  command.action(async (names: string[], flags: Record<string, unknown>, self: Command) => {
    const { snapshotDelete } = await import('../delete.js');
    await snapshotDelete(names, flags, deps.makeContext(self.optsWithGlobals()));
  });
}
