import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * Runs a TypeScript module script in a fresh Node process (its own module cache and heap),
 * from the repository root, with extra Node flags; returns its trimmed stdout.
 */
export function runFresh(script: string, nodeFlags: string[] = []): string {
  return execFileSync(process.execPath, [...nodeFlags, '--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
  }).trim();
}
