import { StorageError, UsageError } from '../errors.js';
import { withClusterLock } from '../lock.js';
import { validateSnapshotName } from '../plan/names.js';
import { deleteSnapshotsEverywhere } from '../run/delete.js';
import { placeFailure } from '../run/places.js';
import type { CommandContext } from './context.js';
import { lockOptions, placesFrom } from './prune.js';
import { loadClusterForCommand, loadKnownHosts, s3SettingsFor } from './save.js';

export async function snapshotDelete(names: string[], flags: Record<string, unknown>, context: CommandContext): Promise<void> {
  const { log } = context;
  if (names.length === 0) throw new UsageError('no snapshots given for removal');
  // Path parts are refused before anything is touched (k3s: "path traversal not allowed").
  for (const name of names) validateSnapshotName(name, 'snapshot name');
  const requested = [...new Set(names)];
  const config = await loadClusterForCommand(flags);
  const targets = placesFrom(flags, flags.localOnly ? undefined : s3SettingsFor(flags, config, context));
  const knownHosts = await loadKnownHosts(flags.knownHosts);
  const deps = { env: context.env, log, signal: context.signal, ...(knownHosts ? { knownHosts } : {}) };

  await withClusterLock(config.file, lockOptions(context, 'snapshot-delete'), async () => {
    const results = await deleteSnapshotsEverywhere(config, requested, targets, deps);
    const found = new Set(results.flatMap((result) => (result.ok ? result.value.map((deletion) => deletion.requested) : [])));
    const missing = requested.filter((name) => !found.has(name));
    for (const name of missing) log.warn(`Snapshot ${name} not found`);
    const failure = placeFailure(results, 'delete snapshots', log);
    if (missing.length > 0) {
      const where = [targets.local ? 'etcd node' : undefined, targets.s3 ? 'S3' : undefined].filter(Boolean).join(' or ');
      throw new StorageError(`snapshot${missing.length > 1 ? 's' : ''} not found on any ${failure ? 'reachable ' : ''}${where}: ${missing.join(', ')}`, {
        hint: 'see rke-ts etcd snapshot-list for the names',
      });
    }
    if (failure) throw failure;
  });
}
