/**
 * Validation and RKE's defaults (cluster/defaults.go, cluster/validation.go), on the raw tree
 * built by read.ts. Pure: the caller supplies a `locate` function that maps a key path to a
 * line:column in the file, so every problem becomes one line:
 *
 *   cluster.yml:14:7 nodes[2].role: unknown role "etc" (expected etcd, controlplane, worker)
 */
import { X509Certificate } from 'node:crypto';
import { ConfigError } from '../errors.js';
import {
  backupShape,
  bastionShape,
  clusterSchema,
  clusterShape,
  etcdShape,
  nodeShape,
  registryShape,
  s3Shape,
  servicesShape,
  systemImagesShape,
  type ClusterInput,
  type RawValue,
} from './schema.js';
import { DEFAULTS, etcdNodes, type BackupConfig, type ClusterConfig, type NodeConfig } from './types.js';

export type KeyPath = readonly (string | number)[];

export interface Position {
  line: number;
  column: number;
}

/**
 * Where a key path is in the file: its value (or its key with `at: 'key'`, or when the value
 * is empty); for a key that is not in the file, where its enclosing map is.
 */
export type Locate = (path: KeyPath, at?: 'key' | 'value') => Position;

export interface ConfigProblem extends Position {
  /** The key path shown in the message. */
  path: KeyPath;
  message: string;
}

/** A ConfigError that carries every problem found, one line each; `message` is the first. */
export class ClusterConfigError extends ConfigError {
  readonly problems: readonly string[];

  constructor(problems: readonly string[], options?: { cause?: unknown }) {
    super(problems[0] ?? 'invalid cluster configuration', options);
    this.problems = problems.length > 0 ? problems : [this.message];
  }
}

/** `nodes[2].role`, `services.etcd.backup_config`; the root is `(top level)`. */
export function formatKeyPath(path: KeyPath): string {
  let out = '';
  for (const part of path) {
    out += typeof part === 'number' ? `[${part}]` : out === '' ? part : `.${part}`;
  }
  return out === '' ? '(top level)' : out;
}

export function formatProblem(file: string, problem: ConfigProblem): string {
  return `${file}:${problem.line}:${problem.column} ${formatKeyPath(problem.path)}: ${problem.message}`;
}

/** Sorts by position and throws one ClusterConfigError for all of them. */
export function throwProblems(file: string, problems: ConfigProblem[], cause?: unknown): never {
  const sorted = [...problems].sort((a, b) => a.line - b.line || a.column - b.column);
  throw new ClusterConfigError(
    sorted.map((problem) => formatProblem(file, problem)),
    cause === undefined ? undefined : { cause },
  );
}

export function validateClusterConfig(raw: RawValue, file: string, locate: Locate): ClusterConfig {
  const problems: ConfigProblem[] = [];
  const report: Report = (path, message, at = path, mode) => problems.push({ path, message, ...locate(at, mode) });

  findMisspelledKeys(raw, report);
  const parsed = clusterSchema.safeParse(raw);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
      const extra = (issue as { params?: { locate?: KeyPath } }).params?.locate ?? [];
      report(path, issue.message, [...path, ...extra]);
    }
    throwProblems(file, problems);
  }

  const config = applyDefaults(parsed.data, file, locate);
  checkCluster(parsed.data, config, report);
  if (problems.length > 0) throwProblems(file, problems);
  return config;
}

type Report = (path: KeyPath, message: string, at?: KeyPath, mode?: 'key' | 'value') => void;

// Keys users write for keys that matter here, beyond case/underscore variants (checked below).
// rancher-archives/rke#1628: `endpoint_ca` instead of `custom_ca`.
const CA_HINT = 'the key is custom_ca (the PEM text of the CA certificate, e.g. custom_ca: |-)';
const ALIASES: Record<string, Record<string, string>> = {
  'nodes.*': { roles: 'role', username: 'user', ssh_user: 'user', ssh_port: 'port', internal_ip: 'internal_address' },
  'services.etcd.backup_config': { s3: 's3backupconfig', s3_config: 's3backupconfig', s3_backup: 's3backupconfig' },
  'services.etcd.backup_config.s3backupconfig': {
    endpoint_ca: CA_HINT,
    s3_endpoint_ca: CA_HINT,
    ca: CA_HINT,
    ca_cert: CA_HINT,
    bucket: 'bucket_name',
    access_key_id: 'access_key',
    aws_access_key_id: 'access_key',
    secret_access_key: 'secret_key',
    aws_secret_access_key: 'secret_key',
  },
};

