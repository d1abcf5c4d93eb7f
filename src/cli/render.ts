import type { ClusterConfig } from '../config/types.js';
import { describeContainer } from '../plan/container.js';
import { SNAPSHOT_DIR } from '../plan/names.js';
import { type RetentionPolicy, describePolicy } from '../plan/retention.js';
import type { SavePlan } from '../plan/save.js';
import { type S3Settings, describeS3Settings, objectKeyFor } from '../storage/index.js';

/** Human-readable --dry-run output. Shows where and what would run, never credentials. */
export interface SaveExtras {
  /** --compress: each host's snapshot becomes `<name>.zip`. */
  compress?: boolean;
  /** --retention/--max-age: the prune that follows a fully successful save. */
  retention?: RetentionPolicy;
}

export function renderSavePlan(plan: SavePlan, config: ClusterConfig, s3?: S3Settings, extras: SaveExtras = {}): string {
  const lines = [
    `Plan: save etcd snapshot [${plan.name}] of cluster [${plan.clusterName}] on ${plan.nodes.length} etcd host(s), in parallel`,
    `  wait per host: ${plan.timeoutSeconds}s`,
  ];
  if (config.bastionHost) lines.push(`  via bastion: ${config.bastionHost.user}@${config.bastionHost.address}:${config.bastionHost.port}`);
  for (const nodePlan of plan.nodes) {
    const node = nodePlan.node;
    lines.push(
      `  host [${node.address}] (internal ${node.internalAddress}, ssh ${node.user}@${node.address}:${node.port}, docker ${node.dockerSocket})`,
      `    1. check:    docker exec ${nodePlan.healthCheck.env.map((env) => `-e ${env} `).join('')}${nodePlan.healthCheck.container} ${nodePlan.healthCheck.cmd.join(' ')}`,
      `    2. snapshot: ${describeContainer(nodePlan.snapshot)}`,
      `    3. result:   ${nodePlan.snapshotPath}`,
    );
  }
  const fileName = extras.compress ? `${plan.name}.zip` : plan.name;
  if (extras.compress) {
    lines.push(`  then on each host: zip ${SNAPSHOT_DIR}/${plan.name} and the local cluster state file (if any) into ${SNAPSHOT_DIR}/${fileName}, RKE's layout, replacing ${plan.name}`);
  }
  if (s3) {
    const description = describeS3Settings(s3);
    lines.push(
      `  then upload from the first host that succeeded to s3://${s3.bucket}/${objectKeyFor(s3, fileName)}`,
      `    s3: ${Object.entries(description).filter(([, value]) => value !== undefined && value !== '').map(([key, value]) => `${key}=${String(value)}`).join(' ')}`,
    );
  }
  if (extras.retention) {
    lines.push(`  then, only if every host succeeded: prune snapshots by ${describePolicy(extras.retention)} on every etcd host${s3 ? ' and in S3' : ''}`);
  }
  return `${lines.join('\n')}\n`;
}

