import { describe, expect, it } from 'vitest';

import type { S3BackupConfig } from '../../src/config/types.js';
import { ConfigError, UsageError } from '../../src/errors.js';
import { S3_FLAGS, S3_FLAG_SPELLINGS, flagNamesFor } from '../../src/storage/s3-flags.js';
import { type ResolveS3SettingsInput, ignoredS3Flags, resolveS3Settings } from '../../src/storage/settings.js';

const TEST_CA_PEM = `-----BEGIN CERTIFICATE-----
MIIBkzCCATmgAwIBAgIUeq12MTjHaRZ21cjFPqUjze8UnSYwCgYIKoZIzj0EAwIw
HjEcMBoGA1UEAwwTcmtlLXRzIHVuaXQgdGVzdCBDQTAgFw0yNjExMjEwNTE2Mjha
GA8yMTI2MTAyODA1MTYyOFowHjEcMBoGA1UEAwwTcmtlLXRzIHVuaXQgdGVzdCBD
QTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABJRStALm/3ke5i7UssYL66Y1hi/o
xp/7/hVUmF05FPjZ/ysBYz4Uj2MkC3MFMEG0OLLtr9q2kHtAWjz9vpSfLLajUzBR
MB0GA1UdDgQWBBS3Xoybfh+45jC90KiLzEumhWgv8zAfBgNVHSMEGDAWgBS3Xoyb
fh+45jC90KiLzEumhWgv8zAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0gA
MEUCIQCEYs9ocUgYcAXAbRzRV4ewdai44tJlNYyvhUHYxdjY/AIgH9+btT0Y+rWL
u3ynEx79BYc/MULpoHrigZiHaaPSVtY=
-----END CERTIFICATE-----`;

const FILE_CONFIG: S3BackupConfig = {
  accessKey: 'FILEKEY',
  secretKey: 'file-secret',
  bucketName: 'file-bucket',
  region: 'eu-west-1',
  endpoint: 'minio.example.com:9000',
  folder: '/rke/',
};

const NO_FILES = (path: string): string => {
  throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
};

function resolve(input: Partial<ResolveS3SettingsInput> & Pick<ResolveS3SettingsInput, 'flags'>) {
  return resolveS3Settings({ env: {}, readFile: NO_FILES, ...input });
}

describe('resolveS3Settings: where settings come from', () => {
  it('is off without --s3 and without s3backupconfig', () => {
    expect(resolve({ flags: { s3: false, bucketName: 'ignored' } })).toBeUndefined();
  });

  it('uses cluster.yml without --s3 and ignores the RKE S3 flags, as RKE does', () => {
    const settings = resolve({ flags: { s3: false, bucketName: 'flag-bucket' }, fileConfig: FILE_CONFIG });
    expect(settings).toMatchObject({
      source: 'cluster.yml',
      bucket: 'file-bucket',
      region: 'eu-west-1',
      folder: 'rke',
      accessKey: 'FILEKEY',
      secretKey: 'file-secret',
      credentialSource: 'cluster.yml',
    });
    expect(settings?.endpoint.url).toBe('https://minio.example.com:9000');
    expect(ignoredS3Flags({ s3: false, bucketName: 'flag-bucket' })).toEqual(['--bucket-name (--s3-bucket)']);
  });

  it('replaces cluster.yml wholesale with --s3 (no field is merged from the file)', () => {
    const settings = resolve({ flags: { s3: true, bucketName: 'flag-bucket' }, fileConfig: FILE_CONFIG });
    expect(settings).toMatchObject({
      source: 'flags',
      bucket: 'flag-bucket',
      region: 'us-east-1',
      folder: '',
      credentialSource: 'default-chain',
    });
    expect(settings?.accessKey).toBeUndefined();
    expect(settings?.endpoint.url).toBe('https://s3.amazonaws.com');
  });

  it('applies the k3s transport flags to cluster.yml settings too', () => {
    const settings = resolve({
      flags: { s3: false, timeout: '30s', skipSslVerify: true, bucketLookupType: 'dns' },
      fileConfig: FILE_CONFIG,
    });
    expect(settings).toMatchObject({ timeoutMs: 30_000, skipSslVerify: true, bucketLookup: 'dns' });
  });

  it('requires a bucket with --s3 (UsageError) and in cluster.yml (ConfigError)', () => {
    expect(() => resolve({ flags: { s3: true } })).toThrow(UsageError);
    expect(() => resolve({ flags: { s3: true } })).toThrow(/--bucket-name \(--s3-bucket\): is required with --s3/);
    expect(() => resolve({ flags: { s3: false }, fileConfig: { ...FILE_CONFIG, bucketName: '' } })).toThrow(
      ConfigError,
    );
    expect(() => resolve({ flags: { s3: false }, fileConfig: { ...FILE_CONFIG, bucketName: '' } })).toThrow(
      /s3backupconfig\.bucket_name/,
    );
    expect(() => resolve({ flags: { s3: true, bucketName: 'b/prefix' } })).toThrow(/folder/);
  });
});

