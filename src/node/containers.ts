import type Docker from 'dockerode';
import type { RegistryConfig } from '../config/types.js';
import { RemoteCommandError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { ContainerSpec, ExecSpec } from '../plan/container.js';
import { registryAuthFor } from './registry.js';

/** Docker API calls that may hit a transient failure are tried this often (as RKE does). */
const DOCKER_ATTEMPTS = 3;
const DOCKER_RETRY_DELAY_MS = 1_000;
/** While waiting for a container, how often the abort signal is looked at. */
const ABORT_CHECK_MS = 250;
/** How many log lines of a failed container are quoted (RKE quotes only the last one). */
const LOG_TAIL_LINES = 20;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function statusCode(error: unknown): number | undefined {
  return (error as { statusCode?: number }).statusCode;
}

async function withRetries<T>(action: () => Promise<T>): Promise<T> {
  let lastError: unknown;
  for (let attempt = 1; attempt <= DOCKER_ATTEMPTS; attempt++) {
    try {
      return await action();
    } catch (error) {
      lastError = error;
      const code = statusCode(error);
      // 4xx answers (no such container, conflict, bad request) will not change on retry.
      if (code !== undefined && code >= 400 && code < 500) throw error;
      if (attempt < DOCKER_ATTEMPTS) await sleep(DOCKER_RETRY_DELAY_MS);
    }
  }
  throw lastError;
}

/** Removes a container by name if it exists (force, with its volumes); true if one was removed. */
export async function removeContainerIfExists(docker: Docker, name: string): Promise<boolean> {
  try {
    await withRetries(() => docker.getContainer(name).remove({ force: true, v: true }));
    return true;
  } catch (error) {
    if (statusCode(error) === 404) return false;
    // 409: removal already in progress (e.g. AutoRemove); treat as gone.
    if (statusCode(error) === 409) return true;
    throw error;
  }
}

export async function isContainerRunning(docker: Docker, name: string): Promise<boolean> {
  try {
    const info = await docker.getContainer(name).inspect();
    return info.State.Running;
  } catch (error) {
    if (statusCode(error) === 404) return false;
    throw error;
  }
}

/** Uses the image if the node has it, else pulls it (with private_registries credentials). */
export async function ensureImage(
  docker: Docker,
  image: string,
  registries: RegistryConfig[],
  log: Logger,
  label: string,
): Promise<void> {
  try {
    await docker.getImage(image).inspect();
    return;
  } catch (error) {
    if (statusCode(error) !== 404) throw error;
  }
  log.info(`[etcd] Pulling image [${image}] on host [${label}]`);
  const authconfig = registryAuthFor(image, registries);
  try {
    await withRetries(async () => {
      const stream = await docker.pull(image, authconfig ? { authconfig } : {});
      await new Promise<void>((resolve, reject) => {
        docker.modem.followProgress(stream, (error) => (error ? reject(error) : resolve()));
      });
    });
  } catch (error) {
    throw new RemoteCommandError(`${label}: cannot pull image ${image}: ${(error as Error).message}`, {
      cause: error,
      hint: 'check system_images and private_registries in cluster.yml',
    });
  }
  log.info(`[etcd] Successfully pulled image [${image}] on host [${label}]`);
}

/** Docker multiplexes stdout/stderr of non-TTY containers in 8-byte-framed chunks. */
export function demuxDockerStream(buffer: Buffer): { stdout: string; stderr: string } {
  let stdout = '';
  let stderr = '';
  let offset = 0;
  while (offset + 8 <= buffer.length) {
    const type = buffer[offset];
    const length = buffer.readUInt32BE(offset + 4);
    const payload = buffer.subarray(offset + 8, offset + 8 + length).toString('utf8');
    if (type === 2) stderr += payload;
    else stdout += payload;
    offset += 8 + length;
  }
  return { stdout, stderr };
}

export interface RunResult {
  exitCode: number;
  output: string;
}

export interface RunOptions {
  timeoutSeconds: number;
  signal?: AbortSignal;
  onStarted?: () => void;
}

export class ContainerTimeoutError extends Error {}

/**
 * Waits for the container to exit with Docker's wait endpoint (no polling delay, unlike
 * RKE's once-a-second inspect), bounded by the timeout and the abort signal.
 */
async function waitForExit(container: Docker.Container, name: string, options: RunOptions): Promise<number> {
  const abort = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let watcher: NodeJS.Timeout | undefined;
  const stopped = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new ContainerTimeoutError(`container ${name} did not finish within ${options.timeoutSeconds}s`)),
      options.timeoutSeconds * 1000,
    );
    watcher = setInterval(() => {
      if (options.signal?.aborted) reject(options.signal.reason);
    }, ABORT_CHECK_MS);
  });
  try {
    options.signal?.throwIfAborted();
    const result = (await Promise.race([container.wait({ abortSignal: abort.signal }), stopped])) as { StatusCode: number };
    return result.StatusCode;
  } finally {
    clearTimeout(timer);
    clearInterval(watcher);
    abort.abort();
  }
}

