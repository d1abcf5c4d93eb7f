import { randomBytes } from 'node:crypto';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type Docker from 'dockerode';
import { RemoteCommandError } from '../errors.js';
import type { ContainerSpec } from '../plan/container.js';
import { OWNER_LABEL } from '../plan/container.js';
import { SNAPSHOT_DIR } from '../plan/names.js';
import { removeContainerIfExists, runOnce } from './containers.js';

/**
 * Snapshot files on a node, without a shell on the node and without a docker CLI:
 * contents move through Docker's archive API on a created-but-never-started container
 * that binds the snapshot directory; small file operations (stat, sha256sum, mv, rm) run
 * in a one-shot container of the tools image (RKE's system_images.alpine, rke-tools),
 * because distroless etcd images have no shell.
 */
export interface FileSession {
  docker: Docker;
  label: string;
}

export interface NodeFileImages {
  /** Any image present on the node; used only as the rootfs of never-started containers. */
  carrier: string;
  /** An image with a POSIX shell and coreutils/busybox (stat, sha256sum, mv, rm). */
  tools: string;
}

export interface SnapshotFileInfo {
  name: string;
  size: number;
  modified: Date;
}

const BACKUP_MOUNT = '/backup';
const TOOL_TIMEOUT_SECONDS = 600;
/** Prefix of files being written; never a valid snapshot name (names may not start with "."). */
export const INCOMING_PREFIX = '.rke-ts-incoming-';

function uniqueName(base: string): string {
  return `${base}-${randomBytes(4).toString('hex')}`;
}

function toolSpec(images: NodeFileImages, name: string, script: string, args: string[]): ContainerSpec {
  return {
    name: uniqueName(name),
    image: images.tools,
    entrypoint: ['sh', '-c'],
    // Names arrive as positional parameters ("$@"), never spliced into the script.
    cmd: [script, 'sh', ...args],
    env: [],
    binds: [`${SNAPSHOT_DIR}:${BACKUP_MOUNT}`],
    networkMode: 'none',
    labels: { [OWNER_LABEL]: 'files' },
  };
}

async function runTool(session: FileSession, images: NodeFileImages, name: string, script: string, args: string[]): Promise<string> {
  const result = await runOnce(session.docker, toolSpec(images, name, script, args), { timeoutSeconds: TOOL_TIMEOUT_SECONDS });
  if (result.exitCode !== 0) {
    throw new RemoteCommandError(`${session.label}: ${name} failed, exit status ${result.exitCode}: ${result.output.split('\n').slice(-3).join(' | ')}`);
  }
  return result.output;
}

/** Regular files in /opt/rke/etcd-snapshots with size and mtime (empty if the directory is missing). */
export async function listSnapshotDir(session: FileSession, images: NodeFileImages): Promise<SnapshotFileInfo[]> {
  const output = await runTool(
    session,
    images,
    'etcd-snapshot-list',
    'cd /backup 2>/dev/null || exit 0; for f in * .[!.]*; do [ -f "$f" ] && stat -c "%s %Y %n" "$f"; done; exit 0',
    [],
  );
  return output
    .split('\n')
    .map((line) => /^(\d+) (\d+) (.+)$/.exec(line))
    .filter((match): match is RegExpExecArray => match !== null)
    .map((match) => ({ name: match[3]!, size: Number(match[1]), modified: new Date(Number(match[2]) * 1000) }));
}

/** sha256 of snapshot files on the node, computed there (nothing crosses the network). */
export async function sha256OnNode(session: FileSession, images: NodeFileImages, names: string[]): Promise<Map<string, string>> {
  if (names.length === 0) return new Map();
  const output = await runTool(session, images, 'etcd-checksum-checker', 'cd /backup && sha256sum -- "$@"', names);
  const sums = new Map<string, string>();
  for (const line of output.split('\n')) {
    const match = /^([0-9a-f]{64})\s+\*?(.+)$/.exec(line.trim());
    if (match) sums.set(match[2]!, match[1]!);
  }
  for (const name of names) {
    if (!sums.has(name)) throw new RemoteCommandError(`${session.label}: no checksum for ${SNAPSHOT_DIR}/${name}`);
  }
  return sums;
}

/**
 * Size and etcd sha256 trailer (the last 32 bytes, hex) of a snapshot file on the node, or
 * undefined if it is missing. Cheap at any size: copies that share size and trailer, and
 * whose content etcdctl then finds matching that trailer, are byte-identical.
 */
export interface SnapshotFingerprint {
  size: number;
  trailer: string;
}

export async function snapshotFingerprintOnNode(session: FileSession, images: NodeFileImages, name: string): Promise<SnapshotFingerprint | undefined> {
  const output = await runTool(
    session,
    images,
    'etcd-checksum-checker',
    'cd /backup && [ -f "$1" ] || exit 0; stat -c "size %s" -- "$1" && printf "trailer " && tail -c 32 -- "$1" | od -An -v -tx1 | tr -d " \\n"',
    [name],
  );
  const size = /^size (\d+)$/m.exec(output)?.[1];
  if (size === undefined) return undefined;
  const trailer = /^trailer ([0-9a-f]*)$/m.exec(output)?.[1];
  if (trailer === undefined) throw new RemoteCommandError(`${session.label}: cannot read the end of ${SNAPSHOT_DIR}/${name}: ${output.trim()}`);
  return { size: Number(size), trailer };
}

/** Removes snapshot files (missing ones are fine). */
export async function removeSnapshotFiles(session: FileSession, images: NodeFileImages, names: string[]): Promise<void> {
  if (names.length === 0) return;
  await runTool(session, images, 'etcd-remove-snapshot', 'cd /backup && rm -f -- "$@"', names);
}

