/**
 * Upload, download, list and delete against a real S3-compatible server (s3rver), including
 * interop with s3cmd and refusal of corrupted objects.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, readSync, openSync, closeSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';

import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { describeError } from '../../src/errors.js';
import { createS3Client } from '../../src/storage/client.js';
import { downloadSnapshot } from '../../src/storage/download.js';
import { objectKeyFor } from '../../src/storage/keys.js';
import { deleteSnapshot, listSnapshots } from '../../src/storage/list.js';
import type { S3Settings } from '../../src/storage/settings.js';
import { uploadSnapshot } from '../../src/storage/upload.js';
import { s3cmdFor } from '../support/s3cmd.js';
import { type TestS3Server, captureLog, chunkedStream, pseudoRandomBytes, settingsFor, startS3Server } from '../support/s3server.js';

const MiB = 1024 ** 2;
const FAST_RETRY = { maxAttempts: 4, baseDelayMs: 20, maxDelayMs: 100 };
const origin = { node: 'node-1', clusterName: 'local', createdAt: new Date('2024-05-01T10:00:00Z') };

let server: TestS3Server;
let settings: S3Settings;
let client: S3Client;
const { log, lines } = captureLog();
const errorMessages: string[] = [];

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function expectStreamError(stream: Readable, pattern: RegExp): Promise<void> {
  const error = await readAll(stream).then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(Error);
  errorMessages.push(describeError(error));
  expect(describeError(error)).toMatch(pattern);
}

async function upload(key: string, data: Buffer, extra: Partial<Parameters<typeof uploadSnapshot>[0]> = {}) {
  return uploadSnapshot({ settings, client, key, body: chunkedStream(data), metadata: origin, log, partSize: 5 * MiB, ...extra });
}

async function rawGet(key: string): Promise<Buffer> {
  const response = await client.send(new GetObjectCommand({ Bucket: settings.bucket, Key: key }));
  return Buffer.from(await response.Body!.transformToByteArray());
}

let s3cmd: (...args: string[]) => string;

let workDir: string;

beforeAll(async () => {
  workDir = mkdtempSync(join(tmpdir(), 'rke-ts-s3-transfer-'));
  server = await startS3Server();
  s3cmd = s3cmdFor(server);
  settings = settingsFor(server, { folder: '/etcd-snapshots/' });
  client = await createS3Client(settings, { log, retryPolicy: FAST_RETRY });
});

afterAll(async () => {
  client?.destroy();
  await server?.stop();
  rmSync(workDir, { recursive: true, force: true });
});

describe('upload and download', () => {
  it('streams 20 MiB through a multipart upload and back, byte-identical, sha256 verified', async () => {
    const data = pseudoRandomBytes(20 * MiB + 123, 'roundtrip');
    const key = objectKeyFor(settings, 'rke_etcd_snapshot_2024-05-01T12:00:00+02:00.zip');
    const uploaded = await upload(key, data, { size: data.length });
    expect(uploaded).toMatchObject({ key, size: data.length, sha256: sha256(data) });

    const downloaded = await downloadSnapshot({ settings, client, name: 'rke_etcd_snapshot_2024-05-01T12:00:00+02:00', log });
    expect(downloaded).toMatchObject({ key, size: data.length, sha256: sha256(data) });
    expect(downloaded.metadata).toMatchObject({ node: 'node-1', clusterName: 'local', size: data.length });
    expect(downloaded.metadata.createdAt?.toISOString()).toBe('2024-05-01T10:00:00.000Z');
    expect((await readAll(downloaded.stream)).equals(data)).toBe(true);
    // The mark the upload started with is gone once the sha256 is recorded.
    const head = await client.send(new HeadObjectCommand({ Bucket: settings.bucket, Key: key }));
    expect(Object.keys(head.Metadata ?? {}).sort()).toEqual(['cluster-name', 'created-at', 'node', 'sha256', 'size']);
    expect(lines.join('')).toContain(`invoking uploading backup file [${key}] to s3`);
    expect(lines.join('')).toContain(`Successfully uploaded [${key}]`);
  });

  it('records the sha256 part by part (UploadPartCopy) above the single-copy limit', async () => {
    const data = pseudoRandomBytes(12 * MiB, 'multipart-copy');
    const key = objectKeyFor(settings, 'big-snapshot');
    await upload(key, data, { metadataCopy: { singleCopyMaxBytes: 4 * MiB, copyPartSize: 5 * MiB } });
    const downloaded = await downloadSnapshot({ settings, client, name: 'big-snapshot', log });
    expect(downloaded.sha256).toBe(sha256(data));
    expect((await readAll(downloaded.stream)).equals(data)).toBe(true);
  });

  it('keeps memory bounded: the source is read at most a few parts ahead of what S3 acknowledged', async () => {
    const data = pseudoRandomBytes(48 * MiB, 'backpressure');
    let maxAhead = 0;
    let acknowledged = 0;
    const body = chunkedStream(data, {
      onChunk: (produced) => {
        maxAhead = Math.max(maxAhead, produced - acknowledged);
      },
    });
    await uploadSnapshot({
      settings,
      client,
      key: objectKeyFor(settings, 'bounded'),
      body,
      metadata: origin,
      log,
      partSize: 5 * MiB,
      queueSize: 2,
      onProgress: (loaded) => {
        acknowledged = loaded;
      },
    });
    // parts in flight (queueSize) + the part being filled + stream buffers (~1 MiB)
    expect(maxAhead).toBeLessThanOrEqual((2 + 1) * 5 * MiB + 2 * MiB);
    expect(maxAhead).toBeLessThan(data.length / 2);
  });

  it('uploads sizes around the part boundaries byte-identical', async () => {
    for (const size of [5 * MiB - 1, 5 * MiB, 10 * MiB, 10 * MiB + 1]) {
      const data = pseudoRandomBytes(size, `boundary-${size}`);
      const name = `boundary-${size}`;
      const uploaded = await upload(objectKeyFor(settings, name), data, { size });
      expect(uploaded).toMatchObject({ size, sha256: sha256(data) });
      const downloaded = await downloadSnapshot({ settings, client, name, log });
      expect((await readAll(downloaded.stream)).equals(data)).toBe(true);
    }
    expect(server.pendingMultipartUploads()).toEqual([]);
  });

  it('uploads zero bytes', async () => {
    const key = objectKeyFor(settings, 'empty');
    const uploaded = await upload(key, Buffer.alloc(0));
    expect(uploaded.size).toBe(0);
    const downloaded = await downloadSnapshot({ settings, client, name: 'empty', log });
    expect((await readAll(downloaded.stream)).length).toBe(0);
  });

  it('fails on a size mismatch and on a failing source, leaving nothing under the final key', async () => {
    const data = pseudoRandomBytes(6 * MiB, 'mismatch');
    const key = objectKeyFor(settings, 'size-mismatch');
    await expect(upload(key, data, { size: data.length + 1 })).rejects.toThrow(/reading the snapshot failed: size mismatch: got 6291456 bytes, expected 6291457/);
    await expect(upload(key, data, { size: data.length - 1 })).rejects.toThrow(/got more than the expected 6291455 bytes/);

    const failing = chunkedStream(data, {
      onChunk: (produced) => {
        if (produced > 3 * MiB) throw new Error('disk read error');
      },
    });
    const error = await upload(objectKeyFor(settings, 'source-fails'), data, { body: failing }).catch((caught: unknown) => caught);
    errorMessages.push(describeError(error));
    expect(describeError(error)).toMatch(/failed to upload etcd snapshot file .*reading the snapshot failed.*disk read error/);

    const keys = await allKeys();
    expect(keys).not.toContain(key);
    expect(keys).not.toContain(objectKeyFor(settings, 'source-fails'));
    expect(server.pendingMultipartUploads()).toEqual([]);
  });

  it('when the source fails after parts were sent, leaves no multipart upload behind', async () => {
    for (let attempt = 0; attempt < 3; attempt++) {
      const data = pseudoRandomBytes(16 * MiB, `in-flight-${attempt}`);
      const failing = chunkedStream(data, {
        onChunk: (produced) => {
          if (produced > 11 * MiB) throw new Error('disk read error');
        },
      });
      const error = await upload(objectKeyFor(settings, `in-flight-${attempt}`), data, { body: failing }).catch((caught: unknown) => caught);
      expect(describeError(error)).toMatch(/reading the snapshot failed.*disk read error/);
      // A part that reached S3 after the abort would leave the upload (and its storage) behind;
      // multipart.ts lets parts in flight land before aborting.
      expect(server.pendingMultipartUploads()).toEqual([]);
    }
  });

  it('removes the object when its sha256 cannot be recorded', async () => {
    const data = pseudoRandomBytes(7 * MiB, 'copy-refused');
    const key = objectKeyFor(settings, 'copy-refused');
    // The server refuses the copy that records the metadata (as a bucket policy denying
    // s3:PutObject with x-amz-copy-source would); everything else goes through.
    const refusing = await createS3Client(settings, { log, retryPolicy: FAST_RETRY });
    refusing.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'CopyObjectCommand') {
          (args.request as { headers: Record<string, string> }).headers.authorization = `AWS4-HMAC-SHA256 Credential=${server.accessKey}/20240101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00`;
        }
        return next(args);
      },
      { step: 'finalizeRequest', priority: 'low', name: 'refuseCopy' },
    );
    try {
      const error = await upload(key, data, { client: refusing, size: data.length }).catch((caught: unknown) => caught);
      errorMessages.push(describeError(error));
      expect(describeError(error)).toMatch(/failed to upload etcd snapshot file \[etcd-snapshots\/copy-refused\]/);
    } finally {
      refusing.destroy();
    }
    expect(await allKeys()).not.toContain(key);
    expect(server.pendingMultipartUploads()).toEqual([]);
  });

  it('refuses to download an object its upload left marked incomplete', async () => {
    const key = objectKeyFor(settings, 'left-incomplete');
    await client.send(
      new PutObjectCommand({ Bucket: settings.bucket, Key: key, Body: Buffer.from('content'), Metadata: { upload: 'incomplete', node: 'node-1' } }),
    );
    const error = await downloadSnapshot({ settings, client, name: 'left-incomplete', log }).catch((caught: unknown) => caught);
    errorMessages.push(describeError(error));
    expect(describeError(error)).toMatch(/snapshot object \[etcd-snapshots\/left-incomplete\] is marked incomplete/);
  });

  it('sends snapshot data unsigned over TLS only; the server checks the signature of every request', async () => {
    const data = pseudoRandomBytes(7 * MiB, 'payload-signing');
    const payloadHashes: Record<string, string[]> = { 'http:': [], 'https:': [] };
    for (const endpoint of [server.endpoint, server.httpsEndpoint]) {
      const endpointSettings = settingsFor(server, { folder: 'signing', endpoint, endpointCa: server.caPem });
      const tracked = await createS3Client(endpointSettings, { log, retryPolicy: FAST_RETRY });
      // Innermost step: the headers as signed and sent.
      tracked.middlewareStack.add(
        (next, context) => async (args) => {
          const request = args.request as { protocol: string; headers: Record<string, string> };
          if (context.commandName === 'UploadPartCommand') payloadHashes[request.protocol]!.push(request.headers['x-amz-content-sha256']!);
          return next(args);
        },
        { step: 'deserialize', name: 'recordPayloadHash' },
      );
      try {
        const name = `signed-${endpoint.slice(0, endpoint.indexOf(':'))}`;
        const uploaded = await uploadSnapshot({ settings: endpointSettings, client: tracked, key: objectKeyFor(endpointSettings, name), body: chunkedStream(data), metadata: origin, log, partSize: 5 * MiB });
        expect(uploaded.sha256).toBe(sha256(data));
        const downloaded = await downloadSnapshot({ settings: endpointSettings, client: tracked, name, log });
        expect((await readAll(downloaded.stream)).equals(data)).toBe(true);
      } finally {
        tracked.destroy();
      }
    }
    // Parts travel concurrently: compare as sets.
    expect(payloadHashes['http:']!.sort()).toEqual([sha256(data.subarray(0, 5 * MiB)), sha256(data.subarray(5 * MiB))].sort());
    expect(payloadHashes['https:']).toEqual(['UNSIGNED-PAYLOAD', 'UNSIGNED-PAYLOAD']);
  });

  it('stops on the abort signal with an interruption error and no object', async () => {
    const controller = new AbortController();
    const data = pseudoRandomBytes(16 * MiB, 'abort');
    const body = chunkedStream(data, {
      onChunk: (produced) => {
        if (produced > 7 * MiB) controller.abort();
      },
    });
    const key = objectKeyFor(settings, 'aborted');
    await expect(upload(key, data, { body, signal: controller.signal })).rejects.toThrow(/interrupted/);
    expect(await allKeys()).not.toContain(key);
  });
});

async function allKeys(): Promise<string[]> {
  const page = await client.send(new ListObjectsV2Command({ Bucket: settings.bucket }));
  return (page.Contents ?? []).map((object) => object.Key ?? '');
}

describe('interoperability with s3cmd', () => {
  it('s3cmd fetches what rke-ts uploaded, byte-identical', async () => {
    const data = pseudoRandomBytes(9 * MiB, 's3cmd-get');
    const key = objectKeyFor(settings, 'for-s3cmd.zip');
    await upload(key, data);
    const target = join(workDir, 'fetched.zip');
    s3cmd('get', '--force', `s3://${settings.bucket}/${key}`, target);
    expect(readFileSync(target).equals(data)).toBe(true);
  });

  it('downloadSnapshot reads what s3cmd put (no sha256 metadata: size check only)', async () => {
    const data = pseudoRandomBytes(17 * MiB, 's3cmd-put');
    const source = join(workDir, 'k3s-snapshot');
    writeFileSync(source, data);
    s3cmd('put', source, `s3://${settings.bucket}/etcd-snapshots/on-demand-node1-1714557600.zip`);
    const downloaded = await downloadSnapshot({ settings, client, name: 'on-demand-node1-1714557600', log });
    expect(downloaded.key).toBe('etcd-snapshots/on-demand-node1-1714557600.zip');
    expect(downloaded.sha256).toBeUndefined();
    expect((await readAll(downloaded.stream)).equals(data)).toBe(true);
  });
});

describe('list and delete', () => {
  it('lists snapshots with metadata, skipping hidden keys (k3s metadata objects) and keys outside the folder', async () => {
    for (const key of ['etcd-snapshots/.hidden/x.abc', 'etcd-snapshots/.metadata/on-demand-node1-1714557600.zip', 'outside']) {
      await client.send(new PutObjectCommand({ Bucket: settings.bucket, Key: key, Body: 'x' }));
    }
    const snapshots = await listSnapshots(settings, { client });
    const names = snapshots.map((snapshot) => snapshot.name);
    expect(names).toEqual(expect.arrayContaining(['rke_etcd_snapshot_2024-05-01T12:00:00+02:00.zip', 'on-demand-node1-1714557600.zip']));
    expect(names.some((name) => name.includes('.hidden') || name.includes('.metadata') || name === 'outside')).toBe(false);
    const ours = snapshots.find((snapshot) => snapshot.name === 'big-snapshot');
    expect(ours?.metadata.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(ours?.size).toBe(12 * MiB);
    expect(snapshots.find((snapshot) => snapshot.name === 'on-demand-node1-1714557600.zip')?.metadata.sha256).toBeUndefined();
  });

  it('deletes by key and reports a missing object', async () => {
    const key = objectKeyFor(settings, 'empty');
    expect(await deleteSnapshot(settings, key, { client, log })).toBe(true);
    expect(await deleteSnapshot(settings, key, { client, log })).toBe(false);
    await expect(downloadSnapshot({ settings, client, name: 'empty', log })).rejects.toThrow(/no backups found/);
  });
});

describe('corruption', () => {
  it('refuses an object whose bytes changed on the server disk (checksum mismatch)', async () => {
    const data = pseudoRandomBytes(3 * MiB, 'bitrot');
    const key = objectKeyFor(settings, 'bitrot.zip');
    await upload(key, data);
    const file = server.objectFile(key);
    const fd = openSync(file, 'r+');
    const byte = Buffer.alloc(1);
    readSync(fd, byte, 0, 1, MiB);
    writeSync(fd, Buffer.from([byte[0]! ^ 0xff]), 0, 1, MiB);
    closeSync(fd);
    const downloaded = await downloadSnapshot({ settings, client, name: 'bitrot', log });
    await expectStreamError(downloaded.stream, /checksum mismatch for snapshot object \[etcd-snapshots\/bitrot.zip\]/);
  });

  it('refuses different bytes re-put with the original metadata', async () => {
    const data = pseudoRandomBytes(2 * MiB, 'original');
    const key = objectKeyFor(settings, 'replaced');
    await upload(key, data);
    const head = await client.send(new GetObjectCommand({ Bucket: settings.bucket, Key: key }));
    await head.Body?.transformToByteArray();
    const metadata = head.Metadata ?? {};
    expect(metadata.sha256).toBe(sha256(data));

    await client.send(new PutObjectCommand({ Bucket: settings.bucket, Key: key, Body: pseudoRandomBytes(2 * MiB, 'evil'), Metadata: metadata }));
    const sameSize = await downloadSnapshot({ settings, client, name: 'replaced', log });
    await expectStreamError(sameSize.stream, /checksum mismatch/);

    await client.send(new PutObjectCommand({ Bucket: settings.bucket, Key: key, Body: data.subarray(0, MiB), Metadata: metadata }));
    const error = await downloadSnapshot({ settings, client, name: 'replaced', log }).catch((caught: unknown) => caught);
    errorMessages.push(describeError(error));
    expect(describeError(error)).toMatch(/size mismatch for snapshot object .* 1048576 bytes, its metadata says 2097152/);
    expect((await rawGet(key)).length).toBe(MiB);
  });
});

describe('secrets', () => {
  it('never appear in any log line or error message of this file', () => {
    expect(lines.length).toBeGreaterThan(10);
    expect(errorMessages.length).toBeGreaterThan(3);
    for (const text of [...lines, ...errorMessages]) expect(text).not.toContain(server.secretKey);
  });
});
