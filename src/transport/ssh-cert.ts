/**
 * OpenSSH user certificates (ssh_cert / ssh_cert_path) for ssh2 publickey authentication.
 *
 * ssh2 1.17 cannot offer a certificate by itself: Protocol#authPK() writes ONE algorithm name
 * both as the public-key algorithm of SSH_MSG_USERAUTH_REQUEST and inside the signature blob.
 * With a certificate (PROTOCOL.certkeys) the request must name the certificate algorithm
 * (`ssh-ed25519-cert-v01@openssh.com`, `rsa-sha2-256-cert-v01@openssh.com`, ...) and carry the
 * certificate blob, while the signature blob must name the plain signature algorithm
 * (`ssh-ed25519`, `rsa-sha2-256`, ...); sshd rejects anything else. Every ssh2 publickey path
 * (private key, authHandler, custom BaseAgent) ends in that same authPK(), so no public option
 * can express this. We therefore wrap authPK() once, and the wrapper only acts on key objects
 * created by certifiedKey() below (marked with a private symbol); every other key goes to the
 * original untouched. The certified key is the parsed private key with getPublicSSH() returning
 * the certificate, so ssh2's own logic still picks the RSA hash from server-sig-algs and signs.
 */
import { createRequire } from 'node:module';
import { readFile } from 'node:fs/promises';
import ssh2, { type ParsedKey, type PublicKeyAuthMethod } from 'ssh2';
import { ConfigError } from '../errors.js';

// ssh2 is CommonJS; Node's ESM loader cannot see `utils` as a named export.
const { utils } = ssh2;

const CERT_SUFFIX = '-cert-v01@openssh.com';

/** Certified key type → number of public-key fields that follow the nonce (same order as the plain key). */
const KEY_FIELDS: Record<string, number> = {
  'ssh-ed25519': 1, // pk
  'ssh-rsa': 2, // e, n
  'ecdsa-sha2-nistp256': 2, // curve, Q
  'ecdsa-sha2-nistp384': 2,
  'ecdsa-sha2-nistp521': 2,
};

export interface SshCertificate {
  /** Certificate type as written in the blob, e.g. `ssh-ed25519-cert-v01@openssh.com`. */
  type: string;
  /** Type of the certified key, e.g. `ssh-ed25519` (also its default signature algorithm). */
  keyType: string;
  /** The whole certificate: what goes into the USERAUTH_REQUEST. */
  blob: Buffer;
  /** The certified public key in plain SSH wire format (`string type, fields...`). */
  publicKey: Buffer;
  kind: 'user' | 'host';
  keyId: string;
  principals: string[];
  /** Seconds since the epoch; 0 and 2^64-1 mean "forever". Checked by the server, not here. */
  validAfter: bigint;
  validBefore: bigint;
}

