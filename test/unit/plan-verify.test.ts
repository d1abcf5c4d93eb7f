import { describe, expect, it } from 'vitest';
import { parseClusterConfig } from '../../src/config/index.js';
import { validateSnapshotName } from '../../src/plan/names.js';
import { parseSnapshotStatus, verifyContainers, verifyCopyName } from '../../src/plan/verify.js';

describe('snapshot-verify plan', () => {
  const config = parseClusterConfig('nodes: [{address: 10.0.0.1, user: u, role: [etcd]}]\nsystem_images: {etcd: "rancher/mirrored-coreos-etcd:v3.5.16"}', 'c.yml');

  it('reads the copy only: read-only bind, no network, etcdctl called directly', () => {
    const { status, restore } = verifyContainers(config, '.rke-ts-verify-1-snap');
    for (const spec of [status, restore]) {
      expect(spec.entrypoint).toEqual(['/usr/local/bin/etcdctl']);
      expect(spec.binds).toEqual(['/opt/rke/etcd-snapshots:/backup:ro']);
      expect(spec.networkMode).toBe('none');
      expect(spec.image).toBe('rancher/mirrored-coreos-etcd:v3.5.16');
    }
    expect(status.cmd).toEqual(['snapshot', 'status', '/backup/.rke-ts-verify-1-snap', '--write-out=json']);
    expect(restore.cmd.slice(0, 3)).toEqual(['snapshot', 'restore', '/backup/.rke-ts-verify-1-snap']);
    expect(restore.cmd.find((arg) => arg.startsWith('--data-dir='))).not.toMatch(/^--data-dir=\/backup/);
  });

  it('names its copy so that it can never be a snapshot name', () => {
    const copy = verifyCopyName('snap', 1700000000);
    expect(copy).toBe('.rke-ts-verify-1700000000-snap');
    expect(() => validateSnapshotName(copy)).toThrow();
  });

  it('parses etcdctl snapshot status JSON among log lines', () => {
    const output = '2026-11-21 05:00:00 I | some log line\n{"hash":1507459015,"revision":42,"totalKey":7,"totalSize":20480}\n';
    expect(parseSnapshotStatus(output)).toEqual({ hash: 1507459015, revision: 42, totalKey: 7, totalSize: 20480 });
    expect(parseSnapshotStatus('Error: snapshot file has no hash')).toBeUndefined();
    expect(parseSnapshotStatus('{"not":"status"}')).toBeUndefined();
  });
});
