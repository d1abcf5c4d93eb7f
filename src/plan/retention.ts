/**
 * Which snapshots a prune removes: pure selection over the files of one place (one etcd
 * node's /opt/rke/etcd-snapshots, or one S3 bucket+folder). Places are pruned separately,
 * so every node keeps its own newest N and S3 keeps its newest N (k3s #3178).
 *
 * Names carry their own time, in one of the formats RKE and k3s write:
 *   rke_etcd_snapshot_2024-05-01T12:00:00+02:00   RKE one-time (snapshot-save default)
 *   2024-05-01T12:00:00Z_etcd                      RKE recurring (rke-tools, snapshot-schedule)
 *   2024-05-01T12-00-00Z_etcd                      the same with --safe-timestamp
 *   on-demand-node1-1714564800                     k3s: <name>-<node>-<unix seconds>
 * each optionally with `.zip`. A name without a readable time falls back to the file's mtime
 * (S3: LastModified), as k3s does.
 */
import { UsageError } from '../errors.js';
import { parseGoDuration } from '../storage/go-duration.js';
import { isInternalKey, snapshotNameFromKey } from '../storage/keys.js';
import { stripZipSuffix } from './names.js';

/** Names scheduled by snapshot-schedule and by RKE's etcd-rolling-snapshots: `<RFC3339>_etcd`. */
export const RECURRING_SUFFIX = '_etcd';
/** RKE's default one-time snapshot names start with this (the prune default, as k3s's `on-demand`). */
export const DEFAULT_PRUNE_PREFIX = 'rke_etcd_snapshot_';
/** RKE's default `backup_config.retention`, used when cluster.yml has no backup_config. */
export const DEFAULT_RETENTION_COUNT = 6;

/**
 * The snapshots a prune may touch: names starting with a prefix (k3s `--name`, RKE one-time
 * names), or RKE's recurring `<RFC3339>_etcd` names, which have no common prefix.
 */
export type RetentionScope = { kind: 'prefix'; prefix: string } | { kind: 'recurring' };

export interface RetentionPolicy {
  scope: RetentionScope;
  /** Keep the newest `keep` snapshots (RKE backup_config.retention, k3s --etcd-snapshot-retention). */
  keep?: number;
  /** Remove snapshots older than this (RKE's legacy services.etcd.retention, e.g. 72h). */
  maxAgeMs?: number;
}

/** One file of a place, as listed there. */
export interface PlaceFile {
  name: string;
  /** mtime on a node, LastModified in S3. */
  modified: Date;
}

/** A snapshot in one place: `<base>` and/or `<base>.zip`, which are the same snapshot. */
export interface SnapshotGroup {
  base: string;
  files: string[];
  time: Date;
  timeFrom: 'name' | 'modified';
}

export type DeletionReason = 'count' | 'age';

export interface RetentionSelection {
  /** Newest first. */
  kept: SnapshotGroup[];
  /** Newest first; each with why it goes. */
  deleted: Array<SnapshotGroup & { reasons: DeletionReason[] }>;
  /** Files the policy never looks at: other names, hidden or partial files. */
  untouched: string[];
}

const RFC3339_IN_NAME =
  /(\d{4})-(\d{2})-(\d{2})T(\d{2})[:-](\d{2})[:-](\d{2})(?:\.(\d+))?(Z|[+-]\d{2}(?:[:-]?\d{2})?)/;
const K3S_UNIX_SUFFIX = /-(\d{9,12})$/;

/** Date of an RFC3339 timestamp (colons or, with safe_timestamp, dashes), checking every field. */
function parseRfc3339Match(match: RegExpExecArray): Date | undefined {
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const fraction = match[7] ? Number(`0.${match[7]}`) * 1000 : 0;
  const zone = match[8]!;
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) return undefined;
  let offsetMinutes = 0;
  if (zone !== 'Z') {
    const digits = zone.slice(1).replace(/[:-]/, '');
    const hours = Number(digits.slice(0, 2));
    const minutes = digits.length > 2 ? Number(digits.slice(2, 4)) : 0;
    if (hours > 23 || minutes > 59) return undefined;
    offsetMinutes = (zone.startsWith('-') ? -1 : 1) * (hours * 60 + minutes);
  }
  const utc = Date.UTC(year, month - 1, day, hour, minute, Math.min(second, 59), fraction);
  // Date.UTC rolls 31 February over into March; such a name is not a timestamp.
  if (new Date(utc).getUTCDate() !== day) return undefined;
  return new Date(utc - offsetMinutes * 60_000);
}

