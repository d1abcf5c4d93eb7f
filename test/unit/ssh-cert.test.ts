import { createPublicKey, randomBytes, verify } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { utils, type ParsedKey } from 'ssh2';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { certificateAuth, certifiedKey, parseCertificate } from '../../src/transport/ssh-cert.js';

// Throwaway keys made with ssh-keygen for this test only, certificates signed by a throwaway CA:
//   ssh-keygen -s ca -I alice-id -n alice,bob -V 20250101:20350101 ed.pub
//   ssh-keygen -s ca -I rsa-id -n carol -V always:forever rsa.pub      (rsa -b 1024, to stay short)
//   ssh-keygen -s ca -I ec-id -n dave -V +520w ec.pub
//   ssh-keygen -s ca -h -I host -n node1 edh.pub                        (host certificate, key = ed)
const ED_KEY = `-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
QyNTUxOQAAACBOqGuefG77g7sd6KeYRZCkdziSFPp3ifGcIC/jLhRBDgAAAIj+14kL/teJ
CwAAAAtzc2gtZWQyNTUxOQAAACBOqGuefG77g7sd6KeYRZCkdziSFPp3ifGcIC/jLhRBDg
AAAEC6ZduwkZty9lS080oSegoSQZGlr0ddpvDjdfeH7RH54U6oa558bvuDux3op5hFkKR3
OJIU+neJ8ZwgL+MuFEEOAAAAAAECAwQF
-----END OPENSSH PRIVATE KEY-----
`;
const ED_PUB = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE6oa558bvuDux3op5hFkKR3OJIU+neJ8ZwgL+MuFEEO';
const ED_CERT =
  'ssh-ed25519-cert-v01@openssh.com AAAAIHNzaC1lZDI1NTE5LWNlcnQtdjAxQG9wZW5zc2guY29tAAAAIDG6mKrH5J8+g7G5ZGNc2cB2jYP/mfctfwyiCbV+bw26AAAAIE6oa558bvuDux3op5hFkKR3OJIU+neJ8ZwgL+MuFEEOAAAAAAAAAAAAAAABAAAACGFsaWNlLWlkAAAAEAAAAAVhbGljZQAAAANib2IAAAAAZ3SFgAAAAAB6QyuAAAAAAAAAAIIAAAAVcGVybWl0LVgxMS1mb3J3YXJkaW5nAAAAAAAAABdwZXJtaXQtYWdlbnQtZm9yd2FyZGluZwAAAAAAAAAWcGVybWl0LXBvcnQtZm9yd2FyZGluZwAAAAAAAAAKcGVybWl0LXB0eQAAAAAAAAAOcGVybWl0LXVzZXItcmMAAAAAAAAAAAAAADMAAAALc3NoLWVkMjU1MTkAAAAgpe1C7/7w7FKK6qi+4Al7xyAq6ejymEicXLZF7YjscqMAAABTAAAAC3NzaC1lZDI1NTE5AAAAQDvThl5ECPrVf/XnsC5yerS4CsLUnJwr8aI1XyjrEv1+nsbRSChm30OBkn3xXv0bg0If0n87VXhSYww6tYNETgI= ed.pub\n';
const ED_HOST_CERT =
  'ssh-ed25519-cert-v01@openssh.com AAAAIHNzaC1lZDI1NTE5LWNlcnQtdjAxQG9wZW5zc2guY29tAAAAIM7V0TelJLts5AJrrKCahw3oDvs+X3WF+BwzCwLfjw8xAAAAIE6oa558bvuDux3op5hFkKR3OJIU+neJ8ZwgL+MuFEEOAAAAAAAAAAAAAAACAAAABGhvc3QAAAAJAAAABW5vZGUxAAAAAAAAAAD//////////wAAAAAAAAAAAAAAAAAAADMAAAALc3NoLWVkMjU1MTkAAAAgpe1C7/7w7FKK6qi+4Al7xyAq6ejymEicXLZF7YjscqMAAABTAAAAC3NzaC1lZDI1NTE5AAAAQI89uxeaDeTGdU19MSj8B2Sc6OdthkFguN2/q/SvCUvLfQDYg7vikJlODR91MmhhBuHRIE5knnVa2HuAIopQWAM= edh.pub';
