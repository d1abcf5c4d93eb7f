/**
 * Pure resolution of the S3 settings from the command line, cluster.yml and the environment.
 *
 * RKE's rule: with `--s3` the command-line values replace cluster.yml's
 * `services.etcd.backup_config.s3backupconfig` wholesale; without `--s3` the file's block
 * applies and RKE's S3 flags are ignored. The k3s-only transport flags (timeout, proxy,
 * skip-ssl-verify, insecure, bucket lookup) have no cluster.yml key, so they apply either way.
 */
import { readFileSync } from 'node:fs';

import type { S3BackupConfig } from '../config/types.js';
import { ConfigError, UsageError } from '../errors.js';
import { type ReadTextFile, loadEndpointCa } from './endpoint-ca.js';
import {
  BUCKET_LOOKUP_TYPES,
  type BucketLookup,
  type BucketLookupType,
  type ParsedEndpoint,
  describeEndpointProblem,
  parseEndpoint,
  resolveBucketLookup,
} from './endpoint.js';
import { parseGoDuration } from './go-duration.js';
import { normalizeFolder } from './keys.js';
import { type ResolvedProxy, parseProxyFlag, proxyFromEnvironment } from './proxy.js';
import { S3_DEFAULTS, type S3CliFlags, type S3FlagField, flagNamesFor } from './s3-flags.js';

export type CredentialSource = 'flags' | 'cluster.yml' | 'env' | 'default-chain';

export interface S3Settings {
  /** Where bucket, endpoint and keys came from. */
  source: 'flags' | 'cluster.yml';
  endpoint: ParsedEndpoint;
  bucket: string;
  region: string;
  /** Key prefix without leading/trailing slashes; '' for the bucket root. */
  folder: string;
  /** Undefined together with secretKey: the AWS SDK default chain (profile, instance role). */
  accessKey?: string;
  secretKey?: string;
  sessionToken?: string;
  credentialSource: CredentialSource;
  /** Extra trusted CAs (PEM, one per certificate), added to Node's bundled roots. */
  caCertificates: string[];
  skipSslVerify: boolean;
  /** Undefined: direct connection. */
  proxy?: ResolvedProxy;
  /** Per S3 request (each part of a multipart upload is one request). */
  timeoutMs: number;
  bucketLookupType: BucketLookupType;
  /** What bucketLookupType resolved to for this endpoint. */
  bucketLookup: BucketLookup;
}

export interface ResolveS3SettingsInput {
  flags: S3CliFlags;
  /** cluster.yml's s3backupconfig, when the file has one. */
  fileConfig?: S3BackupConfig;
  env: Readonly<Record<string, string | undefined>>;
  /** Reads a CA file given by path; injectable so resolution stays testable. */
  readFile?: ReadTextFile;
}

const FILE_PATH = 'services.etcd.backup_config.s3backupconfig';
/** The cluster.yml counterpart of each flag: property in S3BackupConfig and YAML key. */
const FILE_FIELDS = {
  accessKey: { prop: 'accessKey', yaml: 'access_key' },
  secretKey: { prop: 'secretKey', yaml: 'secret_key' },
  sessionToken: { prop: 'sessionToken', yaml: 'session_token' },
  bucketName: { prop: 'bucketName', yaml: 'bucket_name' },
  region: { prop: 'region', yaml: 'region' },
  endpoint: { prop: 'endpoint', yaml: 'endpoint' },
  endpointCa: { prop: 'customCa', yaml: 'custom_ca' },
  folder: { prop: 'folder', yaml: 'folder' },
} as const satisfies Partial<Record<S3FlagField, { prop: keyof S3BackupConfig; yaml: string }>>;
type FileBackedField = keyof typeof FILE_FIELDS;

/** Fields that only `--s3` makes effective; without it RKE ignores them. */
const REPLACED_BY_S3_FLAG = Object.keys(FILE_FIELDS) as FileBackedField[];

/** S3 flags given without `--s3` that have no effect, so the CLI can warn about them. */
export function ignoredS3Flags(flags: S3CliFlags): string[] {
  if (flags.s3) return [];
  return REPLACED_BY_S3_FLAG.filter((field) => nonEmpty(flags[field]) !== undefined).map(flagNamesFor);
}

