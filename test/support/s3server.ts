/**
 * A real S3-compatible server for tests: s3rver (filesystem-backed) in a child process, bound
 * to 127.0.0.1 only, over plain HTTP and over HTTPS with a certificate from a test CA made by
 * openssl. A child process so that kill() is a real crash (SIGKILL mid-request).
 *
 * Two gaps of s3rver are filled inside the child, so tests exercise the real protocol:
 * - it does not verify AWS Signature V4 (it accepts any secret): a middleware verifies it, so
 *   a wrong secret key gets SignatureDoesNotMatch like on real S3;
 * - it lacks UploadPartCopy and AbortMultipartUpload: middlewares implement them on s3rver's
 *   own store;
 * - it reads x-amz-copy-source with decodeURI, which leaves %2B, %3A... encoded, where S3
 *   decodes them: a middleware hands s3rver the header in a form its decodeURI reads right.
 *
 * Also here: a TCP proxy that drops connections mid-stream, and a CONNECT proxy.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { type Server, type Socket, connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Transform, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';

import { type Logger, pino } from 'pino';
import { type S3CliFlags, type S3Settings, resolveS3Settings } from '../../src/storage/index.js';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const HOST = '127.0.0.1';

export interface TestS3Server {
  /** http://127.0.0.1:PORT */
  endpoint: string;
  /** https://127.0.0.1:PORT, certificate signed by caPem */
  httpsEndpoint: string;
  caPem: string;
  caFile: string;
  accessKey: string;
  secretKey: string;
  bucket: string;
  /** s3rver's storage directory. */
  directory: string;
  /** Process id of the server while it runs (benchmarks read its CPU time). */
  pid(): number | undefined;
  /** Where s3rver keeps an object's bytes on disk (for corruption tests). */
  objectFile(key: string, bucket?: string): string;
  /** Ids of multipart uploads neither completed nor aborted. */
  pendingMultipartUploads(bucket?: string): string[];
  /** SIGKILL the server: a crash, storage kept. */
  kill(): Promise<void>;
  /** Start again on the same ports and storage after kill(). */
  restart(): Promise<void>;
  /** Stop and delete everything. */
  stop(): Promise<void>;
}

// Runs in the child (plain Node ESM, resolved from the repo root).
const CHILD_SOURCE = String.raw`
import S3rver from 's3rver';
import AWSAccount from 's3rver/lib/models/account.js';
import { createHash, createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
const cfg = JSON.parse(process.env.TEST_S3_CONFIG);
AWSAccount.DUMMY_ACCOUNT.createKeyPair(cfg.accessKey, cfg.secretKey);
const enc = (s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
const hmac = (key, data) => createHmac('sha256', key).update(data).digest();
const s3Error = (ctx, status, code, message) => {
  ctx.status = status; ctx.type = 'application/xml';
  ctx.body = '<?xml version="1.0" encoding="UTF-8"?><Error><Code>' + code + '</Code><Message>' + message + '</Message></Error>';
};
async function verifySigV4(ctx, next) {
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/([^,]+), ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]+)$/.exec(ctx.get('authorization'));
  const account = m && AWSAccount.registry.get(m[1]);
  if (!account) return next(); // no V4 header auth, or unknown key: s3rver answers
  const [rawPath, rawQuery = ''] = ctx.req.url.split('?');
  const query = rawQuery.split('&').filter(Boolean).map((p) => {
    const i = p.indexOf('='); const k = i < 0 ? p : p.slice(0, i); const v = i < 0 ? '' : p.slice(i + 1);
    return [enc(decodeURIComponent(k)), enc(decodeURIComponent(v))];
  }).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : 1)).map(([k, v]) => k + '=' + v).join('&');
  const signed = m[3].split(';');
  const headers = signed.map((h) => h + ':' + String(ctx.get(h)).trim().replace(/\s+/g, ' ') + '\n').join('');
  const canonical = [ctx.method, rawPath, query, headers, m[3], ctx.get('x-amz-content-sha256')].join('\n');
  const toSign = ['AWS4-HMAC-SHA256', ctx.get('x-amz-date'), m[2], createHash('sha256').update(canonical).digest('hex')].join('\n');
  const [date, region, service] = m[2].split('/');
  let key = hmac('AWS4' + account.accessKeys.get(m[1]), date);
  for (const part of [region, service, 'aws4_request']) key = hmac(key, part);
  if (hmac(key, toSign).toString('hex') !== m[4]) return s3Error(ctx, 403, 'SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided.');
  return next();
}
async function uploadPartCopy(ctx, next) {
  const source = ctx.get('x-amz-copy-source');
  if (ctx.method !== 'PUT' || !('uploadId' in ctx.query) || !source) return next();
  const [srcBucket, ...srcKey] = decodeURIComponent(source).replace(/^\//, '').split('/');
  const range = /^bytes=(\d+)-(\d+)$/.exec(ctx.get('x-amz-copy-source-range'));
  const object = await ctx.store.getObject(srcBucket, srcKey.join('/'), range ? { start: Number(range[1]), end: Number(range[2]) } : undefined);
  if (!object) return s3Error(ctx, 404, 'NoSuchKey', 'The specified key does not exist.');
  const { md5 } = await ctx.store.putPart(ctx.path.split('/')[1], ctx.query.uploadId, ctx.query.partNumber, object.content);
  ctx.type = 'application/xml';
  ctx.body = '<?xml version="1.0" encoding="UTF-8"?><CopyPartResult><ETag>"' + md5 + '"</ETag><LastModified>' + new Date().toISOString() + '</LastModified></CopyPartResult>';
}
async function decodeCopySource(ctx, next) {
  const source = ctx.get('x-amz-copy-source');
  if (source) ctx.req.headers['x-amz-copy-source'] = encodeURI(decodeURIComponent(source));
  return next();
}
async function abortMultipartUpload(ctx, next) {
  if (ctx.method !== 'DELETE' || !('uploadId' in ctx.query)) return next();
  const uploads = ctx.store.getResourcePath(ctx.path.split('/')[1], undefined, 'uploads');
  await rm(join(uploads, String(ctx.query.uploadId)), { recursive: true, force: true });
  ctx.status = 204;
}
const start = async (extra) => {
  const server = new S3rver({ address: '127.0.0.1', directory: cfg.directory, silent: true, configureBuckets: cfg.buckets.map((name) => ({ name })), ...extra });
  server.middleware.unshift(verifySigV4, decodeCopySource, uploadPartCopy, abortMultipartUpload);
  return (await server.run()).port;
};
const httpPort = await start({ port: cfg.httpPort });
const httpsPort = await start({ port: cfg.httpsPort, key: readFileSync(cfg.keyFile), cert: readFileSync(cfg.certFile) });
process.send({ httpPort, httpsPort });
`;

