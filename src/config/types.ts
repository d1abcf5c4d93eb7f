/**
 * The normalized cluster configuration: cluster.yml after parsing, validation and RKE's
 * defaults. Everything downstream (planning, transport) reads only this shape.
 */

export const ROLES = ['etcd', 'controlplane', 'worker'] as const;
export type Role = (typeof ROLES)[number];

/** Where a value came from in cluster.yml, for one-line errors later in the run. */
export interface SourceLocation {
  file: string;
  line: number;
  column: number;
}

export interface SshCredentials {
  /** Inline private key (PEM text). Wins over sshKeyPath, as in RKE. */
  sshKey?: string;
  /** Path to the private key; `~/` is expanded at connect time, not here. */
  sshKeyPath: string;
  /** Inline SSH certificate. */
  sshCert?: string;
  sshCertPath?: string;
  /** Use SSH_AUTH_SOCK instead of keys (only when the variable is set). */
  sshAgentAuth: boolean;
}

export interface NodeConfig extends SshCredentials {
  /** Position in the `nodes:` list. */
  index: number;
  address: string;
  port: number;
  /** Defaults to address. */
  internalAddress: string;
  roles: Role[];
  /** Defaults to address, lower-cased (RKE). */
  hostnameOverride: string;
  user: string;
  /** Defaults to /var/run/docker.sock. */
  dockerSocket: string;
  labels: Record<string, string>;
  location?: SourceLocation;
}

export interface BastionConfig extends SshCredentials {
  address: string;
  port: number;
  user: string;
}

export interface S3BackupConfig {
  accessKey?: string;
  secretKey?: string;
  sessionToken?: string;
  bucketName: string;
  region?: string;
  /** Host, host:port or a URL; RKE passes a bare host. */
  endpoint: string;
  /** PEM text, base64 PEM or a file path. */
  customCa?: string;
  folder?: string;
}

export interface BackupConfig {
  enabled: boolean;
  intervalHours: number;
  /** A count of snapshots (RKE backup_config semantics). */
  retention: number;
  safeTimestamp: boolean;
  /** Seconds to wait for a snapshot or restore container. */
  timeout: number;
  s3?: S3BackupConfig;
}

export interface EtcdServiceConfig {
  image?: string;
  extraArgs: Record<string, string>;
  extraEnv: string[];
  extraBinds: string[];
  externalUrls: string[];
  path?: string;
  uid?: number;
  gid?: number;
  /** Legacy recurring-snapshot switch (services.etcd.snapshot), default true. */
  snapshot: boolean;
  /** Legacy interval, a Go duration such as "12h" or "5m0s". */
  creation: string;
  /** Legacy retention, a Go duration such as "72h". */
  retention: string;
  backupConfig?: BackupConfig;
}

export interface RegistryConfig {
  url: string;
  user?: string;
  password?: string;
  isDefault: boolean;
}

export interface SystemImages {
  etcd: string;
  /** RKE's backup image (rke-tools); used here for helper containers that need a shell. */
  alpine: string;
  certDownloader?: string;
}

export interface ClusterConfig {
  /** The cluster.yml path as the operator gave it (used verbatim in messages). */
  file: string;
  clusterName: string;
  kubernetesVersion?: string;
  /** Defaults to "/". */
  prefixPath: string;
  sshKeyPath: string;
  sshAgentAuth: boolean;
  ignoreDockerVersion: boolean;
  bastionHost?: BastionConfig;
  nodes: NodeConfig[];
  privateRegistries: RegistryConfig[];
  systemImages: SystemImages;
  services: { etcd: EtcdServiceConfig };
}

export const DEFAULTS = {
  clusterName: 'local',
  prefixPath: '/',
  sshPort: 22,
  sshKeyPath: '~/.ssh/id_rsa',
  dockerSocket: '/var/run/docker.sock',
  etcdImage: 'rancher/mirrored-coreos-etcd:v3.5.16',
  alpineImage: 'rancher/rke-tools:v0.1.105',
  etcdExtraArgs: { 'election-timeout': '5000', 'heartbeat-interval': '500' },
  legacySnapshot: true,
  legacyCreation: '12h',
  legacyRetention: '72h',
  backupIntervalHours: 12,
  backupRetention: 6,
  backupTimeout: 300,
  s3Endpoint: 's3.amazonaws.com',
} as const;

export function etcdNodes(config: ClusterConfig): NodeConfig[] {
  return config.nodes.filter((node) => node.roles.includes('etcd'));
}
