/**
 * cluster.yml: broken inputs give one line per problem, `<file>:<line>:<column> <key.path>: <what>`;
 * YAML details (1.1 scalars, merge keys, BOM); reading the file.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ClusterConfigError,
  defaultConfigPath,
  parseClusterConfig,
  readClusterConfig,
  requireEtcdNodes,
} from '../../src/config/index.js';

const fixtures = resolve(dirname(fileURLToPath(import.meta.url)), '../../fixtures/config');

function problems(text: string, file = 'cluster.yml'): readonly string[] {
  try {
    parseClusterConfig(text, file);
  } catch (error) {
    expect(error).toBeInstanceOf(ClusterConfigError);
    const { message, problems } = error as ClusterConfigError;
    expect(message).toBe(problems[0]);
    for (const line of problems) expect(line).not.toContain('\n');
    return problems;
  }
  throw new Error('expected the configuration to be refused');
}

const fixture = (name: string) => problems(readFileSync(join(fixtures, name), 'utf8'), name);

/** Lines of YAML, each ended by a newline. */
const yml = (...lines: string[]) => lines.map((line) => `${line}\n`).join('');

/** One etcd node, then whatever the case needs. */
const node = (extra = '') => `nodes:\n  - address: 10.0.0.1\n    user: rke\n    role: [etcd]\n${extra}`;

/** An S3 backup_config with a bucket, ready for more s3backupconfig keys. */
const S3 = `${node()}services:\n  etcd:\n    backup_config:\n      s3backupconfig:\n        bucket_name: b\n`;

describe('broken fixtures', () => {
  it.each([
    ['bad-role.yml', ['bad-role.yml:14:9 nodes[2].role: unknown role "etc" (expected etcd, controlplane, worker)']],
    [
      'missing-address.yml',
      [
        'missing-address.yml:2:5 nodes[0].address: missing address (every node needs a host to connect to)',
        'missing-address.yml:4:5 nodes[1].address: missing address (every node needs a host to connect to)',
      ],
    ],
    [
      'bad-port.yml',
      [
        'bad-port.yml:3:11 nodes[0].port: invalid port "abc" (expected a number from 1 to 65535)',
        'bad-port.yml:7:11 nodes[1].port: invalid port "70000" (expected a number from 1 to 65535)',
      ],
    ],
    [
      'syntax-error.yml',
      ['syntax-error.yml:5:1 yaml: Flow sequence in block collection must be sufficiently indented and end with a ]'],
    ],
    ['nodes-not-list.yml', ['nodes-not-list.yml:3:3 nodes: expected a list of nodes, got a map']],
    ['empty.yml', ['empty.yml:1:1 nodes: missing nodes (the file is empty; expected a cluster configuration)']],
    [
      'duplicate-address.yml',
      ['duplicate-address.yml:8:14 nodes[2].address: duplicate address "10.0.0.1" (also used by nodes[0])'],
    ],
    [
      'endpoint-ca.yml',
      [
        'endpoint-ca.yml:12:9 services.etcd.backup_config.s3backupconfig.endpoint_ca: unknown key; ' +
          'the key is custom_ca (the PEM text of the CA certificate, e.g. custom_ca: |-)',
      ],
    ],
    [
      's3-no-bucket.yml',
      [
        's3-no-bucket.yml:8:7 services.etcd.backup_config.s3_backup_config: unknown key; the key is s3backupconfig',
        's3-no-bucket.yml:13:22 services.etcd.backup_config.s3backupconfig.bucket_name: ' +
          "missing bucket name (etcd s3 backup backend bucketName can't be empty)",
      ],
    ],
  ])('%s', (name, expected) => {
    expect(fixture(name)).toEqual(expected);
  });
});

