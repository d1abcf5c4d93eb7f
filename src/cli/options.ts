import { type Command, Option } from 'commander';
import { S3_FLAGS, S3_FLAG_SPELLINGS, type S3CliFlags } from '../storage/index.js';

/** `--config`, defaulting to cluster.yml or $RKE_CONFIG as in RKE. */
export function configOption(env: NodeJS.ProcessEnv): Option {
  return new Option('--config <file>', 'cluster configuration file (env RKE_CONFIG)').default(env.RKE_CONFIG || 'cluster.yml');
}

/** Options every command that reaches nodes accepts. */
export function addConnectionOptions(command: Command, env: NodeJS.ProcessEnv): Command {
  return command
    .addOption(configOption(env))
    .option('--ssh-agent-auth', 'use the SSH agent (SSH_AUTH_SOCK) for authentication', false)
    .option('--ignore-docker-version', 'accepted for RKE compatibility (no Docker version check is made)', false)
    .option('--known-hosts <file>', 'check node host keys against this known_hosts file (RKE checks none)');
}

/**
 * Registers the S3 options under their primary (RKE) spelling. k3s spellings are accepted
 * through normalizeS3Aliases, because commander knows one long name per option.
 */
export function addS3Options(command: Command): Command {
  for (const spec of S3_FLAGS) {
    const [primary, ...aliases] = spec.flags;
    const description = aliases.length > 0 ? `${spec.description} (also ${aliases.join(', ')})` : spec.description;
    command.addOption(new Option(spec.valueName ? `${primary} <${spec.valueName}>` : `${primary}`, description));
  }
  return command;
}

/** Rewrites k3s spellings (`--s3-bucket x`, `--s3-bucket=x`) to the registered RKE ones. */
export function normalizeS3Aliases(argv: string[]): string[] {
  const primaryOf = new Map<string, string>();
  for (const spec of S3_FLAGS) {
    for (const alias of spec.flags.slice(1)) primaryOf.set(alias, spec.flags[0]!);
  }
  return argv.map((arg) => {
    const [flag, ...value] = arg.split('=');
    const primary = flag ? primaryOf.get(flag) : undefined;
    if (!primary) return arg;
    return value.length > 0 ? `${primary}=${value.join('=')}` : primary;
  });
}

/** Picks the S3 fields out of commander's parsed options (camelCase of the primary spelling). */
export function s3FlagsFrom(options: Record<string, unknown>): S3CliFlags {
  const flags: Record<string, unknown> = { s3: Boolean(options.s3) };
  for (const spec of S3_FLAGS) {
    const attribute = spec.flags[0]!.replace(/^--/, '').replace(/-([a-z0-9])/g, (_, letter: string) => letter.toUpperCase());
    const value = options[attribute];
    if (value !== undefined && spec.field !== 's3') flags[spec.field] = value;
  }
  return flags as unknown as S3CliFlags;
}

export { S3_FLAG_SPELLINGS };
