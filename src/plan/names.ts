import { UsageError } from '../errors.js';

/** Where RKE keeps snapshots on every etcd node. */
export const SNAPSHOT_DIR = '/opt/rke/etcd-snapshots';

function pad(value: number, width = 2): string {
  return String(Math.trunc(Math.abs(value))).padStart(width, '0');
}

/**
 * Go's time.Format(time.RFC3339) for `date` shifted to a zone `offsetMinutes` east of UTC:
 * `2024-05-01T12:00:00+02:00`, or `...Z` when the offset is 0 (as Go prints UTC).
 */
export function formatRfc3339(date: Date, offsetMinutes: number): string {
  const shifted = new Date(date.getTime() + offsetMinutes * 60_000);
  const body =
    `${shifted.getUTCFullYear()}-${pad(shifted.getUTCMonth() + 1)}-${pad(shifted.getUTCDate())}` +
    `T${pad(shifted.getUTCHours())}:${pad(shifted.getUTCMinutes())}:${pad(shifted.getUTCSeconds())}`;
  if (offsetMinutes === 0) return `${body}Z`;
  const sign = offsetMinutes > 0 ? '+' : '-';
  return `${body}${sign}${pad(offsetMinutes / 60)}:${pad(offsetMinutes % 60)}`;
}

/** The local zone's offset east of UTC at `date`, in minutes. */
export function localOffsetMinutes(date: Date): number {
  return -date.getTimezoneOffset();
}

/** RKE's default one-time snapshot name: `rke_etcd_snapshot_<RFC3339 local time>`. */
export function defaultSnapshotName(now: Date, offsetMinutes = localOffsetMinutes(now)): string {
  return `rke_etcd_snapshot_${formatRfc3339(now, offsetMinutes)}`;
}

/**
 * A snapshot name becomes a file name on every node and an S3 key, so anything that could
 * escape /opt/rke/etcd-snapshots is refused before a node is touched.
 */
export function validateSnapshotName(name: string, option = '--name'): string {
  const problem =
    name === ''
      ? 'must not be empty'
      : name.includes('\0')
        ? 'must not contain a NUL byte'
        : name.includes('/') || name.includes('\\')
          ? 'must not contain a path separator'
          : name.includes('..')
            ? 'must not contain ".."'
            : name.startsWith('.')
              ? 'must not start with "."'
              : name.length > 200
                ? 'must be at most 200 characters'
                : undefined;
  if (problem) {
    throw new UsageError(`${option} ${JSON.stringify(name)}: a snapshot name ${problem}`, {
      hint: 'use a plain file name such as rke_etcd_snapshot_2024-05-01',
    });
  }
  return name;
}

/** Snapshot names given as `NAME.zip` refer to the same snapshot as `NAME`. */
export function stripZipSuffix(name: string): string {
  return name.endsWith('.zip') ? name.slice(0, -'.zip'.length) : name;
}