describe('resolveS3Settings: credentials', () => {
  const env = { AWS_ACCESS_KEY_ID: 'ENVKEY', AWS_SECRET_ACCESS_KEY: 'env-secret', AWS_SESSION_TOKEN: 'env-token' };

  it('prefers flags over the environment', () => {
    const settings = resolve({
      flags: { s3: true, bucketName: 'b', accessKey: 'FLAGKEY', secretKey: 'flag-secret', sessionToken: 'flag-token' },
      env,
    });
    expect(settings).toMatchObject({
      accessKey: 'FLAGKEY',
      secretKey: 'flag-secret',
      sessionToken: 'flag-token',
      credentialSource: 'flags',
    });
  });

  it('falls back to AWS_* variables, then to the SDK default chain', () => {
    expect(resolve({ flags: { s3: true, bucketName: 'b' }, env })).toMatchObject({
      accessKey: 'ENVKEY',
      secretKey: 'env-secret',
      sessionToken: 'env-token',
      credentialSource: 'env',
    });
    const chain = resolve({ flags: { s3: true, bucketName: 'b', accessKey: '  ', secretKey: '' } });
    expect(chain?.credentialSource).toBe('default-chain');
    expect(chain?.accessKey).toBeUndefined();
    expect(chain?.secretKey).toBeUndefined();
  });

  it('rejects half a key pair', () => {
    expect(() => resolve({ flags: { s3: true, bucketName: 'b', accessKey: 'A' } })).toThrow(/--secret-key.*required/);
    expect(() => resolve({ flags: { s3: true, bucketName: 'b', sessionToken: 'T' } })).toThrow(/needs an access key/);
    expect(() => resolve({ flags: { s3: true, bucketName: 'b' }, env: { AWS_ACCESS_KEY_ID: 'A' } })).toThrow(
      /AWS_SECRET_ACCESS_KEY is not/,
    );
    expect(() =>
      resolve({ flags: { s3: false }, fileConfig: { ...FILE_CONFIG, secretKey: undefined } }),
    ).toThrow(/s3backupconfig\.secret_key: is required/);
  });
});

