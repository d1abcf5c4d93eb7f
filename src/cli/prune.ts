import type { ClusterConfig } from '../config/index.js';
import { UsageError } from '../errors.js';
import { withClusterLock } from '../lock.js';
import { DEFAULT_PRUNE_PREFIX, type RetentionPolicy, type RetentionScope, describePolicy, resolveRetentionPolicy } from '../plan/retention.js';
import { placeFailure, s3PlaceName } from '../run/places.js';
import { type PruneTargets, pruneSnapshots } from '../run/prune.js';
import type { S3Settings } from '../storage/index.js';
import type { KnownHostEntry } from '../transport/known-hosts.js';
import { retentionFlagsFrom } from './commands/lifecycle-options.js';
import type { CommandContext } from './context.js';
import { loadClusterForCommand, loadKnownHosts, s3SettingsFor } from './save.js';

/** Which places a command visits, from --local-only / --s3-only and whether S3 is configured. */
export function placesFrom(flags: Record<string, unknown>, s3: S3Settings | undefined): { local: boolean; s3?: S3Settings } {
  if (flags.localOnly && flags.s3Only) throw new UsageError('--local-only and --s3-only are mutually exclusive');
  if (flags.s3Only && !s3) {
    throw new UsageError('--s3-only: S3 is not configured', {
      hint: 'pass --s3 with the S3 flags, or set services.etcd.backup_config.s3backupconfig in cluster.yml',
    });
  }
  return { local: !flags.s3Only, ...(s3 && !flags.localOnly ? { s3 } : {}) };
}

/** `--recurring` (RKE's `<timestamp>_etcd` names) or `--name PREFIX` (k3s), default RKE's one-time prefix. */
export function pruneScopeFrom(flags: Record<string, unknown>): RetentionScope {
  if (flags.recurring && typeof flags.name === 'string') throw new UsageError('--recurring and --name are mutually exclusive');
  if (flags.recurring) return { kind: 'recurring' };
  return { kind: 'prefix', prefix: typeof flags.name === 'string' ? flags.name : DEFAULT_PRUNE_PREFIX };
}

export function lockOptions(context: CommandContext, command: string) {
  return { env: context.env, command, now: context.now };
}

export interface PruneRun {
  config: ClusterConfig;
  policy: RetentionPolicy;
  targets: PruneTargets;
  dryRun: boolean;
  knownHosts?: KnownHostEntry[];
}

/** Applies the policy everywhere, prints the scope and every deletion; throws if a place failed. */
export async function runPrune(run: PruneRun, context: CommandContext): Promise<void> {
  const { log } = context;
  const where = [run.targets.local ? 'local snapshots on every etcd node' : undefined, run.targets.s3 ? s3PlaceName(run.targets.s3) : undefined]
    .filter(Boolean)
    .join(' and ');
  const heading = `Applying snapshot ${describePolicy(run.policy)} to ${where}${run.dryRun ? ' (dry run: nothing is deleted)' : ''}`;
  log.info(heading);
  const deps = { env: context.env, log, signal: context.signal, ...(run.knownHosts ? { knownHosts: run.knownHosts } : {}) };
  const results = await pruneSnapshots(run.config, run.policy, run.targets, deps, { dryRun: run.dryRun, now: context.now() });
  if (run.dryRun) context.stdout.write(`${heading}\n`);
  for (const result of results) {
    if (!result.ok) continue;
    const { selection, removed } = result.value;
    if (run.dryRun) for (const location of removed) context.stdout.write(`would remove ${location}\n`);
    log.info(`${result.place}: kept ${selection.kept.length}, ${run.dryRun ? 'would remove' : 'removed'} ${selection.deleted.length} snapshot(s) matching ${describePolicy(run.policy).replace(/^.* with /, '')}`);
  }
  const failure = placeFailure(results, 'apply retention', log);
  if (failure) throw failure;
}

export async function snapshotPrune(flags: Record<string, unknown>, context: CommandContext): Promise<void> {
  const scope = pruneScopeFrom(flags);
  const config = await loadClusterForCommand(flags);
  const policy = resolveRetentionPolicy(retentionFlagsFrom(flags), config, scope);
  const targets = placesFrom(flags, flags.localOnly ? undefined : s3SettingsFor(flags, config, context));
  const knownHosts = await loadKnownHosts(flags.knownHosts);
  const run: PruneRun = { config, policy, targets, dryRun: Boolean(flags.dryRun), ...(knownHosts ? { knownHosts } : {}) };
  if (run.dryRun) return runPrune(run, context);
  await withClusterLock(config.file, lockOptions(context, 'snapshot-prune'), () => runPrune(run, context));
}
