import { readFile } from 'node:fs/promises';
import { readClusterConfig, requireEtcdNodes } from '../config/index.js';
import { ConfigError } from '../errors.js';
import { defaultSnapshotName, validateSnapshotName } from '../plan/names.js';
import { planSave } from '../plan/save.js';
import { executeSave } from '../run/save.js';
import { parseKnownHosts, type KnownHostEntry } from '../transport/known-hosts.js';
import type { CommandContext } from './context.js';
import { renderSavePlan } from './render.js';

export interface SaveFlags {
  config: string;
  name?: string;
  dryRun?: boolean;
  sshAgentAuth?: boolean;
  ignoreDockerVersion?: boolean;
  knownHosts?: string;
}

export async function loadKnownHosts(file: string | undefined): Promise<KnownHostEntry[] | undefined> {
  if (!file) return undefined;
  try {
    return parseKnownHosts(await readFile(file, 'utf8'));
  } catch (error) {
    throw new ConfigError(`--known-hosts ${file}: cannot read the file: ${(error as Error).message}`, { cause: error });
  }
}

export async function snapshotSave(flags: SaveFlags, context: CommandContext): Promise<void> {
  const { log } = context;
  let name = flags.name;
  if (name === undefined || name === '') {
    name = defaultSnapshotName(context.now());
    log.warn(`Name of the snapshot is not specified, using [${name}]`);
  }
  validateSnapshotName(name);

  const config = await readClusterConfig(flags.config);
  // RKE: --ssh-agent-auth only overrides the file when it is set.
  if (flags.sshAgentAuth) {
    config.sshAgentAuth = true;
    for (const node of config.nodes) node.sshAgentAuth = true;
    if (config.bastionHost) config.bastionHost.sshAgentAuth = true;
  }
  requireEtcdNodes(config);
  const plan = planSave(config, { name });

  if (flags.dryRun) {
    context.stdout.write(renderSavePlan(plan, config));
    return;
  }
  log.info('Starting saving snapshot on etcd hosts');
  const knownHosts = await loadKnownHosts(flags.knownHosts);
  await executeSave(config, plan, {
    env: context.env,
    log,
    signal: context.signal,
    ...(knownHosts ? { knownHosts } : {}),
  });
}
