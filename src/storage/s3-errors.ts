/**
 * Turning SDK and network errors into one StorageError line that names the endpoint and the
 * bucket and says what to do. Secrets are scrubbed from anything quoted from the error.
 */
import { StorageError } from '../errors.js';
import { formatDuration } from './go-duration.js';
import { scrubSecrets } from './redact.js';
import type { S3Settings } from './settings.js';

export type S3FailureKind =
  | 'no-bucket'
  | 'no-object'
  | 'bad-access-key'
  | 'bad-secret-key'
  | 'expired-token'
  | 'access-denied'
  | 'wrong-region'
  | 'refused'
  | 'dns'
  | 'tls'
  | 'not-tls'
  | 'timeout'
  | 'dropped'
  | 'aborted'
  | 'other';

const TLS_VERIFY_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

interface ErrorFacts {
  name: string;
  code: string | undefined;
  status: number | undefined;
  message: string;
}

function factsOf(error: unknown): ErrorFacts {
  // Network errors may be wrapped (AggregateError from happy eyeballs, `cause` chains).
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    const code = (current as NodeJS.ErrnoException).code;
    const status = (current as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    if (code !== undefined || status !== undefined || current.cause === undefined) {
      return { name: current.name, code, status, message: current.message };
    }
    current = current.cause;
  }
  return { name: 'Error', code: undefined, status: undefined, message: String(error) };
}

export function classifyS3Error(error: unknown): S3FailureKind {
  const { name, code, status, message } = factsOf(error);
  if (name === 'AbortError') return 'aborted';
  if (name === 'NoSuchBucket') return 'no-bucket';
  if (name === 'NoSuchKey') return 'no-object';
  if (name === 'InvalidAccessKeyId') return 'bad-access-key';
  if (name === 'SignatureDoesNotMatch') return 'bad-secret-key';
  if (name === 'ExpiredToken' || name === 'InvalidToken' || name === 'TokenRefreshRequired') return 'expired-token';
  if (name === 'AuthorizationHeaderMalformed' || name === 'PermanentRedirect' || status === 301) return 'wrong-region';
  if (name === 'AccessDenied' || name === 'AllAccessDisabled' || status === 403) return 'access-denied';
  // Network codes first: the SDK renames ECONNRESET, EPIPE, ECONNREFUSED and ETIMEDOUT errors
  // to name "TimeoutError" (so that they count as transient), which hides what happened.
  if (code === 'ECONNREFUSED') return 'refused';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'dns';
  if (code !== undefined && TLS_VERIFY_CODES.has(code)) return 'tls';
  if (code === 'EPROTO' || code === 'ERR_SSL_WRONG_VERSION_NUMBER' || /wrong version number/i.test(message)) {
    return 'not-tls';
  }
  if (code === 'ECONNRESET' || code === 'EPIPE' || /socket hang up/i.test(message)) return 'dropped';
  if (name === 'TimeoutError' || code === 'ETIMEDOUT' || name === 'RequestTimeout') return 'timeout';
  if (name === 'NotFound' || status === 404) return 'no-object';
  return 'other';
}

/** Whether the error says the object (or bucket) isn't there, as opposed to a failure. */
export function isNotFound(error: unknown): boolean {
  const kind = classifyS3Error(error);
  return kind === 'no-object';
}

export interface S3FailureContext {
  settings: S3Settings;
  /** What failed, completing "failed to ...": e.g. "upload etcd snapshot file [x]". */
  action: string;
}

export function toStorageError(error: unknown, context: S3FailureContext): StorageError {
  if (error instanceof StorageError) return error;
  const { settings, action } = context;
  const kind = classifyS3Error(error);
  const { reason, hint } = explain(kind, error, settings);
  const where = `(S3 endpoint [${settings.endpoint.url}], bucket [${settings.bucket}])`;
  const message = scrubSecrets(`failed to ${action} ${where}: ${reason}`, settings).replace(/\s+/g, ' ');
  return new StorageError(message, { cause: error, ...(hint ? { hint: scrubSecrets(hint, settings) } : {}) });
}

function explain(kind: S3FailureKind, error: unknown, settings: S3Settings): { reason: string; hint?: string } {
  const facts = factsOf(error);
  const accessKey = settings.accessKey ?? '(from the AWS default credential chain)';
  const keyOption = settings.source === 'flags' ? '--access-key / --secret-key' : 'access_key / secret_key in cluster.yml';
  switch (kind) {
    case 'no-bucket':
      return {
        reason: `bucket ${settings.bucket} is not found`,
        hint: 'create the bucket first or fix the bucket name; rke-ts never creates buckets',
      };
    case 'no-object':
      return { reason: 'object not found', hint: 'check the snapshot name and the folder' };
    case 'bad-access-key':
      return {
        reason: `the server does not know access key [${accessKey}] (InvalidAccessKeyId)`,
        hint: `check ${keyOption}`,
      };
    case 'bad-secret-key':
      return {
        reason: `the secret key does not match access key [${accessKey}] (SignatureDoesNotMatch)`,
        hint: `check ${keyOption}`,
      };
    case 'expired-token':
      return { reason: `the session token was rejected (${facts.name})`, hint: 'get fresh temporary credentials' };
    case 'access-denied':
      return {
        reason: `access denied for access key [${accessKey}] (${facts.name === 'Unknown' ? 'HTTP 403' : facts.name})`,
        hint: `check ${keyOption} and that the key may list, read, write and delete objects in the bucket`,
      };
    case 'wrong-region':
      return {
        reason: `the bucket is not in region [${settings.region}] (${facts.name})`,
        hint: 'set the bucket region with --region / region',
      };
    case 'refused':
      return {
        reason: `cannot connect to ${settings.endpoint.host}: connection refused`,
        hint: 'check the endpoint address and port and that the S3 server is running',
      };
    case 'dns':
      return {
        reason: `cannot resolve host ${settings.endpoint.hostname} (${facts.code})`,
        hint: 'check the endpoint host name and DNS',
      };
    case 'tls':
      return {
        reason: `TLS certificate verification failed: ${facts.message} (${facts.code})`,
        hint: "pass the endpoint's CA with --s3-endpoint-ca / custom_ca, or --s3-skip-ssl-verify to skip verification",
      };
    case 'not-tls':
      return {
        reason: `the endpoint does not speak TLS (${facts.code ?? facts.name}${/wrong version number/i.test(facts.message) ? ': wrong version number' : ''})`,
        hint: 'if it serves plain HTTP, write the endpoint as http://host:port or pass --s3-insecure',
      };
    case 'timeout':
      return {
        reason: `no answer within ${formatDuration(settings.timeoutMs)} (${facts.name})`,
        hint: 'check the network path to the endpoint or raise --s3-timeout',
      };
    case 'dropped':
      return {
        reason: `the connection was dropped (${facts.code ?? facts.message})`,
        hint: 'check the network path and any proxy or load balancer in between',
      };
    case 'aborted':
      return { reason: 'interrupted' };
    case 'other': {
      const status = facts.status !== undefined ? ` HTTP ${facts.status}` : '';
      return { reason: `${facts.code ?? facts.name}${status}: ${facts.message}` };
    }
  }
}