/** Undefined when S3 is not configured at all (no `--s3`, no s3backupconfig). */
export function resolveS3Settings(input: ResolveS3SettingsInput): S3Settings | undefined {
  const { flags, env } = input;
  const fromFlags = flags.s3;
  if (!fromFlags && input.fileConfig === undefined) return undefined;
  const readFile = input.readFile ?? ((path: string) => readFileSync(path, 'utf8'));

  // The error type and the name in it follow where the bad value came from.
  const fail = (field: S3FlagField, reason: string): never => {
    if (fromFlags || !(field in FILE_FIELDS)) throw new UsageError(`${flagNamesFor(field)}: ${reason}`);
    throw new ConfigError(`${FILE_PATH}.${FILE_FIELDS[field as FileBackedField].yaml}: ${reason}`);
  };
  const chosen = (field: FileBackedField): string | undefined =>
    fromFlags ? nonEmpty(flags[field]) : nonEmpty(input.fileConfig?.[FILE_FIELDS[field].prop]);

  const insecure = flags.insecure === true;
  const endpointText = chosen('endpoint') ?? S3_DEFAULTS.endpoint;
  const parsed = parseEndpoint(endpointText, insecure);
  if (!parsed.ok) return fail('endpoint', `"${endpointText}" ${describeEndpointProblem(parsed.problem)}`);
  const endpoint = parsed.endpoint;

  const bucket = chosen('bucketName');
  if (bucket === undefined) return fail('bucketName', fromFlags ? 'is required with --s3' : "can't be empty");
  if (bucket.includes('/')) {
    return fail('bucketName', `"${bucket}" contains "/"; put the key prefix in the folder option instead`);
  }

  const lookupText = (flags.bucketLookupType ?? S3_DEFAULTS.bucketLookupType).trim().toLowerCase();
  if (!(BUCKET_LOOKUP_TYPES as readonly string[]).includes(lookupText)) {
    return fail('bucketLookupType', `"${flags.bucketLookupType}" must be one of ${BUCKET_LOOKUP_TYPES.join(', ')}`);
  }
  const bucketLookupType = lookupText as BucketLookupType;

  const timeoutText = flags.timeout ?? S3_DEFAULTS.timeout;
  const timeoutMs = parseGoDuration(timeoutText);
  if (timeoutMs === undefined) return fail('timeout', `"${timeoutText}" is not a duration such as 30s, 5m or 1h30m`);
  if (timeoutMs < 1) return fail('timeout', `"${timeoutText}" must be longer than zero`);

  let proxy: ResolvedProxy | undefined;
  if (flags.proxy !== undefined && flags.proxy.trim() !== '') {
    const proxyFlag = parseProxyFlag(flags.proxy);
    if (typeof proxyFlag === 'object' && 'reason' in proxyFlag) return fail('proxy', proxyFlag.reason);
    proxy = proxyFlag === 'none' ? undefined : { url: proxyFlag.url, source: 'flag' };
  } else {
    const fromEnv = proxyFromEnvironment(env, endpoint);
    proxy = fromEnv === undefined ? undefined : { url: fromEnv, source: 'env' };
  }

  const skipSslVerify = flags.skipSslVerify === true;
  let caCertificates: string[] = [];
  const caText = chosen('endpointCa');
  // k3s ignores the CA when verification is off; we still reject an unusable one, it is a typo.
  if (caText !== undefined) {
    const loaded = loadEndpointCa(caText, readFile);
    if (!Array.isArray(loaded)) return fail('endpointCa', loaded.reason);
    caCertificates = loaded;
  }

  const credentials = resolveCredentials(chosen('accessKey'), chosen('secretKey'), chosen('sessionToken'), {
    explicitSource: fromFlags ? 'flags' : 'cluster.yml',
    env,
    fail,
  });

  return {
    source: fromFlags ? 'flags' : 'cluster.yml',
    endpoint,
    bucket,
    region: chosen('region') ?? S3_DEFAULTS.region,
    folder: normalizeFolder(chosen('folder') ?? ''),
    ...credentials,
    caCertificates,
    skipSslVerify,
    ...(proxy ? { proxy } : {}),
    timeoutMs,
    bucketLookupType,
    bucketLookup: resolveBucketLookup(bucketLookupType, endpoint),
  };
}

type Credentials = Pick<S3Settings, 'accessKey' | 'secretKey' | 'sessionToken' | 'credentialSource'>;

/** Explicit keys, then AWS_* from the environment, then the SDK's own chain (IAM role etc.). */
function resolveCredentials(
  accessKey: string | undefined,
  secretKey: string | undefined,
  sessionToken: string | undefined,
  context: {
    explicitSource: 'flags' | 'cluster.yml';
    env: Readonly<Record<string, string | undefined>>;
    fail: (field: S3FlagField, reason: string) => never;
  },
): Credentials {
  const { explicitSource, env, fail } = context;
  if (accessKey !== undefined || secretKey !== undefined) {
    if (accessKey === undefined) return fail('accessKey', 'is required when a secret key is given');
    if (secretKey === undefined) return fail('secretKey', 'is required when an access key is given');
    return { accessKey, secretKey, ...(sessionToken ? { sessionToken } : {}), credentialSource: explicitSource };
  }
  if (sessionToken !== undefined) return fail('sessionToken', 'needs an access key and a secret key');

  const envAccessKey = nonEmpty(env.AWS_ACCESS_KEY_ID);
  const envSecretKey = nonEmpty(env.AWS_SECRET_ACCESS_KEY);
  if (envAccessKey !== undefined && envSecretKey !== undefined) {
    const envToken = nonEmpty(env.AWS_SESSION_TOKEN);
    return {
      accessKey: envAccessKey,
      secretKey: envSecretKey,
      ...(envToken ? { sessionToken: envToken } : {}),
      credentialSource: 'env',
    };
  }
  if (envAccessKey !== undefined || envSecretKey !== undefined) {
    const [set, missing] = envAccessKey ? ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'] : ['AWS_SECRET_ACCESS_KEY', 'AWS_ACCESS_KEY_ID'];
    throw new UsageError(`${set} is set but ${missing} is not; set both or neither`);
  }
  // No keys anywhere: leave them out and let the SDK find a profile or an instance role
  // (RKE's "empty keys fall back to the IAM instance profile", rancher/docs#1395).
  return { credentialSource: 'default-chain' };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}
