import { UsageError } from '../errors.js';
import { withClusterLock } from '../lock.js';
import { stripZipSuffix, validateSnapshotName } from '../plan/names.js';
import { planRestore } from '../plan/restore.js';
import { executeRestore } from '../run/restore.js';
import { S3_FLAGS, s3ConfiguredLogLine } from '../storage/index.js';
import type { CommandContext } from './context.js';
import { s3FlagsFrom } from './options.js';
import { renderRestoreOutcome, renderRestorePlan } from './render.js';
import { loadClusterForCommand, loadKnownHosts, s3SettingsFor } from './save.js';

/** `NAME.zip` and `NAME` name the same snapshot (RKE #2408 failed on `.zip` after the wipe). */
export function snapshotNameForRestore(flags: Record<string, unknown>): { name: string; hadZipSuffix: boolean } {
  const given = typeof flags.name === 'string' ? flags.name.trim() : '';
  if (given === '') {
    throw new UsageError('you must specify the snapshot name to restore', {
      hint: 'pass --name <snapshot>, a file name in /opt/rke/etcd-snapshots on the etcd nodes or an object in S3',
    });
  }
  const name = validateSnapshotName(stripZipSuffix(given));
  return { name, hadZipSuffix: name !== given };
}

function shellQuote(value: string): string {
  return /^[A-Za-z0-9_./:=@+-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`;
}

/** The command line that runs this restore again, secrets shown as ***. */
export function retryCommandFor(flags: Record<string, unknown>, name: string): string {
  const parts = ['rke-ts', 'etcd', 'snapshot-restore', '--config', shellQuote(String(flags.config)), '--name', shellQuote(name)];
  const s3 = s3FlagsFrom(flags) as unknown as Record<string, unknown>;
  if (s3.s3) {
    parts.push('--s3');
    for (const spec of S3_FLAGS) {
      const value = s3[spec.field];
      if (spec.field === 's3' || value === undefined || value === false) continue;
      parts.push(spec.flags[0]!);
      if (value !== true) parts.push(spec.secret ? '***' : shellQuote(String(value)));
    }
  }
  if (flags.restartKubeComponents) parts.push('--restart-kube-components');
  if (flags.useLocalState) parts.push('--use-local-state');
  if (flags.sshAgentAuth) parts.push('--ssh-agent-auth');
  if (typeof flags.knownHosts === 'string') parts.push('--known-hosts', shellQuote(flags.knownHosts));
  return parts.join(' ');
}

export async function snapshotRestore(flags: Record<string, unknown>, context: CommandContext): Promise<void> {
  const { log } = context;
  const { name, hadZipSuffix } = snapshotNameForRestore(flags);
  if (hadZipSuffix) log.warn(`Snapshot name [${String(flags.name)}] ends in .zip: restoring snapshot [${name}] (from ${name}.zip where there is no plain copy)`);
  if (flags.certDir !== undefined || flags.customCerts) {
    log.warn('--cert-dir and --custom-certs are ignored: rke-ts does not deploy certificates, it checks the ones already on the etcd nodes');
  }
  const config = await loadClusterForCommand(flags);
  const s3 = s3SettingsFor(flags, config, context);
  const plan = planRestore(config, {
    name,
    now: context.now(),
    ...(s3 ? { s3: { bucket: s3.bucket, folder: s3.folder, endpoint: s3.endpoint.url } } : {}),
    restartKubeComponents: Boolean(flags.restartKubeComponents),
    useLocalState: Boolean(flags.useLocalState),
  });
  if (flags.dryRun) {
    context.stdout.write(renderRestorePlan(plan, config, s3));
    return;
  }
  const knownHosts = await loadKnownHosts(flags.knownHosts);
  log.info('Starting restore on etcd hosts');
  if (s3) log.info(s3ConfiguredLogLine(s3));
  // A scheduled save or prune must not run while etcd is being replaced.
  const outcome = await withClusterLock(config.file, { env: context.env, command: 'snapshot-restore', now: context.now }, () =>
    executeRestore(config, plan, {
      env: context.env,
      log,
      signal: context.signal,
      now: context.now,
      retryCommand: retryCommandFor(flags, name),
      ...(s3 ? { s3 } : {}),
      ...(knownHosts ? { knownHosts } : {}),
    }),
  );
  context.stdout.write(renderRestoreOutcome(plan, outcome, config));
}
