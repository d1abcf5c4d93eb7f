import type Docker from 'dockerode';
import type { ClusterConfig, NodeConfig } from '../config/types.js';
import type { Logger } from '../log/logger.js';
import { openDocker } from '../transport/docker.js';
import type { KnownHostEntry } from '../transport/known-hosts.js';
import { SshConnection } from '../transport/ssh.js';

/** One node reached over SSH with a Docker client on top. */
export interface NodeSession {
  node: NodeConfig;
  /** `node <address>`, the prefix of every error about this node. */
  label: string;
  ssh: SshConnection;
  docker: Docker;
  close(): void;
}

export interface ConnectOptions {
  env: NodeJS.ProcessEnv;
  knownHosts?: KnownHostEntry[];
  log: Logger;
}

export function nodeLabel(node: NodeConfig): string {
  return `node ${node.address}`;
}

export async function openSession(config: ClusterConfig, node: NodeConfig, options: ConnectOptions): Promise<NodeSession> {
  const label = nodeLabel(node);
  const ssh = await SshConnection.open(node, label, {
    env: options.env,
    ...(options.knownHosts ? { knownHosts: options.knownHosts } : {}),
    ...(config.bastionHost ? { bastion: config.bastionHost } : {}),
  });
  try {
    const { docker, agent } = await openDocker(ssh, node.dockerSocket);
    options.log.info(`[dialer] Setup tunnel for host [${node.address}]`);
    return {
      node,
      label,
      ssh,
      docker,
      close: () => {
        agent.destroy();
        ssh.close();
      },
    };
  } catch (error) {
    ssh.close();
    throw error;
  }
}

export type Settled<T> = { node: NodeConfig; ok: true; value: T } | { node: NodeConfig; ok: false; error: unknown };

/** Runs `work` on every node at once and reports each node's outcome; never throws. */
export function onEveryNode<T>(nodes: NodeConfig[], work: (node: NodeConfig) => Promise<T>): Promise<Settled<T>[]> {
  return onEach(nodes, (node) => node, work);
}

/**
 * onEveryNode for things that belong to a node (sessions, per-node restore progress): `work`
 * gets the thing itself, and each outcome carries it back.
 */
export async function onEach<I, T>(items: readonly I[], nodeOf: (item: I) => NodeConfig, work: (item: I) => Promise<T>): Promise<Array<Settled<T> & { item: I }>> {
  const results = await Promise.allSettled(items.map((item) => work(item)));
  return results.map((result, index) => {
    const item = items[index]!;
    const node = nodeOf(item);
    return result.status === 'fulfilled'
      ? { item, node, ok: true as const, value: result.value }
      : { item, node, ok: false as const, error: result.reason as unknown };
  });
}
