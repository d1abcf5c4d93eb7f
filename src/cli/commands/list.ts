import { type Command, Option } from 'commander';
import { addConnectionOptions, addS3Options } from '../options.js';
import type { ProgramDeps } from '../program.js';
import { addPlaceOptions } from './lifecycle-options.js';

export function registerSnapshotList(etcd: Command, deps: ProgramDeps): void {
  const command = etcd
    .command('snapshot-list')
    .aliases(['ls', 'list'])
    .description('list the snapshots on every etcd node and in S3, with size, time and sha256')
    .addOption(new Option('-o, --output <format>', 'output format').choices(['table', 'json', 'yaml']).default('table'))
    .option('--no-checksums', 'skip the sha256 of local files (it reads every file on its node)');
  addPlaceOptions(command);
  addConnectionOptions(command, deps.env);
  addS3Options(command);
  command.action(async (flags: Record<string, unknown>, self: Command) => {
    const { snapshotList } = await import('../list.js');
    await snapshotList(flags, deps.makeContext(self.optsWithGlobals()));
  });
}
