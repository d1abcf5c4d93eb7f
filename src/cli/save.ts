import { readFile } from 'node:fs/promises';
import { type ClusterConfig, readClusterConfig, requireEtcdNodes } from '../config/index.js';
import { ConfigError } from '../errors.js';
import { defaultSnapshotName, validateSnapshotName } from '../plan/names.js';
import { planSave } from '../plan/save.js';
import type { RetentionPolicy } from '../plan/retention.js';
import { compressSavedSnapshots } from '../run/compress.js';
import { checkSaveOutcome, executeSave } from '../run/save.js';
import { uploadFailure, uploadFromNode } from '../run/upload.js';
import { type S3Settings, ignoredS3Flags, resolveS3Settings, s3ConfiguredLogLine } from '../storage/index.js';
import { parseKnownHosts, type KnownHostEntry } from '../transport/known-hosts.js';
import type { CommandContext } from './context.js';
import { s3FlagsFrom } from './options.js';
import { renderSavePlan } from './render.js';

export async function loadKnownHosts(file: unknown): Promise<KnownHostEntry[] | undefined> {
  if (typeof file !== 'string' || file === '') return undefined;
  try {
    return parseKnownHosts(await readFile(file, 'utf8'));
  } catch (error) {
    throw new ConfigError(`--known-hosts ${file}: cannot read the file: ${(error as Error).message}`, { cause: error });
  }
}

/** Reads cluster.yml and applies the connection flags RKE lets override it. */
export async function loadClusterForCommand(flags: Record<string, unknown>): Promise<ClusterConfig> {
  const config = await readClusterConfig(String(flags.config));
  // RKE: --ssh-agent-auth only overrides the file when it is set.
  if (flags.sshAgentAuth) {
    config.sshAgentAuth = true;
    for (const node of config.nodes) node.sshAgentAuth = true;
    if (config.bastionHost) config.bastionHost.sshAgentAuth = true;
  }
  requireEtcdNodes(config);
  return config;
}

/** S3 settings from --s3 flags, else cluster.yml's s3backupconfig (RKE), else none. */
export function s3SettingsFor(flags: Record<string, unknown>, config: ClusterConfig, context: CommandContext): S3Settings | undefined {
  const s3Flags = s3FlagsFrom(flags);
  const ignored = ignoredS3Flags(s3Flags);
  if (ignored.length > 0) context.log.warn(`S3 flags ${ignored.join(', ')} are ignored without --s3 (as in RKE)`);
  const fileConfig = config.services.etcd.backupConfig?.s3;
  return resolveS3Settings({ flags: s3Flags, ...(fileConfig ? { fileConfig } : {}), env: context.env });
}

/**
 * `prepared`: cluster.yml as the caller already loaded it (not read twice), and the retention
 * policy that saveThenPrune applies afterwards (shown by --dry-run).
 */
export async function snapshotSave(
  flags: Record<string, unknown>,
  context: CommandContext,
  prepared?: { config: ClusterConfig; policy?: RetentionPolicy },
): Promise<void> {
  const { log } = context;
  let name = typeof flags.name === 'string' ? flags.name : '';
  if (name === '') {
    name = defaultSnapshotName(context.now());
    log.warn(`Name of the snapshot is not specified, using [${name}]`);
  }
  validateSnapshotName(name);

  const config = prepared?.config ?? (await loadClusterForCommand(flags));
  const s3 = s3SettingsFor(flags, config, context);
  const plan = planSave(config, { name });

  if (flags.dryRun) {
    context.stdout.write(renderSavePlan(plan, config, s3, { compress: Boolean(flags.compress), ...(prepared?.policy ? { retention: prepared.policy } : {}) }));
    return;
  }
  const knownHosts = await loadKnownHosts(flags.knownHosts);
  const deps = { env: context.env, log, signal: context.signal, now: context.now, ...(knownHosts ? { knownHosts } : {}) };
  log.info('Starting saving snapshot on etcd hosts');
  if (s3) log.info(s3ConfiguredLogLine(s3));
  const outcome = await executeSave(config, plan, deps);
  // --compress: `<name>.zip` replaces `<name>` on the nodes and is what goes to S3.
  const fileName = flags.compress ? await compressSavedSnapshots(config, plan, outcome, deps) : name;
  if (outcome.saved.length > 0 && outcome.failed.length === 0) log.info(`[etcd] Finished saving snapshot [${name}] on all etcd hosts`);

  if (s3 && outcome.saved.length > 0) {
    // The local snapshots are taken first and stay whatever S3 does (RKE #2209).
    const source = config.nodes.find((node) => node.address === outcome.saved[0]!.node)!;
    try {
      await uploadFromNode(config, source, fileName, s3, deps);
    } catch (error) {
      context.signal.throwIfAborted();
      checkSaveOutcomeLogged(plan, outcome, log);
      throw uploadFailure(error, fileName, outcome.saved.map((saved) => saved.node));
    }
  }
  checkSaveOutcome(plan, outcome);
  log.info(s3 ? `Finished saving/uploading snapshot [${name}] on all etcd hosts` : `Finished saving snapshot [${name}] on all etcd hosts`);
}

/** When S3 also failed, node failures are still worth a line before the S3 error. */
function checkSaveOutcomeLogged(plan: Parameters<typeof checkSaveOutcome>[0], outcome: Parameters<typeof checkSaveOutcome>[1], log: CommandContext['log']): void {
  try {
    checkSaveOutcome(plan, outcome);
  } catch (error) {
    log.error((error as Error).message);
  }
}