describe('broken inline configs', () => {
  const EMPTY = 'nodes: missing nodes (the file is empty; expected a cluster configuration)';
  const NO_NODES = 'nodes: no nodes defined (at least one node is needed)';
  const NO_ROLE = 'missing role (every node needs at least one of etcd, controlplane, worker)';
  const BAD_PEM = '"-----BEGIN CERTIFICATE-----\\nnope\\n-----END CERTIFICATE-----"';
  const TWO_NAMES = yml('nodes:', '  - address: a', '    user: u', '    role: etcd', '    hostname_override: N1')
    + yml('  - address: b', '    user: u', '    role: worker', '    hostname_override: n1');

  // [case, cluster.yml text, the first problem without the leading "cluster.yml:"]
  it.each([
    ['empty text', '', `1:1 ${EMPTY}`],
    ['only a document marker', '---\n', `1:1 ${EMPTY}`],
    ['a list at the top', '- a\n- b\n', '1:1 (top level): expected a map of cluster settings, got a list'],
    ['no nodes key', 'cluster_name: x\n', `1:1 ${NO_NODES}`],
    ['empty nodes', 'nodes:\n', `1:1 ${NO_NODES}`],
    [
      'a node that is not a map',
      yml('nodes:', '  - 10.0.0.1'),
      '2:5 nodes[0]: expected a map describing the node (address, user, role), got a single value',
    ],
    [
      'missing user',
      yml('nodes:', '  - address: a', '    role: etcd'),
      '2:5 nodes[0].user: missing user (the SSH user to connect as)',
    ],
    ['missing role', yml('nodes:', '  - address: a', '    user: u'), `2:5 nodes[0].role: ${NO_ROLE}`],
    [
      'empty role list',
      yml('nodes:', '  - address: a', '    user: u', '    role: []'),
      `4:11 nodes[0].role: ${NO_ROLE}`,
    ],
    [
      'single-string bad role',
      yml('nodes:', '  - address: a', '    user: u', '    role: master'),
      '4:11 nodes[0].role: unknown role "master" (expected etcd, controlplane, worker)',
    ],
    [
      'a list as address',
      yml('nodes:', '  - address: [a, b]', '    user: u', '    role: etcd'),
      '2:14 nodes[0].address: expected a single value, got a list',
    ],
    [
      'port 0',
      node().replace('user: rke', 'user: rke\n    port: 0'),
      '4:11 nodes[0].port: invalid port "0" (expected a number from 1 to 65535)',
    ],
    ['bad bool', `${node()}ssh_agent_auth: maybe\n`, '5:17 ssh_agent_auth: expected true or false, got "maybe"'],
    [
      'negative interval',
      `${node()}services:\n  etcd:\n    backup_config:\n      interval_hours: -1\n`,
      '8:23 services.etcd.backup_config.interval_hours: expected a whole number (0 or more), got "-1"',
    ],
    [
      'extra_args with a list value',
      `${node()}services:\n  etcd:\n    extra_args:\n      a: [1]\n`,
      '8:10 services.etcd.extra_args.a: expected a single value, got a list',
    ],
    [
      'camelCase key',
      `${node()}    hostnameOverride: b\n`,
      '5:5 nodes[0].hostnameOverride: unknown key; the key is hostname_override',
    ],
    [
      'roles for role',
      yml('nodes:', '  - address: a', '    user: u', '    roles: [etcd]'),
      `2:5 nodes[0].role: ${NO_ROLE}`,
    ],
    [
      'bastion without user',
      `${node()}bastion_host:\n  address: jump\n`,
      '6:3 bastion_host.user: missing user (the SSH user to connect to the bastion host as)',
    ],
    [
      'duplicate hostname_override',
      TWO_NAMES,
      '9:24 nodes[1].hostname_override: duplicate hostname_override "n1" ' +
        '(also used by nodes[0]; RKE names nodes by it)',
    ],
    [
      'invalid custom_ca',
      `${S3}        custom_ca: ${BAD_PEM}\n`,
      '10:20 services.etcd.backup_config.s3backupconfig.custom_ca: ' +
        'invalid S3 endpoint CA certificate (expected the PEM text of a certificate)',
    ],
    ['unknown anchor', `${node()}cluster_name: *nope\n`, '5:15 yaml: unknown anchor *nope'],
  ])('%s', (_name, text, expected) => {
    expect(problems(text)[0]).toBe(`cluster.yml:${expected}`);
  });

  it('stops alias bombs', () => {
    let text = 'a0: &a0 [x, x]\n';
    for (let i = 1; i <= 12; i++) text += `a${i}: &a${i} [*a${i - 1}, *a${i - 1}]\n`;
    expect(problems(`${node()}${text}`)[0]).toMatch(/^cluster\.yml:\d+:\d+ yaml: too many aliases$/);
  });

  it('reports every problem, sorted by position', () => {
    const text = 'nodes:\n  - address: a\n    user: u\n    role: [etc]\n  - user: u\n    port: x\n    role: [worker]\n';
    expect(problems(text)).toEqual([
      'cluster.yml:4:12 nodes[0].role: unknown role "etc" (expected etcd, controlplane, worker)',
      'cluster.yml:5:5 nodes[1].address: missing address (every node needs a host to connect to)',
      'cluster.yml:6:11 nodes[1].port: invalid port "x" (expected a number from 1 to 65535)',
    ]);
  });

  it('uses the file argument verbatim', () => {
    expect(problems('nodes: 3\n', '/etc/rke/cluster.yml')).toEqual([
      '/etc/rke/cluster.yml:1:8 nodes: expected a list of nodes, got a single value',
    ]);
  });

  it('points at the last of duplicate keys', () => {
    const text = 'nodes:\n  - address: a\n    port: 22\n    user: u\n    role: etcd\n    port: 99999\n';
    expect(problems(text)).toEqual([
      'cluster.yml:6:11 nodes[0].port: invalid port "99999" (expected a number from 1 to 65535)',
    ]);
  });
});

