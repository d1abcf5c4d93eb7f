import { describe, expect, it } from 'vitest';
import type { ClusterConfig } from '../../src/config/types.js';
import { UsageError } from '../../src/errors.js';
import {
  DEFAULT_PRUNE_PREFIX,
  type PlaceFile,
  type RetentionPolicy,
  inScope,
  isRecurringName,
  placeFileNameOfKey,
  resolveRetentionPolicy,
  selectForDeletion,
  snapshotTimeFromName,
} from '../../src/plan/retention.js';

const now = new Date('2024-05-10T00:00:00Z');
const old = new Date('2020-01-01T00:00:00Z');
const file = (name: string, modified: Date = old): PlaceFile => ({ name, modified });
const prefix = (value: string) => ({ kind: 'prefix' as const, prefix: value });
const recurring = { kind: 'recurring' as const };

function select(files: PlaceFile[], policy: RetentionPolicy) {
  const selection = selectForDeletion(files, policy, now);
  return {
    kept: selection.kept.map((group) => group.base),
    deleted: selection.deleted.map((group) => group.files).flat(),
    untouched: selection.untouched,
  };
}

describe('snapshotTimeFromName', () => {
  it.each([
    ['rke_etcd_snapshot_2024-05-01T12:00:00+02:00', '2024-05-01T10:00:00.000Z'],
    ['rke_etcd_snapshot_2024-05-01T12:00:00-05:30', '2024-05-01T17:30:00.000Z'],
    ['rke_etcd_snapshot_2024-05-01T12:00:00Z.zip', '2024-05-01T12:00:00.000Z'],
    ['2024-05-01T12:00:00Z_etcd', '2024-05-01T12:00:00.000Z'],
    ['2024-05-01T12:00:00Z_etcd.zip', '2024-05-01T12:00:00.000Z'],
    ['2024-05-01T12-00-00Z_etcd', '2024-05-01T12:00:00.000Z'],
    ['2024-05-01T12:00:00.250Z_etcd', '2024-05-01T12:00:00.250Z'],
    ['on-demand-node1-1714564800', '2024-05-01T12:00:00.000Z'],
    ['etcd-snapshot-node-2-1714564800.zip', '2024-05-01T12:00:00.000Z'],
  ])('%s → %s', (name, iso) => {
    expect(snapshotTimeFromName(name)?.toISOString()).toBe(iso);
  });

  it.each(['before-upgrade', 'backup-2', 'node-1-12345', 'rke_etcd_snapshot_2024-13-01T12:00:00Z', '2024-02-31T00:00:00Z_etcd', 'pki.bundle.tar.gz', ''])(
    'has no time in %j',
    (name) => {
      expect(snapshotTimeFromName(name)).toBeUndefined();
    },
  );
});

describe('isRecurringName (rke-tools: <RFC3339>_etcd)', () => {
  it.each(['2024-05-01T12:00:00Z_etcd', '2024-05-01T12:00:00Z_etcd.zip', '2024-05-01T12-00-00Z_etcd', '2024-05-01T12:00:00+02:00_etcd'])('%s is recurring', (name) => {
    expect(isRecurringName(name)).toBe(true);
  });
  it.each(['rke_etcd_snapshot_2024-05-01T12:00:00Z', 'x2024-05-01T12:00:00Z_etcd', '2024-05-01T12:00:00Z_etcd.part', '2024-05-01T12:00:00Z_other_etcd_x', 'nightly_etcd'])(
    '%s is not',
    (name) => {
      expect(isRecurringName(name)).toBe(false);
    },
  );
});

