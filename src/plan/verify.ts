import type { ClusterConfig } from '../config/types.js';
import type { ContainerSpec } from './container.js';
import { OWNER_LABEL } from './container.js';
import { ETCDCTL, etcdImage } from './etcd.js';
import { SNAPSHOT_DIR } from './names.js';

export const VERIFY_STATUS_CONTAINER = 'etcd-snapshot-verify-status';
export const VERIFY_RESTORE_CONTAINER = 'etcd-snapshot-verify-restore';

/** Hidden name of the copy under test; user snapshot names may not start with ".". */
export function verifyCopyName(name: string, stamp: number): string {
  return `.rke-ts-verify-${stamp}-${name}`;
}

export interface VerifyContainers {
  status: ContainerSpec;
  restore: ContainerSpec;
}

/**
 * Two one-shot containers from the etcd image that only read the copy: `snapshot status`
 * (revision, keys) and `snapshot restore` into the container's own file system, which
 * checks the sha256 trailer and the database and disappears with the container. etcdctl
 * is called directly, so distroless images work.
 */
export function verifyContainers(config: ClusterConfig, copyName: string): VerifyContainers {
  const common = {
    image: etcdImage(config),
    entrypoint: [ETCDCTL],
    env: ['ETCDCTL_API=3'],
    binds: [`${SNAPSHOT_DIR}:/backup:ro`],
    networkMode: 'none' as const,
    labels: { [OWNER_LABEL]: 'snapshot-verify' },
  };
  return {
    status: { ...common, name: VERIFY_STATUS_CONTAINER, cmd: ['snapshot', 'status', `/backup/${copyName}`, '--write-out=json'] },
    restore: {
      ...common,
      name: VERIFY_RESTORE_CONTAINER,
      cmd: ['snapshot', 'restore', `/backup/${copyName}`, '--data-dir=/var/lib/rke-ts-verify/etcd', '--name=verify', '--initial-cluster=verify=http://127.0.0.1:2380', '--initial-advertise-peer-urls=http://127.0.0.1:2380'],
    },
  };
}

export interface SnapshotStatusReport {
  hash: number;
  revision: number;
  totalKey: number;
  totalSize: number;
}

/** Parses `etcdctl snapshot status --write-out=json` (the JSON line among possible log lines). */
export function parseSnapshotStatus(output: string): SnapshotStatusReport | undefined {
  for (const line of output.split('\n').reverse()) {
    const trimmed = line.trim();
    if (!trimmed.startsWith('{')) continue;
    try {
      const parsed = JSON.parse(trimmed) as Partial<SnapshotStatusReport>;
      if (typeof parsed.revision === 'number' && typeof parsed.totalKey === 'number') {
        return { hash: parsed.hash ?? 0, revision: parsed.revision, totalKey: parsed.totalKey, totalSize: parsed.totalSize ?? 0 };
      }
    } catch {
      // not the JSON line
    }
  }
  return undefined;
}