/** --dry-run of snapshot-restore: every step, host by host, in the order it would run. */
export function renderRestorePlan(
  plan: import('../plan/restore.js').RestorePlan,
  config: ClusterConfig,
  s3?: S3Settings,
): string {
  const local = `the first etcd host (in cluster.yml order) holding /opt/rke/etcd-snapshots/${plan.localFiles.join(', else ')}`;
  const lines = [
    `Plan: restore etcd snapshot [${plan.name}] of cluster [${plan.clusterName}] on ${plan.nodes.length} etcd host(s)`,
    plan.s3
      ? `  source: s3://${plan.s3.bucket}/${plan.s3.keys.join(' or ')}; if it is not there, ${local}`
      : `  source: ${local}`,
    '    (zips are unpacked while they stream: RKE layout /backup/<name> + /etc/kubernetes/<name>.rkestate, or k3s layout <name>)',
    `  etcd members: ${plan.initialCluster}`,
    `  wait per restore container and for etcd health: ${plan.timeoutSeconds}s`,
  ];
  if (s3) {
    const description = describeS3Settings(s3);
    lines.push(`  s3: ${Object.entries(description).filter(([, value]) => value !== undefined && value !== '').map(([key, value]) => `${key}=${String(value)}`).join(' ')}`);
  }
  if (config.bastionHost) lines.push(`  via bastion: ${config.bastionHost.user}@${config.bastionHost.address}:${config.bastionHost.port}`);
  lines.push(
    '  Before anything is stopped (etcd keeps running; a refusal here changes nothing):',
    '    1. connect to every etcd host: all must be reachable',
    '    2. check kube-ca.pem and each host\'s kube-etcd certificate and key: present, unexpired, signed by kube-ca, matching, covering the internal address',
    '    3. stream the snapshot to every etcd host without an identical copy (sha256 trailer checked on the way), then compare sha256 on every host',
    '    4. build the restored data on every host with etcdctl snapshot restore (checks the snapshot hash again)',
    plan.stateFile
      ? `    5. write the state file from the zip, if it has one, to ${plan.stateFile.path} (previous one kept as ${plan.stateFile.backupPath})`
      : '    5. keep the local state file (--use-local-state)',
    '  Then on all etcd hosts in parallel, one step at a time:',
    '    6. stop etcd (container kept until the data is swapped) and remove etcd-rolling-snapshots',
    '    7. move the old data directory aside and the restored data in (renames only)',
    '    8. start etcd exactly as RKE runs it',
    '    9. wait until every member is healthy and the member list is the one above',
    plan.kubeRestart
      ? `   10. restart ${plan.kubeRestart.containers.join(', ')} and containers named *${plan.kubeRestart.networkPatterns.join('*, *')}* on every node: ${plan.kubeRestart.nodes.map((node) => node.address).join(', ')}`
      : '   10. print the commands that restart the Kubernetes components (or use --restart-kube-components)',
  );
  for (const nodePlan of plan.nodes) {
    const node = nodePlan.node;
    lines.push(
      `  host [${node.address}] (internal ${node.internalAddress}, member ${nodePlan.memberName}, ssh ${node.user}@${node.address}:${node.port}, docker ${node.dockerSocket})`,
      `    certificates: ${[nodePlan.certFiles.cacert, nodePlan.certFiles.cert, nodePlan.certFiles.key].map((file) => file.replace(/^\/etc\/kubernetes/, nodePlan.kubernetesDir.replace(/\/$/, ''))).join(', ')}`,
      `    4. restore:  ${describeContainer(nodePlan.restore)}`,
      `    7. swap:     ${nodePlan.dataDir} → ${nodePlan.oldDataDir} (if ${nodePlan.dataDir} is a mount point: its member/ → ${nodePlan.oldDataDirOnMount}/member), then ${nodePlan.workDir}/member → ${nodePlan.dataDir}/member, in a ${nodePlan.swap.image} container (${nodePlan.swap.name})`,
      `    8. etcd:     ${describeContainer(nodePlan.etcd)}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/** What a finished restore did, and what the operator has to do next (RKE docs). */
export function renderRestoreOutcome(
  plan: import('../plan/restore.js').RestorePlan,
  outcome: import('../run/restore.js').RestoreOutcome,
  config: ClusterConfig,
): string {
  const lines = [`Restored etcd snapshot [${plan.name}] from ${outcome.source} on ${outcome.nodes.length} etcd host(s):`];
  for (const node of outcome.nodes) lines.push(`  host [${node.address}]: ${node.oldData ? `old data kept in ${node.oldData}` : 'had no old data'}`);
  if (outcome.stateFile) {
    lines.push(
      outcome.stateFile.written
        ? `State file ${outcome.stateFile.path} written from the snapshot${outcome.stateFile.backupPath ? ` (previous one kept as ${outcome.stateFile.backupPath})` : ''}`
        : `State file ${outcome.stateFile.path} already matched the snapshot`,
    );
  }
  if (outcome.restarted) {
    for (const entry of outcome.restarted) lines.push(`Restarted on host [${entry.address}]: ${entry.containers.join(', ') || 'nothing to restart'}`);
  } else {
    lines.push(
      'Next: restart the Kubernetes components on every node, or their resource versions conflict with the restored etcd',
      '(or run the restore with --restart-kube-components). On each node:',
      '  docker restart kube-apiserver kubelet kube-controller-manager kube-scheduler kube-proxy',
      '  docker ps | grep flannel | cut -f 1 -d " " | xargs docker restart',
      '  docker ps | grep calico | cut -f 1 -d " " | xargs docker restart',
    );
  }
  const rolling = outcome.nodes.filter((node) => node.removedRollingSnapshots).map((node) => node.address);
  if (rolling.length > 0) lines.push(`Recurring snapshots (etcd-rolling-snapshots) were stopped on host(s) [${rolling.join(', ')}]; \`rke up\` starts them again.`);
  lines.push(`If the etcd hosts changed, run \`rke up --config ${config.file}\` so that the API server uses the new etcd members.`);
  return `${lines.join('\n')}\n`;
}