describe('secrets never appear in messages', () => {
  const SECRET = 'hunter2-TOPSECRET';
  it.each([
    ['ssh_key as a map', `nodes:\n  - address: a\n    user: u\n    role: etcd\n    ssh_key: {k: ${SECRET}}\n`],
    ['a registry password list', `${node()}private_registries:\n  - url: r\n    password: [${SECRET}]\n`],
    [
      'secret_key as a map',
      `${node()}services:\n  etcd:\n    backup_config:\n      s3backupconfig:\n        secret_key: {x: ${SECRET}}\n`,
    ],
    ['a YAML error on a secret line', `${node()}private_registries:\n  - url: r\n    password: "${SECRET}\n`],
  ])('%s', (_name, text) => {
    const lines = problems(text);
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.join('\n')).not.toContain('TOPSECRET');
  });
});

describe('YAML as gopkg.in/yaml.v2 reads it', () => {
  it('keeps scalars as written for string fields (extra_args, labels), YAML 1.1 bools for bool fields', () => {
    const text =
      node('    labels: {ssd: yes, n: 0777}\n') +
      yml('ssh_agent_auth: yes', 'kubernetes_version: 1.10', 'services:', '  etcd:') +
      yml('    extra_args: {v: 4, debug: true, mode: on, empty: }');
    const config = parseClusterConfig(text, 'c.yml');
    expect(config.sshAgentAuth).toBe(true);
    expect(config.kubernetesVersion).toBe('1.10');
    expect(config.nodes[0]?.labels).toEqual({ ssd: 'yes', n: '0777' });
    expect(config.services.etcd.extraArgs).toEqual({
      'election-timeout': '5000',
      'heartbeat-interval': '500',
      v: '4',
      debug: 'true',
      mode: 'on',
      empty: '',
    });
  });

  it('accepts a single-string role, a string port and lower-cases hostname_override', () => {
    const config = parseClusterConfig(
      'nodes:\n  - address: Node-A\n    port: "2222"\n    user: u\n    role: etcd\n    hostname_override: MiXeD\n',
      'c.yml',
    );
    expect(config.nodes[0]).toMatchObject({
      roles: ['etcd'],
      port: 2222,
      hostnameOverride: 'mixed',
      internalAddress: 'Node-A',
    });
  });

  it('supports anchors and << merge keys', () => {
    const text =
      yml('defaults: &d', '  user: rke', '  role: [etcd]', '  port: 2200') +
      yml('nodes:', '  - <<: *d', '    address: a', '  - <<: *d', '    address: b', '    port: 22');
    const config = parseClusterConfig(text, 'c.yml');
    expect(config.nodes.map((n) => [n.address, n.user, n.port, n.roles])).toEqual([
      ['a', 'rke', 2200, ['etcd']],
      ['b', 'rke', 22, ['etcd']],
    ]);
  });

  it('strips a UTF-8 BOM and reads only the first document', () => {
    const config = parseClusterConfig(`\uFEFF${node()}---\nnodes: 7\n`, 'c.yml');
    expect(config.nodes[0]?.location).toEqual({ file: 'c.yml', line: 2, column: 5 });
  });

  it('backup_config: {} gets the defaults; enabled: false does not', () => {
    const on = parseClusterConfig(`${node()}services:\n  etcd:\n    backup_config: {retention: 0}\n`, 'c.yml');
    expect(on.services.etcd.backupConfig).toEqual({
      enabled: true,
      intervalHours: 12,
      retention: 6,
      safeTimestamp: false,
      timeout: 300,
    });
    const disabled = yml('services:', '  etcd:', '    backup_config:', '      enabled: false', '      retention: 3');
    const off = parseClusterConfig(node() + disabled, 'c.yml');
    expect(off.services.etcd.backupConfig).toEqual({
      enabled: false,
      intervalHours: 0,
      retention: 3,
      safeTimestamp: false,
      timeout: 0,
    });
  });

  it('s3backupconfig without endpoint defaults to s3.amazonaws.com; a PEM custom_ca is accepted', () => {
    const ca = [
      '-----BEGIN CERTIFICATE-----',
      'MIIBejCCASGgAwIBAgIUVXUBabKsBFoHki+e3pmHv78dnrUwCgYIKoZIzj0EAwIw',
      'EjEQMA4GA1UEAwwHdGVzdC1jYTAgFw0yNjExMjEwNTEyMjFaGA8yMTI2MTAyODA1',
      'MTIyMVowEjEQMA4GA1UEAwwHdGVzdC1jYTBZMBMGByqGSM49AgEGCCqGSM49AwEH',
      'A0IABJa9If5DflhV3xhfkQXmZTYPa+8Puu9RW+p+mjo7ISMD9jlbC7bSjvr9CmJn',
      '+BNvDQsadRhBuAg0fyDXVrbnEFqjUzBRMB0GA1UdDgQWBBTzLGp6Csuib5+HDUrq',
      'f8Qgvtb9UDAfBgNVHSMEGDAWgBTzLGp6Csuib5+HDUrqf8Qgvtb9UDAPBgNVHRMB',
      'Af8EBTADAQH/MAoGCCqGSM49BAMCA0cAMEQCIFTqE82eKjcV9q93gR8gTkqrlX/d',
      'UdyavMGTI+ANeDiSAiAPVK6bgPChcfQY6LJZopDed2hwPeTLuSCYi8Lcn9SDBA==',
      '-----END CERTIFICATE-----',
    ];
    const block = ca.map((line) => `          ${line}`).join('\n');
    const text = `${S3}        custom_ca: |-\n${block}\n`;
    const s3 = parseClusterConfig(text, 'c.yml').services.etcd.backupConfig?.s3;
    expect(s3).toMatchObject({ bucketName: 'b', endpoint: 's3.amazonaws.com', customCa: ca.join('\n') });
  });
});