interface ChildConfig {
  directory: string;
  buckets: string[];
  accessKey: string;
  secretKey: string;
  httpPort: number;
  httpsPort: number;
  keyFile: string;
  certFile: string;
}

function createTestCa(directory: string): { caFile: string; keyFile: string; certFile: string } {
  const file = (name: string) => join(directory, name);
  const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  openssl('req', '-x509', ...ecKey, '-keyout', file('ca.key'), '-out', file('ca.pem'), '-days', '2',
    '-subj', '/CN=rke-ts test CA', '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  openssl('req', ...ecKey, '-keyout', file('server.key'), '-out', file('server.csr'), '-subj', '/CN=127.0.0.1');
  writeFileSync(file('server.ext'),
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
  openssl('x509', '-req', '-in', file('server.csr'), '-CA', file('ca.pem'), '-CAkey', file('ca.key'),
    '-CAcreateserial', '-out', file('server.pem'), '-days', '2', '-extfile', file('server.ext'));
  return { caFile: file('ca.pem'), keyFile: file('server.key'), certFile: file('server.pem') };
}

async function spawnServer(config: ChildConfig): Promise<{ child: ChildProcess; httpPort: number; httpsPort: number }> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', CHILD_SOURCE], {
    cwd: REPO_ROOT,
    env: { ...process.env, TEST_S3_CONFIG: JSON.stringify(config) },
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const ports = await new Promise<{ httpPort: number; httpsPort: number }>((resolve, reject) => {
    child.once('message', (message) => resolve(message as { httpPort: number; httpsPort: number }));
    child.once('exit', (code) => reject(new Error(`test S3 server exited (${code}): ${stderr}`)));
  });
  child.removeAllListeners('exit');
  return { child, ...ports };
}

async function killChild(child: ChildProcess | undefined, signal: NodeJS.Signals): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill(signal);
  await exited;
}

export async function startS3Server(options: { buckets?: string[] } = {}): Promise<TestS3Server> {
  const root = mkdtempSync(join(tmpdir(), 'rke-ts-s3-'));
  const tls = createTestCa(root);
  const buckets = options.buckets ?? ['snapshots'];
  const config: ChildConfig = {
    directory: join(root, 'data'),
    buckets,
    accessKey: 'RKETSTESTACCESSKEY',
    // Distinctive, so a test can prove it never shows up in logs or errors.
    secretKey: `rke-ts-secret-${randomBytes(12).toString('hex')}`,
    httpPort: 0,
    httpsPort: 0,
    ...tls,
  };
  let running = await spawnServer(config);
  // Restarts must reuse the ports: clients keep the endpoint they were given.
  config.httpPort = running.httpPort;
  config.httpsPort = running.httpsPort;
  let child: ChildProcess | undefined = running.child;

  return {
    endpoint: `http://${HOST}:${running.httpPort}`,
    httpsEndpoint: `https://${HOST}:${running.httpsPort}`,
    caPem: readFileSync(tls.caFile, 'utf8'),
    caFile: tls.caFile,
    accessKey: config.accessKey,
    secretKey: config.secretKey,
    bucket: buckets[0] ?? 'snapshots',
    directory: config.directory,
    pid: () => child?.pid,
    objectFile: (key, bucket = buckets[0] ?? 'snapshots') => {
      const parts = key.split('/');
      const last = parts.pop() ?? '';
      return join(config.directory, bucket, ...parts, `${last}._S3rver_object`);
    },
    pendingMultipartUploads: (bucket = buckets[0] ?? 'snapshots') => {
      const uploads = join(config.directory, bucket, '._S3rver_uploads');
      return existsSync(uploads) ? readdirSync(uploads) : [];
    },
    kill: async () => {
      await killChild(child, 'SIGKILL');
      child = undefined;
    },
    restart: async () => {
      await killChild(child, 'SIGKILL');
      running = await spawnServer(config);
      child = running.child;
    },
    stop: async () => {
      await killChild(child, 'SIGTERM');
      child = undefined;
      rmSync(root, { recursive: true, force: true });
    },
  };
}

