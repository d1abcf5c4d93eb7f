/**
 * Load the CA bundle for a private S3 endpoint.
 *
 * Accepted forms, so that both tools' habits work:
 * - RKE cluster.yml `custom_ca`: PEM text (a `|-` block, possibly several certificates).
 * - rke-tools `--s3-endpoint-ca`: base64 of the PEM (that is what RKE passes to the container).
 * - RKE CLI `--s3-endpoint-ca`: a file path.
 * - k3s `--s3-endpoint-ca`: a space-separated list, each item base64 PEM or a file path.
 *
 * Unlike RKE (which only warns when the file can't be read) an unusable CA is an error: running
 * on without it would fail later with a far less clear TLS message, or not at all with
 * --s3-skip-ssl-verify hiding it.
 */
import { X509Certificate } from 'node:crypto';

export type ReadTextFile = (path: string) => string;

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;
const BASE64_TEXT = /^[A-Za-z0-9+/_-]+={0,2}$/;

export interface CaLoadFailure {
  /** What is wrong, ready to follow the option name: `--s3-endpoint-ca: <reason>`. */
  reason: string;
}

/** Returns one PEM string per certificate, each parsed successfully by OpenSSL. */
export function loadEndpointCa(value: string, readFile: ReadTextFile): string[] | CaLoadFailure {
  const text = value.trim();
  if (text === '') return { reason: 'is empty' };
  if (text.includes('-----BEGIN')) return certificatesIn(text, 'the PEM text');

  const certificates: string[] = [];
  for (const item of text.split(/\s+/)) {
    const fromBase64 = decodeBase64Pem(item);
    const loaded = fromBase64 !== undefined ? certificatesIn(fromBase64, 'the base64 PEM') : readCaFile(item, readFile);
    if (!Array.isArray(loaded)) return loaded;
    certificates.push(...loaded);
  }
  return certificates;
}

function readCaFile(path: string, readFile: ReadTextFile): string[] | CaLoadFailure {
  let content: string;
  try {
    content = readFile(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    return {
      reason: `"${abbreviate(path)}" is not PEM text, base64-encoded PEM or a readable file (${code})`,
    };
  }
  const decoded = content.includes('-----BEGIN') ? content : decodeBase64Pem(content.trim());
  return certificatesIn(decoded ?? content, `file ${path}`);
}

function decodeBase64Pem(item: string): string | undefined {
  const compact = item.replace(/\s+/g, '');
  if (!BASE64_TEXT.test(compact)) return undefined;
  const decoded = Buffer.from(compact, compact.includes('-') || compact.includes('_') ? 'base64url' : 'base64').toString('utf8');
  return decoded.includes('-----BEGIN') ? decoded : undefined;
}

function certificatesIn(pemText: string, where: string): string[] | CaLoadFailure {
  const blocks = pemText.match(PEM_BLOCK) ?? [];
  if (blocks.length === 0) return { reason: `${where} contains no "BEGIN CERTIFICATE" block` };
  for (const [index, block] of blocks.entries()) {
    try {
      new X509Certificate(block);
    } catch (error) {
      const position = blocks.length > 1 ? ` (certificate ${index + 1} of ${blocks.length})` : '';
      return { reason: `${where} is not a valid X.509 certificate${position}: ${(error as Error).message}` };
    }
  }
  return blocks;
}

function abbreviate(text: string): string {
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** Short human summary of the loaded CA, for logs ("CN=test-ca"), never the whole PEM. */
export function describeCertificates(pems: readonly string[]): string {
  return pems
    .map((pem) => {
      try {
        return new X509Certificate(pem).subject.replace(/\n/g, ', ');
      } catch {
        return 'unparsable certificate';
      }
    })
    .join('; ');
}
