import { X509Certificate, createPrivateKey, randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import type { Readable } from 'node:stream';
import type Docker from 'dockerode';
import type { NodeConfig } from '../config/types.js';
import { OWNER_LABEL } from '../plan/container.js';
import type { TlsFiles } from '../plan/etcd.js';
import { removeContainerIfExists } from './containers.js';

/**
 * The TLS files etcd needs, read off a node through Docker's archive API (no shell and no
 * openssl needed on the node) and checked on the admin box with node:crypto, before a
 * restore touches anything (RKE #1928: expired certificates found after the wipe).
 */
export type NodeFile = { kind: 'file'; data: Buffer } | { kind: 'missing' } | { kind: 'link'; target: string };

/** Certificates and keys are a few KiB; anything bigger is not one. */
const MAX_FILE_BYTES = 1024 * 1024;
/** Certificates that expire within this many days are reported as a warning. */
const EXPIRY_WARNING_DAYS = 30;
const KUBERNETES_MOUNT = '/rke-ts/kubernetes';

/** Reads files below the node's `<prefix>/etc/kubernetes` (paths relative to it). */
export async function readKubernetesFiles(
  docker: Docker,
  carrierImage: string,
  kubernetesDir: string,
  relativePaths: string[],
): Promise<Map<string, NodeFile>> {
  const { default: tar } = await import('tar-stream');
  // Created, never started: only its bind is used, read-only.
  const carrier = await docker.createContainer({
    name: `etcd-restore-cert-reader-${randomBytes(4).toString('hex')}`,
    Image: carrierImage,
    Entrypoint: ['/bin/false'],
    Cmd: [],
    Labels: { [OWNER_LABEL]: 'snapshot-restore' },
    HostConfig: { Binds: [`${kubernetesDir}:${KUBERNETES_MOUNT}:ro`], NetworkMode: 'none' },
  });
  const files = new Map<string, NodeFile>();
  try {
    for (const relative of relativePaths) {
      let archive: Readable;
      try {
        archive = (await carrier.getArchive({ path: `${KUBERNETES_MOUNT}/${relative}` })) as unknown as Readable;
      } catch (error) {
        if ((error as { statusCode?: number }).statusCode === 404) {
          files.set(relative, { kind: 'missing' });
          continue;
        }
        throw error;
      }
      const extract = tar.extract();
      archive.pipe(extract);
      for await (const entry of extract) {
        if (entry.header.type === 'symlink') files.set(relative, { kind: 'link', target: entry.header.linkname ?? '' });
        else {
          const chunks: Buffer[] = [];
          let size = 0;
          for await (const chunk of entry) {
            size += (chunk as Buffer).length;
            if (size <= MAX_FILE_BYTES) chunks.push(chunk as Buffer);
          }
          files.set(relative, { kind: 'file', data: Buffer.concat(chunks) });
        }
        entry.resume();
        break;
      }
      archive.destroy();
    }
  } finally {
    await removeContainerIfExists(docker, carrier.id).catch(() => undefined);
  }
  return files;
}

export interface CertificateCheck {
  problems: string[];
  warnings: string[];
}

/** `/etc/kubernetes/ssl/x.pem` as seen in the etcd container → relative to /etc/kubernetes. */
export function relativeToKubernetesDir(containerPath: string): string {
  return containerPath.replace(/^\/etc\/kubernetes\//, '');
}

/**
 * What etcd on `node` needs: kube-ca, and its own kube-etcd certificate and key, parsable,
 * valid now, signed by kube-ca, the key matching, and covering the node's internal address
 * (its peers connect to https://<internal_address>:2380 and verify that).
 */
export function checkEtcdCertificates(
  files: Map<string, NodeFile>,
  node: NodeConfig,
  tls: TlsFiles,
  kubernetesDir: string,
  now: Date,
): CertificateCheck {
  const problems: string[] = [];
  const warnings: string[] = [];
  const shown = (containerPath: string) => `${kubernetesDir.replace(/\/$/, '')}/${relativeToKubernetesDir(containerPath)}`;
  const content = (containerPath: string): Buffer | undefined => {
    const file = files.get(relativeToKubernetesDir(containerPath));
    if (!file || file.kind === 'missing') problems.push(`${shown(containerPath)} is missing`);
    else if (file.kind === 'link') warnings.push(`${shown(containerPath)} is a symbolic link to ${file.target}; its content was not checked`);
    else return file.data;
    return undefined;
  };
  const certificate = (containerPath: string): X509Certificate | undefined => {
    const data = content(containerPath);
    if (!data) return undefined;
    try {
      const parsed = new X509Certificate(data);
      const notBefore = new Date(parsed.validFrom);
      const notAfter = new Date(parsed.validTo);
      if (now < notBefore) problems.push(`${shown(containerPath)} is not valid before ${notBefore.toISOString()}`);
      else if (now > notAfter) problems.push(`${shown(containerPath)} expired on ${notAfter.toISOString()}`);
      else if (notAfter.getTime() - now.getTime() < EXPIRY_WARNING_DAYS * 86_400_000) warnings.push(`${shown(containerPath)} expires on ${notAfter.toISOString()}`);
      return parsed;
    } catch (error) {
      problems.push(`${shown(containerPath)} is not a PEM certificate (${(error as Error).message})`);
      return undefined;
    }
  };

  const ca = certificate(tls.cacert);
  const cert = certificate(tls.cert);
  const keyData = content(tls.key);
  if (ca && cert && !(cert.checkIssued(ca) && cert.verify(ca.publicKey))) problems.push(`${shown(tls.cert)} is not signed by ${shown(tls.cacert)}`);
  if (cert) {
    const address = node.internalAddress;
    const covered = isIP(address) ? cert.checkIP(address) : cert.checkHost(address);
    if (covered === undefined) problems.push(`${shown(tls.cert)} does not cover the internal address ${address} (etcd peers would reject it)`);
  }
  if (keyData) {
    try {
      const key = createPrivateKey(keyData);
      if (cert && !cert.checkPrivateKey(key)) problems.push(`${shown(tls.key)} does not belong to ${shown(tls.cert)}`);
    } catch (error) {
      problems.push(`${shown(tls.key)} is not a PEM private key (${(error as Error).message})`);
    }
  }
  return { problems, warnings };
}
