import { Writable } from 'node:stream';
import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino';

export type { Logger } from 'pino';
export type LogFormat = 'text' | 'json';

export interface LoggerOptions {
  format: LogFormat;
  debug: boolean;
  quiet: boolean;
  /** Where log lines go; stderr by default so stdout stays free for results. */
  stream?: NodeJS.WritableStream;
  /** Start of the run, for RKE's `INFO[0003]` elapsed-seconds prefix. */
  startedAt?: number;
}

/**
 * Field names that may carry secrets anywhere in a log object. pino replaces their values
 * before anything is serialized, so a secret cannot reach a log line by accident.
 */
export const REDACTED_KEYS = [
  'secretKey',
  'secret_key',
  'sessionToken',
  'session_token',
  'password',
  'sshKey',
  'ssh_key',
  'privateKey',
  'passphrase',
  'authorization',
  'Authorization',
];

const redactPaths = REDACTED_KEYS.flatMap((key) => [key, `*.${key}`, `*.*.${key}`]);

const LEVEL_LABELS: Record<number, string> = {
  10: 'TRAC',
  20: 'DEBU',
  30: 'INFO',
  40: 'WARN',
  50: 'ERRO',
  60: 'FATA',
};

// pino's own bookkeeping fields; everything else is context worth showing with --debug.
const HIDDEN_FIELDS = new Set(['level', 'time', 'pid', 'hostname', 'msg', 'err']);

/** Renders pino's JSON lines the way RKE (logrus text formatter) prints them: `INFO[0003] msg`. */
export function formatTextLine(line: string, startedAt: number, withFields: boolean): string {
  const record = JSON.parse(line) as Record<string, unknown>;
  const label = LEVEL_LABELS[record.level as number] ?? 'INFO';
  const elapsed = Math.max(0, Math.floor(((record.time as number) - startedAt) / 1000));
  let text = `${label}[${String(elapsed).padStart(4, '0')}] ${String(record.msg ?? '')}`;
  if (withFields) {
    for (const [key, value] of Object.entries(record)) {
      if (HIDDEN_FIELDS.has(key)) continue;
      text += ` ${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`;
    }
    const err = record.err as { stack?: string } | undefined;
    if (err?.stack) text += `\n${err.stack}`;
  }
  return `${text}\n`;
}

function textStream(target: NodeJS.WritableStream, startedAt: number, withFields: boolean): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line.trim() !== '') target.write(formatTextLine(line, startedAt, withFields));
      }
      callback();
    },
  });
}

export function createLogger(options: LoggerOptions): Logger {
  const level: LevelWithSilent = options.debug ? 'debug' : options.quiet ? 'error' : 'info';
  const target = options.stream ?? process.stderr;
  const destination =
    options.format === 'json'
      ? target
      : textStream(target, options.startedAt ?? Date.now(), options.debug);
  return pino(
    {
      level,
      base: undefined,
      redact: { paths: redactPaths, censor: '***' },
      formatters: { level: (_label, number) => ({ level: number }) },
    },
    destination as DestinationStream,
  );
}

/** A logger that drops everything (tests and library use). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
