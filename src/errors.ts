/**
 * One error hierarchy for everything an operator can see. Adapters wrap library errors
 * (ssh2, dockerode, AWS SDK) into these with `cause`; only main.ts turns them into an
 * exit code and a single line on stderr.
 */

export const ExitCode = {
  ok: 0,
  failed: 1,
  usage: 2,
  partial: 3,
  locked: 4,
  interrupted: 130,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

export abstract class OpsError extends Error {
  abstract readonly code: string;
  abstract readonly exitCode: ExitCodeValue;
  /** What the operator can do about it, appended to the one-line message. */
  readonly hint: string | undefined;

  constructor(message: string, options?: { cause?: unknown; hint?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.hint = options?.hint;
  }
}

/** Bad flags or arguments on the command line. */
export class UsageError extends OpsError {
  readonly code = 'USAGE';
  readonly exitCode = ExitCode.usage;
}

/** cluster.yml is unreadable, not YAML, or not a valid RKE cluster. */
export class ConfigError extends OpsError {
  readonly code = 'CONFIG';
  readonly exitCode = ExitCode.usage;
}

/** A node could not be reached (TCP, SSH handshake, bastion, Docker socket). */
export class ConnectionError extends OpsError {
  readonly code = 'CONNECTION';
  readonly exitCode = ExitCode.failed;
}

/** A node refused our credentials. */
export class AuthError extends OpsError {
  readonly code = 'AUTH';
  readonly exitCode = ExitCode.failed;
}

/** A container or command on a node failed. */
export class RemoteCommandError extends OpsError {
  readonly code = 'REMOTE_COMMAND';
  readonly exitCode = ExitCode.failed;
}

/** S3 or local snapshot storage failed. */
export class StorageError extends OpsError {
  readonly code = 'STORAGE';
  readonly exitCode = ExitCode.failed;
}

/** Another run holds the cluster lock. */
export class LockedError extends OpsError {
  readonly code = 'LOCKED';
  readonly exitCode = ExitCode.locked;
}

/** Some nodes succeeded and some failed; the message lists each failed node. */
export class PartialFailureError extends OpsError {
  readonly code = 'PARTIAL_FAILURE';
  readonly exitCode = ExitCode.partial;
}

/** The run was interrupted (SIGINT/SIGTERM) and cleaned up after itself. */
export class InterruptedError extends OpsError {
  readonly code = 'INTERRUPTED';
  readonly exitCode = ExitCode.interrupted;
}

/** A bug in rke-ts itself. */
export class InternalError extends OpsError {
  readonly code = 'INTERNAL';
  readonly exitCode = ExitCode.failed;
}

export function exitCodeFor(error: unknown): ExitCodeValue {
  return error instanceof OpsError ? error.exitCode : ExitCode.failed;
}

/** The single line printed for an error (no stack unless --debug). */
export function describeError(error: unknown): string {
  if (error instanceof OpsError) {
    return error.hint ? `${error.message} (${error.hint})` : error.message;
  }
  if (error instanceof Error) return error.message;
  return String(error);
}
