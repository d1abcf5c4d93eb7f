/**
 * Failure modes against a real S3-compatible server: unreachable endpoint, bad credentials,
 * missing bucket, TLS trust, a crash mid-upload and connections dropped mid-stream. Every
 * failure must be one clear line, leave nothing under the final key, and never show a secret.
 */
import { createServer } from 'node:net';

import { HeadObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { StorageError, describeError } from '../../src/errors.js';
import { checkBucket } from '../../src/storage/bucket.js';
import { createS3Client } from '../../src/storage/client.js';
import { downloadSnapshot } from '../../src/storage/download.js';
import { objectKeyFor } from '../../src/storage/keys.js';
import { listSnapshots } from '../../src/storage/list.js';
import { type S3CliFlags } from '../../src/storage/s3-flags.js';
import { type S3Settings, resolveS3Settings } from '../../src/storage/settings.js';
import { uploadSnapshot } from '../../src/storage/upload.js';
import {
  type TestS3Server,
  captureLog,
  chunkedStream,
  pseudoRandomBytes,
  settingsFor,
  startConnectProxy,
  startFaultyTcpProxy,
  startS3Server,
} from '../support/s3server.js';

const MiB = 1024 ** 2;
const FAST_RETRY = { maxAttempts: 4, baseDelayMs: 20, maxDelayMs: 100 };
const origin = { node: 'node-1', clusterName: 'local', createdAt: new Date('2024-05-01T10:00:00Z') };

let server: TestS3Server;
const { log, lines } = captureLog();
const errorMessages: string[] = [];
const clients: S3Client[] = [];

function settingsWith(flags: Partial<S3CliFlags>): S3Settings {
  return settingsFor(server, flags);
}

async function clientFor(settings: S3Settings): Promise<S3Client> {
  const client = await createS3Client(settings, { log, retryPolicy: FAST_RETRY });
  clients.push(client);
  return client;
}

/** Runs `action`, expects a StorageError, records and returns its one-line message. */
async function failureOf(action: () => Promise<unknown>): Promise<string> {
  const error = await action().then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(StorageError);
  const line = describeError(error);
  errorMessages.push(line, String((error as Error).stack));
  expect(line).not.toContain('\n');
  return line;
}

async function keysInBucket(settings: S3Settings): Promise<string[]> {
  const client = await clientFor(settings);
  const page = await client.send(new ListObjectsV2Command({ Bucket: settings.bucket }));
  return (page.Contents ?? []).map((object) => object.Key ?? '');
}

async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

beforeAll(async () => {
  server = await startS3Server();
});

afterAll(async () => {
  for (const client of clients) client.destroy();
  await server?.stop();
});

describe('checkBucket', () => {
  it('passes for an existing bucket', async () => {
    const settings = settingsWith({});
    await checkBucket(await clientFor(settings), settings, { log });
    expect(lines.join('')).toContain(`Checking if S3 bucket ${server.bucket} exists`);
  });

  it('names a missing bucket and says it is never created', async () => {
    const settings = settingsWith({ bucketName: 'no-such-bucket' });
    const line = await failureOf(async () => checkBucket(await clientFor(settings), settings));
    expect(line).toMatch(/failed to check bucket no-such-bucket \(S3 endpoint \[http:\/\/127\.0\.0\.1:\d+\], bucket \[no-such-bucket\]\): bucket no-such-bucket is not found/);
    expect(line).toMatch(/never creates buckets/);
  });

  it('explains an unknown access key', async () => {
    const settings = settingsWith({ accessKey: 'NOSUCHACCESSKEY' });
    const line = await failureOf(async () => checkBucket(await clientFor(settings), settings));
    expect(line).toMatch(/does not know access key \[NOSUCHACCESSKEY\] \(InvalidAccessKeyId\).*check --access-key/);
  });

  it('explains a wrong secret key without showing either secret', async () => {
    const wrongSecret = 'definitely-not-the-secret-key-123';
    const settings = settingsWith({ secretKey: wrongSecret });
    const line = await failureOf(async () => checkBucket(await clientFor(settings), settings));
    expect(line).toMatch(/secret key does not match access key \[RKETSTESTACCESSKEY\] \(SignatureDoesNotMatch\)/);
    expect(line).not.toContain(wrongSecret);
  });

  it('explains an endpoint where nothing listens', async () => {
    const settings = settingsWith({ endpoint: `http://127.0.0.1:${await closedPort()}` });
    const line = await failureOf(async () => checkBucket(await clientFor(settings), settings));
    expect(line).toMatch(/cannot connect to 127\.0\.0\.1:\d+: connection refused.*server is running/);
  });
});

describe('TLS', () => {
  it('works with the custom CA as a file (--s3-endpoint-ca) and as PEM text (custom_ca)', async () => {
    const fromFlag = settingsWith({ endpoint: server.httpsEndpoint, endpointCa: server.caFile });
    await checkBucket(await clientFor(fromFlag), fromFlag);
    const fromFile = resolveS3Settings({
      flags: { s3: false },
      fileConfig: {
        endpoint: server.httpsEndpoint,
        bucketName: server.bucket,
        accessKey: server.accessKey,
        secretKey: server.secretKey,
        customCa: server.caPem,
      },
      env: {},
    })!;
    const data = pseudoRandomBytes(MiB, 'tls');
    await uploadSnapshot({ settings: fromFile, client: await clientFor(fromFile), key: 'tls-snapshot', body: chunkedStream(data), metadata: origin, log });
    const downloaded = await downloadSnapshot({ settings: fromFile, client: await clientFor(fromFile), name: 'tls-snapshot', log });
    const chunks: Buffer[] = [];
    for await (const chunk of downloaded.stream) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks).equals(data)).toBe(true);
  });

  it('fails clearly without the CA, pointing at --s3-endpoint-ca and --s3-skip-ssl-verify', async () => {
    const settings = settingsWith({ endpoint: server.httpsEndpoint });
    const line = await failureOf(async () => checkBucket(await clientFor(settings), settings));
    expect(line).toMatch(/TLS certificate verification failed: .*\((UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)\)/);
    expect(line).toMatch(/--s3-endpoint-ca.*--s3-skip-ssl-verify/);
  });

  it('works with --s3-skip-ssl-verify', async () => {
    const settings = settingsWith({ endpoint: server.httpsEndpoint, skipSslVerify: true });
    await checkBucket(await clientFor(settings), settings);
  });

  it('says so when the endpoint speaks plain HTTP but TLS was expected', async () => {
    const settings = settingsWith({ endpoint: server.endpoint.replace('http://', '') });
    const line = await failureOf(async () => checkBucket(await clientFor(settings), settings));
    expect(line).toMatch(/does not speak TLS.*--s3-insecure/);
  });

  it('tunnels through --s3-proxy (CONNECT) with the custom CA', async () => {
    const proxy = await startConnectProxy();
    try {
      const settings = settingsWith({ endpoint: server.httpsEndpoint, endpointCa: server.caFile, proxy: proxy.url });
      await checkBucket(await clientFor(settings), settings);
      expect(proxy.tunnels).toBeGreaterThan(0);
    } finally {
      await proxy.close();
    }
  });
});

