import { UsageError, describeError } from '../errors.js';
import { snapshotTimeFromName } from '../plan/retention.js';
import { type ListedFile, listEverywhere } from '../run/list.js';
import { type PlaceResult, placeFailure } from '../run/places.js';
import type { CommandContext } from './context.js';
import { placesFrom } from './prune.js';
import { loadClusterForCommand, loadKnownHosts, s3SettingsFor } from './save.js';

export const OUTPUT_FORMATS = ['table', 'json', 'yaml'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** Characters of the sha256 shown in the table (json/yaml carry all 64). */
const SHORT_SHA = 12;

export interface SnapshotRow {
  name: string;
  storage: 'local' | 's3';
  /** Node address for local copies. */
  node?: string;
  location: string;
  size: number;
  /** From the name when it carries a time, else mtime / LastModified. */
  created: string;
  createdFrom: 'name' | 'modified';
  modified: string;
  sha256?: string;
  /** S3 object left marked by an upload that did not finish (restore refuses it). */
  incomplete?: true;
  /** Every etcd node that holds a file of this name. */
  nodes: string[];
}

export interface SnapshotListing {
  snapshots: SnapshotRow[];
  /** Places that could not be listed: reported, never hidden. */
  unreachable: Array<{ place: string; error: string }>;
}

/** Pure: one row per file and place, oldest first (as `k3s etcd-snapshot ls`), then by name and place. */
export function buildListing(results: Array<PlaceResult<ListedFile[]>>): SnapshotListing {
  const files = results.flatMap((result) => (result.ok ? result.value : []));
  const holders = new Map<string, string[]>();
  for (const file of files) {
    if (file.kind === 'local' && file.node) holders.set(file.name, [...(holders.get(file.name) ?? []), file.node]);
  }
  const snapshots = files.map((file): SnapshotRow => {
    const fromName = snapshotTimeFromName(file.name);
    return {
      name: file.name,
      storage: file.kind,
      ...(file.node ? { node: file.node } : {}),
      location: file.location,
      size: file.size,
      created: (fromName ?? file.modified).toISOString(),
      createdFrom: fromName ? 'name' : 'modified',
      modified: file.modified.toISOString(),
      ...(file.sha256 ? { sha256: file.sha256 } : {}),
      ...(file.incomplete ? { incomplete: true as const } : {}),
      nodes: holders.get(file.name) ?? [],
    };
  });
  snapshots.sort((a, b) => a.created.localeCompare(b.created) || a.name.localeCompare(b.name) || a.location.localeCompare(b.location));
  const unreachable = results.flatMap((result) => (result.ok ? [] : [{ place: result.place, error: describeError(result.error) }]));
  return { snapshots, unreachable };
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) => row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]!))).join('  ').trimEnd()).join('\n');
}

export function renderListing(listing: SnapshotListing, format: OutputFormat, stringifyYaml: (value: unknown) => string): string {
  if (format === 'json') return `${JSON.stringify(listing, null, 2)}\n`;
  if (format === 'yaml') return stringifyYaml(listing);
  const rows = [['NAME', 'LOCATION', 'SIZE', 'CREATED', 'SHA256', 'NODES']];
  for (const row of listing.snapshots) {
    rows.push([row.name, row.location, String(row.size), row.created.replace(/\.000Z$/, 'Z'), row.sha256?.slice(0, SHORT_SHA) ?? (row.incomplete ? 'incomplete' : '-'), row.nodes.join(',') || '-']);
  }
  const lines = [table(rows)];
  for (const failure of listing.unreachable) lines.push(`UNREACHABLE ${failure.place}: ${failure.error}`);
  return `${lines.join('\n')}\n`;
}

export function parseOutputFormat(value: unknown): OutputFormat {
  const format = typeof value === 'string' ? value : 'table';
  if (!(OUTPUT_FORMATS as readonly string[]).includes(format)) {
    throw new UsageError(`invalid output format: ${format}`, { hint: `use one of ${OUTPUT_FORMATS.join(', ')}` });
  }
  return format as OutputFormat;
}

export async function snapshotList(flags: Record<string, unknown>, context: CommandContext): Promise<void> {
  const format = parseOutputFormat(flags.output);
  const config = await loadClusterForCommand(flags);
  const targets = placesFrom(flags, flags.localOnly ? undefined : s3SettingsFor(flags, config, context));
  const knownHosts = await loadKnownHosts(flags.knownHosts);
  const deps = { env: context.env, log: context.log, signal: context.signal, ...(knownHosts ? { knownHosts } : {}) };
  const results = await listEverywhere(config, { ...targets, checksums: flags.checksums !== false }, deps);
  const { stringify } = await import('yaml');
  context.stdout.write(renderListing(buildListing(results), format, (value) => stringify(value)));
  const failure = placeFailure(results, 'list snapshots', context.log);
  if (failure) throw failure;
}