/** Minimal reader for the SSH wire format (RFC 4251 §5). */
class WireReader {
  private offset = 0;
  constructor(private readonly buf: Buffer) {}
  get done(): boolean {
    return this.offset === this.buf.length;
  }
  private take(n: number): Buffer {
    if (this.offset + n > this.buf.length) throw new Error('truncated certificate');
    const out = this.buf.subarray(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }
  uint32(): number {
    return this.take(4).readUInt32BE(0);
  }
  uint64(): bigint {
    return this.take(8).readBigUInt64BE(0);
  }
  bytes(): Buffer {
    return this.take(this.uint32());
  }
  string(): string {
    return this.bytes().toString('utf8');
  }
  /** Raw bytes between two positions, to copy fields verbatim. */
  mark(): number {
    return this.offset;
  }
  since(mark: number): Buffer {
    return this.buf.subarray(mark, this.offset);
  }
}

function sshString(data: Buffer | string): Buffer {
  const body = typeof data === 'string' ? Buffer.from(data) : data;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  return Buffer.concat([len, body]);
}

/** Parses OpenSSH certificate text (`<type> <base64> [comment]`, as in a `*-cert.pub` file). */
export function parseCertificate(text: string): SshCertificate {
  const line = text.split(/\r?\n/).map((l) => l.trim()).find((l) => l && !l.startsWith('#'));
  const [textType, base64] = line?.split(/\s+/) ?? [];
  if (!textType || !base64 || !textType.endsWith(CERT_SUFFIX)) {
    throw new Error('not an OpenSSH certificate (expected "<type>-cert-v01@openssh.com AAAA...")');
  }
  const blob = Buffer.from(base64, 'base64');
  const r = new WireReader(blob);
  const type = r.string();
  if (type !== textType) throw new Error(`certificate data is ${type}, text says ${textType}`);
  const keyType = type.slice(0, -CERT_SUFFIX.length);
  const fields = KEY_FIELDS[keyType];
  if (fields === undefined) throw new Error(`unsupported certificate type ${type}`);
  r.bytes(); // nonce
  const start = r.mark();
  for (let i = 0; i < fields; i++) r.bytes();
  const publicKey = Buffer.concat([sshString(keyType), r.since(start)]);
  r.uint64(); // serial
  const kindCode = r.uint32();
  const keyId = r.string();
  const principalList = new WireReader(r.bytes());
  const principals: string[] = [];
  while (!principalList.done) principals.push(principalList.string());
  const validAfter = r.uint64();
  const validBefore = r.uint64();
  for (let i = 0; i < 5; i++) r.bytes(); // critical options, extensions, reserved, CA key, signature
  if (!r.done || (kindCode !== 1 && kindCode !== 2)) throw new Error('malformed certificate');
  return { type, keyType, blob, publicKey, kind: kindCode === 1 ? 'user' : 'host', keyId, principals, validAfter, validBefore };
}

// ---- the authPK() wrapper (see the header comment) ----------------------------------------

type SignCallback = (data: Buffer, done: (signature: Buffer) => void) => void;
/** The ssh2 Protocol internals the wrapper uses; the integration test pins them down. */
interface ProtocolInternals {
  _server: boolean;
  _kex: { sessionID: Buffer };
  _packetRW: { write: { allocStart: number; alloc(size: number): Buffer; finalize(packet: Buffer): Buffer } };
  _authsQueue: string[];
  _debug?: (message: string) => void;
}
type AuthPK = (this: ProtocolInternals, user: string, key: unknown, algo?: string | SignCallback, sign?: SignCallback) => void;

const CERT = Symbol('rke-ts ssh certificate');
const USERAUTH_REQUEST = 50;
let installed = false;

function installAuthPKWrapper(): void {
  if (installed) return;
  const require = createRequire(import.meta.url);
  const Protocol = require('ssh2/lib/protocol/Protocol.js') as { prototype: { authPK: AuthPK } };
  const { sendPacket, convertSignature } = require('ssh2/lib/protocol/utils.js') as {
    sendPacket(proto: ProtocolInternals, packet: Buffer): void;
    convertSignature(signature: Buffer, keyType: string): Buffer | false;
  };
  const original = Protocol.prototype.authPK;
  Protocol.prototype.authPK = function authPK(this: ProtocolInternals, user, key, algo, sign) {
    const cert = (key as { [CERT]?: SshCertificate } | null)?.[CERT];
    if (!cert || this._server) return original.call(this, user, key, algo, sign);
    if (typeof algo === 'function') [sign, algo] = [algo, undefined];
    const sigAlgo = algo ?? cert.keyType; // ssh2 passes rsa-sha2-256/512 for RSA keys
    const request = (signed: boolean) =>
      Buffer.concat([
        Buffer.from([USERAUTH_REQUEST]),
        sshString(user),
        sshString('ssh-connection'),
        sshString('publickey'),
        Buffer.from([signed ? 1 : 0]),
        sshString(sigAlgo + CERT_SUFFIX),
        sshString(cert.blob),
      ]);
    const send = (payload: Buffer) => {
      const writer = this._packetRW.write;
      const packet = writer.alloc(payload.length);
      packet.set(payload, writer.allocStart);
      this._authsQueue.push('publickey');
      this._debug?.(`Outbound: Sending USERAUTH_REQUEST (publickey ${sigAlgo}${CERT_SUFFIX}${sign ? '' : ' -- check'})`);
      sendPacket(this, writer.finalize(packet));
    };
    if (!sign) return send(request(false));
    const payload = request(true);
    // Signed data: session id, then the request up to here (RFC 4252 §7).
    sign(Buffer.concat([sshString(this._kex.sessionID), payload]), (signature) => {
      const raw = convertSignature(signature, cert.keyType);
      if (raw === false) throw new Error('Error while converting handshake signature');
      send(Buffer.concat([payload, sshString(Buffer.concat([sshString(sigAlgo), sshString(raw)]))]));
    });
  };
  installed = true;
}

/**
 * The private key, presented with the certificate as its public half. Throws when the
 * certificate was issued for a different key (as Go's ssh.NewCertSigner does).
 */
export function certifiedKey(privateKey: ParsedKey, cert: SshCertificate): ParsedKey {
  if (!privateKey.getPublicSSH().equals(cert.publicKey)) throw new Error('certificate and private key do not match');
  installAuthPKWrapper();
  // Inherit everything (sign(), isPrivateKey(), ssh2's internal symbols) from the parsed key.
  return Object.create(privateKey, {
    getPublicSSH: { value: () => cert.blob },
    [CERT]: { value: cert },
  }) as ParsedKey;
}

/**
 * authHandler for ssh_cert / ssh_cert_path: one publickey attempt with the certified key (RKE
 * offers only the certificate signer too). `certPath` is ssh_cert_path with `~` expanded;
 * inline ssh_cert wins over it, as ssh_key does over ssh_key_path.
 */
export async function certificateAuth(
  endpoint: { user: string; sshCert?: string; sshCertPath?: string; sshKey?: string; sshKeyPath: string },
  privateKeyData: string | Buffer,
  certPath: string | undefined,
  label: string,
): Promise<PublicKeyAuthMethod[]> {
  const certName = endpoint.sshCert ? 'inline ssh_cert' : `certificate ${endpoint.sshCertPath}`;
  const keyName = endpoint.sshKey ? 'inline ssh_key' : `private key ${endpoint.sshKeyPath}`;
  let text = endpoint.sshCert;
  if (!text) {
    try {
      text = await readFile(certPath ?? '', 'utf8');
    } catch (error) {
      const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : String((error as Error).message);
      throw new ConfigError(`${label}: ssh: cannot read ${certName}: ${reason}`, { cause: error, hint: 'check ssh_cert_path in cluster.yml' });
    }
  }
  let cert: SshCertificate;
  try {
    cert = parseCertificate(text);
  } catch (error) {
    throw new ConfigError(`${label}: ssh: invalid ${certName}: ${(error as Error).message}`, { cause: error });
  }
  if (cert.kind !== 'user') {
    throw new ConfigError(`${label}: ssh: ${certName} is a host certificate, not a user certificate`);
  }
  const parsed = utils.parseKey(privateKeyData) as ParsedKey | ParsedKey[] | Error;
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key || key instanceof Error || !key.isPrivateKey()) {
    const reason = key instanceof Error ? key.message : 'no private key found';
    throw new ConfigError(`${label}: ssh: cannot parse ${keyName}: ${reason}`, { cause: key });
  }
  try {
    return [{ type: 'publickey', username: endpoint.user, key: certifiedKey(key, cert) }];
  } catch (error) {
    throw new ConfigError(`${label}: ssh: ${certName} (${cert.keyType}) was not issued for ${keyName}`, {
      cause: error,
      hint: 'ssh_cert/ssh_cert_path must be the certificate of the key in ssh_key/ssh_key_path',
    });
  }
}
