import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runMain } from '../support/main.js';

const run = runMain;

const dir = mkdtempSync(path.join(os.tmpdir(), 'rke-ts-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const clusterYml = path.join(dir, 'cluster.yml');
writeFileSync(
  clusterYml,
  `nodes:
  - address: 192.0.2.10
    user: rancher
    role: [etcd]
    ssh_key: |-
      -----BEGIN OPENSSH PRIVATE KEY-----
      SUPERSECRETKEYMATERIAL
      -----END OPENSSH PRIVATE KEY-----
  - address: 192.0.2.11
    user: rancher
    role: [etcd, controlplane]
    ssh_key_path: /nonexistent/key
private_registries:
  - url: registry.example.com
    user: bob
    password: REGISTRYPASSWORD
`,
);

describe('rke-ts CLI', () => {
  it('prints the save plan with --dry-run without reading keys or connecting', async () => {
    const result = await run(['etcd', 'snapshot-save', '--config', clusterYml, '--name', 'snap', '--dry-run']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('host [192.0.2.10]');
    expect(result.stdout).toContain('host [192.0.2.11]');
    expect(result.stdout).toContain('snapshot save /backup/snap');
    expect(result.stdout).toContain('-e ETCDCTL_ENDPOINTS=https://192.0.2.10:2379');
    expect(result.stdout + result.stderr).not.toContain('SUPERSECRET');
    expect(result.stdout + result.stderr).not.toContain('REGISTRYPASSWORD');
  });

  it('shows --compress, the S3 key of the zip and the --retention prune in the save plan', async () => {
    const result = await run([
      'etcd', 'snapshot-save', '--config', clusterYml, '--name', 'nightly-1', '--dry-run', '--compress',
      '--retention', '3', '--retention-prefix', 'nightly-',
      '--s3', '--bucket-name', 'backups', '--s3-endpoint', 'http://192.0.2.50:9000', '--access-key', 'AK', '--secret-key', 'DRYRUNSECRET',
    ]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('into /opt/rke/etcd-snapshots/nightly-1.zip, RKE\'s layout, replacing nightly-1');
    expect(result.stdout).toContain('to s3://backups/nightly-1.zip');
    expect(result.stdout).toContain('then, only if every host succeeded: prune snapshots by retention=3 with prefix "nightly-" on every etcd host and in S3');
    expect(result.stdout + result.stderr).not.toContain('DRYRUNSECRET');
  });

  it('uses RKE_CONFIG when --config is not given', async () => {
    const result = await run(['etcd', 'snapshot-save', '--name', 'snap', '--dry-run'], { RKE_CONFIG: clusterYml });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('on 2 etcd host(s)');
  });

  it('warns with RKE’s line when no name is given', async () => {
    const result = await run(['etcd', 'snapshot-save', '--config', clusterYml, '--dry-run']);
    expect(result.stderr).toMatch(/^WARN\[0000\] Name of the snapshot is not specified, using \[rke_etcd_snapshot_\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)\]$/m);
  });

  it('refuses a name with a path in one line, exit 2, before reading the config', async () => {
    const result = await run(['etcd', 'snapshot-save', '--config', '/nonexistent.yml', '--name', '../../etc/passwd']);
    expect(result.code).toBe(2);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(/^FATA\[0000\] --name "\.\.\/\.\.\/etc\/passwd": a snapshot name must not contain a path separator/);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it('reports a broken cluster.yml as file:line:column, exit 2, no stack trace', async () => {
    const broken = path.join(dir, 'broken.yml');
    writeFileSync(broken, 'nodes:\n  - address: 10.0.0.1\n    user: u\n    role: [etc]\n');
    const result = await run(['etcd', 'snapshot-save', '--config', broken, '--name', 'x']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`${broken}:4:12 nodes[0].role: unknown role "etc" (expected etcd, controlplane, worker)`);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it('prints a stack trace for errors only with --debug', async () => {
    const result = await run(['--debug', 'etcd', 'snapshot-save', '--config', '/nonexistent.yml', '--name', 'x']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/\n\s+at /);
  });

  it('refuses unknown options with exit code 2', async () => {
    const result = await run(['etcd', 'snapshot-save', '--bogus']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("unknown option '--bogus'");
  });
});
