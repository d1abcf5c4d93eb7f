import path from 'node:path/posix';
import type { ClusterConfig, NodeConfig } from '../config/types.js';

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

export function etcdctlTlsArgs(node: NodeConfig, tls: TlsFiles): string[] {
  return [
    `--endpoints=${clientEndpoint(node)}`,
    `--cacert=${tls.cacert}`,
    `--cert=${tls.cert}`,
    `--key=${tls.key}`,
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