describe('selectForDeletion by count', () => {
  const files = [
    file('rke_etcd_snapshot_2024-05-01T00:00:00Z'),
    file('rke_etcd_snapshot_2024-05-03T00:00:00Z'),
    file('rke_etcd_snapshot_2024-05-02T00:00:00Z'),
    file('rke_etcd_snapshot_2024-05-04T00:00:00Z'),
  ];

  it('keeps the newest N by the time in the name, not by listing order or mtime', () => {
    expect(select(files, { scope: prefix(DEFAULT_PRUNE_PREFIX), keep: 2 })).toEqual({
      kept: ['rke_etcd_snapshot_2024-05-04T00:00:00Z', 'rke_etcd_snapshot_2024-05-03T00:00:00Z'],
      deleted: ['rke_etcd_snapshot_2024-05-02T00:00:00Z', 'rke_etcd_snapshot_2024-05-01T00:00:00Z'],
      untouched: [],
    });
  });

  it('deletes nothing when there are N or fewer', () => {
    expect(select(files, { scope: prefix(DEFAULT_PRUNE_PREFIX), keep: 4 }).deleted).toEqual([]);
    expect(select([], { scope: prefix(DEFAULT_PRUNE_PREFIX), keep: 1 }).deleted).toEqual([]);
  });

  it('never touches names outside the prefix, hidden files, partial files or nested names', () => {
    const mixed = [
      ...files,
      file('before-upgrade'),
      file('pki.bundle.tar.gz'),
      file('.rke-ts-incoming-rke_etcd_snapshot_2024-05-05T00:00:00Z.zip'),
      file('rke_etcd_snapshot_2024-05-06T00:00:00Z.part'),
      file('2024-05-01T00:00:00Z_etcd'),
      file('sub/rke_etcd_snapshot_2024-04-01T00:00:00Z'),
    ];
    const result = select(mixed, { scope: prefix(DEFAULT_PRUNE_PREFIX), keep: 1 });
    expect(result.kept).toEqual(['rke_etcd_snapshot_2024-05-04T00:00:00Z']);
    expect(result.deleted).toHaveLength(3);
    expect(result.untouched).toEqual([
      '.rke-ts-incoming-rke_etcd_snapshot_2024-05-05T00:00:00Z.zip',
      '2024-05-01T00:00:00Z_etcd',
      'before-upgrade',
      'pki.bundle.tar.gz',
      'rke_etcd_snapshot_2024-05-06T00:00:00Z.part',
      'sub/rke_etcd_snapshot_2024-04-01T00:00:00Z',
    ]);
  });

  it('treats NAME and NAME.zip as one snapshot and deletes both', () => {
    const result = select(
      [file('rke_etcd_snapshot_2024-05-01T00:00:00Z'), file('rke_etcd_snapshot_2024-05-01T00:00:00Z.zip'), file('rke_etcd_snapshot_2024-05-02T00:00:00Z.zip')],
      { scope: prefix(DEFAULT_PRUNE_PREFIX), keep: 1 },
    );
    expect(result.kept).toEqual(['rke_etcd_snapshot_2024-05-02T00:00:00Z']);
    expect(result.deleted).toEqual(['rke_etcd_snapshot_2024-05-01T00:00:00Z', 'rke_etcd_snapshot_2024-05-01T00:00:00Z.zip']);
  });

  it('orders equal times by name, the same way every time', () => {
    const tied = [file('on-demand-b-1714564800'), file('on-demand-a-1714564800'), file('on-demand-c-1714564800')];
    for (const order of [tied, [...tied].reverse()]) {
      expect(select(order, { scope: prefix('on-demand'), keep: 1 })).toMatchObject({ kept: ['on-demand-c-1714564800'], deleted: ['on-demand-b-1714564800', 'on-demand-a-1714564800'] });
    }
  });

  it('falls back to the mtime for names without a time, mixed with names that have one', () => {
    const result = select(
      [file('nightly-a', new Date('2024-05-05T00:00:00Z')), file('nightly-b', new Date('2024-05-01T00:00:00Z')), file('nightly-2024-05-03T00:00:00Z', new Date('2024-05-09T00:00:00Z'))],
      { scope: prefix('nightly-'), keep: 2 },
    );
    expect(result.kept).toEqual(['nightly-a', 'nightly-2024-05-03T00:00:00Z']);
    expect(result.deleted).toEqual(['nightly-b']);
  });

  it('handles k3s names across nodes in one place by their unix time', () => {
    const result = select(
      [file('etcd-snapshot-node1-1714564800'), file('etcd-snapshot-node2-1714568400.zip'), file('etcd-snapshot-node1-1714572000'), file('on-demand-node1-1714999999')],
      { scope: prefix('etcd-snapshot'), keep: 2 },
    );
    expect(result.kept).toEqual(['etcd-snapshot-node1-1714572000', 'etcd-snapshot-node2-1714568400']);
    expect(result.deleted).toEqual(['etcd-snapshot-node1-1714564800']);
    expect(result.untouched).toEqual(['on-demand-node1-1714999999']);
  });

  it('scopes recurring names without a common prefix, colons or safe dashes', () => {
    const result = select(
      [file('2024-05-01T00:00:00Z_etcd.zip'), file('2024-05-02T00-00-00Z_etcd'), file('2024-05-03T00:00:00Z_etcd'), file('rke_etcd_snapshot_2024-05-04T00:00:00Z')],
      { scope: recurring, keep: 2 },
    );
    expect(result.kept).toEqual(['2024-05-03T00:00:00Z_etcd', '2024-05-02T00-00-00Z_etcd']);
    expect(result.deleted).toEqual(['2024-05-01T00:00:00Z_etcd.zip']);
    expect(result.untouched).toEqual(['rke_etcd_snapshot_2024-05-04T00:00:00Z']);
  });

  it('treats regex characters in the prefix literally', () => {
    expect(inScope(prefix('a.b'), 'a.b-1714564800')).toBe(true);
    expect(inScope(prefix('a.b'), 'axb-1714564800')).toBe(false);
    expect(inScope(prefix('snap:+'), 'snap:+2024-05-01T00:00:00Z')).toBe(true);
  });
});