describe('interrupted uploads', () => {
  it('server killed mid-upload: clear error, and after a restart nothing under the final key', async () => {
    const settings = settingsWith({ folder: 'crash' });
    const key = objectKeyFor(settings, 'crashed.zip');
    const data = pseudoRandomBytes(24 * MiB, 'crash');
    // Crash once S3 has acknowledged the first part: the multipart upload exists, more parts are in flight.
    let killing: Promise<void> | undefined;
    const line = await failureOf(async () =>
      uploadSnapshot({
        settings,
        client: await clientFor(settings),
        key,
        body: chunkedStream(data),
        metadata: origin,
        log,
        partSize: 5 * MiB,
        onProgress: () => {
          killing ??= server.kill();
        },
      }),
    );
    await killing;
    const killed = killing !== undefined;
    expect(killed).toBe(true);
    expect(line).toMatch(/failed to upload etcd snapshot file \[crash\/crashed\.zip\] \(S3 endpoint .*\): (cannot connect|the connection was dropped)/);

    await server.restart();
    // The crash left the multipart upload open (nobody could abort it): invisible, not a snapshot.
    expect(server.pendingMultipartUploads()).toHaveLength(1);
    const client = await clientFor(settings);
    await expect(client.send(new HeadObjectCommand({ Bucket: settings.bucket, Key: key }))).rejects.toMatchObject({ name: 'NotFound' });
    expect((await keysInBucket(settings)).filter((candidate) => candidate.startsWith('crash/'))).toEqual([]);
    expect(await listSnapshots(settings, { client })).toEqual([]);
  });

  // Over TLS each attempt sends its part as a fresh stream of slices (client.ts).
  it.each(['http', 'https'])('a connection dropped mid-part is retried and the upload succeeds (%s)', async (scheme) => {
    const target = scheme === 'https' ? server.httpsEndpoint : server.endpoint;
    const proxy = await startFaultyTcpProxy({ targetPort: Number(new URL(target).port), dropAfterBytes: 3 * MiB, maxDrops: 1 });
    try {
      const endpoint = proxy.endpoint.replace(/^http:/, `${scheme}:`);
      const settings = settingsWith({ endpoint, folder: 'flaky', ...(scheme === 'https' ? { endpointCa: server.caFile } : {}) });
      const data = pseudoRandomBytes(20 * MiB, `flaky-${scheme}`);
      const key = objectKeyFor(settings, `retried-${scheme}.zip`);
      await uploadSnapshot({ settings, client: await clientFor(settings), key, body: chunkedStream(data), metadata: origin, log, partSize: 5 * MiB });
      expect(proxy.dropped).toBe(1);
      expect(lines.some((line) => line.includes('retrying in'))).toBe(true);
      const direct = settingsWith({ folder: 'flaky' });
      const downloaded = await downloadSnapshot({ settings: direct, client: await clientFor(direct), name: `retried-${scheme}`, log });
      const chunks: Buffer[] = [];
      for await (const chunk of downloaded.stream) chunks.push(chunk as Buffer);
      expect(Buffer.concat(chunks).equals(data)).toBe(true);
    } finally {
      await proxy.close();
    }
  });

  it('connections dropped on every try: error after the retries, nothing under the final key', async () => {
    const proxy = await startFaultyTcpProxy({ targetPort: Number(new URL(server.endpoint).port), dropAfterBytes: 3 * MiB, maxDrops: Number.POSITIVE_INFINITY });
    try {
      const settings = settingsWith({ endpoint: proxy.endpoint, folder: 'dropped' });
      const pendingBefore = server.pendingMultipartUploads().length;
      const key = objectKeyFor(settings, 'never.zip');
      const data = pseudoRandomBytes(12 * MiB, 'dropped');
      const line = await failureOf(async () =>
        uploadSnapshot({ settings, client: await clientFor(settings), key, body: chunkedStream(data), metadata: origin, log, partSize: 5 * MiB }),
      );
      expect(line).toMatch(/failed to upload etcd snapshot file \[dropped\/never\.zip\].*the connection was dropped/);
      expect(proxy.dropped).toBeGreaterThanOrEqual(FAST_RETRY.maxAttempts);
      expect((await keysInBucket(settingsWith({}))).filter((candidate) => candidate.startsWith('dropped/'))).toEqual([]);
      expect(server.pendingMultipartUploads()).toHaveLength(pendingBefore);
    } finally {
      await proxy.close();
    }
  });
});

