import path from 'node:path/posix';
import type { ClusterConfig, NodeConfig } from '../config/types.js';
import type { NodeFileImages } from '../node/files.js';

/** RKE's TLS file layout on every node (pki/ in RKE). */
export const SSL_DIR = '/etc/kubernetes/ssl';
export const CA_CERT = `${SSL_DIR}/kube-ca.pem`;
export const NODE_CERT = `${SSL_DIR}/kube-node.pem`;
export const NODE_KEY = `${SSL_DIR}/kube-node-key.pem`;
export const ETCDCTL = '/usr/local/bin/etcdctl';

export interface TlsFiles {
  cacert: string;
  cert: string;
  key: string;
}

/** `kube-etcd-10-0-0-1.pem`: RKE names etcd certificates after the node's internal address. */
export function etcdCertFiles(node: NodeConfig): TlsFiles {
  const dashed = node.internalAddress.replace(/[.:]/g, '-');
  return {
    cacert: CA_CERT,
    cert: `${SSL_DIR}/kube-etcd-${dashed}.pem`,
    key: `${SSL_DIR}/kube-etcd-${dashed}-key.pem`,
  };
}

/** The kube-node client certificate, which rke-tools uses for snapshots. */
export const NODE_TLS: TlsFiles = { cacert: CA_CERT, cert: NODE_CERT, key: NODE_KEY };

/** etcd listens on the internal address, not necessarily on localhost (RKE #619). */
export function clientEndpoint(node: NodeConfig): string {
  return `https://${hostForUrl(node.internalAddress)}:2379`;
}

export function peerUrl(node: NodeConfig): string {
  return `https://${hostForUrl(node.internalAddress)}:2380`;
}

function hostForUrl(address: string): string {
  return address.includes(':') ? `[${address}]` : address;
}

/**
 * etcdctl's endpoint and TLS settings as ETCDCTL_* variables rather than flags: RKE's etcd
 * container already sets ETCDCTL_* in its environment, and etcdctl refuses to run when a
 * flag shadows a set variable, so `docker exec etcd etcdctl --cert=...` would fail there.
 */
export function etcdctlEnv(node: NodeConfig, tls: TlsFiles): string[] {
  return [
    'ETCDCTL_API=3',
    `ETCDCTL_ENDPOINTS=${clientEndpoint(node)}`,
    `ETCDCTL_CACERT=${tls.cacert}`,
    `ETCDCTL_CERT=${tls.cert}`,
    `ETCDCTL_KEY=${tls.key}`,
  ];
}

/** `<prefix_path>/etc/kubernetes`, the host side of RKE's /etc/kubernetes bind. */
export function hostPath(config: ClusterConfig, pathOnNode: string): string {
  return path.join(config.prefixPath || '/', pathOnNode);
}

/** The etcd image: system_images.etcd wins over services.etcd.image, as in RKE. */
export function etcdImage(config: ClusterConfig): string {
  return config.systemImages.etcd || config.services.etcd.image || '';
}

/** The images the snapshot-file helpers run on a node: the etcd image carries, alpine works. */
export function nodeImages(config: ClusterConfig): NodeFileImages {
  return { carrier: etcdImage(config), tools: config.systemImages.alpine };
}

export const ETCD_DATA_DIR_IN_CONTAINER = '/var/lib/rancher/etcd/';
export const ETCD_CLUSTER_TOKEN = 'etcd-cluster-1';

export function etcdMemberName(node: NodeConfig): string {
  return `etcd-${node.hostnameOverride}`;
}

/** `etcd-<h1>=https://<ip1>:2380,...` for every etcd node, in cluster.yml order. */
export function initialCluster(members: NodeConfig[]): string {
  return members.map((member) => `${etcdMemberName(member)}=${peerUrl(member)}`).join(',');
}

/** The `etcd` container exactly as RKE runs it (services/etcd.go), for restore and rebuild. */
export function etcdContainerSpec(
  config: ClusterConfig,
  node: NodeConfig,
  members: NodeConfig[],
  clusterState: 'new' | 'existing' = 'new',
): import('./container.js').ContainerSpec {
  const etcd = config.services.etcd;
  const tls = etcdCertFiles(node);
  const flags: Record<string, string | undefined> = {
    'peer-client-cert-auth': undefined,
    'client-cert-auth': undefined,
    'data-dir': ETCD_DATA_DIR_IN_CONTAINER,
    name: etcdMemberName(node),
    'initial-cluster': initialCluster(members),
    'initial-cluster-state': clusterState,
    'initial-cluster-token': ETCD_CLUSTER_TOKEN,
    'listen-client-urls': 'https://0.0.0.0:2379',
    'advertise-client-urls': clientEndpoint(node),
    'listen-peer-urls': 'https://0.0.0.0:2380',
    'initial-advertise-peer-urls': peerUrl(node),
    'trusted-ca-file': tls.cacert,
    'cert-file': tls.cert,
    'key-file': tls.key,
    'peer-trusted-ca-file': tls.cacert,
    'peer-cert-file': tls.cert,
    'peer-key-file': tls.key,
    ...etcd.extraArgs,
  };
  const cmd = Object.entries(flags).map(([flag, value]) => (value === undefined ? `--${flag}` : `--${flag}=${value}`));
  return {
    name: 'etcd',
    image: etcdImage(config),
    entrypoint: ['/usr/local/bin/etcd'],
    cmd,
    env: [
      'ETCDCTL_API=3',
      `ETCDCTL_CACERT=${tls.cacert}`,
      `ETCDCTL_CERT=${tls.cert}`,
      `ETCDCTL_KEY=${tls.key}`,
      'ETCDCTL_ENDPOINTS=https://127.0.0.1:2379',
      ...etcd.extraEnv,
    ],
    binds: [
      `${hostPath(config, '/var/lib/etcd')}:/var/lib/rancher/etcd:z`,
      `${hostPath(config, '/etc/kubernetes')}:/etc/kubernetes:z`,
      ...etcd.extraBinds,
    ],
    networkMode: 'host',
    restartPolicy: 'always',
    ...(etcd.uid !== undefined ? { user: `${etcd.uid}:${etcd.gid ?? etcd.uid}` } : {}),
    labels: { 'io.rancher.rke.container.name': 'etcd' },
  };
}