const SECTIONS: Record<string, readonly string[]> = {
  '': Object.keys(clusterShape),
  'nodes.*': Object.keys(nodeShape),
  bastion_host: Object.keys(bastionShape),
  services: Object.keys(servicesShape),
  'services.etcd': Object.keys(etcdShape),
  'services.etcd.backup_config': Object.keys(backupShape),
  'services.etcd.backup_config.s3backupconfig': Object.keys(s3Shape),
  'private_registries.*': Object.keys(registryShape),
  system_images: Object.keys(systemImagesShape),
};

const squash = (key: string) => key.toLowerCase().replace(/[-_]/g, '');

/** `s3_backup_config`, `bucketName`, `endpoint_ca`: unknown keys that are surely meant as known ones. */
function findMisspelledKeys(raw: RawValue, report: Report): void {
  const visit = (value: RawValue | undefined, path: (string | number)[], pattern: string) => {
    if (value === null || value === undefined || typeof value !== 'object') return;
    if (Array.isArray(value)) {
      if (SECTIONS[`${pattern}.*`]) value.forEach((item, i) => visit(item, [...path, i], `${pattern}.*`));
      return;
    }
    const known = SECTIONS[pattern];
    if (!known) return;
    for (const key of Object.keys(value)) {
      const child = pattern === '' ? key : `${pattern}.${key}`;
      if (known.includes(key)) {
        visit(value[key], [...path, key], child);
        continue;
      }
      const aliases = ALIASES[pattern] ?? {};
      const alias = Object.hasOwn(aliases, key) ? aliases[key] : known.find((k) => squash(k) === squash(key));
      if (alias === undefined) continue;
      const hint = alias.includes(' ') ? alias : `the key is ${alias}`;
      report([...path, key], `unknown key; ${hint}`, [...path, key], 'key');
    }
  };
  visit(raw, [], '');
}

function applyDefaults(input: ClusterInput, file: string, locate: Locate): ClusterConfig {
  const sshKeyPath = input.ssh_key_path ?? DEFAULTS.sshKeyPath;
  const sshAgentAuth = input.ssh_agent_auth ?? false;
  const nodes = input.nodes.map((node, index): NodeConfig => {
    const address = node.address ?? '';
    return {
      index,
      address,
      port: node.port ?? DEFAULTS.sshPort,
      internalAddress: node.internal_address ?? address,
      roles: node.role,
      hostnameOverride: (node.hostname_override ?? address).toLowerCase(),
      user: node.user ?? '',
      dockerSocket: node.docker_socket ?? DEFAULTS.dockerSocket,
      labels: node.labels,
      sshKey: node.ssh_key,
      sshKeyPath: node.ssh_key_path ?? sshKeyPath,
      sshCert: node.ssh_cert,
      sshCertPath: node.ssh_cert_path,
      // RKE: "For now, you can set at the global level only."
      sshAgentAuth,
      location: { file, ...locate(['nodes', index]) },
    };
  });
  const bastion = input.bastion_host;
  const etcd = input.services.etcd;
  return {
    file,
    clusterName: input.cluster_name ?? DEFAULTS.clusterName,
    kubernetesVersion: input.kubernetes_version,
    prefixPath: input.prefix_path ?? DEFAULTS.prefixPath,
    sshKeyPath,
    sshAgentAuth,
    ignoreDockerVersion: input.ignore_docker_version ?? false,
    // An empty `bastion_host:` block (as `rke config` writes it) means no bastion.
    bastionHost: bastion.address
      ? {
          address: bastion.address,
          port: bastion.port ?? DEFAULTS.sshPort,
          user: bastion.user ?? '',
          sshKey: bastion.ssh_key,
          sshKeyPath: bastion.ssh_key_path ?? sshKeyPath,
          sshCert: bastion.ssh_cert,
          sshCertPath: bastion.ssh_cert_path,
          sshAgentAuth,
        }
      : undefined,
    nodes,
    privateRegistries: input.private_registries.map((registry) => ({
      url: registry.url ?? 'docker.io',
      user: registry.user,
      password: registry.password,
      isDefault: registry.is_default ?? false,
    })),
    systemImages: {
      etcd: input.system_images.etcd ?? DEFAULTS.etcdImage,
      alpine: input.system_images.alpine ?? DEFAULTS.alpineImage,
      certDownloader: input.system_images.cert_downloader,
    },
    services: {
      etcd: {
        image: etcd.image,
        extraArgs: { ...DEFAULTS.etcdExtraArgs, ...etcd.extra_args },
        extraEnv: etcd.extra_env,
        extraBinds: etcd.extra_binds,
        externalUrls: etcd.external_urls,
        path: etcd.path,
        uid: etcd.uid,
        gid: etcd.gid,
        snapshot: etcd.snapshot ?? DEFAULTS.legacySnapshot,
        creation: etcd.creation ?? DEFAULTS.legacyCreation,
        retention: etcd.retention ?? DEFAULTS.legacyRetention,
        backupConfig: etcd.backup_config ? backupDefaults(etcd.backup_config) : undefined,
      },
    },
  };
}

