import type { ClusterConfig } from '../config/types.js';
import { describeContainer } from '../plan/container.js';
import type { SavePlan } from '../plan/save.js';
import { type S3Settings, describeS3Settings, objectKeyFor } from '../storage/index.js';

/** Human-readable --dry-run output. Shows where and what would run, never credentials. */
export function renderSavePlan(plan: SavePlan, config: ClusterConfig, s3?: S3Settings): string {
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
  if (s3) {
    const description = describeS3Settings(s3);
    lines.push(
      `  then upload from the first host that succeeded to s3://${s3.bucket}/${objectKeyFor(s3, plan.name)}`,
      `    s3: ${Object.entries(description).filter(([, value]) => value !== undefined && value !== '').map(([key, value]) => `${key}=${String(value)}`).join(' ')}`,
    );
  }
  return `${lines.join('\n')}\n`;
}
