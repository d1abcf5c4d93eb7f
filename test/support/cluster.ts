/**
 * Real multi-node test clusters for the integration tests: a thin wrapper around
 * test/cluster/cluster.sh (see its header for how nodes are built). Needs root.
 *
 *   const cluster = await startTestCluster({ name: 'save', slot: 1, nodes: 3 });
 *   const yml = cluster.writeClusterYml();
 *   ...
 *   await cluster.down();
 *
 * Each node is reachable from the host at its address (10.177.<slot>.<10+i>) on port 22 as
 * `rkets` (in group docker) or `rkets-nodocker`; its /opt/rke, /etc/kubernetes, /var/lib/etcd
 * and /run live under `node.root` on the host (see hostPath).
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';

export const CLUSTER_SCRIPT = fileURLToPath(new URL('../cluster/cluster.sh', import.meta.url));

/** `up` may build images and (on a fresh machine) apt-get install packages. */
const UP_TIMEOUT_MS = 600_000;
const COMMAND_TIMEOUT_MS = 120_000;

/** Node directories that are private to each node; everything else is the host's. */
const NODE_MOUNTS = ['/opt/rke', '/etc/kubernetes', '/var/lib/etcd', '/run'];

export interface TestNode {
  /** 1-based position in the cluster (node I of cluster.sh). */
  index: number;
  /** Hostname as RKE sees it: the address (RKE's default hostname_override). */
  name: string;
  address: string;
  /** etcd member name, `etcd-<hostname>`. */
  etcdName: string;
  /** True if `up` started etcd on this node (false for add-node nodes). */
  etcd: boolean;
  /** Host dir holding this node's /opt/rke, /etc/kubernetes, /var/lib/etcd and /run. */
  root: string;
  /** Host path of the node's /var/run/docker.sock. */
  dockerSocket: string;
}

export interface CommandResult {
  stdout: string;
  stderr: string;
  code: number;
}

/** One `nodes:` entry of cluster.yml, in RKE's spelling. */
export interface ClusterYmlNode {
  address?: string;
  port?: string | number;
  user?: string;
  role?: string[];
  ssh_key_path?: string;
  ssh_key?: string;
  ssh_cert_path?: string;
  hostname_override?: string;
  internal_address?: string;
  docker_socket?: string;
  [key: string]: unknown;
}

export interface ClusterYmlOptions {
  /**
   * The `nodes:` list. A TestNode stands for its default entry (address, port "22", user
   * rkets, role [etcd], ssh_key_path); an object is merged over the defaults of `node` (or
   * of the test node with the same address, if any). Keys set to undefined are left out.
   * Default: every etcd node.
   */
  nodes?: Array<TestNode | (ClusterYmlNode & { node?: TestNode })>;
  /** Top-level keys merged over the defaults (system_images, services, ...); undefined removes. */
  set?: Record<string, unknown>;
  /** Raw YAML appended to the document, for keys not written otherwise. */
  extra?: string;
  /** File name in the state dir, or an absolute path. Default: cluster.yml. */
  file?: string;
}

export interface SshOptions {
  /** Default: the cluster's user (rkets). */
  user?: string;
  /** Default: the authorized key. */
  keyPath?: string;
  /** An SSH certificate to present with the key. */
  certPath?: string;
  /** Extra ssh(1) arguments, before the destination. */
  args?: string[];
  timeoutMs?: number;
}

export interface TestCluster {
  name: string;
  slot: number;
  stateDir: string;
  nodes: TestNode[];
  /** The nodes running etcd. */
  readonly etcdNodes: TestNode[];
  /** In group docker. */
  user: string;
  /** Not in group docker: its docker.sock access is denied. */
  noDockerUser: string;
  /** Authorized for both users. */
  sshKeyPath: string;
  /** A valid key that no node authorizes. */
  wrongKeyPath: string;
  /** A key only accepted together with certPath (signed by the cluster's user CA for `rkets`). */
  certKeyPath: string;
  certPath: string;
  /** known_hosts with every node's host key. */
  knownHostsPath: string;
  /** kube-ca.pem, kube-node*.pem, kube-etcd-*.pem as copied to the nodes. */
  pkiDir: string;
  /** The image the `etcd` containers run. */
  etcdImage: string;
  /** Both etcd images are loaded on every node. */
  etcdImages: { shell: string; distroless: string };
  toolsImage: string;

