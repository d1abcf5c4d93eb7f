import { copyFile, readFile, rename, writeFile } from 'node:fs/promises';
import { ConfigError } from '../errors.js';
import type { Logger } from '../log/logger.js';

export interface StateFileResult {
  path: string;
  /** Where the previous state file was copied, when there was one and it differed. */
  backupPath?: string;
  written: boolean;
}

async function readIfExists(file: string): Promise<Buffer | undefined> {
  try {
    return await readFile(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/**
 * Writes the cluster state file carried by the snapshot zip next to cluster.yml (RKE restores
 * the state with the snapshot, #1286), keeping the previous one as a backup. Written through
 * a temporary file and a rename, so it is never half-written; 0600 because it holds keys.
 */
export async function installStateFile(
  target: { path: string; backupPath: string },
  content: Buffer | undefined,
  name: string,
  log: Logger,
): Promise<StateFileResult | undefined> {
  log.info(`Checking if state file is included in snapshot file for [${name}]`);
  if (!content) {
    log.info(`Could not extract state file from snapshot [${name}], falling back to local state file [${target.path}]`);
    return undefined;
  }
  try {
    const previous = await readIfExists(target.path);
    if (previous?.equals(content)) {
      log.info(`[state] The state file in snapshot [${name}] is identical to [${target.path}]`);
      return { path: target.path, written: false };
    }
    if (previous) await copyFile(target.path, target.backupPath);
    const temporary = `${target.path}.rke-ts-incoming`;
    await writeFile(temporary, content, { mode: 0o600 });
    await rename(temporary, target.path);
    log.info(`[state] Wrote the state file from snapshot [${name}] to [${target.path}]${previous ? `, previous one kept as [${target.backupPath}]` : ''}`);
    return { path: target.path, written: true, ...(previous ? { backupPath: target.backupPath } : {}) };
  } catch (error) {
    throw new ConfigError(`cannot write the state file ${target.path}: ${(error as Error).message}; nothing was changed on the nodes`, {
      cause: error,
      hint: 'make the directory of cluster.yml writable, or pass --use-local-state',
    });
  }
}
