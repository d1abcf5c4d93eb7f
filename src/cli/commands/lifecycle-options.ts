import { type Command, Option } from 'commander';

/**
 * Options shared by the snapshot lifecycle commands (list, delete, prune, schedule and the
 * cron-related options of save). Only commander here: registering must not load anything else.
 */

/** `--local-only` / `--s3-only`: which places a command visits (default: all). */
export function addPlaceOptions(command: Command): Command {
  return command
    .option('--local-only', 'only the etcd nodes, not S3', false)
    .option('--s3-only', 'only S3, not the etcd nodes', false);
}

/**
 * `--retention N` and `--max-age [DURATION]`, plus k3s's spellings of the count, which are
 * hidden: k3s users' scripts keep working (k3s #9532: accept both spellings).
 */
export function addRetentionOptions(command: Command, countHelp: string): Command {
  return command
    .option('--retention <count>', countHelp)
    .addOption(new Option('--snapshot-retention <count>', 'k3s spelling of --retention').hideHelp())
    .addOption(new Option('--etcd-snapshot-retention <count>', 'k3s spelling of --retention').hideHelp())
    .option(
      '--max-age [duration]',
      'also remove snapshots older than this Go duration (e.g. 72h); without a value, services.etcd.retention (RKE legacy, default 72h)',
    );
}

/** `--compress` and k3s's spellings of it. */
export function addCompressOption(command: Command): Command {
  return command
    .option('--compress', 'write <name>.zip in RKE layout (snapshot + <config>.rkestate) instead of <name>', false)
    .addOption(new Option('--snapshot-compress', 'k3s spelling of --compress').hideHelp())
    .addOption(new Option('--etcd-snapshot-compress', 'k3s spelling of --compress').hideHelp());
}

/** The retention flags as typed, whichever spelling was used. */
export function retentionFlagsFrom(flags: Record<string, unknown>): { retention?: string; maxAge?: string | boolean } {
  const count = [flags.retention, flags.snapshotRetention, flags.etcdSnapshotRetention].find((value) => typeof value === 'string');
  const maxAge = flags.maxAge;
  return {
    ...(typeof count === 'string' ? { retention: count } : {}),
    ...(typeof maxAge === 'string' || maxAge === true ? { maxAge } : {}),
  };
}

export function compressRequested(flags: Record<string, unknown>): boolean {
  return Boolean(flags.compress || flags.snapshotCompress || flags.etcdSnapshotCompress);
}
