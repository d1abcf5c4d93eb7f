/**
 * The S3 client factory. The SDK is imported lazily so that `--help`, `validate` and every
 * command that doesn't touch S3 start without loading it (it is several MB of JavaScript).
 */
import type { Agent as HttpAgent } from 'node:http';
import type { Agent as HttpsAgent } from 'node:https';
import { Readable } from 'node:stream';

import type { S3Client } from '@aws-sdk/client-s3';
import type { Logger } from 'pino';

import { isAwsGlobalEndpoint } from './endpoint.js';
import { scrubSecrets } from './redact.js';
import { DEFAULT_RETRY_POLICY, type RetryPolicy, createRetryStrategy } from './retry.js';
import type { S3Settings } from './settings.js';

/**
 * Connecting is bounded separately from the request timeout: a black-holed endpoint should fail
 * in seconds per attempt, not after the full --s3-timeout (5 m by default) times four attempts.
 */
export const S3_CONNECT_TIMEOUT_MS = 30_000;
/** Parallel connections per client: upload queue plus a few metadata requests. */
const MAX_SOCKETS = 16;

export interface S3ClientOptions {
  /** Retries are logged here at warn level. */
  log?: Logger;
  /** Tests shorten the backoff; production uses the default. */
  retryPolicy?: RetryPolicy;
}

export async function createS3Client(settings: S3Settings, options: S3ClientOptions = {}): Promise<S3Client> {
  // rke-ts supports Node 20; the SDK's multi-line "upgrade Node" warning would break the
  // one-line-per-problem output operators and cron mails rely on.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const [{ S3Client }, { NodeHttpHandler }] = await Promise.all([
    import('@aws-sdk/client-s3'),
    import('@smithy/node-http-handler'),
  ]);
  const { httpAgent, httpsAgent } = await createAgents(settings);
  const retryPolicy = options.retryPolicy ?? DEFAULT_RETRY_POLICY;
  const log = options.log;

  const client = new S3Client({
    region: settings.region,
    // For the global AWS endpoint let the SDK choose the regional one (see isAwsGlobalEndpoint).
    ...(isAwsGlobalEndpoint(settings.endpoint) ? {} : { endpoint: settings.endpoint.url }),
    forcePathStyle: settings.bucketLookup === 'path',
    // No keys: leave credentials out so the SDK's default chain (profile, web identity, ECS,
    // instance role) applies, as RKE falls back to the IAM instance profile.
    ...(settings.accessKey !== undefined && settings.secretKey !== undefined
      ? {
          credentials: {
            accessKeyId: settings.accessKey,
            secretAccessKey: settings.secretKey,
            ...(settings.sessionToken !== undefined ? { sessionToken: settings.sessionToken } : {}),
          },
        }
      : {}),
    requestHandler: new NodeHttpHandler({
      httpAgent,
      httpsAgent,
      connectionTimeout: Math.min(settings.timeoutMs, S3_CONNECT_TIMEOUT_MS),
      // --s3-timeout bounds each request until its response starts, and any stall after that.
      requestTimeout: settings.timeoutMs,
      throwOnRequestTimeout: true,
      socketTimeout: settings.timeoutMs,
    }),
    maxAttempts: retryPolicy.maxAttempts,
    retryStrategy: createRetryStrategy(retryPolicy, (notice) => {
      log?.warn(
        { attempt: notice.attempt, maxAttempts: notice.maxAttempts, delayMs: notice.delayMs },
        `S3 request to [${settings.endpoint.host}] failed (${scrubSecrets(errorSummary(notice.error), settings)}), retrying in ${notice.delayMs} ms`,
      );
    }),
    // Only send/validate checksums when an API requires them. Since SDK 3.729 the default adds
    // CRC32 trailers (aws-chunked bodies) that many S3-compatible servers reject or store
    // verbatim; integrity is covered end to end by our own sha256 instead.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // A wrong --region on AWS answers 301; follow it instead of failing with a riddle.
    followRegionRedirects: true,
  });
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (isDataOverTls(context.commandName, args.request)) args.request.headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
      return next(args);
    },
    { step: 'build', name: 'rkeTsUnsignedPayloadOverTls' },
  );
  // Innermost, so that every attempt of a retried request gets a fresh stream of its buffer.
  client.middlewareStack.add(
    (next, context) => async (args) =>
      isDataOverTls(context.commandName, args.request) && Buffer.isBuffer(args.request.body)
        ? next({ ...args, request: withBody(args.request, slicesOf(args.request.body)) })
        : next(args),
    { step: 'deserialize', name: 'rkeTsSlicedBodyOverTls' },
  );
  return client;
}

