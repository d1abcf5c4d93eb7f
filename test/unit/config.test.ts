/**
 * cluster.yml parsing against the corpus of 39 real files (see its EXPECTED.md and SOURCES.md).
 * Broken inputs and error formats are in config-errors.test.ts.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDocument } from 'yaml';
import { describe, expect, it } from 'vitest';
import {
  ClusterConfigError,
  DEFAULTS,
  parseClusterConfig,
  requireEtcdNodes,
  type ClusterConfig,
} from '../../src/config/index.js';
import { ConfigError } from '../../src/errors.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
// The corpus lives outside the repository for now; RKE_TS_CORPUS points elsewhere.
const CORPUS = [process.env.RKE_TS_CORPUS, join(repo, 'fixtures/corpus/cluster-yml'), '/work/shared/corpus/cluster-yml']
  .filter((dir): dir is string => !!dir)
  .find((dir) => existsSync(join(dir, 'EXPECTED.md')));

function corpusFiles(): string[] {
  return CORPUS ? readdirSync(CORPUS).filter((name) => name.endsWith('.yml')).sort() : [];
}

/** Parse a corpus file by its number ("13"), with the file name as `file`. */
function corpus(id: string): ClusterConfig {
  const name = corpusFiles().find((file) => file.startsWith(`${id}-`));
  if (!CORPUS || !name) throw new Error(`corpus file ${id} not found`);
  return parseClusterConfig(readFileSync(join(CORPUS, name), 'utf8'), name);
}

function problemsOf(action: () => unknown): readonly string[] {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(ClusterConfigError);
    return (error as ClusterConfigError).problems;
  }
  throw new Error('expected a ClusterConfigError');
}

const REFUSED: Record<string, string[]> = {
  '01': ['01-rancher-rke.yml:21:7 nodes[2].role: unknown role "role" (expected etcd, controlplane, worker)'],
  '18': [13, 21, 29].map(
    (line, i) =>
      `18-ngoc-ng-tools.yml:${line}:5 nodes[${i}].address: missing address (every node needs a host to connect to)`,
  ),
};

describe('corpus', () => {
  it('is present', () => {
    expect(CORPUS, 'copy the corpus to fixtures/corpus/cluster-yml or set RKE_TS_CORPUS').toBeDefined();
    expect(corpusFiles()).toHaveLength(39);
  });

  it.each(corpusFiles())('%s: accepted or refused as EXPECTED.md says', (name) => {
    const id = name.slice(0, 2);
    const text = readFileSync(join(CORPUS!, name), 'utf8');
    const expected = REFUSED[id];
    if (expected) {
      expect(problemsOf(() => parseClusterConfig(text, name))).toEqual(expected);
      return;
    }
    const config = parseClusterConfig(text, name);
    expect(config.file).toBe(name);
    if (id === '29') {
      expect(() => requireEtcdNodes(config)).toThrow(
        `${name}: no node has the etcd role; nothing to snapshot ` +
          '(services.etcd.external_urls is set: external etcd is not managed by rke-ts)',
      );
    } else {
      expect(requireEtcdNodes(config).length).toBeGreaterThanOrEqual(1);
    }
  });

  it('refusals are ConfigErrors (exit code 2) whose message is the first problem', () => {
    try {
      corpus('18');
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).exitCode).toBe(2);
      expect((error as ConfigError).message).toBe(REFUSED['18']![0]);
    }
  });
});

describe('duplicate keys: the last one wins, as with yaml.v2', () => {
  it('13: the second private_registries list wins (and its `username` is not `user`)', () => {
    expect(corpus('13').privateRegistries).toEqual([
      { url: 'registry.omdgrp.ir', user: undefined, password: 'password', isDefault: true },
    ]);
  });

  it('17: the second services block wins, so the legacy etcd snapshot settings are lost', () => {
    const etcd = corpus('17').services.etcd;
    // The first `services:` said snapshot: true, creation: 2h, retention: 168h.
    expect([etcd.snapshot, etcd.creation, etcd.retention]).toEqual([true, '12h', '72h']);
  });

  it('the yaml package agrees with uniqueKeys: false', () => {
    const doc = parseDocument('a: 1\nb: {c: 2}\na: 3\nb: {d: 4}\n', { version: '1.1', uniqueKeys: false });
    expect(doc.errors).toEqual([]);
    expect(doc.toJS()).toEqual({ a: 3, b: { d: 4 } });
  });
});