type BackupInput = NonNullable<ClusterInput['services']['etcd']['backup_config']>;

/** RKE fills interval/retention/timeout (also when 0) only while backups are enabled. */
function backupDefaults(input: BackupInput): BackupConfig {
  const enabled = input.enabled ?? true;
  const s3 = input.s3backupconfig;
  return {
    enabled,
    intervalHours: (enabled ? input.interval_hours || DEFAULTS.backupIntervalHours : input.interval_hours) ?? 0,
    retention: (enabled ? input.retention || DEFAULTS.backupRetention : input.retention) ?? 0,
    safeTimestamp: input.safe_timestamp ?? false,
    timeout: (enabled ? input.timeout || DEFAULTS.backupTimeout : input.timeout) ?? 0,
    s3: s3
      ? {
          accessKey: s3.access_key,
          secretKey: s3.secret_key,
          bucketName: s3.bucket_name ?? '',
          region: s3.region,
          endpoint: s3.endpoint ?? DEFAULTS.s3Endpoint,
          customCa: s3.custom_ca,
          folder: s3.folder,
        }
      : undefined,
  };
}

const S3_PATH = ['services', 'etcd', 'backup_config', 's3backupconfig'] as const;

/** Checks that need more than one field (validation.go: hosts, duplicates, S3). */
function checkCluster(input: ClusterInput, config: ClusterConfig, report: Report): void {
  if (config.bastionHost && !config.bastionHost.user) {
    report(['bastion_host', 'user'], 'missing user (the SSH user to connect to the bastion host as)');
  }
  const addresses = new Map<string, number>();
  const hostnames = new Map<string, number>();
  for (const node of config.nodes) {
    const first = addresses.get(node.address);
    if (first !== undefined) {
      const message = `duplicate address ${JSON.stringify(node.address)} (also used by nodes[${first}])`;
      report(['nodes', node.index, 'address'], message);
    } else {
      addresses.set(node.address, node.index);
    }
    const firstName = hostnames.get(node.hostnameOverride);
    if (first === undefined && firstName !== undefined) {
      const key = input.nodes[node.index]?.hostname_override !== undefined ? 'hostname_override' : 'address';
      report(
        ['nodes', node.index, 'hostname_override'],
        `duplicate hostname_override ${JSON.stringify(node.hostnameOverride)} ` +
          `(also used by nodes[${firstName}]; RKE names nodes by it)`,
        ['nodes', node.index, key],
      );
    } else if (firstName === undefined) {
      hostnames.set(node.hostnameOverride, node.index);
    }
  }
  const s3 = config.services.etcd.backupConfig?.s3;
  if (s3 && !s3.bucketName) {
    report([...S3_PATH, 'bucket_name'], 'missing bucket name (etcd s3 backup backend bucketName can\'t be empty)');
  }
  if (s3?.customCa && !isValidCa(s3.customCa)) {
    report([...S3_PATH, 'custom_ca'], 'invalid S3 endpoint CA certificate (expected the PEM text of a certificate)');
  }
}

/** custom_ca is PEM text or base64 PEM (checked here) or a file path (read later). */
function isValidCa(value: string): boolean {
  let pem = value;
  if (!pem.includes('-----BEGIN')) {
    if (!/^[A-Za-z0-9+/=\s]+$/.test(pem)) return true; // a path
    pem = Buffer.from(pem, 'base64').toString('utf8');
    if (!pem.includes('-----BEGIN')) return true;
  }
  try {
    new X509Certificate(pem);
    return true;
  } catch {
    return false;
  }
}

/**
 * For snapshot commands: the nodes that hold etcd. A cluster with external etcd (or no etcd
 * role at all) has nothing rke-ts can snapshot.
 */
export function requireEtcdNodes(config: ClusterConfig): NodeConfig[] {
  const nodes = etcdNodes(config);
  if (nodes.length > 0) return nodes;
  const why =
    config.services.etcd.externalUrls.length > 0
      ? 'services.etcd.external_urls is set: external etcd is not managed by rke-ts'
      : `give the etcd role to the nodes that run etcd`;
  throw new ClusterConfigError([`${config.file}: no node has the etcd role; nothing to snapshot (${why})`]);
}
