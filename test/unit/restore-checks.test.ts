import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseClusterConfig } from '../../src/config/index.js';
import { type NodeFile, checkEtcdCertificates } from '../../src/node/certs.js';
import { etcdCertFiles } from '../../src/plan/etcd.js';
import { EtcdSnapshotCheck } from '../../src/run/restore-distribute.js';

function fakeSnapshot(pages: number): Buffer {
  const body = Buffer.alloc(512 * pages);
  for (let i = 0; i < body.length; i++) body[i] = (i * 7) % 251;
  return Buffer.concat([body, createHash('sha256').update(body).digest()]);
}

async function run(data: Buffer, chunkBytes = 1000): Promise<{ output: Buffer; sha256: string; trailer: string }> {
  const check = new EtcdSnapshotCheck('host [x]');
  const parts: Buffer[] = [];
  const chunks = [];
  for (let offset = 0; offset < data.length; offset += chunkBytes) chunks.push(data.subarray(offset, offset + chunkBytes));
  Readable.from(chunks).pipe(check);
  for await (const part of check) parts.push(part as Buffer);
  return { output: Buffer.concat(parts), sha256: check.sha256, trailer: check.fingerprint.trailer };
}

describe('EtcdSnapshotCheck', () => {
  it('passes an intact snapshot through unchanged and reports its sha256', async () => {
    const snapshot = fakeSnapshot(40);
    for (const chunkBytes of [1000, 7, 32, 33, 512, snapshot.length]) {
      const { output, sha256, trailer } = await run(snapshot, chunkBytes);
      expect(output.equals(snapshot)).toBe(true);
      expect(sha256).toBe(createHash('sha256').update(snapshot).digest('hex'));
      expect(trailer).toBe(snapshot.subarray(-32).toString('hex'));
    }
  });

  it('fails on a flipped byte and never releases the last 32 bytes', async () => {
    const snapshot = fakeSnapshot(40);
    snapshot[700] = snapshot[700]! ^ 1;
    const check = new EtcdSnapshotCheck('host [x]');
    let received = 0;
    check.on('data', (part: Buffer) => (received += part.length));
    const failure = new Promise((_, reject) => check.on('error', reject));
    check.end(snapshot);
    await expect(failure).rejects.toThrow(/the snapshot from host \[x\] is corrupted: its content does not match its sha256 trailer/);
    expect(received).toBeLessThanOrEqual(snapshot.length - 32);
  });

  it('fails on a file without a trailer (a copied db file, or a truncated snapshot)', async () => {
    await expect(run(fakeSnapshot(4).subarray(0, 2048))).rejects.toThrow(/it has no sha256 trailer \(2048 bytes/);
    await expect(run(Buffer.alloc(10))).rejects.toThrow(/no sha256 trailer/);
  });
});

describe('checkEtcdCertificates', () => {
  const config = parseClusterConfig('nodes: [{address: 10.0.0.1, user: u, role: [etcd]}]', 'cluster.yml');
  const node = config.nodes[0]!;
  const tls = etcdCertFiles(node);
  const pem: Record<string, Buffer> = {};

  const dir = mkdtempSync(path.join(tmpdir(), 'rke-ts-certs-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  beforeAll(() => {
    const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
    const conf = path.join(dir, 'req.cnf');
    writeFileSync(conf, ['[req]', 'distinguished_name=dn', '[dn]', '[ca]', 'basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign'].join('\n'));
    for (const ca of ['ca', 'other-ca']) {
      openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${ca}-key.pem`);
      openssl('req', '-x509', '-new', '-key', `${ca}-key.pem`, '-subj', '/CN=kube-ca', '-days', '10', '-config', conf, '-extensions', 'ca', '-out', `${ca}.pem`);
    }
    const sign = (name: string, ca: string, san: string) => {
      openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${name}-key.pem`);
      openssl('req', '-new', '-key', `${name}-key.pem`, '-subj', '/CN=kube-etcd', '-config', conf, '-out', `${name}.csr`);
      writeFileSync(path.join(dir, `${name}.ext`), `subjectAltName=${san}\n`);
      openssl('x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}-key.pem`, '-CAcreateserial', '-days', '10', '-extfile', `${name}.ext`, '-out', `${name}.pem`);
    };
    sign('etcd', 'ca', 'IP:10.0.0.1,IP:127.0.0.1');
    sign('foreign', 'other-ca', 'IP:10.0.0.1');
    sign('elsewhere', 'ca', 'IP:10.0.0.9');
    for (const name of ['ca', 'etcd', 'etcd-key', 'foreign', 'elsewhere', 'elsewhere-key']) pem[name] = readFileSync(path.join(dir, `${name}.pem`));
  });

  const files = (ca?: Buffer, cert?: Buffer, key?: Buffer): Map<string, NodeFile> =>
    new Map<string, NodeFile>([
      ['ssl/kube-ca.pem', ca ? { kind: 'file', data: ca } : { kind: 'missing' }],
      ['ssl/kube-etcd-10-0-0-1.pem', cert ? { kind: 'file', data: cert } : { kind: 'missing' }],
      ['ssl/kube-etcd-10-0-0-1-key.pem', key ? { kind: 'file', data: key } : { kind: 'missing' }],
    ]);
  const check = (input: Map<string, NodeFile>, when = new Date()) => checkEtcdCertificates(input, node, tls, '/etc/kubernetes', when);

  it('accepts a valid set and warns when it expires soon', () => {
    const result = check(files(pem.ca, pem.etcd, pem['etcd-key']));
    expect(result.problems).toEqual([]);
    expect(result.warnings.join('\n')).toMatch(/kube-ca.pem expires on/);
  });

  it('names each missing file', () => {
    expect(check(files(pem.ca, pem.etcd)).problems).toEqual(['/etc/kubernetes/ssl/kube-etcd-10-0-0-1-key.pem is missing']);
    expect(check(files()).problems).toHaveLength(3);
  });

  it('refuses expired, foreign, mismatched and misaddressed certificates', () => {
    const later = new Date(Date.now() + 30 * 86_400_000);
    expect(check(files(pem.ca, pem.etcd, pem['etcd-key']), later).problems.join('\n')).toMatch(/kube-ca.pem expired on .*\n.*kube-etcd-10-0-0-1.pem expired on/);
    expect(check(files(pem.ca, pem.foreign, pem['etcd-key'])).problems.join('\n')).toMatch(/kube-etcd-10-0-0-1.pem is not signed by \/etc\/kubernetes\/ssl\/kube-ca.pem/);
    expect(check(files(pem.ca, pem.elsewhere, pem['etcd-key'])).problems.join('\n')).toMatch(/does not cover the internal address 10.0.0.1/);
    expect(check(files(pem.ca, pem.etcd, pem['elsewhere-key'])).problems).toEqual([
      '/etc/kubernetes/ssl/kube-etcd-10-0-0-1-key.pem does not belong to /etc/kubernetes/ssl/kube-etcd-10-0-0-1.pem',
    ]);
    expect(check(files(Buffer.from('garbage'), pem.etcd, pem['etcd-key'])).problems.join('\n')).toMatch(/kube-ca.pem is not a PEM certificate/);
  });
});
