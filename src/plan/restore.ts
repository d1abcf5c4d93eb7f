/**
 * The restore plan, pure: what runs where, in which order. RKE's restore (cmd/etcd.go) with
 * its known failures designed out: every etcd node or none (#2424), one verified copy on every
 * node before anything is stopped (#768, #2408), certificates checked first (#1928), etcdctl
 * called without a shell (distroless images), the old data kept instead of wiped, and the
 * restored data built next to it while etcd still runs, so the switch-over is stop, rename,
 * start.
 */
import path from 'node:path';
import type { ClusterConfig, NodeConfig } from '../config/types.js';
import { etcdNodes } from '../config/types.js';
import type { ContainerSpec, ExecSpec } from './container.js';
import { OWNER_LABEL } from './container.js';
import {
  ETCDCTL,
  ETCD_CLUSTER_TOKEN,
  type TlsFiles,
  etcdCertFiles,
  etcdContainerSpec,
  etcdImage,
  etcdMemberName,
  etcdctlEnv,
  hostPath,
  initialCluster,
  peerUrl,
} from './etcd.js';
import { objectKeyFor } from '../storage/keys.js';
import { SNAPSHOT_DIR } from './names.js';

export const RESTORE_CONTAINER = 'etcd-restore';
export const DATA_SWAP_CONTAINER = 'etcd-restore-data-swap';
export const WORK_CLEANUP_CONTAINER = 'etcd-restore-cleanup';
export const ETCD_CONTAINER = 'etcd';
/** RKE's recurring snapshot container; `rke up` recreates it. */
export const ROLLING_SNAPSHOT_CONTAINER = 'etcd-rolling-snapshots';
/** What the RKE docs tell operators to restart after a restore (`docker restart ...`). */
export const KUBE_COMPONENT_CONTAINERS = ['kube-apiserver', 'kubelet', 'kube-controller-manager', 'kube-scheduler', 'kube-proxy'] as const;
/** `docker ps | grep flannel|calico` in the RKE docs; canal is flannel + calico. */
export const NETWORK_CONTAINER_PATTERNS = ['flannel', 'calico', 'canal'] as const;

/** The etcd data directory as the etcd and etcd-restore containers see it (RKE's bind). */
const DATA_MOUNT = '/var/lib/rancher/etcd';
/** `<prefix>/var/lib` in the swap container: the data directory and its siblings. */
const PARENT_MOUNT = '/rke-ts/var-lib';
const LABELS = { [OWNER_LABEL]: 'snapshot-restore' };

export interface NodeRestorePlan {
  node: NodeConfig;
  memberName: string;
  peerUrl: string;
  /** TLS files etcd uses, as paths inside its container (/etc/kubernetes/ssl/...). */
  certFiles: TlsFiles;
  /** Host directory mounted at /etc/kubernetes (prefix_path applied). */
  kubernetesDir: string;
  /** `<prefix>/var/lib/etcd` on the node. */
  dataDir: string;
  /** Where the old data goes: the whole directory is renamed to this... */
  oldDataDir: string;
  /** ...unless the data directory is a mount point, which cannot be renamed: then its `member/` moves here. */
  oldDataDirOnMount: string;
  /** Restored data is built here first, on the data directory's own file system, so the swap is a rename. */
  workDir: string;
  restore: ContainerSpec;
  swap: ContainerSpec;
  cleanup: ContainerSpec;
  etcd: ContainerSpec;
  healthCheck: ExecSpec;
}

export interface S3Location {
  bucket: string;
  /** Object keys tried in order: `[folder/]<name>`, `[folder/]<name>.zip`. */
  keys: string[];
  endpoint: string;
}

export interface RestorePlan {
  kind: 'snapshot-restore';
  name: string;
  clusterName: string;
  /** Unix seconds of the run; names the old-data and work directories. */
  stamp: number;
  /** backup_config.timeout (RKE's default 300): per restore container and for the health wait. */
  timeoutSeconds: number;
  initialCluster: string;
  s3?: S3Location;
  /** Files looked for on every etcd node, in order of preference. */
  localFiles: string[];
  nodes: NodeRestorePlan[];
  /** Undefined with --use-local-state. */
  stateFile?: { path: string; backupPath: string };
  /** With --restart-kube-components. */
  kubeRestart?: { nodes: NodeConfig[]; containers: readonly string[]; networkPatterns: readonly string[] };
}

export interface RestoreOptions {
  /** Without `.zip` (see snapshotNameForRestore). */
  name: string;
  now: Date;
  s3?: { bucket: string; folder: string; endpoint: string };
  restartKubeComponents?: boolean;
  useLocalState?: boolean;
  timeoutSeconds?: number;
}