describe('resolveS3Settings: endpoint', () => {
  const endpointOf = (endpoint: string, insecure = false) =>
    resolve({ flags: { s3: true, bucketName: 'b', endpoint, insecure } })?.endpoint;

  it.each([
    ['s3.amazonaws.com', false, 'https://s3.amazonaws.com', 'https'],
    ['minio.local:9000', false, 'https://minio.local:9000', 'https'],
    ['minio.local:9000', true, 'http://minio.local:9000', 'http'],
    ['http://10.0.0.5:9000', false, 'http://10.0.0.5:9000', 'http'],
    ['https://minio.local/', false, 'https://minio.local', 'https'],
    ['HTTP://Minio.Local:80', false, 'http://minio.local', 'http'],
    ['[::1]:9000', false, 'https://[::1]:9000', 'https'],
  ])('%s (insecure=%s) → %s', (input, insecure, url, protocol) => {
    expect(endpointOf(input, insecure)).toMatchObject({ url, protocol });
  });

  it.each([
    ['ftp://host', /scheme "ftp:\/\/"/],
    ['https://host/prefix', /has a path/],
    ['http://user:pw@host', /credentials/],
  ])('rejects %s', (input, message) => {
    expect(() => endpointOf(input)).toThrow(UsageError);
    expect(() => endpointOf(input)).toThrow(message);
  });

  it('rejects https:// together with --s3-insecure', () => {
    expect(() => endpointOf('https://host', true)).toThrow(/--s3-insecure/);
  });

  it.each([
    ['s3.amazonaws.com', 'auto', 'dns'],
    ['s3.eu-west-1.amazonaws.com', 'auto', 'dns'],
    ['minio.local:9000', 'auto', 'path'],
    ['127.0.0.1:9000', 'dns', 'dns'],
    ['10.1.2.3', 'auto', 'path'],
    ['minio.local', 'DNS', 'dns'],
    ['s3.amazonaws.com', 'path', 'path'],
    ['oss-cn-hangzhou.aliyuncs.com', 'path', 'dns'],
    ['my-aliyun-gateway.internal', 'auto', 'dns'],
  ])('bucket lookup for %s with %s is %s', (endpoint, bucketLookupType, expected) => {
    const settings = resolve({ flags: { s3: true, bucketName: 'b', endpoint, bucketLookupType } });
    expect(settings?.bucketLookup).toBe(expected);
  });

  it('rejects an unknown bucket lookup type', () => {
    expect(() => resolve({ flags: { s3: true, bucketName: 'b', bucketLookupType: 'vhost' } })).toThrow(
      /--s3-bucket-lookup-type: "vhost" must be one of auto, dns, path/,
    );
  });
});

describe('resolveS3Settings: endpoint CA', () => {
  const caOf = (endpointCa: string, readFile = NO_FILES) =>
    resolve({ flags: { s3: true, bucketName: 'b', endpointCa }, readFile })?.caCertificates;
  const base64 = Buffer.from(TEST_CA_PEM).toString('base64');

  it('accepts PEM text, base64 PEM and a file path', () => {
    expect(caOf(TEST_CA_PEM)).toEqual([TEST_CA_PEM]);
    expect(caOf(base64)).toEqual([TEST_CA_PEM]);
    expect(caOf('/etc/ca.pem', (path) => (path === '/etc/ca.pem' ? TEST_CA_PEM : NO_FILES(path)))).toEqual([
      TEST_CA_PEM,
    ]);
  });

  it('accepts a k3s-style space-separated list', () => {
    expect(caOf(`${base64} /etc/ca.pem`, () => TEST_CA_PEM)).toEqual([TEST_CA_PEM, TEST_CA_PEM]);
  });

  it('takes cluster.yml custom_ca as PEM text', () => {
    const settings = resolve({ flags: { s3: false }, fileConfig: { ...FILE_CONFIG, customCa: TEST_CA_PEM } });
    expect(settings?.caCertificates).toEqual([TEST_CA_PEM]);
  });

  it('fails clearly, naming the option, on an unusable CA', () => {
    expect(() => caOf('/missing/ca.pem')).toThrow(UsageError);
    expect(() => caOf('/missing/ca.pem')).toThrow(/--s3-endpoint-ca: "\/missing\/ca.pem" is not PEM text.*ENOENT/);
    const broken = TEST_CA_PEM.replace('MIIBkzCC', 'MIIBkzXX');
    expect(() => caOf(broken)).toThrow(/--s3-endpoint-ca: the PEM text is not a valid X.509 certificate/);
    expect(() => caOf('/etc/notpem', () => 'hello')).toThrow(/contains no "BEGIN CERTIFICATE"/);
    const fileCa = () =>
      resolve({ flags: { s3: false }, fileConfig: { ...FILE_CONFIG, customCa: '-----BEGIN CERTIFICATE-----\nxx' } });
    expect(fileCa).toThrow(ConfigError);
    expect(fileCa).toThrow(/s3backupconfig\.custom_ca/);
  });
});