export interface FaultyTcpProxy {
  /** http://127.0.0.1:PORT */
  endpoint: string;
  /** Connections dropped so far. */
  readonly dropped: number;
  close(): Promise<void>;
}

/**
 * Forwards 127.0.0.1:PORT to the target port and resets (RST) a connection once more than
 * `dropAfterBytes` went through it in `direction` (default: client to server, i.e. uploads),
 * for the first `maxDrops` such connections.
 */
export async function startFaultyTcpProxy(options: {
  targetPort: number;
  dropAfterBytes: number;
  maxDrops: number;
  direction?: 'upload' | 'download';
}): Promise<FaultyTcpProxy> {
  let dropped = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(options.targetPort, HOST);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => undefined);
    }
    let sent = 0;
    const meter = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        sent += chunk.length;
        if (sent > options.dropAfterBytes && dropped < options.maxDrops) {
          dropped++;
          client.resetAndDestroy();
          upstream.destroy();
          callback();
          return;
        }
        callback(null, chunk);
      },
    });
    if (options.direction === 'download') {
      upstream.pipe(meter).pipe(client);
      client.pipe(upstream);
    } else {
      client.pipe(meter).pipe(upstream);
      upstream.pipe(client);
    }
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  const { port } = server.address() as { port: number };
  return {
    endpoint: `http://${HOST}:${port}`,
    get dropped() {
      return dropped;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** An HTTP CONNECT proxy on 127.0.0.1 that only tunnels to 127.0.0.1; counts tunnels. */
export async function startConnectProxy(): Promise<{ url: string; readonly tunnels: number; close(): Promise<void> }> {
  let tunnels = 0;
  const sockets = new Set<Socket>();
  const server = createHttpServer((_request, response) => response.writeHead(405).end());
  server.on('connect', (request, clientSocket: Socket, head: Buffer) => {
    const [host, port] = (request.url ?? '').split(':');
    if (host !== HOST) {
      clientSocket.end('HTTP/1.1 403 Forbidden\r\n\r\n');
      return;
    }
    tunnels++;
    const upstream = connect(Number(port), HOST, () => {
      clientSocket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(clientSocket);
      clientSocket.pipe(upstream);
    });
    for (const socket of [clientSocket, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => undefined);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://${HOST}:${port}`,
    get tunnels() {
      return tunnels;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Deterministic pseudo-random bytes (AES-CTR keystream), so tests can regenerate expectations. */
export function pseudoRandomBytes(size: number, seed: string): Buffer {
  const key = createHash('sha256').update(seed).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  return Buffer.concat([cipher.update(Buffer.alloc(size)), cipher.final()]);
}

/** A Readable over `data` in 64 KiB chunks, pulled on demand; `produced` counts what was read. */
export function chunkedStream(
  data: Buffer,
  hooks: { onChunk?: (produced: number) => Promise<void> | void } = {},
): Readable & { readonly produced: number } {
  let produced = 0;
  const stream = Readable.from(
    (async function* () {
      for (let offset = 0; offset < data.length; offset += 64 * 1024) {
        const chunk = data.subarray(offset, offset + 64 * 1024);
        produced += chunk.length;
        await hooks.onChunk?.(produced);
        yield chunk;
      }
    })(),
  );
  return Object.defineProperty(stream, 'produced', { get: () => produced }) as Readable & { readonly produced: number };
}

/** A pino logger whose lines are kept, so tests can look for (absent) secrets. */
export function captureLog(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _encoding, callback) {
      lines.push(String(chunk));
      callback();
    },
  });
  return { log: pino({ level: 'debug' }, sink), lines };
}

/** rke-ts S3 settings for the test server (plain HTTP, its keys, its default bucket), with overrides. */
export function settingsFor(server: Pick<TestS3Server, 'endpoint' | 'bucket' | 'accessKey' | 'secretKey'>, flags: Partial<S3CliFlags> = {}): S3Settings {
  return resolveS3Settings({
    flags: { s3: true, endpoint: server.endpoint, bucketName: server.bucket, accessKey: server.accessKey, secretKey: server.secretKey, ...flags },
    env: {},
  })!;
}