describe('corpus values', () => {
  it('28 (minimal file): every default', () => {
    const config = corpus('28');
    expect(config).toMatchObject({
      clusterName: 'local',
      prefixPath: '/',
      sshKeyPath: '~/.ssh/id_rsa',
      sshAgentAuth: false,
      ignoreDockerVersion: false,
      bastionHost: undefined,
      privateRegistries: [],
      systemImages: { etcd: DEFAULTS.etcdImage, alpine: DEFAULTS.alpineImage },
    });
    expect(config.nodes).toEqual([
      {
        index: 0,
        address: '127.0.0.1',
        port: 22,
        internalAddress: '127.0.0.1',
        roles: ['controlplane', 'etcd', 'worker'],
        hostnameOverride: '127.0.0.1',
        user: 'ubuntu',
        dockerSocket: '/var/run/docker.sock',
        labels: {},
        sshKeyPath: '~/.ssh/id_rsa',
        sshAgentAuth: false,
        location: { file: '28-vergeops-k8s-rvstore.yml', line: 2, column: 7 },
      },
    ]);
    expect(config.services.etcd).toEqual({
      extraArgs: { 'election-timeout': '5000', 'heartbeat-interval': '500' },
      extraEnv: [],
      extraBinds: [],
      externalUrls: [],
      snapshot: true,
      creation: '12h',
      retention: '72h',
    });
  });

  it('30 and 03: hostname_override defaults to the address, lower-cased; placeholders are addresses', () => {
    const [node] = corpus('30').nodes;
    expect(node).toMatchObject({ address: 'YOUR-SERVER-NAME', hostnameOverride: 'your-server-name' });
    expect(node?.internalAddress).toBe('YOUR-SERVER-IP');
    expect(corpus('03').nodes[0]).toMatchObject({
      address: '<IP>',
      internalAddress: '<IP>',
      hostnameOverride: '<ip>',
      user: '<USER>',
      sshKeyPath: '<PEM_FILE>',
      roles: ['controlplane', 'etcd', 'worker'],
    });
  });

  it('02: quoted ports, empty strings as "not set", legacy snapshot: false', () => {
    const config = corpus('02');
    expect(config.nodes.map((node) => node.port)).toEqual([22, 22]);
    expect(config.prefixPath).toBe('/');
    expect(config.bastionHost).toBeUndefined();
    expect(config.systemImages.etcd).toBe('rancher/coreos-etcd:v3.2.18');
    const etcd = config.services.etcd;
    expect([etcd.snapshot, etcd.creation, etcd.retention, etcd.image]).toEqual([false, '12h', '72h', undefined]);
  });

  it('08: unquoted ports, internal_address, hostname_override, top-level ssh_agent_auth', () => {
    const config = corpus('08');
    expect(config.nodes.map((node) => node.port)).toEqual([22, 60022, 60022, 60022, 60022]);
    expect(config.nodes[1]).toMatchObject({ internalAddress: '172.16.0.7', hostnameOverride: 'ame' });
    expect(config.nodes.every((node) => node.sshAgentAuth)).toBe(true);
  });

  it('23 and 24: CRLF line ends leave no \\r in values', () => {
    const config = corpus('23');
    expect(config.nodes[2]).toMatchObject({ address: '10.127.226.32', internalAddress: '10.155.175.9' });
    expect(config.nodes[0]?.sshKeyPath).toBe('/home/rkeadmin/.ssh/id_rsa');
    expect(config.services.etcd.backupConfig).toEqual({
      enabled: true,
      intervalHours: 6,
      retention: 30,
      safeTimestamp: false,
      timeout: 300,
    });
    expect(JSON.stringify(config)).not.toContain('\\r');
    const crlf = corpus('24');
    expect(crlf.nodes).toHaveLength(7);
    expect(crlf.services.etcd.extraArgs).toEqual({
      'auto-compaction-retention': '240',
      'quota-backend-bytes': '6442450944',
      'election-timeout': '5000',
      'heartbeat-interval': '500',
    });
  });

  it('05: S3 backup_config with keys, folder, endpoint and region', () => {
    expect(corpus('05').services.etcd.backupConfig).toEqual({
      enabled: true,
      intervalHours: 6,
      retention: 28,
      safeTimestamp: false,
      timeout: 300,
      s3: {
        accessKey: '<INSERT-ACCESS-KEY>',
        secretKey: '<INSERT-SECRET-KEY>',
        bucketName: 'im-rancher',
        folder: 'rancher-xchem',
        endpoint: 's3.eu-central-1.amazonaws.com',
        region: 'eu-central-1',
      },
    });
  });

  it('06 and 07: S3 without access keys (IAM role)', () => {
    const s06 = corpus('06').services.etcd.backupConfig;
    expect(s06).toMatchObject({ enabled: true, intervalHours: 1, retention: 60, timeout: 300 });
    expect(s06?.s3).toEqual({
      bucketName: 'your-bucket-name',
      folder: 'your-bucket-folder',
      endpoint: 's3.us-east-1.amazonaws.com',
      region: 'us-east-1',
    });
    expect(s06?.s3?.accessKey).toBeUndefined();
    expect(s06?.s3?.secretKey).toBeUndefined();
    expect(corpus('07').services.etcd.backupConfig?.s3).toMatchObject({
      bucketName: 'rke-etcd-snapshots',
      folder: 'rke-back-ups',
    });
  });

  it('21: local backup_config, etcd extra_args merged over the defaults, empty registry credentials', () => {
    const config = corpus('21');
    expect(config.services.etcd.backupConfig).toMatchObject({ enabled: true, intervalHours: 6, retention: 12 });
    expect(config.services.etcd.backupConfig?.s3).toBeUndefined();
    expect(config.services.etcd.extraArgs).toMatchObject({
      'quota-backend-bytes': '4294967296',
      'election-timeout': '5000',
    });
    expect(config.privateRegistries).toEqual([
      { url: 'registry.cn-hangzhou.aliyuncs.com', user: undefined, password: undefined, isDefault: true },
    ]);
  });

  it('09 and 10: bastion_host, with RKE defaults for port and ssh_key_path', () => {
    const config = corpus('09');
    expect(config.bastionHost).toEqual({
      address: '194.47.177.126',
      port: 22,
      user: 'debian',
      sshKeyPath: '~/.ssh/GroupOneInc.pem',
      sshAgentAuth: false,
    });
    expect(config.nodes[0]?.labels).toEqual({ 'node-role.kubernetes.io/master': 'true' });
    expect([config.services.etcd.creation, config.services.etcd.retention]).toEqual(['6h', '24h']);
    expect(corpus('10').bastionHost).toMatchObject({
      address: 'ec2-18-191-124-48.us-east-2.compute.amazonaws.com',
      port: 22,
      sshKeyPath: '~/.ssh/id_rsa',
    });
  });

  it('04: ssh_agent_auth is copied to the bastion; uid/gid; is_default registry', () => {
    const config = corpus('04');
    expect(config.bastionHost).toMatchObject({ address: 'x.x.x.x', port: 22, sshAgentAuth: true });
    expect(config.services.etcd).toMatchObject({ uid: 52034, gid: 52034 });
    expect(config.privateRegistries[0]).toMatchObject({ url: 'registry.com', isDefault: true });
    expect(config.nodes[0]).toMatchObject({ port: 2222, sshKeyPath: '~/.ssh/test' });
    expect(config.nodes[1]).toMatchObject({ port: 22, sshKeyPath: '/home/user/.ssh/id_rsa' });
    expect(config.nodes[1]?.sshKey).toBe('-----BEGIN RSA PRIVATE KEY-----\n\n-----END RSA PRIVATE KEY-----');
    expect(config.nodes[1]?.sshCertPath).toBe('/home/user/.ssh/test-key-cert.pub');
  });

  it('empty and null blocks: 11 (snapshot: null), 12 and 13 (backup_config: null), 33 (services.etcd null)', () => {
    expect(corpus('11').services.etcd.snapshot).toBe(true);
    expect(corpus('12').services.etcd.backupConfig).toBeUndefined();
    const c13 = corpus('13');
    expect(c13.bastionHost).toBeUndefined();
    expect(c13.systemImages.etcd).toBe(DEFAULTS.etcdImage);
    expect(c13.ignoreDockerVersion).toBe(false);
    const c33 = corpus('33');
    expect(c33.services.etcd.extraArgs).toEqual(DEFAULTS.etcdExtraArgs);
    expect(c33.bastionHost).toBeUndefined();
  });

  it('22: the oldest format keeps its services.etcd.image and system_images.alpine', () => {
    const config = corpus('22');
    expect(config.services.etcd.image).toBe('quay.io/coreos/etcd:latest');
    expect(config.systemImages).toEqual({
      etcd: DEFAULTS.etcdImage,
      alpine: 'alpine:latest',
      certDownloader: 'rancher/rke-cert-deployer:0.1.0',
    });
  });

  it('16: the misplaced top-level etcd block is ignored, as RKE does', () => {
    const config = corpus('16');
    expect(config.services.etcd.creation).toBe('12h');
    expect(config.nodes[0]).toMatchObject({ address: 'localhost', port: 2222 });
  });

  it('29: external etcd parses, with no etcd node', () => {
    const config = corpus('29');
    expect(config.services.etcd.externalUrls).toEqual(['https://192.168.0.2:2379']);
    expect(config.nodes.map((node) => node.roles)).toEqual([['controlplane', 'worker'], ['worker']]);
  });
});
