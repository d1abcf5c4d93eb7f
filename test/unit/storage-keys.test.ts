import { describe, expect, it } from 'vitest';

import { UsageError } from '../../src/errors.js';
import { formatDuration, parseGoDuration } from '../../src/storage/go-duration.js';
import {
  contentTypeFor,
  copySourceFor,
  isInternalKey,
  normalizeFolder,
  objectKeyFor,
  snapshotNameFromKey,
} from '../../src/storage/keys.js';
import { buildUserMetadata, incompleteUserMetadata, parseUserMetadata } from '../../src/storage/metadata.js';
import { partSizeFor } from '../../src/storage/upload.js';

describe('object keys', () => {
  it.each([
    ['', 'snap.zip', 'snap.zip'],
    ['rke', 'snap.zip', 'rke/snap.zip'],
    ['/rke/', 'snap', 'rke/snap'],
    ['//a//b/', 'snap', 'a/b/snap'],
    ['prod/etcd', 'rke_etcd_snapshot_2024-05-01T12:00:00+02:00.zip', 'prod/etcd/rke_etcd_snapshot_2024-05-01T12:00:00+02:00.zip'],
  ])('folder %j + %j → %j', (folder, name, key) => {
    expect(objectKeyFor({ folder }, name)).toBe(key);
  });

  it.each(['', 'a/b', '..', '.'])('rejects file name %j', (name) => {
    expect(() => objectKeyFor({ folder: 'x' }, name)).toThrow(UsageError);
  });

  it('normalizes folders', () => {
    expect(normalizeFolder('/')).toBe('');
    expect(normalizeFolder('a/b/')).toBe('a/b');
  });

  it('maps keys back to names and skips internal objects', () => {
    const settings = { folder: 'rke' };
    expect(snapshotNameFromKey(settings, 'rke/snap.zip')).toBe('snap.zip');
    expect(snapshotNameFromKey(settings, 'other/snap.zip')).toBeUndefined();
    expect(isInternalKey(settings, 'rke/.metadata/snap')).toBe(true);
    expect(isInternalKey(settings, 'rke/.hidden-upload/snap.zip.123')).toBe(true);
    expect(isInternalKey(settings, 'rke/.snap.zip')).toBe(true);
    expect(isInternalKey(settings, 'rke/snap.zip')).toBe(false);
    expect(isInternalKey({ folder: '' }, 'snap')).toBe(false);
  });

  it('uses k3s content types and percent-encodes copy sources', () => {
    expect(contentTypeFor('a.zip')).toBe('application/zip');
    expect(contentTypeFor('a')).toBe('application/octet-stream');
    expect(copySourceFor('b', 'f/x:1+2 y.zip')).toBe('b/f/x%3A1%2B2%20y.zip');
  });
});

describe('snapshot metadata', () => {
  it('round-trips and ignores malformed values', () => {
    const createdAt = new Date('2024-05-01T10:00:00.000Z');
    const raw = buildUserMetadata({ node: 'node-1', clusterName: 'prod', createdAt }, { sha256: 'a'.repeat(64), size: 42 });
    expect(raw).toEqual({
      sha256: 'a'.repeat(64),
      size: '42',
      node: 'node-1',
      'cluster-name': 'prod',
      'created-at': '2024-05-01T10:00:00.000Z',
    });
    expect(parseUserMetadata(raw)).toEqual({ sha256: 'a'.repeat(64), size: 42, node: 'node-1', clusterName: 'prod', createdAt });
    expect(parseUserMetadata({ SHA256: 'nothex', size: '-1', 'created-at': 'yesterday' })).toEqual({});
    expect(buildUserMetadata({ node: 'nœud', clusterName: 'c', createdAt }, { sha256: 'b'.repeat(64), size: 1 }).node).toBe(
      'n%C5%93ud',
    );
  });

  it('marks an upload incomplete until its sha256 is recorded', () => {
    const createdAt = new Date('2024-05-01T10:00:00.000Z');
    const raw = incompleteUserMetadata({ node: 'node-1', clusterName: 'prod', createdAt }, 42);
    expect(raw).toEqual({ upload: 'incomplete', size: '42', node: 'node-1', 'cluster-name': 'prod', 'created-at': '2024-05-01T10:00:00.000Z' });
    expect(parseUserMetadata(raw)).toEqual({ incomplete: true, size: 42, node: 'node-1', clusterName: 'prod', createdAt });
    expect(incompleteUserMetadata({ node: 'n', clusterName: 'c', createdAt }, undefined)).not.toHaveProperty('size');
    expect(parseUserMetadata({ Upload: 'Incomplete' })).toEqual({ incomplete: true });
    expect(parseUserMetadata({ upload: 'done' })).toEqual({});
  });
});

describe('Go durations', () => {
  it.each([
    ['5m', 300_000],
    ['30s', 30_000],
    ['1h30m', 5_400_000],
    ['1.5h', 5_400_000],
    ['300ms', 300],
    ['2h0m0s', 7_200_000],
    ['0', 0],
    ['-1m', -60_000],
  ])('%s = %d ms', (text, ms) => {
    expect(parseGoDuration(text)).toBe(ms);
  });

  it.each(['5', 'm', '1d', '5m junk', ''])('%j is not a duration', (text) => {
    expect(parseGoDuration(text)).toBeUndefined();
  });

  it('formats back', () => {
    expect([300_000, 5_400_000, 7_200_000, 1500, 30_000].map(formatDuration)).toEqual(['5m', '90m', '2h', '1500ms', '30s']);
  });
});

describe('multipart sizing', () => {
  it("keeps 5 MiB parts (S3's minimum) unless the object would need more than 10,000 parts", () => {
    expect(partSizeFor(undefined)).toBe(5 * 1024 ** 2);
    expect(partSizeFor(8 * 1024 ** 3)).toBe(5 * 1024 ** 2);
    const huge = 200 * 1024 ** 3;
    expect(Math.ceil(huge / partSizeFor(huge))).toBeLessThanOrEqual(10_000);
  });
});
