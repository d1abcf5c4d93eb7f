import type { Command } from 'commander';
import { addConnectionOptions, addS3Options } from '../options.js';
import type { ProgramDeps } from '../program.js';

export function registerSnapshotVerify(etcd: Command, deps: ProgramDeps): void {
  const command = etcd
    .command('snapshot-verify')
    .description('prove a snapshot is restorable without touching the cluster: checksums, then a throw-away restore on one etcd node')
    .option('--name <name>', 'snapshot to verify (NAME or NAME.zip); required')
    .option('-o, --output <format>', 'table, json or yaml', 'table');
  addConnectionOptions(command, deps.env);
  addS3Options(command);
  command.action(async (flags: Record<string, unknown>, self: Command) => {
    const { snapshotVerify } = await import('../verify.js');
    await snapshotVerify(flags, deps.makeContext(self.optsWithGlobals()));
  });
}