const RSA_KEY = `-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAlwAAAAdzc2gtcn
NhAAAAAwEAAQAAAIEArWnLLH1aPuKc8wJan+3glt6NYNx3NzbwI3pLbSAyGuESsdJeRZZJ
QI/lissDbhblicqAQbC2UtyGKZWf+6OjJdbyLIm/huUzMw/YyorUnGxsAXJVX3Zz54QlLV
nhXbU3LsS7uF2d3/KEw5xciv78ahDxWE6VfaYDuJJEqups9zcAAAH4EzOKMBMzijAAAAAH
c3NoLXJzYQAAAIEArWnLLH1aPuKc8wJan+3glt6NYNx3NzbwI3pLbSAyGuESsdJeRZZJQI
/lissDbhblicqAQbC2UtyGKZWf+6OjJdbyLIm/huUzMw/YyorUnGxsAXJVX3Zz54QlLVnh
XbU3LsS7uF2d3/KEw5xciv78ahDxWE6VfaYDuJJEqups9zcAAAADAQABAAAAgAjqycHN6F
gXew6b7mEO8F+Rrh9u9spmDs8kOMCxySHMtRNjx+k4Iygovhr2+YQttTvyp8m49ocoQ9Xb
ldBwx7DSwOzRtIQGWDBJ7mcWGJdDQCPSfSaV6zLmZ1AV3r9wfQelH+wCmwYtGyg0tqlMq7
nom8TApiV9riFixGbj0G+RAAAAQAN+E3JxJ3CLvbznS9mjAKP3eiBxKqc+IWzS57zUXM1V
LPVxMikYJ08Il9ZBxnWmEDeYaAK0reKrAiR1YcGFb0gAAABBANkl3ckDLYoCU3kS0uaZec
busWmZF2PWazTD8DU3uR9yY8zyOtusmgJgrXzBjCy8R3veGwi+mpsR1gqZOEIlJMUAAABB
AMxwuh5f2E2nLYTx8wu4Ectdel/eYkZwc9UPna4YTK0hTq2twMWfx6zjHPhXibwkl4rEvZ
70C+y9Y3MGBgMIg8sAAAAAAQID
-----END OPENSSH PRIVATE KEY-----
`;
const RSA_PUB =
  'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQCtacssfVo+4pzzAlqf7eCW3o1g3Hc3NvAjekttIDIa4RKx0l5FlklAj+WKywNuFuWJyoBBsLZS3IYplZ/7o6Ml1vIsib+G5TMzD9jKitScbGwBclVfdnPnhCUtWeFdtTcuxLu4XZ3f8oTDnFyK/vxqEPFYTpV9pgO4kkSq6mz3Nw==';
