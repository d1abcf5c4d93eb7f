import type { ClusterConfig, NodeConfig } from '../config/types.js';
import { etcdNodes } from '../config/types.js';
import type { ContainerSpec, ExecSpec } from './container.js';
import { OWNER_LABEL } from './container.js';
import { ETCDCTL, NODE_TLS, etcdImage, etcdctlEnv, hostPath } from './etcd.js';
import { SNAPSHOT_DIR } from './names.js';

export const SNAPSHOT_CONTAINER = 'etcd-snapshot-once';
export const CLEANUP_CONTAINER = 'etcd-snapshot-cleanup';
export const ETCD_CONTAINER = 'etcd';
/** Inside the snapshot container, /backup is the node's SNAPSHOT_DIR (as in rke-tools). */
const BACKUP_MOUNT = '/backup';

export interface NodeSavePlan {
  node: NodeConfig;
  /** Run in the node's running `etcd` container before the snapshot. */
  healthCheck: ExecSpec;
  snapshot: ContainerSpec;
  /** Removes etcdctl's `<name>.part` if the snapshot container had to be killed. */
  cleanup: ContainerSpec;
  /** Final path of the snapshot on the node. */
  snapshotPath: string;
}

export interface SavePlan {
  kind: 'snapshot-save';
  name: string;
  clusterName: string;
  /** Seconds to wait for each snapshot container (backup_config.timeout, RKE's default 300). */
  timeoutSeconds: number;
  nodes: NodeSavePlan[];
}

export interface SaveOptions {
  name: string;
  timeoutSeconds?: number;
}

export function planSave(config: ClusterConfig, options: SaveOptions): SavePlan {
  const timeoutSeconds = options.timeoutSeconds ?? (config.services.etcd.backupConfig?.timeout || 300);
  return {
    kind: 'snapshot-save',
    name: options.name,
    clusterName: config.clusterName,
    timeoutSeconds,
    nodes: etcdNodes(config).map((node) => planNodeSave(config, node, options.name)),
  };
}

function planNodeSave(config: ClusterConfig, node: NodeConfig, name: string): NodeSavePlan {
  const tlsEnv = etcdctlEnv(node, NODE_TLS);
  const binds = [
    `${SNAPSHOT_DIR}:${BACKUP_MOUNT}`,
    `${hostPath(config, '/etc/kubernetes')}:/etc/kubernetes`,
  ];
  const labels = { [OWNER_LABEL]: 'snapshot-save' };
  return {
    node,
    healthCheck: {
      container: ETCD_CONTAINER,
      cmd: [ETCDCTL, 'endpoint', 'health'],
      env: tlsEnv,
    },
    // etcdctl is called directly, without a shell, so distroless etcd images work. It writes
    // `<name>.part` and renames it when complete, so the final name never holds a partial file.
    snapshot: {
      name: SNAPSHOT_CONTAINER,
      image: etcdImage(config),
      entrypoint: [ETCDCTL],
      cmd: ['snapshot', 'save', `${BACKUP_MOUNT}/${name}`],
      // extra_env first so that our endpoint and TLS settings win over anything in it.
      env: [...config.services.etcd.extraEnv, ...tlsEnv],
      binds,
      networkMode: 'host',
      labels,
    },
    cleanup: {
      name: CLEANUP_CONTAINER,
      image: config.systemImages.alpine,
      entrypoint: ['rm'],
      cmd: ['-f', `${BACKUP_MOUNT}/${name}.part`],
      env: [],
      binds: [`${SNAPSHOT_DIR}:${BACKUP_MOUNT}`],
      networkMode: 'none',
      labels,
    },
    snapshotPath: `${SNAPSHOT_DIR}/${name}`,
  };
}
