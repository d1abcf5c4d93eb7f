/**
 * Writes a stream of unknown length (a zip being deflated) into the node's snapshot directory.
 *
 * Docker's archive API (files.ts writeSnapshotFile) needs the byte count up front for the tar
 * header, and a zip's size is only known once it is written. So the bytes go to the stdin of a
 * one-shot tools container running `cat > <temp file>`, through `docker attach` (an HTTP
 * connection upgraded to a raw stream, here an SSH channel to the Docker socket). Closing our
 * side sends EOF; with StdinOnce, Docker then closes the container's stdin and `cat` exits.
 *
 * The container prints the size and sha256 of what it wrote; both must equal what was sent
 * before the temp file is renamed to its final name, so a truncated transfer is never kept.
 */
import { randomBytes } from 'node:crypto';
import type { Duplex, Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { RemoteCommandError } from '../errors.js';
import { OWNER_LABEL } from '../plan/container.js';
import { SNAPSHOT_DIR } from '../plan/names.js';
import { Sha256Meter } from '../storage/checksum-streams.js';
import { demuxDockerStream, removeContainerIfExists, runOnce } from './containers.js';
import { type FileSession, INCOMING_PREFIX, type NodeFileImages, removeSnapshotFiles } from './files.js';

const BACKUP_MOUNT = '/backup';
const RENAME_TIMEOUT_SECONDS = 120;
const EXIT_GRACE_MS = 5_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface StreamWriteOptions {
  /** Upper bound for the whole transfer. */
  timeoutSeconds: number;
  signal?: AbortSignal;
}

export interface WrittenFile {
  name: string;
  size: number;
  sha256: string;
}

// The temp file is created 0600 and reported back; `set -e` makes a failed write exit non-zero.
const WRITER_SCRIPT = 'set -e; umask 077; cat > "$1"; stat -c "%s" "$1"; sha256sum "$1"';

function writerName(): string {
  return `etcd-snapshot-writer-${randomBytes(4).toString('hex')}`;
}

/** `size` and `sha256` from the writer's output; undefined if it printed something else. */
export function parseWriterReport(output: string): { size: number; sha256: string } | undefined {
  const size = /^(\d+)$/m.exec(output);
  const sha = /^([0-9a-f]{64})\s/m.exec(output);
  return size && sha ? { size: Number(size[1]), sha256: sha[1]! } : undefined;
}

function timeoutOrAbort(options: StreamWriteOptions, label: string): { promise: Promise<never>; cancel: () => void } {
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const promise = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new RemoteCommandError(`${label}: writing did not finish within ${options.timeoutSeconds}s`)), options.timeoutSeconds * 1000);
    onAbort = () => reject(options.signal!.reason);
    if (options.signal?.aborted) onAbort();
    else options.signal?.addEventListener('abort', onAbort, { once: true });
  });
  promise.catch(() => undefined);
  return {
    promise,
    cancel: () => {
      clearTimeout(timer);
      if (onAbort) options.signal?.removeEventListener('abort', onAbort);
    },
  };
}

