/**
 * Object keys. Snapshots live at `[folder/]<file name>` exactly like rke-tools and k3s put
 * them, so either tool can find what we upload and we can find theirs.
 */
import { UsageError } from '../errors.js';

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

/** The snapshot name of a key under the configured folder, undefined for keys outside it. */
export function snapshotNameFromKey(settings: { folder: string }, key: string): string | undefined {
  const prefix = folderPrefix(settings);
  if (!key.startsWith(prefix)) return undefined;
  const name = key.slice(prefix.length);
  return name === '' ? undefined : name;
}

/**
 * Hidden keys are not snapshots, as hidden files are not on the nodes: k3s's `.metadata/`
 * sidecars, and any other tool's `.name` or `.dir/...` under the folder.
 */
export function isInternalKey(settings: { folder: string }, key: string): boolean {
  const name = snapshotNameFromKey(settings, key);
  if (name === undefined) return true;
  return name.startsWith('.') || name.endsWith('/');
}

/** k3s's content types (#5833 fixed them): zip for compressed snapshots, octet-stream else. */
export function contentTypeFor(key: string): string {
  return key.endsWith('.zip') ? 'application/zip' : 'application/octet-stream';
}

/** `x-amz-copy-source` value: bucket and key, each segment percent-encoded as S3 requires. */
export function copySourceFor(bucket: string, key: string): string {
  return `${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`;
}
