import { Command, Option } from 'commander';
import type { CommandContext, GlobalOptions } from './context.js';

export type ContextFactory = (globals: GlobalOptions) => CommandContext;

const LOG_FORMATS = ['text', 'json'];

function configOption(env: NodeJS.ProcessEnv): Option {
  return new Option('--config <file>', 'cluster configuration file (env RKE_CONFIG)').default(env.RKE_CONFIG || 'cluster.yml');
}

/**
 * The whole command-line surface. Actions lazy-load their implementation so `--help`
 * and bad-flag errors never load ssh2, dockerode or the AWS SDK.
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
    .addHelpText('after', '\nExit codes: 0 ok, 1 failed, 2 bad usage or cluster.yml, 3 failed on some nodes, 4 another run holds the lock, 130 interrupted.');

  const etcd = program.command('etcd').description('etcd snapshot commands');

  etcd
    .command('snapshot-save')
    .description('take an etcd snapshot on every etcd node')
    .addOption(configOption(env))
    .option('--name <name>', 'snapshot name (default rke_etcd_snapshot_<RFC3339 local time>)')
    .option('--dry-run', 'print the plan without connecting to anything', false)
    .option('--ssh-agent-auth', 'use the SSH agent (SSH_AUTH_SOCK) for authentication', false)
    .option('--ignore-docker-version', 'accepted for RKE compatibility (no Docker version check is made)', false)
    .option('--known-hosts <file>', 'check node host keys against this known_hosts file')
    .action(async (flags, command: Command) => {
      const { snapshotSave } = await import('./save.js');
      await snapshotSave(flags, makeContext(command.optsWithGlobals() as GlobalOptions));
    });

  return program;
}
