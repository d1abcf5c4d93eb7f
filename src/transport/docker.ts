import http from 'node:http';
import { Module, createRequire } from 'node:module';
import { inspect } from 'node:util';
import type { Duplex } from 'node:stream';
import type Docker from 'dockerode';
import { ConnectionError } from '../errors.js';
import type { SshConnection } from './ssh.js';

/**
 * http.Agent whose "sockets" are SSH channels to the node's Docker unix socket. Node's
 * HTTP client calls a few net.Socket methods on its socket; SSH channels lack them, so
 * harmless no-ops are added.
 */
class SshSocketAgent extends http.Agent {
  /**
   * docker-modem util.inspect()s every request's options with unlimited depth, even with
   * debug off. Those hold this agent and through it the SSH connection with every channel
   * and its buffered data: while a snapshot streams, each Docker call would block the event
   * loop for seconds (measured: compressing 9 MiB took 5-11 s instead of 1 s).
   */
  [inspect.custom](): string {
    return `[Docker over SSH to ${this.ssh.label}]`;
  }

  constructor(
    private readonly ssh: SshConnection,
    private readonly socketPath: string,
  ) {
    super({ keepAlive: true, maxSockets: 8 });
  }

  override createConnection(_options: unknown, callback: (error: Error | null, socket?: Duplex) => void): undefined {
    this.ssh.openUnixSocket(this.socketPath).then(
      (channel) => callback(null, asSocket(channel)),
      (error: Error) => callback(error),
    );
    return undefined;
  }
}

function asSocket(channel: Duplex): Duplex {
  const socket = channel as Duplex & Record<string, unknown>;
  for (const method of ['setTimeout', 'setNoDelay', 'setKeepAlive', 'ref', 'unref']) {
    if (typeof socket[method] !== 'function') socket[method] = () => socket;
  }
  return socket;
}

/**
 * Explains why the Docker socket could not be opened. sshd reports every failure as a bare
 * "open failed", so ask the node itself: missing socket and permission problems need
 * different fixes.
 */
async function diagnoseSocket(ssh: SshConnection, socketPath: string): Promise<string> {
  const quoted = `'${socketPath.replace(/'/g, `'\\''`)}'`;
  try {
    const { stdout } = await ssh.exec(
      `if [ ! -e ${quoted} ]; then echo missing; elif [ ! -S ${quoted} ]; then echo not-socket; ` +
        `elif [ ! -r ${quoted} ] || [ ! -w ${quoted} ]; then echo denied; else echo ok; fi`,
    );
    switch (stdout.trim()) {
      case 'missing':
        return 'no such socket (is Docker running? check docker_socket in cluster.yml)';
      case 'not-socket':
        return 'not a unix socket (check docker_socket in cluster.yml)';
      case 'denied':
        return 'permission denied (add the ssh user to the docker group on the node)';
      default:
        return 'sshd refused to forward it (set AllowStreamLocalForwarding yes in sshd_config)';
    }
  } catch {
    return 'sshd refused to forward it';
  }
}

export interface DockerSession {
  docker: Docker;
  agent: http.Agent;
}

const require = createRequire(import.meta.url);

/**
 * dockerode loads gRPC and protobuf at start-up for BuildKit sessions (image builds), which
 * rke-ts never uses: 4 MiB of heap that every garbage collection walks while a snapshot
 * streams, and ~6 MiB of resident memory. Its session module is registered as one that
 * loads the real module on first use instead.
 */
export function deferBuildKitSessions(): void {
  const path = require.resolve('dockerode/lib/session.js');
  if (require.cache[path]) return;
  const deferred = new Module(path);
  deferred.filename = path;
  deferred.loaded = true;
  deferred.exports = (...args: unknown[]) => {
    delete require.cache[path];
    return (require(path) as (...args: unknown[]) => unknown)(...args);
  };
  require.cache[path] = deferred;
}

/** Connects dockerode to the node's Docker daemon through the SSH connection and pings it. */
export async function openDocker(ssh: SshConnection, socketPath: string): Promise<DockerSession> {
  deferBuildKitSessions();
  const { default: DockerClient } = await import('dockerode');
  const agent = new SshSocketAgent(ssh, socketPath);
  const docker = new DockerClient({
    protocol: 'http',
    host: 'docker',
    port: 80,
    agent,
  } as Docker.DockerOptions);
  try {
    await docker.ping();
  } catch (error) {
    agent.destroy();
    const reason = /open failed|Channel open failure/i.test(String((error as Error).message))
      ? await diagnoseSocket(ssh, socketPath)
      : (error as Error).message;
    throw new ConnectionError(`${ssh.label}: docker socket ${socketPath}: ${reason}`, { cause: error });
  }
  return { docker, agent };
}