async function carrierContainer(session: FileSession, images: NodeFileImages): Promise<Docker.Container> {
  return session.docker.createContainer({
    name: uniqueName('etcd-snapshot-transfer'),
    Image: images.carrier,
    Entrypoint: ['/bin/false'],
    Cmd: [],
    Labels: { [OWNER_LABEL]: 'files' },
    HostConfig: { Binds: [`${SNAPSHOT_DIR}:${BACKUP_MOUNT}`], NetworkMode: 'none' },
  });
}

export interface SnapshotStream {
  size: number;
  stream: Readable;
}

/**
 * Writes a snapshot file onto the node from a stream of `size` bytes. It is written under a
 * hidden temporary name and renamed when complete, so the final name never holds a
 * partial file; on failure the temporary file is removed.
 */
export async function writeSnapshotFile(session: FileSession, images: NodeFileImages, name: string, source: Readable, size: number): Promise<void> {
  const { default: tar } = await import('tar-stream');
  const temporary = `${INCOMING_PREFIX}${name}`;
  const container = await carrierContainer(session, images);
  try {
    const pack = tar.pack();
    const written = new Promise<void>((resolve, reject) => {
      const entry = pack.entry({ name: temporary, size, mode: 0o600 }, (error) => (error ? reject(error) : resolve()));
      pipeline(source, entry).catch(reject);
    }).then(() => pack.finalize());
    await Promise.all([container.putArchive(pack as unknown as NodeJS.ReadableStream, { path: BACKUP_MOUNT }), written]);
  } catch (error) {
    await removeContainerIfExists(session.docker, container.id).catch(() => undefined);
    await removeSnapshotFiles(session, images, [temporary]).catch(() => undefined);
    throw error;
  }
  await removeContainerIfExists(session.docker, container.id).catch(() => undefined);
  try {
    await runTool(session, images, 'etcd-snapshot-rename', 'cd /backup && mv -f -- "$1" "$2"', [temporary, name]);
  } catch (error) {
    await removeSnapshotFiles(session, images, [temporary]).catch(() => undefined);
    throw error;
  }
}

/**
 * The last `bytes` bytes of a snapshot file (all of it if smaller), e.g. a zip's central
 * directory. Docker's archive API has no ranges, so `tail -c` copies them to a hidden file
 * first, which is read back and removed.
 */
export async function readSnapshotFileTail(session: FileSession, images: NodeFileImages, name: string, bytes: number): Promise<Buffer> {
  const tailName = `${INCOMING_PREFIX}tail-${randomBytes(4).toString('hex')}`;
  try {
    await runTool(session, images, 'etcd-snapshot-tail', 'cd /backup && tail -c "$1" -- "$2" > "$3"', [String(bytes), name, tailName]);
    const file = await openSnapshotFile(session, images, tailName);
    const chunks: Buffer[] = [];
    for await (const chunk of file.stream) chunks.push(chunk as Buffer);
    await file.released;
    return Buffer.concat(chunks);
  } finally {
    await removeSnapshotFiles(session, images, [tailName]).catch(() => undefined);
  }
}

export interface OpenSnapshotFile extends SnapshotStream {
  /** Settles once the carrier container is removed: after the stream ended or was destroyed. */
  released: Promise<void>;
  /** Stops the transfer if it is still going and waits for the carrier's removal. */
  close(): Promise<void>;
}

/**
 * Streams one snapshot file out of the node: the returned stream carries the file's bytes
 * only (the tar framing is removed). The carrier container is removed when the stream ends
 * or is destroyed early (a failed transfer); `released`/`close()` let a command wait for
 * that before it closes the connection to the node.
 */
export async function openSnapshotFile(session: FileSession, images: NodeFileImages, name: string): Promise<OpenSnapshotFile> {
  const { default: tar } = await import('tar-stream');
  const container = await carrierContainer(session, images);
  const cleanup = () => removeContainerIfExists(session.docker, container.id).then(() => undefined, () => undefined);
  let archive: Readable | undefined;
  try {
    archive = (await container.getArchive({ path: `${BACKUP_MOUNT}/${name}` })) as unknown as Readable;
    const extract = tar.extract();
    const output = new PassThrough();
    // The consumer sees errors through its own pipeline; once that has let go, destroying
    // `output` must not raise an unhandled 'error' through the entry's pipe.
    output.on('error', () => undefined);
    const closed = new Promise<void>((resolve) => output.once('close', resolve));
    // Failures reach the consumer through `output`; torn-down parts must not throw on their own.
    extract.on('error', () => undefined);
    const entry = new Promise<number>((resolve, reject) => {
      extract.once('entry', (header, stream, next) => {
        resolve(header.size ?? 0);
        stream.on('error', (error: Error) => output.destroy(error));
        stream.pipe(output);
        stream.on('end', next);
      });
      extract.once('error', reject);
      extract.once('finish', () => reject(new RemoteCommandError(`${session.label}: ${SNAPSHOT_DIR}/${name} is empty or missing`)));
    });
    const source = archive;
    pipeline(source, extract).catch((error: unknown) => output.destroy(error as Error));
    const released = closed.then(() => {
      source.destroy();
      extract.destroy();
      return cleanup();
    });
    try {
      const close = async (): Promise<void> => {
        output.destroy();
        await released;
      };
      return { size: await entry, stream: output, released, close };
    } catch (error) {
      output.destroy();
      await released;
      throw error;
    }
  } catch (error) {
    archive?.destroy();
    await cleanup();
    if ((error as { statusCode?: number }).statusCode === 404) {
      throw new RemoteCommandError(`${session.label}: no snapshot ${SNAPSHOT_DIR}/${name}`, { cause: error });
    }
    throw error;
  }
}
