import type { Logger, LogFormat } from '../log/logger.js';

/** Everything a command needs from the outside world, injected so commands stay testable. */
export interface CommandContext {
  env: NodeJS.ProcessEnv;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  log: Logger;
  signal: AbortSignal;
  now: () => Date;
}

export interface GlobalOptions {
  debug: boolean;
  quiet: boolean;
  logFormat: LogFormat;
}