async function containerLogs(container: Docker.Container): Promise<string> {
  const raw = (await container.logs({ stdout: true, stderr: true, tail: LOG_TAIL_LINES, follow: false })) as unknown as Buffer;
  const { stdout, stderr } = demuxDockerStream(Buffer.isBuffer(raw) ? raw : Buffer.from(String(raw)));
  return `${stdout}${stderr}`.trim();
}

/** Replaces any container named `spec.name` with a new, not yet started one from `spec`. */
async function createFromSpec(docker: Docker, spec: ContainerSpec): Promise<Docker.Container> {
  await removeContainerIfExists(docker, spec.name);
  const container = await withRetries(() =>
    docker.createContainer({
      name: spec.name,
      Image: spec.image,
      Entrypoint: spec.entrypoint,
      Cmd: spec.cmd,
      Env: spec.env,
      Labels: spec.labels ?? {},
      ...(spec.user ? { User: spec.user } : {}),
      HostConfig: {
        Binds: spec.binds,
        NetworkMode: spec.networkMode,
        Privileged: spec.privileged ?? false,
        RestartPolicy: { Name: spec.restartPolicy ?? 'no' },
      },
    }),
  );
  return container;
}

/**
 * Creates, starts and waits for a one-shot container, and removes it whatever happens.
 * On timeout or abort the container is killed first. Throws ContainerTimeoutError on
 * timeout and the abort reason on abort.
 */
export async function runOnce(docker: Docker, spec: ContainerSpec, options: RunOptions): Promise<RunResult> {
  const container = await createFromSpec(docker, spec);
  try {
    await withRetries(() => container.start());
    options.onStarted?.();
    const exitCode = await waitForExit(container, spec.name, options);
    return { exitCode, output: await containerLogs(container) };
  } finally {
    await removeContainerIfExists(docker, spec.name).catch(() => undefined);
  }
}

/** Runs a command in a running container and returns its exit code and output. */
export async function execIn(docker: Docker, spec: ExecSpec): Promise<RunResult> {
  const exec = await docker.getContainer(spec.container).exec({
    Cmd: spec.cmd,
    Env: spec.env,
    AttachStdout: true,
    AttachStderr: true,
  });
  const stream = await exec.start({ hijack: false, stdin: false, Detach: false, Tty: false });
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
  const { stdout, stderr } = demuxDockerStream(Buffer.concat(chunks));
  const info = await exec.inspect();
  return { exitCode: info.ExitCode ?? -1, output: `${stdout}${stderr}`.trim() };
}

/**
 * Replaces any container named `spec.name` with a new one from `spec` and starts it without
 * waiting: for long-running containers such as `etcd` (restart policy from the spec).
 */
export async function startContainer(docker: Docker, spec: ContainerSpec): Promise<void> {
  const container = await createFromSpec(docker, spec);
  await withRetries(() => container.start());
}

/** The last lines a container printed (empty if it does not exist), e.g. why etcd is unhealthy. */
export async function containerOutputTail(docker: Docker, name: string): Promise<string> {
  try {
    return await containerLogs(docker.getContainer(name));
  } catch (error) {
    if (statusCode(error) === 404) return '';
    throw error;
  }
}