export function planRestore(config: ClusterConfig, options: RestoreOptions): RestorePlan {
  const members = etcdNodes(config);
  const stamp = Math.floor(options.now.getTime() / 1000);
  const timeoutSeconds = options.timeoutSeconds ?? (config.services.etcd.backupConfig?.timeout || 300);
  const key = objectKeyFor({ folder: options.s3?.folder ?? '' }, options.name);
  return {
    kind: 'snapshot-restore',
    name: options.name,
    clusterName: config.clusterName,
    stamp,
    timeoutSeconds,
    initialCluster: initialCluster(members),
    ...(options.s3 ? { s3: { bucket: options.s3.bucket, keys: [key, `${key}.zip`], endpoint: options.s3.endpoint } } : {}),
    localFiles: [options.name, `${options.name}.zip`],
    nodes: members.map((node) => planNodeRestore(config, node, members, options.name, stamp)),
    ...(options.useLocalState ? {} : { stateFile: stateFilePaths(config.file, stamp) }),
    ...(options.restartKubeComponents
      ? { kubeRestart: { nodes: config.nodes, containers: KUBE_COMPONENT_CONTAINERS, networkPatterns: NETWORK_CONTAINER_PATTERNS } }
      : {}),
  };
}

/**
 * Moves the old data aside and the restored data in; prints `old-data moved|mount|none`.
 * A mount point (a dedicated etcd disk) cannot be renamed, so there the old `member/` stays on
 * the same mount. Stale work directories of interrupted runs go too.
 */
const SWAP_SCRIPT = `set -eu
parent=${PARENT_MOUNT}; data=$parent/etcd; old=$1; work=$2; owner=$3
restored=$data/$work/member
[ -d "$restored" ] || { echo "restored data $restored is missing" >&2; exit 3; }
if [ ! -d "$data/member" ]; then
  echo "old-data none"
elif grep -q " $data " /proc/self/mountinfo; then
  mkdir "$data/$old"
  mv "$data/member" "$data/$old/member"
  echo "old-data mount"
else
  mv "$data" "$parent/$old"
  mkdir -m 700 "$data"
  restored=$parent/$old/$work/member
  echo "old-data moved"
fi
mv "$restored" "$data/member"
rm -rf "$parent/$old/$work" "$data"/etcd-restore-*
[ -z "$owner" ] || chown -R "$owner" "$data"
chmod 700 "$data"
# The renames must be on disk before etcd starts: the directories that changed, not every
# dirty page on the host (a plain sync would also wait for the snapshot copies just written).
set -- "$parent" "$data" "$data/member"
for dir in "$parent/$old" "$data/$old"; do [ ! -d "$dir" ] || set -- "$@" "$dir"; done
sync "$@" 2>/dev/null || sync`;

function planNodeRestore(config: ClusterConfig, node: NodeConfig, members: NodeConfig[], name: string, stamp: number): NodeRestorePlan {
  const dataDir = hostPath(config, '/var/lib/etcd');
  const oldName = `etcd-old-${stamp}`;
  const workName = `etcd-restore-${stamp}`;
  const etcd = config.services.etcd;
  const owner = etcd.uid !== undefined ? `${etcd.uid}:${etcd.gid ?? etcd.uid}` : '';
  const etcdSpec = etcdContainerSpec(config, node, members, 'new');
  return {
    node,
    memberName: etcdMemberName(node),
    peerUrl: peerUrl(node),
    certFiles: etcdCertFiles(node),
    kubernetesDir: hostPath(config, '/etc/kubernetes'),
    dataDir,
    oldDataDir: hostPath(config, `/var/lib/${oldName}`),
    oldDataDirOnMount: `${dataDir}/${oldName}`,
    workDir: `${dataDir}/${workName}`,
    // etcdctl is called directly (no shell: distroless etcd images work). It checks the
    // snapshot's sha256 trailer and writes a complete member directory, and it runs while
    // etcd is still up: nothing is touched until every node has its restored data ready.
    restore: {
      name: RESTORE_CONTAINER,
      image: etcdImage(config),
      entrypoint: [ETCDCTL],
      cmd: [
        'snapshot',
        'restore',
        `${SNAPSHOT_DIR}/${name}`,
        `--data-dir=${DATA_MOUNT}/${workName}`,
        `--name=${etcdMemberName(node)}`,
        `--initial-cluster=${initialCluster(members)}`,
        `--initial-cluster-token=${ETCD_CLUSTER_TOKEN}`,
        `--initial-advertise-peer-urls=${peerUrl(node)}`,
      ],
      env: ['ETCDCTL_API=3'],
      binds: [`${SNAPSHOT_DIR}:${SNAPSHOT_DIR}:ro`, `${dataDir}:${DATA_MOUNT}`],
      networkMode: 'none',
      labels: LABELS,
    },
    swap: {
      name: DATA_SWAP_CONTAINER,
      image: config.systemImages.alpine,
      entrypoint: ['sh', '-c'],
      cmd: [SWAP_SCRIPT, 'sh', oldName, workName, owner],
      env: [],
      binds: [`${hostPath(config, '/var/lib')}:${PARENT_MOUNT}`],
      networkMode: 'none',
      labels: LABELS,
    },
    cleanup: {
      name: WORK_CLEANUP_CONTAINER,
      image: config.systemImages.alpine,
      entrypoint: ['rm'],
      cmd: ['-rf', '--', `${DATA_MOUNT}/${workName}`],
      env: [],
      binds: [`${dataDir}:${DATA_MOUNT}`],
      networkMode: 'none',
      labels: LABELS,
    },
    etcd: { ...etcdSpec, labels: { ...etcdSpec.labels, ...LABELS } },
    healthCheck: { container: ETCD_CONTAINER, cmd: [ETCDCTL, 'endpoint', 'health'], env: etcdctlEnv(node, etcdCertFiles(node)) },
  };
}

