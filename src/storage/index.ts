/**
 * S3 storage for etcd snapshots: settings resolution (pure), the client factory (loads the AWS
 * SDK lazily), bucket check, streaming upload with sha256, verified download, list and delete.
 */
export { S3_DEFAULTS, S3_FLAGS, S3_FLAG_SPELLINGS, flagNamesFor } from './s3-flags.js';
export type { S3CliFlags, S3FlagField, S3FlagSpec } from './s3-flags.js';
export { ignoredS3Flags, resolveS3Settings } from './settings.js';
export type { CredentialSource, ResolveS3SettingsInput, S3Settings } from './settings.js';
export type { BucketLookup, BucketLookupType, ParsedEndpoint } from './endpoint.js';
export { parseGoDuration, formatDuration } from './go-duration.js';
export {
  contentTypeFor,
  folderPrefix,
  normalizeFolder,
  objectKeyFor,
  snapshotNameFromKey,
} from './keys.js';
export { REDACTED, S3_REDACT_PATHS, S3_SECRET_FIELDS, describeS3Settings, s3ConfiguredLogLine, scrubSecrets } from './redact.js';
export type { S3SettingsDescription } from './redact.js';
export { createS3Client } from './client.js';
export type { S3ClientOptions } from './client.js';
export { DEFAULT_RETRY_POLICY, S3_MAX_ATTEMPTS, S3_RETRY_BASE_DELAY_MS, S3_RETRY_MAX_DELAY_MS } from './retry.js';
export type { RetryPolicy } from './retry.js';
export { checkBucket } from './bucket.js';
export { classifyS3Error, toStorageError } from './s3-errors.js';
export type { S3FailureKind } from './s3-errors.js';
export { METADATA_KEYS } from './metadata.js';
export type { SnapshotMetadata, SnapshotOrigin } from './metadata.js';
export { MAX_UPLOAD_PARTS, UPLOAD_PART_SIZE, UPLOAD_QUEUE_SIZE, uploadSnapshot } from './upload.js';
export type { UploadSnapshotOptions, UploadedSnapshot } from './upload.js';
export { COPY_OBJECT_MAX_BYTES, COPY_PART_SIZE } from './metadata-copy.js';
export { downloadSnapshot, findSnapshotKey } from './download.js';
export type { DownloadSnapshotOptions, DownloadedSnapshot } from './download.js';
export { deleteSnapshot, listSnapshots } from './list.js';
export type { SnapshotObject, StorageCallOptions } from './list.js';