/** Requests whose body is snapshot data. */
const DATA_COMMANDS = new Set(['UploadPartCommand', 'PutObjectCommand']);
/** Bytes handed to a TLS socket at a time. */
const TLS_SLICE_BYTES = 256 * 1024;

interface OutgoingRequest {
  protocol: string;
  headers: Record<string, string>;
  body?: unknown;
}

/**
 * Snapshot data over TLS differs in two ways from plain HTTP:
 * - it is sent with `x-amz-content-sha256: UNSIGNED-PAYLOAD`, as awscli and minio-go (RKE's and
 *   k3s's client) do: TLS already protects the bytes in transit, and the SDK would otherwise hash
 *   every part once more, about a second of CPU per GiB. Over plain HTTP the signed hash is all
 *   S3 has to reject a part damaged on the way, so it stays;
 * - a part is handed to the socket in slices: written whole, TLS encrypts all of it at once
 *   into a buffer of its own, a copy of every part in flight (~30 MiB more at peak).
 */
function isDataOverTls(commandName: string | undefined, request: unknown): request is OutgoingRequest {
  const http = request as Partial<OutgoingRequest>;
  return DATA_COMMANDS.has(commandName ?? '') && http.protocol === 'https:' && http.headers !== undefined;
}

function slicesOf(buffer: Buffer): Readable {
  return Readable.from(
    (function* () {
      for (let offset = 0; offset < buffer.length; offset += TLS_SLICE_BYTES) yield buffer.subarray(offset, offset + TLS_SLICE_BYTES);
    })(),
    { objectMode: false },
  );
}

/** The same request (class and all) with another body. */
function withBody<T extends object>(request: T, body: Readable): T {
  return Object.assign(Object.create(Object.getPrototypeOf(request) as object) as T, request, { body });
}

async function createAgents(settings: S3Settings): Promise<{ httpAgent: HttpAgent; httpsAgent: HttpsAgent }> {
  const tls = await import('node:tls');
  const tlsOptions = {
    rejectUnauthorized: !settings.skipSslVerify,
    // Node's `ca` replaces its bundled roots; keep them so a custom CA adds trust, not swaps it
    // (a proxy or AWS endpoint with a public certificate keeps working). One context for all
    // connections: a `ca` option would parse the whole list again for each.
    ...(settings.caCertificates.length > 0
      ? { secureContext: tls.createSecureContext({ ca: [...tls.rootCertificates, ...settings.caCertificates] }) }
      : {}),
  };
  if (settings.proxy) {
    // CONNECT tunnels for both schemes: https-proxy-agent is what we ship. Some proxies refuse
    // CONNECT to ports other than 443 for plain-HTTP endpoints; http-proxy-agent would cover it.
    const { HttpsProxyAgent } = await import('https-proxy-agent');
    type ConnectArgs = Parameters<InstanceType<typeof HttpsProxyAgent>['connect']>;
    // https-proxy-agent applies its constructor's TLS options to the proxy connection only;
    // the TLS session to the endpoint inside the tunnel takes the per-request options, so the
    // CA and verification setting are added there.
    class EndpointTlsProxyAgent extends HttpsProxyAgent<string> {
      override connect(request: ConnectArgs[0], connectOptions: ConnectArgs[1]) {
        return super.connect(request, { ...connectOptions, ...tlsOptions });
      }
    }
    const proxyUrl = settings.proxy.url;
    return {
      httpAgent: new HttpsProxyAgent(proxyUrl, { keepAlive: true, maxSockets: MAX_SOCKETS }) as unknown as HttpAgent,
      httpsAgent: new EndpointTlsProxyAgent(proxyUrl, {
        keepAlive: true,
        maxSockets: MAX_SOCKETS,
        ...tlsOptions,
      }) as unknown as HttpsAgent,
    };
  }
  const [{ Agent: PlainAgent }, { Agent: TlsAgent }] = await Promise.all([import('node:http'), import('node:https')]);
  return {
    httpAgent: new PlainAgent({ keepAlive: true, maxSockets: MAX_SOCKETS }),
    httpsAgent: new TlsAgent({ keepAlive: true, maxSockets: MAX_SOCKETS, ...tlsOptions }),
  };
}

/** One short phrase for an SDK or network error, for retry warnings. */
export function errorSummary(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code;
    const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    const parts = [code ?? error.name, status !== undefined ? `HTTP ${status}` : undefined, error.message];
    return parts.filter((part) => part !== undefined && part !== '').join(': ').replace(/\s+/g, ' ');
  }
  return String(error);
}