describe('selectForDeletion by age', () => {
  const day = 24 * 3_600_000;

  it('removes snapshots older than max-age (RKE legacy retention)', () => {
    const result = select(
      [file('2024-05-09T12:00:00Z_etcd'), file('2024-05-08T00:00:00Z_etcd'), file('2024-05-06T00:00:00Z_etcd'), file('2024-05-01T00:00:00Z_etcd')],
      { scope: recurring, maxAgeMs: 3 * day },
    );
    expect(result.kept).toEqual(['2024-05-09T12:00:00Z_etcd', '2024-05-08T00:00:00Z_etcd']);
    expect(result.deleted).toEqual(['2024-05-06T00:00:00Z_etcd', '2024-05-01T00:00:00Z_etcd']);
  });

  it('never removes the newest snapshot of a place, however old', () => {
    const result = select([file('2024-01-02T00:00:00Z_etcd'), file('2024-01-01T00:00:00Z_etcd')], { scope: recurring, maxAgeMs: day });
    expect(result.kept).toEqual(['2024-01-02T00:00:00Z_etcd']);
    expect(result.deleted).toEqual(['2024-01-01T00:00:00Z_etcd']);
  });

  it('applies count and age together, giving every reason', () => {
    const selection = selectForDeletion(
      [file('2024-05-09T00:00:00Z_etcd'), file('2024-05-08T00:00:00Z_etcd'), file('2024-05-01T00:00:00Z_etcd')],
      { scope: recurring, keep: 1, maxAgeMs: 3 * day },
      now,
    );
    expect(selection.deleted.map((group) => [group.base, group.reasons])).toEqual([
      ['2024-05-08T00:00:00Z_etcd', ['count']],
      ['2024-05-01T00:00:00Z_etcd', ['count', 'age']],
    ]);
  });

  it('uses the mtime for age when the name has no time', () => {
    const result = select([file('nightly-a', new Date('2024-05-09T00:00:00Z')), file('nightly-b', new Date('2024-04-01T00:00:00Z'))], { scope: prefix('nightly-'), maxAgeMs: 3 * day });
    expect(result.deleted).toEqual(['nightly-b']);
  });
});

describe('policy checks', () => {
  it.each([
    [{ scope: prefix('x') }],
    [{ scope: prefix('x'), keep: 0 }],
    [{ scope: prefix('x'), keep: 1.5 }],
    [{ scope: prefix(''), keep: 1 }],
    [{ scope: prefix('x'), maxAgeMs: 0 }],
  ])('refuses %j', (policy) => {
    expect(() => selectForDeletion([], policy as RetentionPolicy, now)).toThrow(UsageError);
  });
});

