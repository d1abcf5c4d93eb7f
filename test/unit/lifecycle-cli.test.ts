import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { buildListing, renderListing } from '../../src/cli/list.js';
import { pruneScopeFrom } from '../../src/cli/prune.js';
import { saveRetentionScope } from '../../src/cli/save-and-prune.js';
import { UsageError } from '../../src/errors.js';
import { runMain } from '../support/main.js';
import { requestedNamesOf } from '../../src/run/delete.js';
import type { ListedFile } from '../../src/run/list.js';
import type { PlaceResult } from '../../src/run/places.js';

const run = runMain;

const dir = mkdtempSync(path.join(os.tmpdir(), 'rke-ts-lifecycle-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const clusterYml = path.join(dir, 'cluster.yml');
// 192.0.2.0/24 is TEST-NET: a test that connected would hang or fail, not pass.
writeFileSync(clusterYml, 'nodes:\n  - address: 192.0.2.10\n    user: rancher\n    role: [etcd]\n    ssh_key_path: /nonexistent/key\n');

describe('lifecycle commands: usage errors come before any connection', () => {
  it.each([
    [['etcd', 'snapshot-delete', '--config', clusterYml, '../etc/passwd'], /path separator/],
    [['etcd', 'snapshot-delete', '--config', clusterYml, 'ok', '..'], /must not contain/],
    [['etcd', 'snapshot-delete', '--config', clusterYml, '--local-only', '--s3-only', 'x'], /mutually exclusive/],
    [['etcd', 'snapshot-list', '--config', clusterYml, '--s3-only'], /S3 is not configured/],
    [['etcd', 'snapshot-prune', '--config', clusterYml, '--retention', '0'], /at least 1/],
    [['etcd', 'snapshot-prune', '--config', clusterYml, '--max-age', 'soon'], /positive duration/],
    [['etcd', 'snapshot-prune', '--config', clusterYml, '--recurring', '--name', 'x'], /mutually exclusive/],
    [['etcd', 'snapshot-save', '--config', clusterYml, '--name', 'n', '--retention', '3'], /needs --retention-prefix/],
    [['etcd', 'snapshot-save', '--config', clusterYml, '--name', 'n', '--retention', '3', '--retention-prefix', 'x'], /does not start with/],
    [['etcd', 'snapshot-schedule', '--config', clusterYml, '--cron', 'every day'], /--cron/],
    [['etcd', 'snapshot-schedule', '--config', clusterYml, '--interval', '10ms'], /at least 1s/],
  ])('%j', async (args, message) => {
    const result = await run(args);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).not.toContain('Setup tunnel');
  });

  it('rejects an unknown output format', async () => {
    const result = await run(['etcd', 'ls', '--config', clusterYml, '-o', 'xml']);
    expect(result.code).toBe(2);
  });

  it('lists the new commands and their aliases in help', async () => {
    const result = await run(['etcd', '--help']);
    for (const command of ['snapshot-list|ls', 'snapshot-delete|delete', 'snapshot-prune|prune', 'snapshot-schedule']) expect(result.stdout).toContain(command);
    const save = await run(['etcd', 'snapshot-save', '--help']);
    for (const flag of ['--compress', '--retention <count>', '--max-age [duration]', '--retention-prefix']) expect(save.stdout).toContain(flag);
    expect(save.stdout).not.toContain('--snapshot-retention');
  });
});

describe('retention scopes from flags', () => {
  it('prune: --name prefix, --recurring, default rke_etcd_snapshot_', () => {
    expect(pruneScopeFrom({ name: 'etcd-snapshot' })).toEqual({ kind: 'prefix', prefix: 'etcd-snapshot' });
    expect(pruneScopeFrom({ recurring: true })).toEqual({ kind: 'recurring' });
    expect(pruneScopeFrom({})).toEqual({ kind: 'prefix', prefix: 'rke_etcd_snapshot_' });
  });
  it('save: default names prune rke_etcd_snapshot_; --name needs --retention-prefix', () => {
    expect(saveRetentionScope({})).toEqual({ kind: 'prefix', prefix: 'rke_etcd_snapshot_' });
    expect(saveRetentionScope({ name: 'nightly-1', retentionPrefix: 'nightly-' })).toEqual({ kind: 'prefix', prefix: 'nightly-' });
    expect(() => saveRetentionScope({ name: 'nightly-1' })).toThrow(UsageError);
  });
});

describe('delete name matching', () => {
  it('NAME covers NAME and NAME.zip; NAME.zip only itself', () => {
    expect(requestedNamesOf('snap', ['snap'])).toEqual(['snap']);
    expect(requestedNamesOf('snap.zip', ['snap'])).toEqual(['snap']);
    expect(requestedNamesOf('snap', ['snap.zip'])).toEqual([]);
    expect(requestedNamesOf('snapshot', ['snap'])).toEqual([]);
  });
});

describe('snapshot-list rendering', () => {
  const file = (fields: Partial<ListedFile> & Pick<ListedFile, 'name' | 'location'>): ListedFile => ({
    kind: 'local',
    size: 100,
    modified: new Date('2024-05-02T00:00:00Z'),
    ...fields,
  });
  const results: Array<PlaceResult<ListedFile[]>> = [
    {
      kind: 'local',
      place: 'node 10.0.0.1',
      ok: true,
      value: [
        file({ name: 'before-upgrade', node: '10.0.0.1', location: 'file://10.0.0.1/opt/rke/etcd-snapshots/before-upgrade', sha256: 'a'.repeat(64) }),
        file({ name: '2024-05-01T00:00:00Z_etcd.zip', node: '10.0.0.1', location: 'file://10.0.0.1/opt/rke/etcd-snapshots/2024-05-01T00:00:00Z_etcd.zip', sha256: 'b'.repeat(64) }),
      ],
    },
    { kind: 'local', place: 'node 10.0.0.2', ok: false, error: new Error('ssh: connect ECONNREFUSED') },
    {
      kind: 's3',
      place: 's3://b/f/',
      ok: true,
      value: [
        file({ name: '2024-05-01T00:00:00Z_etcd.zip', kind: 's3', location: 's3://b/f/2024-05-01T00:00:00Z_etcd.zip', size: 90 }),
        file({ name: 'interrupted', kind: 's3', location: 's3://b/f/interrupted', modified: new Date('2024-05-03T00:00:00Z'), incomplete: true }),
      ],
    },
  ];
  const listing = buildListing(results);

  it('has one row per file and place, oldest first, with the nodes that hold each name', () => {
    expect(listing.snapshots.map((row) => [row.location, row.created, row.createdFrom, row.nodes])).toEqual([
      ['file://10.0.0.1/opt/rke/etcd-snapshots/2024-05-01T00:00:00Z_etcd.zip', '2024-05-01T00:00:00.000Z', 'name', ['10.0.0.1']],
      ['s3://b/f/2024-05-01T00:00:00Z_etcd.zip', '2024-05-01T00:00:00.000Z', 'name', ['10.0.0.1']],
      ['file://10.0.0.1/opt/rke/etcd-snapshots/before-upgrade', '2024-05-02T00:00:00.000Z', 'modified', ['10.0.0.1']],
      ['s3://b/f/interrupted', '2024-05-03T00:00:00.000Z', 'modified', []],
    ]);
    expect(listing.unreachable).toEqual([{ place: 'node 10.0.0.2', error: 'ssh: connect ECONNREFUSED' }]);
  });

  it('renders a table with short sha256 and the unreachable places', () => {
    const text = renderListing(listing, 'table', () => '');
    const lines = text.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^NAME\s+LOCATION\s+SIZE\s+CREATED\s+SHA256\s+NODES$/);
    expect(lines[1]).toContain('bbbbbbbbbbbb  10.0.0.1');
    expect(lines[1]).not.toContain('b'.repeat(13));
    expect(lines[2]).toMatch(/ 90 +2024-05-01T00:00:00Z +- +10\.0\.0\.1$/);
    // An upload that never recorded its sha256 says so instead of a blank.
    expect(lines[4]).toMatch(/^interrupted +s3:\/\/b\/f\/interrupted +100 +2024-05-03T00:00:00Z +incomplete +-$/);
    expect(lines.at(-1)).toBe('UNREACHABLE node 10.0.0.2: ssh: connect ECONNREFUSED');
  });

  it('renders json and yaml that parse back to the same listing', () => {
    expect(JSON.parse(renderListing(listing, 'json', () => ''))).toEqual(JSON.parse(JSON.stringify(listing)));
    const yamlText = renderListing(listing, 'yaml', (value) => JSON.stringify(value));
    expect(parseYaml(yamlText)).toEqual(JSON.parse(JSON.stringify(listing)));
  });
});