const RSA_CERT =
  'ssh-rsa-cert-v01@openssh.com AAAAHHNzaC1yc2EtY2VydC12MDFAb3BlbnNzaC5jb20AAAAg8dEQYA6btLWGq6Lhj/SiOck6ydg8GRMrXPpKRseczBYAAAADAQABAAAAgQCtacssfVo+4pzzAlqf7eCW3o1g3Hc3NvAjekttIDIa4RKx0l5FlklAj+WKywNuFuWJyoBBsLZS3IYplZ/7o6Ml1vIsib+G5TMzD9jKitScbGwBclVfdnPnhCUtWeFdtTcuxLu4XZ3f8oTDnFyK/vxqEPFYTpV9pgO4kkSq6mz3NwAAAAAAAAAAAAAAAQAAAAZyc2EtaWQAAAAJAAAABWNhcm9sAAAAAAAAAAD//////////wAAAAAAAACCAAAAFXBlcm1pdC1YMTEtZm9yd2FyZGluZwAAAAAAAAAXcGVybWl0LWFnZW50LWZvcndhcmRpbmcAAAAAAAAAFnBlcm1pdC1wb3J0LWZvcndhcmRpbmcAAAAAAAAACnBlcm1pdC1wdHkAAAAAAAAADnBlcm1pdC11c2VyLXJjAAAAAAAAAAAAAAAzAAAAC3NzaC1lZDI1NTE5AAAAIKXtQu/+8OxSiuqovuAJe8cgKuno8phInFy2Re2I7HKjAAAAUwAAAAtzc2gtZWQyNTUxOQAAAEBqVw72Nxi3u1BJp+j9Qg/74QAZySXtyT/UZVLWbGFM5oISvl5ycht5B8xgnkbf8wTlQMc5mvteKXUv3xtSbVwJ rsa.pub';
const EC_PUB =
  'ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBHQzVLhXdqgoQ7uyhtRzKXruWy4lcMTo8NoVMVl2GLXfcGW6vW2Ga6jA76eDMniArtphAIEBlODKVED6NH0FXic=';
const EC_CERT =
  'ecdsa-sha2-nistp256-cert-v01@openssh.com AAAAKGVjZHNhLXNoYTItbmlzdHAyNTYtY2VydC12MDFAb3BlbnNzaC5jb20AAAAgwvJunaVRx2AAKwvDQy79f0M9sWU+RbW4ckD2H7oN0m4AAAAIbmlzdHAyNTYAAABBBHQzVLhXdqgoQ7uyhtRzKXruWy4lcMTo8NoVMVl2GLXfcGW6vW2Ga6jA76eDMniArtphAIEBlODKVED6NH0FXicAAAAAAAAAAAAAAAEAAAAFZWMtaWQAAAAIAAAABGRhdmUAAAAAawEpxAAAAAB9v/4rAAAAAAAAAIIAAAAVcGVybWl0LVgxMS1mb3J3YXJkaW5nAAAAAAAAABdwZXJtaXQtYWdlbnQtZm9yd2FyZGluZwAAAAAAAAAWcGVybWl0LXBvcnQtZm9yd2FyZGluZwAAAAAAAAAKcGVybWl0LXB0eQAAAAAAAAAOcGVybWl0LXVzZXItcmMAAAAAAAAAAAAAADMAAAALc3NoLWVkMjU1MTkAAAAgpe1C7/7w7FKK6qi+4Al7xyAq6ejymEicXLZF7YjscqMAAABTAAAAC3NzaC1lZDI1NTE5AAAAQCVhJK6vwKhdWFJvAxE6oSIBujRhtjjwpGqrsLsBAG9vTJnIUMH6Mod5EP2cAimVUVndV4q76JAJJRJd0uRRQQg= ec.pub';

const blobOf = (publicKeyLine: string) => Buffer.from(publicKeyLine.split(' ')[1]!, 'base64');
const parse = (pem: string) => utils.parseKey(pem) as ParsedKey;

