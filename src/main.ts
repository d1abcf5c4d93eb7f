import { CommanderError } from 'commander';
import { normalizeS3Aliases } from './cli/options.js';
import { createProgram } from './cli/program.js';
import type { CommandContext, GlobalOptions } from './cli/context.js';
import { ConfigError, ExitCode, InterruptedError, describeError, exitCodeFor } from './errors.js';
import { createLogger, type Logger } from './log/logger.js';

export interface MainIo {
  env: NodeJS.ProcessEnv;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

/** Runs the CLI and returns the exit code; the only place that maps errors to exit codes. */
export async function main(argv: string[], io: MainIo = { env: process.env, stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  const startedAt = Date.now();
  // `rke-ts ... | head` closes the pipe early; that must not crash a run in the middle.
  for (const stream of [io.stdout, io.stderr]) stream.on?.('error', () => undefined);
  const abort = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    abort.abort(new InterruptedError(`interrupted by ${signal}; cleaning up`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  let log: Logger | undefined;
  let globals: GlobalOptions = { debug: argv.includes('--debug') || argv.includes('-d'), quiet: false, logFormat: 'text' };
  const makeContext = (options: GlobalOptions): CommandContext => {
    globals = options;
    log = createLogger({ format: options.logFormat, debug: options.debug, quiet: options.quiet, stream: io.stderr, startedAt });
    return { env: io.env, stdout: io.stdout, stderr: io.stderr, log, signal: abort.signal, now: () => new Date() };
  };

  const program = createProgram(io.env, makeContext, io);

  try {
    await program.parseAsync(normalizeS3Aliases(argv));
    return abort.signal.aborted ? ExitCode.interrupted : ExitCode.ok;
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version end through here too, with exit code 0.
      return error.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
    }
    const failure = abort.signal.aborted && !(error instanceof ConfigError) ? (abort.signal.reason as Error) : error;
    const logger = log ?? createLogger({ format: globals.logFormat, debug: globals.debug, quiet: false, stream: io.stderr, startedAt });
    const problems = (failure as { problems?: string[] }).problems;
    for (const line of problems && problems.length > 1 ? problems : [describeError(failure)]) logger.fatal(line);
    if (globals.debug && failure instanceof Error && failure.stack) io.stderr.write(`${failure.stack}\n`);
    logger.flush();
    return exitCodeFor(failure);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
