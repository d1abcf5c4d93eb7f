/**
 * A one-shot container as the planner describes it: everything Docker needs to create it,
 * nothing about how it is run. Adapters translate it to the Docker API.
 */
export interface ContainerSpec {
  name: string;
  image: string;
  entrypoint: string[];
  cmd: string[];
  env: string[];
  binds: string[];
  networkMode: 'host' | 'bridge' | 'none';
  privileged?: boolean;
  user?: string;
  /** Long-running containers (etcd itself) restart with the daemon; one-shots never do. */
  restartPolicy?: 'no' | 'always' | 'on-failure' | 'unless-stopped';
  labels?: Record<string, string>;
}

/** A command run inside an already running container (docker exec). */
export interface ExecSpec {
  container: string;
  cmd: string[];
  env: string[];
}

/** Label put on every container rke-ts creates, so leftovers can be found and removed. */
export const OWNER_LABEL = 'io.rke-ts.owner';

/** Renders a spec as the equivalent `docker run` line, for --dry-run and errors. */
export function describeContainer(spec: ContainerSpec): string {
  const parts = ['docker run', `--name ${spec.name}`, `--net=${spec.networkMode}`];
  for (const bind of spec.binds) parts.push(`-v ${bind}`);
  // extra_env may hold secrets: only etcdctl's own settings are shown with their values.
  for (const env of spec.env) parts.push(`-e ${env.startsWith('ETCDCTL_') ? env : env.replace(/=.*/s, '=…')}`);
  if (spec.entrypoint.length > 0) parts.push(`--entrypoint ${spec.entrypoint.join(' ')}`);
  parts.push(spec.image, ...spec.cmd);
  return parts.join(' ');
}