  /** Node by 1-based index. */
  node(index: number): TestNode;
  /** Host path of a path on the node, e.g. /opt/rke/etcd-snapshots/x. */
  hostPath(node: TestNode, pathOnNode: string): string;
  /**
   * Host etcdctl (API 3) against the node's etcd with its certs; resolves with stdout, throws
   * (with stderr) on failure. etcdctl 3.4 prints `endpoint health` to stderr: use `-w json`.
   */
  etcdctl(node: TestNode, ...args: string[]): Promise<string>;
  /** docker CLI against the node's daemon; never throws on a non-zero exit. */
  docker(node: TestNode, ...args: string[]): Promise<CommandResult>;
  /** ssh(1) to the node running `command`; never throws on a non-zero exit. */
  ssh(node: TestNode, command: string, options?: SshOptions): Promise<CommandResult>;
  stopEtcd(node: TestNode): Promise<void>;
  startEtcd(node: TestNode): Promise<void>;
  /** SIGKILLs everything on the node (sshd, dockerd, etcd); `unplug` also cuts its link. */
  killNode(node: TestNode, options?: { unplug?: boolean }): Promise<void>;
  /** One more node with docker, sshd and all certificates, but no etcd. */
  addNode(): Promise<TestNode>;
  /** Writes an RKE cluster.yml into the state dir and returns its path. */
  writeClusterYml(options?: ClusterYmlOptions): string;
  down(): Promise<void>;
}

export interface StartOptions {
  name: string;
  /** 1..20: subnet 10.177.<slot>.0/24; clusters that exist at the same time need different slots. */
  slot: number;
  nodes: number;
  /** 1-based indexes of the nodes that run etcd; default all. */
  etcdNodes?: number[];
  image?: 'shell' | 'distroless';
}

/** Runs cluster.sh; resolves with its output and exit code (never rejects on non-zero). */
export function runClusterScript(args: string[], timeoutMs = COMMAND_TIMEOUT_MS): Promise<CommandResult> {
  return runCommand('bash', [CLUSTER_SCRIPT, ...args], timeoutMs);
}

function runCommand(file: string, args: string[], timeoutMs: number): Promise<CommandResult> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: timeoutMs, maxBuffer: 256 * 1024 * 1024, killSignal: 'SIGKILL' }, (error, stdout, stderr) => {
      let code = 0;
      if (error) {
        const raw = (error as { code?: unknown }).code;
        code = typeof raw === 'number' ? raw : 1;
        if (error.killed) stderr += `\n(killed after ${timeoutMs}ms)`;
        else if (typeof raw !== 'number') stderr += `\n${error.message}`;
      }
      resolve({ stdout, stderr, code });
    });
  });
}

async function mustRun(args: string[], timeoutMs = COMMAND_TIMEOUT_MS): Promise<string> {
  const result = await runClusterScript(args, timeoutMs);
  if (result.code !== 0) {
    throw new Error(`cluster.sh ${args.join(' ')} failed (exit ${result.code}):\n${tail(result.stderr || result.stdout, 60)}`);
  }
  return result.stdout;
}

function tail(text: string, lines: number): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

function parseEnv(text: string): Map<string, string> {
  const env = new Map<string, string>();
  for (const line of text.split('\n')) {
    const match = /^(RKETS_[A-Z0-9_]+)=(.*)$/.exec(line);
    if (match?.[1]) env.set(match[1], match[2] ?? '');
  }
  return env;
}