describe('resolveS3Settings: timeout and proxy', () => {
  const timeoutOf = (timeout: string) => resolve({ flags: { s3: true, bucketName: 'b', timeout } })?.timeoutMs;

  it('defaults to 5m and parses Go durations', () => {
    expect(resolve({ flags: { s3: true, bucketName: 'b' } })?.timeoutMs).toBe(300_000);
    expect(timeoutOf('30s')).toBe(30_000);
    expect(timeoutOf('1h30m')).toBe(5_400_000);
    expect(timeoutOf('1.5m')).toBe(90_000);
    expect(timeoutOf('250ms')).toBe(250);
  });

  it.each(['5', 'abc', '5 minutes', '0', '-1s', ''])('rejects timeout %j', (timeout) => {
    expect(() => timeoutOf(timeout)).toThrow(/--s3-timeout/);
  });

  const proxyOf = (flags: { proxy?: string; endpoint?: string }, env: Record<string, string> = {}) =>
    resolve({ flags: { s3: true, bucketName: 'b', ...flags }, env })?.proxy;

  it('takes --s3-proxy over the environment, and "none" disables the environment', () => {
    const env = { HTTPS_PROXY: 'http://env-proxy:3128' };
    expect(proxyOf({}, env)).toEqual({ url: 'http://env-proxy:3128', source: 'env' });
    expect(proxyOf({ proxy: 'http://flag-proxy:8080' }, env)).toEqual({ url: 'http://flag-proxy:8080', source: 'flag' });
    expect(proxyOf({ proxy: 'none' }, env)).toBeUndefined();
    expect(() => proxyOf({ proxy: 'flag-proxy:8080' })).toThrow(/--s3-proxy/);
    expect(() => proxyOf({ proxy: 'socks5://p:1080' })).toThrow(/http:\/\/ or https:\/\//);
  });

  it('follows Go rules for the environment: scheme-specific variable, NO_PROXY, loopback', () => {
    expect(proxyOf({ endpoint: 'http://minio:9000' }, { HTTPS_PROXY: 'http://p:1' })).toBeUndefined();
    expect(proxyOf({ endpoint: 'http://minio:9000' }, { http_proxy: 'p:1' })).toEqual({ url: 'http://p:1', source: 'env' });
    expect(proxyOf({ endpoint: 'minio.corp.example' }, { HTTPS_PROXY: 'http://p:1', NO_PROXY: '.example' })).toBeUndefined();
    expect(proxyOf({ endpoint: '10.1.2.3:9000' }, { HTTPS_PROXY: 'http://p:1', NO_PROXY: '10.0.0.0/8' })).toBeUndefined();
    expect(proxyOf({ endpoint: '127.0.0.1:9000' }, { HTTPS_PROXY: 'http://p:1' })).toBeUndefined();
    expect(proxyOf({ endpoint: 'minio:9000' }, { HTTPS_PROXY: 'http://p:1', NO_PROXY: 'minio:9001' })).toEqual({
      url: 'http://p:1',
      source: 'env',
    });
  });
});

describe('S3 flag table', () => {
  it('maps every RKE and k3s spelling to a field', () => {
    expect(S3_FLAG_SPELLINGS).toMatchObject({
      '--s3': 's3',
      '--access-key': 'accessKey',
      '--s3-access-key': 'accessKey',
      '--secret-key': 'secretKey',
      '--s3-secret-key': 'secretKey',
      '--s3-session-token': 'sessionToken',
      '--bucket-name': 'bucketName',
      '--s3-bucket': 'bucketName',
      '--region': 'region',
      '--s3-region': 'region',
      '--s3-endpoint': 'endpoint',
      '--s3-endpoint-ca': 'endpointCa',
      '--folder': 'folder',
      '--s3-folder': 'folder',
      '--s3-skip-ssl-verify': 'skipSslVerify',
      '--s3-insecure': 'insecure',
      '--s3-proxy': 'proxy',
      '--s3-timeout': 'timeout',
      '--s3-bucket-lookup-type': 'bucketLookupType',
    });
    expect(new Set(S3_FLAGS.map((spec) => spec.field)).size).toBe(S3_FLAGS.length);
    expect(flagNamesFor('bucketName')).toBe('--bucket-name (--s3-bucket)');
  });
});
