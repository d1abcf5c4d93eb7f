/**
 * Keeping S3 secrets out of logs, errors and --dry-run output. The access key id is shown (RKE
 * logs it too: it identifies, it does not authenticate); the secret key and the session token
 * never are.
 */
import { describeCertificates } from './endpoint-ca.js';
import { formatDuration } from './go-duration.js';
import { redactProxyUrl } from './proxy.js';
import type { S3Settings } from './settings.js';

/** Secret-bearing fields of S3Settings, S3CliFlags and S3BackupConfig. */
export const S3_SECRET_FIELDS = ['secretKey', 'sessionToken'] as const;
/** The same secrets as cluster.yml spells them. */
const S3_SECRET_YAML_KEYS = ['secret_key', 'session_token'];

/**
 * pino `redact.paths` for anything that might carry S3 settings, flags or the cluster.yml block:
 * top-level and up to three levels deep (pino's `*` matches one level).
 */
export const S3_REDACT_PATHS: readonly string[] = [...S3_SECRET_FIELDS, ...S3_SECRET_YAML_KEYS].flatMap(
  (field) => [field, `*.${field}`, `*.*.${field}`, `*.*.*.${field}`],
);

export const REDACTED = '***';

export interface S3SettingsDescription {
  endpoint: string;
  bucket: string;
  region: string;
  folder: string;
  accessKey: string;
  secretKey?: string;
  sessionToken?: string;
  credentials: string;
  endpointCa?: string;
  skipSslVerify: boolean;
  proxy?: string;
  timeout: string;
  bucketLookup: string;
}

/** What the settings say, safe to log or print with --dry-run. */
export function describeS3Settings(settings: S3Settings): S3SettingsDescription {
  return {
    endpoint: settings.endpoint.url,
    bucket: settings.bucket,
    region: settings.region,
    folder: settings.folder,
    accessKey: settings.accessKey ?? '(none)',
    ...(settings.secretKey !== undefined ? { secretKey: REDACTED } : {}),
    ...(settings.sessionToken !== undefined ? { sessionToken: REDACTED } : {}),
    credentials:
      settings.credentialSource === 'default-chain'
        ? 'AWS default chain (profile, web identity, instance role)'
        : `static keys from ${settings.credentialSource}`,
    ...(settings.caCertificates.length > 0 ? { endpointCa: describeCertificates(settings.caCertificates) } : {}),
    skipSslVerify: settings.skipSslVerify,
    ...(settings.proxy ? { proxy: `${redactProxyUrl(settings.proxy.url)} (from ${settings.proxy.source})` } : {}),
    timeout: formatDuration(settings.timeoutMs),
    bucketLookup:
      settings.bucketLookupType === 'auto' ? `${settings.bucketLookup} (auto)` : settings.bucketLookup,
  };
}

/**
 * RKE's own log line (services/etcd.go), with the CA summarised instead of printed in base64.
 * `[etcd] Snapshots configured to S3 compatible backend at [ep] to bucket [b] using accesskey [ak]`
 */
export function s3ConfiguredLogLine(settings: S3Settings): string {
  let line =
    `[etcd] Snapshots configured to S3 compatible backend at [${settings.endpoint.host}] ` +
    `to bucket [${settings.bucket}] using accesskey [${settings.accessKey ?? ''}]`;
  if (settings.region !== '') line += ` and using region [${settings.region}]`;
  if (settings.caCertificates.length > 0) {
    line += ` and using endpoint CA [${describeCertificates(settings.caCertificates)}]`;
  }
  if (settings.folder !== '') line += ` and using folder [${settings.folder}]`;
  return line;
}

/**
 * Last line of defence for text that came from elsewhere (SDK or server error messages): any
 * occurrence of a secret is replaced. Secrets shorter than 4 characters are not scrubbed, as
 * they would mangle ordinary words; no real key is that short.
 */
export function scrubSecrets(text: string, settings: Pick<S3Settings, 'secretKey' | 'sessionToken'>): string {
  let scrubbed = text;
  for (const secret of [settings.secretKey, settings.sessionToken]) {
    if (secret !== undefined && secret.length >= 4) scrubbed = scrubbed.split(secret).join(REDACTED);
  }
  return scrubbed;
}