function get(env: Map<string, string>, key: string): string {
  const value = env.get(`RKETS_${key}`);
  if (value === undefined) throw new Error(`cluster.sh env: missing RKETS_${key}`);
  return value;
}

function nodesFromEnv(env: Map<string, string>): TestNode[] {
  const count = Number(get(env, 'NODE_COUNT'));
  const nodes: TestNode[] = [];
  for (let index = 1; index <= count; index++) {
    const address = get(env, `NODE_${index}_ADDRESS`);
    nodes.push({
      index,
      name: address,
      address,
      etcdName: `etcd-${address}`,
      etcd: get(env, `NODE_${index}_ETCD`) === '1',
      root: get(env, `NODE_${index}_ROOT`),
      dockerSocket: get(env, `NODE_${index}_DOCKER_SOCKET`),
    });
  }
  return nodes;
}

function withoutUndefined<T extends Record<string, unknown>>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

class Cluster implements TestCluster {
  name: string;
  slot: number;
  stateDir: string;
  nodes: TestNode[];
  user: string;
  noDockerUser: string;
  sshKeyPath: string;
  wrongKeyPath: string;
  certKeyPath: string;
  certPath: string;
  knownHostsPath: string;
  pkiDir: string;
  etcdImage: string;
  etcdImages: { shell: string; distroless: string };
  toolsImage: string;

  constructor(env: Map<string, string>) {
    this.name = get(env, 'NAME');
    this.slot = Number(get(env, 'SLOT'));
    this.stateDir = get(env, 'STATE_DIR');
    this.nodes = nodesFromEnv(env);
    this.user = get(env, 'SSH_USER');
    this.noDockerUser = get(env, 'NODOCKER_USER');
    this.sshKeyPath = get(env, 'SSH_KEY');
    this.wrongKeyPath = get(env, 'WRONG_KEY');
    this.certKeyPath = get(env, 'CERT_KEY');
    this.certPath = get(env, 'CERT');
    this.knownHostsPath = get(env, 'KNOWN_HOSTS');
    this.pkiDir = get(env, 'PKI_DIR');
    this.etcdImage = get(env, 'ETCD_IMAGE');
    this.etcdImages = { shell: get(env, 'ETCD_SHELL_IMAGE'), distroless: get(env, 'ETCD_DISTROLESS_IMAGE') };
    this.toolsImage = get(env, 'TOOLS_IMAGE');
  }

  get etcdNodes(): TestNode[] {
    return this.nodes.filter((node) => node.etcd);
  }

  node(index: number): TestNode {
    const node = this.nodes[index - 1];
    if (!node) throw new Error(`test cluster ${this.name} has no node ${index}`);
    return node;
  }

  hostPath(node: TestNode, pathOnNode: string): string {
    if (!pathOnNode.startsWith('/')) throw new Error(`hostPath: ${pathOnNode} is not absolute`);
    let normalized = path.posix.normalize(pathOnNode);
    if (normalized === '/var/run' || normalized.startsWith('/var/run/')) normalized = normalized.slice('/var'.length);
    const isPrivate = NODE_MOUNTS.some((mount) => normalized === mount || normalized.startsWith(`${mount}/`));
    return isPrivate ? path.join(node.root, normalized) : normalized;
  }

  async etcdctl(node: TestNode, ...args: string[]): Promise<string> {
    return mustRun(['etcdctl', this.name, String(node.index), ...args]);
  }

  docker(node: TestNode, ...args: string[]): Promise<CommandResult> {
    return runClusterScript(['docker', this.name, String(node.index), ...args]);
  }