describe('parseCertificate', () => {
  it.each([
    ['ed25519', ED_CERT, ED_PUB, 'ssh-ed25519', 'alice-id', ['alice', 'bob']],
    ['rsa', RSA_CERT, RSA_PUB, 'ssh-rsa', 'rsa-id', ['carol']],
    ['ecdsa', EC_CERT, EC_PUB, 'ecdsa-sha2-nistp256', 'ec-id', ['dave']],
  ])('%s: type, certified key and fields', (_, text, pub, keyType, keyId, principals) => {
    const cert = parseCertificate(text);
    expect(cert.type).toBe(`${keyType}-cert-v01@openssh.com`);
    expect(cert.keyType).toBe(keyType);
    expect(cert.publicKey.equals(blobOf(pub))).toBe(true); // same bytes as ssh-keygen's .pub
    expect(cert.blob.equals(blobOf(text))).toBe(true);
    expect(cert).toMatchObject({ kind: 'user', keyId, principals });
  });

  it('reads validity and host certificates; principals play no part in parsing', () => {
    expect(parseCertificate(ED_CERT)).toMatchObject({ validAfter: 1735689600n, validBefore: 2051222400n }); // 2025-01-01, 2035-01-01 UTC
    expect(parseCertificate(RSA_CERT)).toMatchObject({ validAfter: 0n, validBefore: 2n ** 64n - 1n });
    expect(parseCertificate(ED_HOST_CERT)).toMatchObject({ kind: 'host', principals: ['node1'] });
    expect(parseCertificate(`# comment\n\n${ED_CERT}`).keyId).toBe('alice-id');
  });

  it('rejects what is not a certificate', () => {
    expect(() => parseCertificate(ED_PUB)).toThrow(/not an OpenSSH certificate/);
    expect(() => parseCertificate('')).toThrow(/not an OpenSSH certificate/);
    expect(() => parseCertificate(ED_CERT.replace('ssh-ed25519-cert', 'ssh-rsa-cert'))).toThrow(/certificate data is ssh-ed25519-cert/);
    const [type, b64] = ED_CERT.split(' ');
    const truncated = Buffer.from(b64!, 'base64').subarray(0, 100).toString('base64');
    expect(() => parseCertificate(`${type} ${truncated}`)).toThrow(/truncated/);
  });
});

describe('certifiedKey', () => {
  it('presents the certificate as the public half of the private key', () => {
    const cert = parseCertificate(ED_CERT);
    const key = certifiedKey(parse(ED_KEY), cert);
    expect(key.getPublicSSH().equals(cert.blob)).toBe(true);
    expect(key.isPrivateKey()).toBe(true);
    expect(key.type).toBe('ssh-ed25519');
    expect(utils.parseKey(key)).toBe(key); // ssh2 takes it as an already parsed key
  });

  it('refuses a certificate issued for another key', () => {
    const other = parse(utils.generateKeyPairSync('ed25519').private);
    expect(() => certifiedKey(other, parseCertificate(ED_CERT))).toThrow(/do not match/);
    expect(() => certifiedKey(parse(RSA_KEY), parseCertificate(ED_CERT))).toThrow(/do not match/);
  });

  it('certificateAuth turns problems into ConfigErrors naming the files', async () => {
    const endpoint = { user: 'u', sshKeyPath: '~/.ssh/id_rsa', sshCertPath: '~/.ssh/id_ed25519-cert.pub' };
    const dir = mkdtempSync(path.join(os.tmpdir(), 'rkets-cert-'));
    const certPath = path.join(dir, 'id_ed25519-cert.pub');
    writeFileSync(certPath, ED_CERT);
    const mismatch = certificateAuth(endpoint, RSA_KEY, certPath, 'node 10.0.0.1');
    await expect(mismatch).rejects.toThrow(ConfigError);
    await expect(mismatch).rejects.toThrow(
      'node 10.0.0.1: ssh: certificate ~/.ssh/id_ed25519-cert.pub (ssh-ed25519) was not issued for private key ~/.ssh/id_rsa',
    );
    await expect(certificateAuth({ ...endpoint, sshCert: ED_CERT }, ED_KEY, undefined, 'n')).resolves.toMatchObject([
      { type: 'publickey', username: 'u' },
    ]);
    await expect(certificateAuth({ ...endpoint, sshCert: ED_HOST_CERT }, ED_KEY, undefined, 'n')).rejects.toThrow(
      'n: ssh: inline ssh_cert is a host certificate, not a user certificate',
    );
    await expect(certificateAuth(endpoint, ED_KEY, '/nonexistent/cert.pub', 'n')).rejects.toThrow(
      'n: ssh: cannot read certificate ~/.ssh/id_ed25519-cert.pub: no such file',
    );
    rmSync(dir, { recursive: true });
  });
});

