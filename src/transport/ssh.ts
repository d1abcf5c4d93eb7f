import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import { Client, type ConnectConfig } from 'ssh2';
import type { SshCredentials } from '../config/types.js';
import { AuthError, ConfigError, ConnectionError } from '../errors.js';
import { connectTcp, joinCorkedWrites } from './coalesce.js';
import { checkHostKey, type KnownHostEntry } from './known-hosts.js';
import { certificateAuth } from './ssh-cert.js';

/** How long to wait for TCP + SSH handshake + authentication, per hop. */
const SSH_READY_TIMEOUT_MS = 20_000;
/** Keepalives notice a node that vanished while a long snapshot runs. */
const SSH_KEEPALIVE_INTERVAL_MS = 10_000;
const SSH_KEEPALIVE_COUNT_MAX = 6;

export interface SshEndpoint extends SshCredentials {
  address: string;
  port: number;
  user: string;
}

export interface SshOptions {
  env: NodeJS.ProcessEnv;
  /** Given: host keys are checked against these entries; unknown or changed keys are refused. */
  knownHosts?: KnownHostEntry[];
  bastion?: SshEndpoint;
  readyTimeoutMs?: number;
}

export function expandHome(file: string, env: NodeJS.ProcessEnv): string {
  if (file === '~') return env.HOME ?? os.homedir();
  if (file.startsWith('~/')) return path.join(env.HOME ?? os.homedir(), file.slice(2));
  return file;
}

/** Which credential an endpoint authenticates with, for error messages (never the key itself). */
export function describeCredential(endpoint: SshEndpoint, env: NodeJS.ProcessEnv): string {
  if (endpoint.sshAgentAuth && env.SSH_AUTH_SOCK) return 'ssh agent';
  if (endpoint.sshKey) return 'inline ssh_key';
  return `key ${endpoint.sshKeyPath}`;
}

async function authConfig(
  endpoint: SshEndpoint,
  env: NodeJS.ProcessEnv,
  label: string,
): Promise<Pick<ConnectConfig, 'agent' | 'privateKey' | 'authHandler'>> {
  // RKE: agent only when ssh_agent_auth is set and an agent is actually there.
  if (endpoint.sshAgentAuth && env.SSH_AUTH_SOCK) return { agent: env.SSH_AUTH_SOCK };
  let privateKey: string | Buffer;
  if (endpoint.sshKey) privateKey = endpoint.sshKey;
  else {
    try {
      privateKey = await readFile(expandHome(endpoint.sshKeyPath, env));
    } catch (error) {
      const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : String((error as Error).message);
      throw new ConfigError(`${label}: ssh: cannot read private key ${endpoint.sshKeyPath}: ${reason}`, {
        cause: error,
        hint: 'set ssh_key_path in cluster.yml or use ssh_agent_auth',
      });
    }
  }
  // ssh_cert / ssh_cert_path: the key signs, the server checks the certificate (see ssh-cert.ts).
  if (endpoint.sshCert || endpoint.sshCertPath) {
    const certPath = endpoint.sshCertPath ? expandHome(endpoint.sshCertPath, env) : undefined;
    return { authHandler: await certificateAuth(endpoint, privateKey, certPath, label) };
  }
  return { privateKey };
}

function hostVerifier(options: SshOptions, endpoint: SshEndpoint, rejected: { reason?: string }) {
  const entries = options.knownHosts;
  if (!entries) return undefined;
  return (key: Buffer): boolean => {
    const verdict = checkHostKey(entries, endpoint.address, endpoint.port, key);
    if (verdict === 'trusted') return true;
    rejected.reason =
      verdict === 'unknown'
        ? 'host key is not in the known_hosts file'
        : verdict === 'revoked'
          ? 'host key is revoked in the known_hosts file'
          : 'host key does not match the known_hosts file (possible man-in-the-middle)';
    return false;
  };
}

