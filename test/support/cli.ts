import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CLI = path.join(repoRoot, 'bin', 'rke-ts.js');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI as an operator would (a separate process with its own exit code). */
export function runCli(args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      {
        cwd: options.cwd ?? repoRoot,
        env: { ...process.env, SSH_AUTH_SOCK: '', ...options.env },
        timeout: options.timeoutMs ?? 170_000,
        maxBuffer: 64 * 1024 * 1024,
      },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** Lines of stderr that are not debug noise, for asserting "one clear line". */
export function errorLines(stderr: string): string[] {
  return stderr.split('\n').filter((line) => /^(FATA|ERRO)\[/.test(line));
}