describe('requireEtcdNodes', () => {
  it('refuses a cluster without etcd nodes', () => {
    const config = parseClusterConfig('nodes:\n  - address: a\n    user: u\n    role: worker\n', 'my.yml');
    expect(() => requireEtcdNodes(config)).toThrow(
      new ClusterConfigError([
        'my.yml: no node has the etcd role; nothing to snapshot (give the etcd role to the nodes that run etcd)',
      ]),
    );
  });
});

describe('readClusterConfig', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rke-ts-config-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads a file with a BOM and CRLF line ends', async () => {
    const file = join(dir, 'cluster.yml');
    await writeFile(file, `\uFEFF${node()}`.replace(/\n/g, '\r\n'));
    const config = await readClusterConfig(file);
    expect(config.file).toBe(file);
    expect(config.nodes[0]?.address).toBe('10.0.0.1');
  });

  it('explains a missing file', async () => {
    await expect(readClusterConfig(join(dir, 'nope.yml'))).rejects.toThrow(
      `${join(dir, 'nope.yml')}: cannot read the cluster configuration: no such file (give --config or set RKE_CONFIG)`,
    );
  });

  it('explains a directory', async () => {
    await expect(readClusterConfig(dir)).rejects.toThrow(
      `${dir}: cannot read the cluster configuration: ` +
        'it is a directory (give the path of the cluster.yml file with --config)',
    );
  });

  it('defaultConfigPath: RKE_CONFIG, else cluster.yml', () => {
    expect(defaultConfigPath({})).toBe('cluster.yml');
    expect(defaultConfigPath({ RKE_CONFIG: '' })).toBe('cluster.yml');
    expect(defaultConfigPath({ RKE_CONFIG: 'prod.yml' })).toBe('prod.yml');
  });
});