async function streamIntoTempFile(session: FileSession, images: NodeFileImages, temporary: string, source: Readable, options: StreamWriteOptions): Promise<{ sent: Sha256Meter; report: string }> {
  const container = await session.docker.createContainer({
    name: writerName(),
    Image: images.tools,
    Entrypoint: ['sh', '-c'],
    Cmd: [WRITER_SCRIPT, 'sh', `${BACKUP_MOUNT}/${temporary}`],
    OpenStdin: true,
    StdinOnce: true,
    AttachStdin: true,
    Labels: { [OWNER_LABEL]: 'files' },
    HostConfig: { Binds: [`${SNAPSHOT_DIR}:${BACKUP_MOUNT}`], NetworkMode: 'none' },
  });
  const meter = new Sha256Meter();
  let stdin: Duplex | undefined;
  const limit = timeoutOrAbort(options, session.label);
  try {
    // Attach before start, so not a byte is written before the container reads its stdin.
    stdin = (await container.attach({ stream: true, hijack: true, stdin: true, stdout: false, stderr: false })) as unknown as Duplex;
    await container.start();
    // Waiting starts now, alongside the transfer: a writer that dies early (disk full, bad
    // path) stops reading, and the transfer would otherwise stall until the timeout.
    const exited = container.wait() as Promise<{ StatusCode: number }>;
    exited.catch(() => undefined);
    const sending = new Promise<void>((resolve, reject) => {
      source.once('error', reject);
      meter.once('error', reject);
      stdin!.once('error', reject);
      source.pipe(meter).pipe(stdin!);
      finished(stdin!, { readable: false }).then(resolve, reject);
    });
    sending.catch(() => undefined);
    const first = await Promise.race([sending.then(() => 'sent' as const), exited.then(() => 'exited' as const), limit.promise]);
    const { StatusCode } = await Promise.race([exited, limit.promise]);
    if (first === 'exited') {
      // The exit can overtake our own end-of-stream event by a moment; a writer that ended
      // without error gets a short grace. Otherwise it cannot have the whole file.
      const allSent = StatusCode === 0 && (await Promise.race([sending.then(() => true, () => false), sleep(EXIT_GRACE_MS).then(() => false)]));
      if (!allSent) {
        stdin.destroy();
        if (StatusCode === 0) throw new RemoteCommandError(`${session.label}: the writer of ${SNAPSHOT_DIR}/${temporary} exited before all data was sent`);
      }
    }
    const raw = (await container.logs({ stdout: true, stderr: true, follow: false })) as unknown as Buffer;
    const { stdout, stderr } = demuxDockerStream(Buffer.isBuffer(raw) ? raw : Buffer.from(String(raw)));
    if (StatusCode !== 0) {
      throw new RemoteCommandError(`${session.label}: writing ${SNAPSHOT_DIR}/${temporary} failed, exit status ${StatusCode}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`);
    }
    return { sent: meter, report: stdout };
  } catch (error) {
    source.destroy();
    meter.destroy();
    stdin?.destroy();
    throw error;
  } finally {
    limit.cancel();
    await removeContainerIfExists(session.docker, container.id).catch(() => undefined);
  }
}

/**
 * Streams `source` into `<SNAPSHOT_DIR>/<name>` on the node. Nothing appears under `name`
 * unless every byte arrived (size and sha256 checked); on any failure or abort the temp file
 * `.rke-ts-incoming-<name>` is removed.
 */
export async function writeSnapshotStream(session: FileSession, images: NodeFileImages, name: string, source: Readable, options: StreamWriteOptions): Promise<WrittenFile> {
  const temporary = `${INCOMING_PREFIX}${name}`;
  const removeTemporary = () => removeSnapshotFiles(session, images, [temporary]).catch(() => undefined);
  try {
    const { sent, report } = await streamIntoTempFile(session, images, temporary, source, options);
    const received = parseWriterReport(report);
    if (!received || received.size !== sent.bytes || received.sha256 !== sent.sha256) {
      throw new RemoteCommandError(
        `${session.label}: ${SNAPSHOT_DIR}/${name} arrived incomplete or altered ` +
          `(sent ${sent.bytes} bytes sha256 ${sent.sha256.slice(0, 12)}, node has ${received ? `${received.size} bytes sha256 ${received.sha256.slice(0, 12)}` : 'no report'})`,
      );
    }
    const rename = await runOnce(
      session.docker,
      {
        name: `etcd-snapshot-rename-${randomBytes(4).toString('hex')}`,
        image: images.tools,
        entrypoint: ['sh', '-c'],
        cmd: ['cd /backup && mv -f -- "$1" "$2"', 'sh', temporary, name],
        env: [],
        binds: [`${SNAPSHOT_DIR}:${BACKUP_MOUNT}`],
        networkMode: 'none',
        labels: { [OWNER_LABEL]: 'files' },
      },
      { timeoutSeconds: RENAME_TIMEOUT_SECONDS },
    );
    if (rename.exitCode !== 0) throw new RemoteCommandError(`${session.label}: cannot rename ${temporary} to ${name}: ${rename.output}`);
    return { name, size: sent.bytes, sha256: sent.sha256 };
  } catch (error) {
    await removeTemporary();
    throw error;
  }
}