describe('USERAUTH_REQUEST with a certificate', () => {
  // Drives ssh2's (wrapped) Protocol#authPK on a stand-in for the protocol state and decodes what it sends.
  const { prototype } = createRequire(import.meta.url)('ssh2/lib/protocol/Protocol.js') as {
    prototype: { authPK(user: string, key: unknown, algo?: string, sign?: (data: Buffer, cb: (sig: Buffer) => void) => void): void };
  };
  function send(key: ParsedKey, algo: string | undefined, hash: string | undefined) {
    const sent: Buffer[] = [];
    const proto = {
      _server: false,
      _kex: { sessionID: randomBytes(32) },
      _packetRW: { write: { allocStart: 0, alloc: (n: number) => Buffer.alloc(n), finalize: (p: Buffer) => p } },
      _authsQueue: [] as string[],
      _cipher: { encrypt: (p: Buffer) => sent.push(p) },
    };
    let signed: Buffer | undefined;
    prototype.authPK.call(proto, 'alice', key, algo, (data, cb) => cb(key.sign((signed = data), hash)));
    return { packet: sent[0]!, signed: signed!, sessionID: proto._kex.sessionID, queue: proto._authsQueue };
  }
  /** Decodes SSH_MSG_USERAUTH_REQUEST "publickey" with signature (RFC 4252 §7). */
  function fields(packet: Buffer) {
    const reader = (buf: Buffer, p = 0) => ({
      byte: () => buf[p++],
      str: () => buf.subarray(p + 4, (p += 4 + buf.readUInt32BE(p))),
      done: () => p === buf.length,
    });
    const r = reader(packet);
    const [type, user, service, method, hasSig, algo, blob] = [r.byte(), String(r.str()), String(r.str()), String(r.str()), r.byte(), String(r.str()), r.str()];
    const s = reader(r.str());
    const [sigAlgo, sig] = [String(s.str()), s.str()];
    return { type, user, service, method, hasSig, algo, blob, sigAlgo, sig, end: r.done() && s.done() };
  }

  it.each([
    ['ed25519', ED_KEY, ED_CERT, undefined, undefined, 'ssh-ed25519'],
    ['rsa-sha2-512', RSA_KEY, RSA_CERT, 'rsa-sha2-512', 'sha512', 'rsa-sha2-512'],
  ])('%s: certificate algorithm in the request, plain one in the signature', (_, pem, certText, algo, hash, sigAlgo) => {
    const cert = parseCertificate(certText);
    const plain = parse(pem);
    const { packet, signed, sessionID, queue } = send(certifiedKey(plain, cert), algo, hash);
    const f = fields(packet);
    expect(f).toMatchObject({ type: 50, user: 'alice', service: 'ssh-connection', method: 'publickey', hasSig: 1 });
    expect(f.algo).toBe(`${sigAlgo}-cert-v01@openssh.com`);
    expect(f.blob.equals(cert.blob)).toBe(true);
    expect(f.sigAlgo).toBe(sigAlgo);
    expect(f.end).toBe(true);
    expect(queue).toEqual(['publickey']);
    // Signed data = string(session id) + the request before the signature (RFC 4252 §7).
    const head = packet.subarray(0, packet.length - (4 + 4 + sigAlgo.length + 4 + f.sig.length));
    expect(signed.equals(Buffer.concat([Buffer.from([0, 0, 0, 32]), sessionID, head]))).toBe(true);
    expect(verify(hash ?? null, signed, createPublicKey(plain.getPublicPEM()), f.sig)).toBe(true);
  });

  it('leaves keys without a certificate to ssh2', () => {
    const { packet } = send(parse(ED_KEY), undefined, undefined);
    const f = fields(packet);
    expect([f.algo, f.sigAlgo]).toEqual(['ssh-ed25519', 'ssh-ed25519']);
  });
});
