import { Command, Option } from 'commander';
import { registerSnapshotSave } from './commands/save.js';
import { registerSnapshotRestore } from './commands/restore.js';
import { registerSnapshotList } from './commands/list.js';
import { registerSnapshotDelete } from './commands/delete.js';
import { registerSnapshotPrune } from './commands/prune.js';
import { registerSnapshotSchedule } from './commands/schedule.js';
import { registerSnapshotVerify } from './commands/verify.js';
import type { CommandContext, GlobalOptions } from './context.js';

export type ContextFactory = (globals: GlobalOptions) => CommandContext;

export interface ProgramDeps {
  env: NodeJS.ProcessEnv;
  makeContext: ContextFactory;
}

const LOG_FORMATS = ['text', 'json'];

export const EXIT_CODES_HELP =
  'Exit codes: 0 ok, 1 failed, 2 bad usage or cluster.yml, 3 failed on some nodes, 4 another run holds the lock, 130 interrupted.';

/**
 * The whole command-line surface: one register function per command (cli/commands/).
 * Actions lazy-load their implementation, so `--help` and bad-flag errors never load
 * ssh2, dockerode or the AWS SDK.
 */
export function createProgram(
  env: NodeJS.ProcessEnv,
  makeContext: ContextFactory,
  output: { stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream },
): Command {
  // Set before any subcommand is added: commander copies these settings to subcommands.
  const program = new Command('rke-ts')
    .exitOverride()
    .configureOutput({
      writeOut: (text) => output.stdout.write(text),
      writeErr: (text) => output.stderr.write(text),
    })
    .description('etcd snapshots for RKE clusters: save and restore, locally and in S3')
    .version('0.1.0')
    .option('-d, --debug', 'debug logging, with stack traces on errors', false)
    .option('-q, --quiet', 'print only errors', false)
    .addOption(new Option('--log-format <format>', 'log format').choices(LOG_FORMATS).default('text'))
    .showHelpAfterError()
    .addHelpText('after', `\n${EXIT_CODES_HELP}`);

  const etcd = program.command('etcd').description('etcd snapshot commands').addHelpText('after', `\n${EXIT_CODES_HELP}`);
  const deps: ProgramDeps = { env, makeContext };
  registerSnapshotSave(etcd, deps);
  registerSnapshotRestore(etcd, deps);
  registerSnapshotList(etcd, deps);
  registerSnapshotDelete(etcd, deps);
  registerSnapshotPrune(etcd, deps);
  registerSnapshotSchedule(etcd, deps);
  registerSnapshotVerify(etcd, deps);
  return program;
}
