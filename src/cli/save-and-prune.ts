/**
 * snapshot-save as a cron job runs it: under the cluster lock, and with `--retention` /
 * `--max-age` a prune after the save, only when the save fully succeeded (rancher#18548:
 * pruning after failed snapshots deletes good ones while no new one was made).
 * snapshot-schedule runs every tick through saveThenPrune as well.
 */
import type { ClusterConfig } from '../config/index.js';
import { UsageError } from '../errors.js';
import { withClusterLock } from '../lock.js';
import { DEFAULT_PRUNE_PREFIX, type RetentionPolicy, type RetentionScope, resolveRetentionPolicy } from '../plan/retention.js';
import { compressRequested, retentionFlagsFrom } from './commands/lifecycle-options.js';
import type { CommandContext } from './context.js';
import { lockOptions, runPrune } from './prune.js';
import { loadClusterForCommand, loadKnownHosts, s3SettingsFor, snapshotSave } from './save.js';

/**
 * The snapshots `snapshot-save --retention` prunes: `--retention-prefix`, else RKE's default
 * names (`rke_etcd_snapshot_`). With an explicit `--name` the series is unknown, so the prefix
 * must be given.
 */
export function saveRetentionScope(flags: Record<string, unknown>): RetentionScope {
  const name = typeof flags.name === 'string' && flags.name !== '' ? flags.name : undefined;
  const prefix = typeof flags.retentionPrefix === 'string' ? flags.retentionPrefix : undefined;
  if (prefix !== undefined) {
    if (name !== undefined && !name.startsWith(prefix)) {
      throw new UsageError(`--name ${name} does not start with --retention-prefix ${prefix}: the new snapshot would not count toward the retention`);
    }
    return { kind: 'prefix', prefix };
  }
  if (name !== undefined) {
    throw new UsageError('--retention/--max-age with --name needs --retention-prefix, the name prefix of the snapshots to prune', {
      hint: `e.g. --name nightly-2024-05-01 --retention-prefix nightly-; without --name the prefix is ${DEFAULT_PRUNE_PREFIX}`,
    });
  }
  return { kind: 'prefix', prefix: DEFAULT_PRUNE_PREFIX };
}

/** Runs one save and, if it fully succeeded and a policy is given, the prune. */
export async function saveThenPrune(flags: Record<string, unknown>, context: CommandContext, retention?: { config: ClusterConfig; policy: RetentionPolicy }): Promise<void> {
  await snapshotSave({ ...flags, compress: compressRequested(flags) }, context, retention);
  if (!retention) return;
  context.signal.throwIfAborted();
  const s3 = flags.localOnly ? undefined : s3SettingsFor(flags, retention.config, context);
  const knownHosts = await loadKnownHosts(flags.knownHosts);
  await runPrune(
    { config: retention.config, policy: retention.policy, targets: { local: true, ...(s3 ? { s3 } : {}) }, dryRun: false, ...(knownHosts ? { knownHosts } : {}) },
    context,
  );
}

/** Whether --retention or --max-age (any spelling) was given. */
export function retentionRequested(flags: Record<string, unknown>): boolean {
  const given = retentionFlagsFrom(flags);
  return given.retention !== undefined || given.maxAge !== undefined;
}

export async function snapshotSaveCommand(flags: Record<string, unknown>, context: CommandContext): Promise<void> {
  if (compressRequested(flags) && typeof flags.name === 'string' && flags.name.endsWith('.zip')) {
    throw new UsageError(`--name ${flags.name}: with --compress the file is <name>.zip already; give the name without .zip`);
  }
  let retention: { config: ClusterConfig; policy: RetentionPolicy } | undefined;
  if (retentionRequested(flags)) {
    // Resolved before the lock and the save, so a bad flag fails before any snapshot is taken.
    const scope = saveRetentionScope(flags);
    const config = await loadClusterForCommand(flags);
    retention = { config, policy: resolveRetentionPolicy(retentionFlagsFrom(flags), config, scope) };
  }
  if (flags.dryRun) return snapshotSave({ ...flags, compress: compressRequested(flags) }, context, retention);
  await withClusterLock(String(flags.config), lockOptions(context, 'snapshot-save'), () => saveThenPrune(flags, context, retention));
}