describe('S3 keys (rancher#24544: strip the folder before parsing)', () => {
  it.each([
    ['backups/rke', 'backups/rke/2024-05-01T12:00:00Z_etcd.zip', '2024-05-01T12:00:00Z_etcd.zip'],
    ['/backups/rke/', 'backups/rke/rke_etcd_snapshot_2024-05-01T12:00:00Z', 'rke_etcd_snapshot_2024-05-01T12:00:00Z'],
    ['', 'on-demand-n1-1714564800', 'on-demand-n1-1714564800'],
  ])('folder %j, key %s → %s', (folder, key, name) => {
    expect(placeFileNameOfKey(folder, key)).toBe(name);
    expect(snapshotTimeFromName(placeFileNameOfKey(folder, key)!)).toBeDefined();
  });

  it.each([
    ['backups', 'backups/.rke-ts-partial/2024-05-01T12_00_00Z_etcd.zip.abc123'],
    ['backups', 'backups/.metadata/on-demand-n1-1714564800'],
    ['', '.metadata/on-demand-n1-1714564800'],
    ['', '.rke-ts-partial/x.abc'],
    ['backups', 'other/2024-05-01T12:00:00Z_etcd'],
    ['backups', 'backups/nested/2024-05-01T12:00:00Z_etcd'],
    ['backups', 'backups/'],
  ])('folder %j: key %s is never a snapshot of the place', (folder, key) => {
    expect(placeFileNameOfKey(folder, key)).toBeUndefined();
  });

  it('selects over S3 keys in a folder like local files', () => {
    const keys = ['f/2024-05-01T00:00:00Z_etcd.zip', 'f/2024-05-02T00:00:00Z_etcd.zip', 'f/2024-05-03T00:00:00Z_etcd.zip', 'f/.metadata/2024-04-01T00:00:00Z_etcd', 'f/.rke-ts-partial/2024-04-01T00_00_00Z_etcd.zip.1'];
    const files = keys.flatMap((key) => {
      const name = placeFileNameOfKey('f', key);
      return name ? [file(name, now)] : [];
    });
    expect(select(files, { scope: recurring, keep: 2 }).deleted).toEqual(['2024-05-01T00:00:00Z_etcd.zip']);
  });
});

describe('resolveRetentionPolicy', () => {
  const config = (backupConfig?: { enabled: boolean; retention: number }, retention = '72h') =>
    ({ services: { etcd: { retention, ...(backupConfig ? { backupConfig } : {}) } } }) as unknown as ClusterConfig;
  const scope = prefix(DEFAULT_PRUNE_PREFIX);

  it('defaults to backup_config.retention, else 6', () => {
    expect(resolveRetentionPolicy({}, config({ enabled: true, retention: 3 }), scope)).toEqual({ scope, keep: 3 });
    expect(resolveRetentionPolicy({}, config(), scope)).toEqual({ scope, keep: 6 });
    expect(resolveRetentionPolicy({}, config({ enabled: false, retention: 0 }), scope)).toEqual({ scope, keep: 6 });
  });

  it('takes --retention and --max-age; --max-age alone is age only; bare --max-age is services.etcd.retention', () => {
    expect(resolveRetentionPolicy({ retention: '2' }, config({ enabled: true, retention: 3 }), scope)).toEqual({ scope, keep: 2 });
    expect(resolveRetentionPolicy({ maxAge: '36h' }, config(), scope)).toEqual({ scope, maxAgeMs: 36 * 3_600_000 });
    expect(resolveRetentionPolicy({ maxAge: true }, config(undefined, '24h'), scope)).toEqual({ scope, maxAgeMs: 24 * 3_600_000 });
    expect(resolveRetentionPolicy({ retention: '4', maxAge: '1h' }, config(), scope)).toEqual({ scope, keep: 4, maxAgeMs: 3_600_000 });
  });

  it.each([{ retention: '0' }, { retention: 'six' }, { retention: '-1' }, { retention: '2.5' }, { maxAge: 'soon' }, { maxAge: '0s' }])('refuses %j', (flags) => {
    expect(() => resolveRetentionPolicy(flags, config(), scope)).toThrow(UsageError);
  });
});