function translateSshError(error: Error & { level?: string; code?: string }, endpoint: SshEndpoint, label: string, env: NodeJS.ProcessEnv, hostKeyProblem?: string): Error {
  if (hostKeyProblem) return new ConnectionError(`${label}: ssh: ${hostKeyProblem}`, { cause: error });
  if (error.level === 'client-authentication') {
    return new AuthError(
      `${label}: ssh: authentication failed (user ${endpoint.user}, ${describeCredential(endpoint, env)})`,
      { cause: error },
    );
  }
  const where = `${endpoint.address}:${endpoint.port}`;
  const reasons: Record<string, string> = {
    ECONNREFUSED: 'connection refused',
    EHOSTUNREACH: 'host unreachable',
    ENETUNREACH: 'network unreachable',
    ETIMEDOUT: 'connection timed out',
    ENOTFOUND: 'unknown host',
    ECONNRESET: 'connection reset',
  };
  const reason = (error.code && reasons[error.code]) ??
    (/timed out/i.test(error.message) ? 'timed out while waiting for the handshake' : error.message);
  return new ConnectionError(`${label}: ssh: cannot connect to ${where}: ${reason}`, { cause: error });
}

function connectClient(config: ConnectConfig, endpoint: SshEndpoint, label: string, options: SshOptions): Promise<Client> {
  return new Promise((resolve, reject) => {
    const client = new Client();
    const rejected: { reason?: string } = {};
    const verifier = hostVerifier(options, endpoint, rejected);
    let settled = false;
    client.once('ready', () => {
      settled = true;
      resolve(client);
    });
    client.on('error', (error) => {
      if (settled) return; // later errors surface on the channel that hit them
      settled = true;
      client.end();
      reject(translateSshError(error, endpoint, label, options.env, rejected.reason));
    });
    client.connect({
      ...config,
      ...(verifier ? { hostVerifier: verifier } : {}),
      readyTimeout: options.readyTimeoutMs ?? SSH_READY_TIMEOUT_MS,
      keepaliveInterval: SSH_KEEPALIVE_INTERVAL_MS,
      keepaliveCountMax: SSH_KEEPALIVE_COUNT_MAX,
    });
  });
}

/** An authenticated SSH connection to one node, possibly through a bastion host. */
export class SshConnection {
  private constructor(
    readonly label: string,
    private readonly client: Client,
    private readonly bastion?: Client,
  ) {}

  static async open(endpoint: SshEndpoint, label: string, options: SshOptions): Promise<SshConnection> {
    const auth = await authConfig(endpoint, options.env, label);
    let bastion: Client | undefined;
    let sock: Duplex | undefined;
    if (options.bastion) {
      const hop = options.bastion;
      const bastionLabel = `${label} (via bastion ${hop.address})`;
      const bastionAuth = await authConfig(hop, options.env, bastionLabel);
      bastion = await connectClient(
        { sock: connectTcp(hop.address, hop.port), username: hop.user, ...bastionAuth },
        hop,
        `bastion ${hop.address}`,
        options,
      );
      sock = await new Promise<Duplex>((resolve, reject) => {
        bastion!.forwardOut('127.0.0.1', 0, endpoint.address, endpoint.port, (error, channel) => {
          if (error) {
            reject(new ConnectionError(`${label}: ssh: bastion ${hop.address} cannot reach ${endpoint.address}:${endpoint.port}: ${error.message}`, { cause: error }));
          } else resolve(channel);
        });
      }).catch((error: unknown) => {
        bastion?.end();
        throw error;
      });
    }
    try {
      const client = await connectClient(
        { sock: sock ?? connectTcp(endpoint.address, endpoint.port), username: endpoint.user, ...auth },
        endpoint,
        label,
        options,
      );
      return new SshConnection(label, client, bastion);
    } catch (error) {
      bastion?.end();
      throw error;
    }
  }

  /** Opens the remote unix socket (OpenSSH stream-local forwarding, direct-streamlocal@openssh.com). */
  openUnixSocket(socketPath: string): Promise<Duplex> {
    return new Promise((resolve, reject) => {
      this.client.openssh_forwardOutStreamLocal(socketPath, (error, channel) => {
        if (error) reject(error);
        else {
          joinCorkedWrites(channel);
          resolve(channel);
        }
      });
    });
  }

  /** Runs a shell command on the node (diagnostics only); resolves with exit code and output. */
  exec(command: string): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
      this.client.exec(command, (error, channel) => {
        if (error) return reject(error);
        let stdout = '';
        let stderr = '';
        channel.on('data', (data: Buffer) => (stdout += data.toString()));
        channel.stderr.on('data', (data: Buffer) => (stderr += data.toString()));
        channel.on('close', (code: number | null) => resolve({ code: code ?? -1, stdout, stderr }));
      });
    });
  }

  close(): void {
    this.client.end();
    this.bastion?.end();
  }
}
