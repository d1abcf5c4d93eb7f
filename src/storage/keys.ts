/**
 * Object keys. Snapshots live at `[folder/]<file name>` exactly like rke-tools and k3s put
 * them, so either tool can find what we upload and we can find theirs.
 */
import { randomBytes } from 'node:crypto';

import { UsageError } from '../errors.js';

/** Where uploads in progress live; listings skip it. See upload.ts for why. */
export const PARTIAL_DIR = '.rke-ts-partial';
/** k3s's sidecar metadata objects (`folder/.metadata/<name>`); listings skip it. */
export const K3S_METADATA_DIR = '.metadata';

/** "/backups//rke/" → "backups/rke". */
export function normalizeFolder(folder: string): string {
  return folder
    .split('/')
    .filter((segment) => segment !== '')
    .join('/');
}

/** "" or "folder/": what every key of this configuration starts with. */
export function folderPrefix(settings: { folder: string }): string {
  const folder = normalizeFolder(settings.folder);
  return folder === '' ? '' : `${folder}/`;
}

/** `[folder/]<fileName>`; fileName already carries `.zip` when the snapshot is compressed. */
export function objectKeyFor(settings: { folder: string }, fileName: string): string {
  if (fileName === '' || fileName.includes('/') || fileName === '.' || fileName === '..') {
    throw new UsageError(`invalid snapshot file name "${fileName}": it must be a non-empty name without "/"`);
  }
  return `${folderPrefix(settings)}${fileName}`;
}

/**
 * `[folder/].rke-ts-partial/<name>.<random>` for the upload of `finalKey`. Characters outside
 * [A-Za-z0-9._-] are replaced: the key is ours to choose, and a plain one needs no escaping in
 * the x-amz-copy-source header (RKE's default names contain ':' and '+', which some S3
 * servers decode inconsistently there).
 */
export function partialKeyFor(
  settings: { folder: string },
  finalKey: string,
  random: string = randomBytes(6).toString('hex'),
): string {
  const baseName = finalKey.slice(finalKey.lastIndexOf('/') + 1).replace(/[^A-Za-z0-9._-]/g, '_');
  return `${folderPrefix(settings)}${PARTIAL_DIR}/${baseName}.${random}`;
}

/** The snapshot name of a key under the configured folder, undefined for keys outside it. */
export function snapshotNameFromKey(settings: { folder: string }, key: string): string | undefined {
  const prefix = folderPrefix(settings);
  if (!key.startsWith(prefix)) return undefined;
  const name = key.slice(prefix.length);
  return name === '' ? undefined : name;
}

/** Our partial uploads and k3s's metadata sidecars are not snapshots. */
export function isInternalKey(settings: { folder: string }, key: string): boolean {
  const name = snapshotNameFromKey(settings, key);
  if (name === undefined) return true;
  const firstSegment = name.split('/')[0];
  return firstSegment === PARTIAL_DIR || firstSegment === K3S_METADATA_DIR || name.endsWith('/');
}

/** k3s's content types (#5833 fixed them): zip for compressed snapshots, octet-stream else. */
export function contentTypeFor(key: string): string {
  return key.endsWith('.zip') ? 'application/zip' : 'application/octet-stream';
}

/** `x-amz-copy-source` value: bucket and key, each segment percent-encoded as S3 requires. */
export function copySourceFor(bucket: string, key: string): string {
  return `${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`;
}
