/**
 * User metadata stored on each snapshot object (x-amz-meta-*), so that a snapshot can be
 * verified and attributed from S3 alone: `sha256`, `size`, `node`, `cluster-name`, `created-at`.
 *
 * While an upload streams, its sha256 is not known yet: the object is created with
 * `upload: incomplete` instead, replaced by the full set once the stream has been hashed
 * (see upload.ts). An object still marked so is never restored from.
 */

export const METADATA_KEYS = {
  sha256: 'sha256',
  size: 'size',
  node: 'node',
  clusterName: 'cluster-name',
  createdAt: 'created-at',
  upload: 'upload',
} as const;

const INCOMPLETE = 'incomplete';

export interface SnapshotOrigin {
  /** Node (hostname_override) the snapshot was taken on. */
  node: string;
  clusterName: string;
  createdAt: Date;
}

export interface SnapshotMetadata extends Partial<SnapshotOrigin> {
  sha256?: string;
  size?: number;
  /** Marked by an upload that has not recorded its sha256 (yet, or ever: it failed). */
  incomplete?: boolean;
}

/** Header values must be printable ASCII; anything else is percent-encoded rather than lost. */
function headerSafe(value: string): string {
  return /^[\x20-\x7e]*$/.test(value) ? value : encodeURIComponent(value);
}

export function buildUserMetadata(origin: SnapshotOrigin, content: { sha256: string; size: number }): Record<string, string> {
  return {
    [METADATA_KEYS.sha256]: content.sha256,
    [METADATA_KEYS.size]: String(content.size),
    ...originMetadata(origin),
  };
}

/** What an upload is created with, before its content has been hashed. */
export function incompleteUserMetadata(origin: SnapshotOrigin, size: number | undefined): Record<string, string> {
  return {
    [METADATA_KEYS.upload]: INCOMPLETE,
    ...(size !== undefined ? { [METADATA_KEYS.size]: String(size) } : {}),
    ...originMetadata(origin),
  };
}

function originMetadata(origin: SnapshotOrigin): Record<string, string> {
  return {
    [METADATA_KEYS.node]: headerSafe(origin.node),
    [METADATA_KEYS.clusterName]: headerSafe(origin.clusterName),
    [METADATA_KEYS.createdAt]: origin.createdAt.toISOString(),
  };
}

/** Read what we (or a compatible tool) stored; malformed values are dropped, not trusted. */
export function parseUserMetadata(raw: Record<string, string> | undefined): SnapshotMetadata {
  const metadata: SnapshotMetadata = {};
  if (!raw) return metadata;
  // Servers differ in the case they return metadata names in.
  const lower = Object.fromEntries(Object.entries(raw).map(([key, value]) => [key.toLowerCase(), value]));
  const sha256 = lower[METADATA_KEYS.sha256]?.trim().toLowerCase();
  if (sha256 !== undefined && /^[0-9a-f]{64}$/.test(sha256)) metadata.sha256 = sha256;
  const size = lower[METADATA_KEYS.size];
  if (size !== undefined && /^\d+$/.test(size.trim())) metadata.size = Number(size.trim());
  const node = lower[METADATA_KEYS.node];
  if (node !== undefined) metadata.node = node;
  const clusterName = lower[METADATA_KEYS.clusterName];
  if (clusterName !== undefined) metadata.clusterName = clusterName;
  const createdAt = lower[METADATA_KEYS.createdAt];
  if (createdAt !== undefined && !Number.isNaN(Date.parse(createdAt))) metadata.createdAt = new Date(createdAt);
  if (lower[METADATA_KEYS.upload]?.trim().toLowerCase() === INCOMPLETE) metadata.incomplete = true;
  return metadata;
}