describe('timeouts and broken downloads', () => {
  it('gives up on an endpoint that accepts connections but never answers, after --s3-timeout', async () => {
    const sockets: Array<import('node:net').Socket> = [];
    const silent = createServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = silent.address() as { port: number };
      const settings = settingsWith({ endpoint: `http://127.0.0.1:${port}`, timeout: '500ms' });
      const client = await createS3Client(settings, { log, retryPolicy: { ...FAST_RETRY, maxAttempts: 2 } });
      clients.push(client);
      const started = Date.now();
      const line = await failureOf(() => checkBucket(client, settings));
      expect(line).toMatch(/no answer within 500ms.*--s3-timeout/);
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it('a download cut off mid-body fails the stream with a StorageError', async () => {
    const settings = settingsWith({ folder: 'cut' });
    const data = pseudoRandomBytes(8 * MiB, 'cut');
    await uploadSnapshot({ settings, client: await clientFor(settings), key: 'cut/cut.zip', body: chunkedStream(data), metadata: origin, log });
    const proxy = await startFaultyTcpProxy({
      targetPort: Number(new URL(server.endpoint).port),
      dropAfterBytes: 2 * MiB,
      maxDrops: 1,
      direction: 'download',
    });
    try {
      const viaProxy = settingsWith({ endpoint: proxy.endpoint, folder: 'cut' });
      const downloaded = await downloadSnapshot({ settings: viaProxy, client: await clientFor(viaProxy), name: 'cut', log });
      const line = await failureOf(async () => {
        for await (const chunk of downloaded.stream) void chunk;
      });
      expect(line).toMatch(/failed to download snapshot \[cut\/cut\.zip\].*(connection was dropped|size mismatch)/);
      expect(proxy.dropped).toBe(1);
    } finally {
      await proxy.close();
    }
  });
});

describe('secrets', () => {
  it('never appear in any log line, error message or stack of this file', () => {
    expect(lines.length).toBeGreaterThan(5);
    expect(errorMessages.length).toBeGreaterThan(8);
    for (const text of [...lines, ...errorMessages]) {
      expect(text).not.toContain(server.secretKey);
      expect(text).not.toContain('definitely-not-the-secret-key-123');
    }
  });
});
