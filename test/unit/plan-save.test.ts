import { describe, expect, it } from 'vitest';
import { parseClusterConfig } from '../../src/config/index.js';
import { etcdContainerSpec } from '../../src/plan/etcd.js';
import { planSave } from '../../src/plan/save.js';

const yml = `
nodes:
  - address: 1.2.3.4
    internal_address: 10.0.0.1
    hostname_override: Node-A
    user: rancher
    role: [controlplane, etcd]
  - address: 1.2.3.5
    user: rancher
    role: [etcd]
  - address: 1.2.3.6
    user: rancher
    role: [worker]
prefix_path: /opt/custom
system_images:
  etcd: rancher/mirrored-coreos-etcd:v3.5.16
  alpine: rancher/rke-tools:v0.1.105
services:
  etcd:
    extra_env: [GODEBUG=x509sha1=1]
    extra_args:
      election-timeout: 6000
    backup_config:
      timeout: 900
`;

describe('planSave', () => {
  const config = parseClusterConfig(yml, 'cluster.yml');
  const plan = planSave(config, { name: 'snap1' });

  it('targets every etcd node and nothing else', () => {
    expect(plan.nodes.map((nodePlan) => nodePlan.node.address)).toEqual(['1.2.3.4', '1.2.3.5']);
  });

  it('takes the wait from backup_config.timeout', () => {
    expect(plan.timeoutSeconds).toBe(900);
    expect(planSave(parseClusterConfig('nodes: [{address: a, user: u, role: [etcd]}]', 'c.yml'), { name: 'x' }).timeoutSeconds).toBe(300);
  });

  it('runs etcdctl directly (no shell) against the internal address with the kube-node certificate', () => {
    const snapshot = plan.nodes[0]!.snapshot;
    expect(snapshot).toMatchObject({
      name: 'etcd-snapshot-once',
      image: 'rancher/mirrored-coreos-etcd:v3.5.16',
      entrypoint: ['/usr/local/bin/etcdctl'],
      networkMode: 'host',
      binds: ['/opt/rke/etcd-snapshots:/backup', '/opt/custom/etc/kubernetes:/etc/kubernetes'],
      env: [
        'GODEBUG=x509sha1=1',
        'ETCDCTL_API=3',
        'ETCDCTL_ENDPOINTS=https://10.0.0.1:2379',
        'ETCDCTL_CACERT=/etc/kubernetes/ssl/kube-ca.pem',
        'ETCDCTL_CERT=/etc/kubernetes/ssl/kube-node.pem',
        'ETCDCTL_KEY=/etc/kubernetes/ssl/kube-node-key.pem',
      ],
    });
    expect(snapshot.cmd).toEqual(['snapshot', 'save', '/backup/snap1']);
    expect(plan.nodes[1]!.snapshot.env).toContain('ETCDCTL_ENDPOINTS=https://1.2.3.5:2379');
    expect(plan.nodes[0]!.snapshotPath).toBe('/opt/rke/etcd-snapshots/snap1');
  });

  it('checks health inside the running etcd container and cleans up a killed snapshot with the tools image', () => {
    expect(plan.nodes[0]!.healthCheck.container).toBe('etcd');
    expect(plan.nodes[0]!.healthCheck.cmd).toEqual(['/usr/local/bin/etcdctl', 'endpoint', 'health']);
    expect(plan.nodes[0]!.healthCheck.env).toContain('ETCDCTL_ENDPOINTS=https://10.0.0.1:2379');
    expect(plan.nodes[0]!.cleanup).toMatchObject({ image: 'rancher/rke-tools:v0.1.105', entrypoint: ['rm'], cmd: ['-f', '/backup/snap1.part'] });
  });
});

describe('etcdContainerSpec', () => {
  const config = parseClusterConfig(yml, 'cluster.yml');
  const members = config.nodes.filter((node) => node.roles.includes('etcd'));
  const spec = etcdContainerSpec(config, members[0]!, members);

  it('names members after hostname_override (lower-cased) and uses internal addresses', () => {
    expect(spec.cmd).toContain('--name=etcd-node-a');
    expect(spec.cmd).toContain('--initial-cluster=etcd-node-a=https://10.0.0.1:2380,etcd-1.2.3.5=https://1.2.3.5:2380');
    expect(spec.cmd).toContain('--advertise-client-urls=https://10.0.0.1:2379');
    expect(spec.cmd).toContain('--cert-file=/etc/kubernetes/ssl/kube-etcd-10-0-0-1.pem');
  });

  it('merges extra_args over RKE defaults and keeps RKE binds and restart policy', () => {
    expect(spec.cmd).toContain('--election-timeout=6000');
    expect(spec.cmd).toContain('--heartbeat-interval=500');
    expect(spec.binds).toEqual(['/opt/custom/var/lib/etcd:/var/lib/rancher/etcd:z', '/opt/custom/etc/kubernetes:/etc/kubernetes:z']);
    expect(spec.restartPolicy).toBe('always');
  });
});
