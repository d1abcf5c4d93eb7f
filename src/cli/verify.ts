import { stringify } from 'yaml';
import { UsageError } from '../errors.js';
import { stripZipSuffix, validateSnapshotName } from '../plan/names.js';
import { verifySnapshot } from '../run/verify.js';
import type { CommandContext } from './context.js';
import { loadClusterForCommand, loadKnownHosts, s3SettingsFor } from './save.js';

export async function snapshotVerify(flags: Record<string, unknown>, context: CommandContext): Promise<void> {
  const given = typeof flags.name === 'string' ? flags.name : '';
  if (given === '') throw new UsageError('you must specify the snapshot name to verify', { hint: 'pass --name <snapshot>' });
  const name = validateSnapshotName(stripZipSuffix(given));
  const output = String(flags.output ?? 'table');
  if (!['table', 'json', 'yaml'].includes(output)) throw new UsageError(`invalid output format: ${output} (expected table, json or yaml)`);
  const config = await loadClusterForCommand(flags);
  const s3 = s3SettingsFor(flags, config, context);
  const knownHosts = await loadKnownHosts(flags.knownHosts);
  const report = await verifySnapshot(config, name, s3, {
    env: context.env,
    log: context.log,
    signal: context.signal,
    now: context.now,
    ...(knownHosts ? { knownHosts } : {}),
  });
  if (output === 'json') context.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else if (output === 'yaml') context.stdout.write(stringify(report));
  else {
    context.stdout.write(
      [
        `Snapshot ${report.name}: restorable`,
        `  source:    ${report.source}`,
        `  sha256:    ${report.sha256}`,
        `  size:      ${report.totalSize} bytes (database)`,
        `  revision:  ${report.revision}`,
        `  keys:      ${report.totalKey}`,
        `  hash:      ${report.hash.toString(16)}`,
        `  tested on: ${report.verifiedOn} (throw-away container; the cluster was not touched)`,
        '',
      ].join('\n'),
    );
  }
}