  ssh(node: TestNode, command: string, options: SshOptions = {}): Promise<CommandResult> {
    const args = [
      '-o', 'BatchMode=yes',
      '-o', 'StrictHostKeyChecking=no',
      '-o', 'UserKnownHostsFile=/dev/null',
      '-o', 'LogLevel=ERROR',
      '-o', 'ConnectTimeout=10',
      '-o', 'IdentitiesOnly=yes',
      '-F', '/dev/null',
      '-i', options.keyPath ?? this.sshKeyPath,
      ...(options.certPath ? ['-o', `CertificateFile=${options.certPath}`] : []),
      ...(options.args ?? []),
      `${options.user ?? this.user}@${node.address}`,
      command,
    ];
    return runCommand('ssh', args, options.timeoutMs ?? COMMAND_TIMEOUT_MS);
  }

  async stopEtcd(node: TestNode): Promise<void> {
    await mustRun(['stop-etcd', this.name, String(node.index)]);
  }

  async startEtcd(node: TestNode): Promise<void> {
    await mustRun(['start-etcd', this.name, String(node.index)]);
  }

  async killNode(node: TestNode, options: { unplug?: boolean } = {}): Promise<void> {
    await mustRun(['kill-node', this.name, String(node.index), ...(options.unplug ? ['--unplug'] : [])]);
  }

  async addNode(): Promise<TestNode> {
    await mustRun(['add-node', this.name], UP_TIMEOUT_MS);
    this.nodes = nodesFromEnv(parseEnv(await mustRun(['env', this.name])));
    return this.node(this.nodes.length);
  }

  private defaultNodeEntry(node: TestNode): ClusterYmlNode {
    return { address: node.address, port: '22', user: this.user, role: ['etcd'], ssh_key_path: this.sshKeyPath };
  }

  writeClusterYml(options: ClusterYmlOptions = {}): string {
    const entries = (options.nodes ?? this.etcdNodes).map((entry) => {
      if ('dockerSocket' in entry && 'root' in entry) return this.defaultNodeEntry(entry as TestNode);
      const { node, ...fields } = entry as ClusterYmlNode & { node?: TestNode };
      const base = node ?? this.nodes.find((candidate) => candidate.address === fields.address);
      const defaults = base
        ? this.defaultNodeEntry(base)
        : { address: fields.address, port: '22', user: this.user, role: ['etcd'], ssh_key_path: this.sshKeyPath };
      return withoutUndefined({ ...defaults, ...fields });
    });
    const document = withoutUndefined({
      nodes: entries,
      system_images: { etcd: this.etcdImage, alpine: this.toolsImage },
      ...options.set,
    });
    let text = stringify(document);
    if (options.extra) text += `${options.extra.trimEnd()}\n`;
    const file = path.resolve(this.stateDir, options.file ?? 'cluster.yml');
    writeFileSync(file, text);
    return file;
  }

  async down(): Promise<void> {
    await mustRun(['down', this.name]);
  }
}

/**
 * Brings up a fresh cluster (tearing down any leftover of the same name first) and waits until
 * etcd is healthy. On failure the half-built cluster is torn down, unless RKE_TS_KEEP_CLUSTER=1.
 */
export async function startTestCluster(options: StartOptions): Promise<TestCluster> {
  const args = ['up', options.name, String(options.nodes), '--slot', String(options.slot)];
  if (options.etcdNodes) args.push('--etcd-nodes', options.etcdNodes.length > 0 ? options.etcdNodes.join(',') : 'none');
  if (options.image) args.push('--image', options.image);
  const result = await runClusterScript(args, UP_TIMEOUT_MS);
  if (result.code !== 0) {
    if (process.env.RKE_TS_KEEP_CLUSTER !== '1') await runClusterScript(['down', options.name]);
    throw new Error(`test cluster ${options.name} did not come up (exit ${result.code}):\n${tail(result.stderr, 80)}`);
  }
  return attachTestCluster(options.name);
}

/** A TestCluster for a cluster that is already up (e.g. started by hand with cluster.sh up). */
export async function attachTestCluster(name: string): Promise<TestCluster> {
  return new Cluster(parseEnv(await mustRun(['env', name])));
}
