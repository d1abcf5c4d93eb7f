/**
 * The S3 options of `snapshot-save` / `snapshot-restore`, as one typed table. RKE's spellings
 * come first (`--access-key`, `--bucket-name`, ...); k3s's `--s3-*` spellings are aliases so
 * that a command line written for `k3s etcd-snapshot` works too. The CLI registers every
 * spelling from this table; nothing else in the program knows flag names.
 */

/** Parsed S3 flags, camelCase, before any defaulting or validation. */
export interface S3CliFlags {
  /** `--s3`: take the S3 settings from these flags instead of cluster.yml (RKE semantics). */
  s3: boolean;
  accessKey?: string;
  secretKey?: string;
  sessionToken?: string;
  bucketName?: string;
  region?: string;
  endpoint?: string;
  endpointCa?: string;
  folder?: string;
  skipSslVerify?: boolean;
  insecure?: boolean;
  proxy?: string;
  timeout?: string;
  bucketLookupType?: string;
}

export type S3FlagField = keyof S3CliFlags;

export interface S3FlagSpec {
  field: S3FlagField;
  /** Every accepted spelling; the first is the one shown in --help. */
  flags: readonly string[];
  /** Placeholder for the value in --help; undefined for boolean switches. */
  valueName?: string;
  description: string;
  /** Default as the user would type it (documentation only; resolveS3Settings applies it). */
  defaultValue?: string;
  /** True for fields whose value must never be printed. */
  secret?: boolean;
}

export const S3_DEFAULTS = {
  endpoint: 's3.amazonaws.com',
  region: 'us-east-1',
  /** k3s's default; RKE has no S3 timeout of its own (its container wait is separate). */
  timeout: '5m',
  bucketLookupType: 'auto',
} as const;

export const S3_FLAGS: readonly S3FlagSpec[] = [
  {
    field: 's3',
    flags: ['--s3'],
    description: 'Use the S3 options given on the command line instead of cluster.yml s3backupconfig',
  },
  {
    field: 'accessKey',
    flags: ['--access-key', '--s3-access-key'],
    valueName: 'key',
    description: 'S3 access key id (default: $AWS_ACCESS_KEY_ID, then the AWS default credential chain)',
  },
  {
    field: 'secretKey',
    flags: ['--secret-key', '--s3-secret-key'],
    valueName: 'secret',
    description: 'S3 secret access key (default: $AWS_SECRET_ACCESS_KEY)',
    secret: true,
  },
  {
    field: 'sessionToken',
    flags: ['--s3-session-token'],
    valueName: 'token',
    description: 'S3 session token for temporary credentials (default: $AWS_SESSION_TOKEN)',
    secret: true,
  },
  {
    field: 'bucketName',
    flags: ['--bucket-name', '--s3-bucket'],
    valueName: 'bucket',
    description: 'S3 bucket; it must already exist (never created)',
  },
  {
    field: 'region',
    flags: ['--region', '--s3-region'],
    valueName: 'region',
    description: 'S3 region',
    defaultValue: S3_DEFAULTS.region,
  },
  {
    field: 'endpoint',
    flags: ['--s3-endpoint'],
    valueName: 'host[:port]',
    description: 'S3 endpoint, a host (HTTPS) or a URL with http:// or https://',
    defaultValue: S3_DEFAULTS.endpoint,
  },
  {
    field: 'endpointCa',
    flags: ['--s3-endpoint-ca'],
    valueName: 'ca',
    description: 'CA for the endpoint: PEM text, base64 PEM or a file path (space-separated list)',
  },
  {
    field: 'folder',
    flags: ['--folder', '--s3-folder'],
    valueName: 'folder',
    description: 'Folder (key prefix) in the bucket',
  },
  {
    field: 'skipSslVerify',
    flags: ['--s3-skip-ssl-verify'],
    description: 'Do not verify the endpoint TLS certificate',
  },
  {
    field: 'insecure',
    flags: ['--s3-insecure'],
    description: 'Use plain HTTP for an endpoint given without a scheme',
  },
  {
    field: 'proxy',
    flags: ['--s3-proxy'],
    valueName: 'url',
    description: 'Proxy URL for S3 requests; "none" ignores HTTP(S)_PROXY from the environment',
  },
  {
    field: 'timeout',
    flags: ['--s3-timeout'],
    valueName: 'duration',
    description: 'Timeout of each S3 request, a Go duration such as 30s, 5m or 1h30m',
    defaultValue: S3_DEFAULTS.timeout,
  },
  {
    field: 'bucketLookupType',
    flags: ['--s3-bucket-lookup-type'],
    valueName: 'auto|dns|path',
    description: 'Virtual-host (dns) or path-style bucket addressing',
    defaultValue: S3_DEFAULTS.bucketLookupType,
  },
];

/** Every spelling → field, e.g. `'--s3-bucket' → 'bucketName'`. */
export const S3_FLAG_SPELLINGS: Readonly<Record<string, S3FlagField>> = Object.fromEntries(
  S3_FLAGS.flatMap((spec) => spec.flags.map((flag) => [flag, spec.field] as const)),
);

/** The spellings of one field, for error messages such as "--bucket-name (--s3-bucket)". */
export function flagNamesFor(field: S3FlagField): string {
  const spec = S3_FLAGS.find((candidate) => candidate.field === field);
  if (!spec) return field;
  const [primary, ...aliases] = spec.flags;
  return aliases.length > 0 ? `${primary} (${aliases.join(', ')})` : (primary ?? field);
}
