import type { Command } from 'commander';
import { addConnectionOptions, addS3Options } from '../options.js';
import type { ProgramDeps } from '../program.js';

export function registerSnapshotRestore(etcd: Command, deps: ProgramDeps): void {
  const command = etcd
    .command('snapshot-restore')
    .description('restore every etcd node from one snapshot (local or S3), checked on every node before etcd is touched')
    .option('--name <name>', 'snapshot to restore (NAME or NAME.zip); required')
    .option('--dry-run', 'print the plan without reading keys or connecting to anything', false)
    .option('--restart-kube-components', 'after the restore, restart kube-apiserver, kubelet, kube-controller-manager, kube-scheduler, kube-proxy and the network containers on every node', false)
    .option('--use-local-state', 'keep the local cluster state file instead of the one in the snapshot zip', false)
    .option('--cert-dir <dir>', 'accepted for RKE compatibility; ignored (certificates are checked on the nodes, not deployed)')
    .option('--custom-certs', 'accepted for RKE compatibility; ignored (certificates are checked on the nodes, not deployed)', false);
  addConnectionOptions(command, deps.env);
  addS3Options(command);
  command.action(async (flags: Record<string, unknown>, self: Command) => {
    const { snapshotRestore } = await import('../restore.js');
    await snapshotRestore(flags, deps.makeContext(self.optsWithGlobals()));
  });
}