/** RKE: the state file is the cluster file with its extension swapped for `.rkestate`. */
export function stateFilePaths(configFile: string, stamp: number): { path: string; backupPath: string } {
  const file = path.join(path.dirname(configFile), `${path.basename(configFile, path.extname(configFile))}.rkestate`);
  return { path: file, backupPath: `${file}.${stamp}.bak` };
}

/** Where the snapshot comes from, once the nodes and S3 have been looked at. */
export type SnapshotSource =
  | { kind: 's3'; key: string; zip: boolean }
  | { kind: 'node'; node: NodeConfig; file: string; size: number; zip: boolean };

export interface SnapshotFacts {
  /** Present when S3 is configured: the key found, or why the lookup failed. */
  s3?: { key?: string; problem?: string };
  /** Files in /opt/rke/etcd-snapshots of every etcd node, in plan order. */
  nodes: Array<{ node: NodeConfig; files: Array<{ name: string; size: number }> }>;
}

export interface SourceChoice {
  source?: SnapshotSource;
  /** Why S3 was not used although configured (logged as a warning). */
  fallback?: string;
}

/**
 * S3 first when configured (RKE), else the first etcd node, in cluster.yml order, holding the
 * plain snapshot, else one holding `<name>.zip`. An S3 miss or failure falls back to the nodes
 * (RKE #2033, #2209).
 */
export function chooseSnapshotSource(plan: Pick<RestorePlan, 'name' | 's3'>, facts: SnapshotFacts): SourceChoice {
  if (facts.s3?.key) return { source: { kind: 's3', key: facts.s3.key, zip: facts.s3.key.endsWith('.zip') } };
  for (const file of [plan.name, `${plan.name}.zip`]) {
    const holder = facts.nodes.find((entry) => entry.files.some((candidate) => candidate.name === file));
    if (holder) {
      const size = holder.files.find((candidate) => candidate.name === file)!.size;
      const source: SnapshotSource = { kind: 'node', node: holder.node, file, size, zip: file.endsWith('.zip') };
      if (!facts.s3) return { source };
      const why = facts.s3.problem ?? `it is not in s3://${plan.s3?.bucket ?? ''}/${plan.s3?.keys[0] ?? ''}[.zip]`;
      return { source, fallback: `snapshot [${plan.name}] is not taken from S3 (${why}); using ${SNAPSHOT_DIR}/${file} on host [${holder.node.address}]` };
    }
  }
  return {};
}

/** Snapshot names listed on nodes or in S3, `.zip` stripped, nearest to `name` first. */
export function nearestSnapshotNames(name: string, candidates: Iterable<string>, limit = 5): string[] {
  const unique = new Set<string>();
  for (const candidate of candidates) {
    if (candidate.startsWith('.')) continue; // our incoming files and other hidden files
    unique.add(candidate.endsWith('.zip') ? candidate.slice(0, -4) : candidate);
  }
  const score = (candidate: string) => editDistance(name, candidate) - (candidate.includes(name) || name.includes(candidate) ? name.length / 2 : 0);
  return [...unique]
    .map((candidate) => ({ candidate, score: score(candidate) }))
    .sort((a, b) => a.score - b.score || a.candidate.localeCompare(b.candidate))
    .slice(0, limit)
    .map((entry) => entry.candidate);
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}