/**
 * The time a snapshot name carries, or undefined. An RFC3339 timestamp anywhere in the name
 * wins (RKE); otherwise k3s's unix seconds after the last `-`. Unix times need at least nine
 * digits (2001 onwards), so a name such as `backup-2` is not read as 1970.
 */
export function snapshotTimeFromName(name: string): Date | undefined {
  const base = stripZipSuffix(name);
  const rfc = RFC3339_IN_NAME.exec(base);
  if (rfc) {
    const date = parseRfc3339Match(rfc);
    if (date) return date;
  }
  const unix = K3S_UNIX_SUFFIX.exec(base);
  return unix ? new Date(Number(unix[1]) * 1000) : undefined;
}

/**
 * rke-tools' rule for recurring snapshots: the name (without `.zip`) ends in `_etcd` and the
 * text before the first `_` is a timestamp. Manual `rke_etcd_snapshot_*` names never match.
 */
export function isRecurringName(name: string): boolean {
  const base = stripZipSuffix(name);
  if (!base.endsWith(RECURRING_SUFFIX)) return false;
  const head = base.slice(0, base.indexOf('_'));
  const match = RFC3339_IN_NAME.exec(head);
  return match !== null && match.index === 0 && match[0] === head && parseRfc3339Match(match) !== undefined;
}

/** Files no prune ever considers: hidden (our `.rke-ts-incoming-*`), nested, or etcdctl's `.part`. */
export function isNeverPruned(name: string): boolean {
  return name === '' || name.startsWith('.') || name.includes('/') || name.endsWith('.part');
}

export function inScope(scope: RetentionScope, name: string): boolean {
  if (isNeverPruned(name)) return false;
  return scope.kind === 'prefix' ? name.startsWith(scope.prefix) : isRecurringName(name);
}

export function describeScope(scope: RetentionScope): string {
  return scope.kind === 'prefix' ? `prefix "${scope.prefix}"` : `recurring names <timestamp>${RECURRING_SUFFIX}`;
}

export function describePolicy(policy: RetentionPolicy): string {
  const parts: string[] = [];
  if (policy.keep !== undefined) parts.push(`retention=${policy.keep}`);
  if (policy.maxAgeMs !== undefined) parts.push(`max-age=${formatHours(policy.maxAgeMs)}`);
  return `${parts.join(' ')} with ${describeScope(policy.scope)}`;
}

function formatHours(ms: number): string {
  const hours = ms / 3_600_000;
  return Number.isInteger(hours) ? `${hours}h` : `${Math.round(ms / 1000)}s`;
}

/** Groups a place's files into snapshots; `X` and `X.zip` are one snapshot. */
export function groupSnapshots(files: PlaceFile[]): SnapshotGroup[] {
  const groups = new Map<string, { files: string[]; modified: number }>();
  for (const file of files) {
    const base = stripZipSuffix(file.name);
    const group = groups.get(base) ?? { files: [], modified: 0 };
    group.files.push(file.name);
    group.modified = Math.max(group.modified, file.modified.getTime());
    groups.set(base, group);
  }
  return [...groups].map(([base, group]) => {
    const fromName = snapshotTimeFromName(base);
    return {
      base,
      files: group.files.sort(),
      time: fromName ?? new Date(group.modified),
      timeFrom: fromName ? ('name' as const) : ('modified' as const),
    };
  });
}

/** Newest first; equal times are ordered by name (descending) so the result is deterministic. */
function newestFirst(a: SnapshotGroup, b: SnapshotGroup): number {
  return b.time.getTime() - a.time.getTime() || (a.base < b.base ? 1 : a.base > b.base ? -1 : 0);
}

