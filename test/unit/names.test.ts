import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { defaultSnapshotName, formatRfc3339, stripZipSuffix, validateSnapshotName } from '../../src/plan/names.js';

describe('formatRfc3339', () => {
  const instant = new Date('2024-05-01T10:00:00.123Z');

  it.each([
    [120, '2024-05-01T12:00:00+02:00'],
    [0, '2024-05-01T10:00:00Z'],
    [-300, '2024-05-01T05:00:00-05:00'],
    [330, '2024-05-01T15:30:00+05:30'],
    [-570, '2024-05-01T00:30:00-09:30'],
  ])('offset %i minutes gives %s', (offset, expected) => {
    expect(formatRfc3339(instant, offset)).toBe(expected);
  });

  it('crosses midnight and year ends', () => {
    expect(formatRfc3339(new Date('2023-12-31T23:30:00Z'), 60)).toBe('2024-01-01T00:30:00+01:00');
  });
});

describe('defaultSnapshotName', () => {
  it('is RKE’s rke_etcd_snapshot_<RFC3339 local time>', () => {
    expect(defaultSnapshotName(new Date('2018-05-17T21:32:08Z'), 120)).toBe('rke_etcd_snapshot_2018-05-17T23:32:08+02:00');
  });
});

describe('validateSnapshotName', () => {
  it.each(['snapshot.db', 'rke_etcd_snapshot_2018-05-17T23:32:08+02:00', '2024-05-01T12:00:00Z_etcd', 'a'])('accepts %s', (name) => {
    expect(validateSnapshotName(name)).toBe(name);
  });

  it.each([
    ['../etc/passwd', 'path separator'],
    ['a/b', 'path separator'],
    ['..', '".."'],
    ['x..y', '".."'],
    ['a\\b', 'path separator'],
    ['bad\0name', 'NUL'],
    ['', 'empty'],
    ['.hidden', 'start with'],
  ])('refuses %j', (name, reason) => {
    expect(() => validateSnapshotName(name)).toThrow(UsageError);
    expect(() => validateSnapshotName(name)).toThrow(reason);
  });

  it('names the option in the message', () => {
    expect(() => validateSnapshotName('../x')).toThrow(/^--name "\.\.\/x": a snapshot name must not contain a path separator$/);
  });
});

describe('stripZipSuffix', () => {
  it('drops one .zip suffix only', () => {
    expect(stripZipSuffix('snap.zip')).toBe('snap');
    expect(stripZipSuffix('snap')).toBe('snap');
    expect(stripZipSuffix('snap.zip.zip')).toBe('snap.zip');
  });
});