export function checkPolicy(policy: RetentionPolicy): void {
  if (policy.keep === undefined && policy.maxAgeMs === undefined) {
    throw new UsageError('a retention policy needs --retention N or --max-age DURATION');
  }
  if (policy.keep !== undefined && (!Number.isInteger(policy.keep) || policy.keep < 1)) {
    throw new UsageError(`--retention ${policy.keep}: must be a whole number of snapshots, at least 1`);
  }
  if (policy.maxAgeMs !== undefined && !(policy.maxAgeMs > 0)) {
    throw new UsageError('--max-age must be a positive duration such as 72h');
  }
  if (policy.scope.kind === 'prefix' && policy.scope.prefix === '') {
    throw new UsageError('--name: the prefix must not be empty (it would match every snapshot)');
  }
}

/**
 * Splits one place's files into kept and deleted snapshots. Count: everything after the newest
 * `keep`. Age: everything older than `now - maxAgeMs`, except the newest snapshot of the place,
 * so a cluster whose saves have failed for days never loses its last snapshot to a prune.
 */
export function selectForDeletion(files: PlaceFile[], policy: RetentionPolicy, now: Date): RetentionSelection {
  checkPolicy(policy);
  const untouched = files.filter((file) => !inScope(policy.scope, file.name)).map((file) => file.name).sort();
  const groups = groupSnapshots(files.filter((file) => inScope(policy.scope, file.name))).sort(newestFirst);
  const selection: RetentionSelection = { kept: [], deleted: [], untouched };
  const cutoff = policy.maxAgeMs === undefined ? undefined : now.getTime() - policy.maxAgeMs;
  groups.forEach((group, index) => {
    const reasons: DeletionReason[] = [];
    if (policy.keep !== undefined && index >= policy.keep) reasons.push('count');
    if (cutoff !== undefined && index > 0 && group.time.getTime() < cutoff) reasons.push('age');
    if (reasons.length > 0) selection.deleted.push({ ...group, reasons });
    else selection.kept.push(group);
  });
  return selection;
}

/**
 * The file name an S3 key stands for in a place, with the folder stripped before anything is
 * parsed (rancher#24544: with a folder, retention once parsed `folder/...` and deleted nothing).
 * Keys outside the folder, nested keys and hidden keys (k3s's `.metadata/`) give
 * undefined: they are never snapshots of the place.
 */
export function placeFileNameOfKey(folder: string, key: string): string | undefined {
  const settings = { folder };
  if (isInternalKey(settings, key)) return undefined;
  const name = snapshotNameFromKey(settings, key);
  return name === undefined || name.includes('/') ? undefined : name;
}

export interface RetentionFlags {
  /** `--retention N`, as typed. */
  retention?: string;
  /** `--max-age DURATION`; `true` when given without a value (then services.etcd.retention). */
  maxAge?: string | boolean;
}

/**
 * The policy from flags and cluster.yml. A count unless only --max-age is given: --retention,
 * else backup_config.retention (RKE, default 6), else 6. --max-age without a value takes the
 * legacy services.etcd.retention (default 72h); with both flags both apply.
 */
export function resolveRetentionPolicy(
  flags: RetentionFlags,
  config: { services: { etcd: { retention: string; backupConfig?: { enabled: boolean; retention: number } } } },
  scope: RetentionScope,
): RetentionPolicy {
  const policy: RetentionPolicy = { scope };
  if (flags.retention !== undefined) {
    const keep = /^\s*\d+\s*$/.test(flags.retention) ? Number(flags.retention) : Number.NaN;
    if (!(keep >= 1)) throw new UsageError(`--retention ${JSON.stringify(flags.retention)}: expected a whole number of snapshots, at least 1`);
    policy.keep = keep;
  }
  if (flags.maxAge !== undefined && flags.maxAge !== false) {
    const text = flags.maxAge === true ? config.services.etcd.retention : flags.maxAge;
    const origin = flags.maxAge === true ? 'services.etcd.retention' : '--max-age';
    const maxAgeMs = parseGoDuration(text);
    if (maxAgeMs === undefined || maxAgeMs <= 0) throw new UsageError(`${origin} ${JSON.stringify(text)}: expected a positive duration such as 72h`);
    policy.maxAgeMs = maxAgeMs;
  }
  if (policy.keep === undefined && policy.maxAgeMs === undefined) {
    const backup = config.services.etcd.backupConfig;
    policy.keep = backup?.enabled && backup.retention > 0 ? backup.retention : DEFAULT_RETENTION_COUNT;
  }
  checkPolicy(policy);
  return policy;
}
