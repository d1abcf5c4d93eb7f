import { Writable } from 'node:stream';

import { pino } from 'pino';
import { describe, expect, it } from 'vitest';

import { describeError } from '../../src/errors.js';
import {
  S3_REDACT_PATHS,
  describeS3Settings,
  s3ConfiguredLogLine,
  scrubSecrets,
} from '../../src/storage/redact.js';
import { classifyS3Error, toStorageError } from '../../src/storage/s3-errors.js';
import { resolveS3Settings } from '../../src/storage/settings.js';

const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
const TOKEN = 'FwoGZXIvYXdzEXAMPLESESSIONTOKEN';

const settings = resolveS3Settings({
  flags: {
    s3: true,
    accessKey: 'AKIAEXAMPLE',
    secretKey: SECRET,
    sessionToken: TOKEN,
    bucketName: 'backups',
    endpoint: 'minio.local:9000',
    folder: 'prod',
    proxy: 'http://user:proxypass@proxy.local:3128',
  },
  env: {},
})!;

describe('describeS3Settings', () => {
  it('shows where and who, never the secrets', () => {
    const description = describeS3Settings(settings);
    expect(description).toMatchObject({
      endpoint: 'https://minio.local:9000',
      bucket: 'backups',
      region: 'us-east-1',
      folder: 'prod',
      accessKey: 'AKIAEXAMPLE',
      secretKey: '***',
      sessionToken: '***',
      timeout: '5m',
      bucketLookup: 'path (auto)',
    });
    const text = JSON.stringify(description);
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain(TOKEN);
    expect(text).not.toContain('proxypass');
  });

  it("writes RKE's log line", () => {
    expect(s3ConfiguredLogLine(settings)).toBe(
      '[etcd] Snapshots configured to S3 compatible backend at [minio.local:9000] to bucket [backups] ' +
        'using accesskey [AKIAEXAMPLE] and using region [us-east-1] and using folder [prod]',
    );
  });
});

describe('pino redaction paths', () => {
  it('hide secrets in settings, flags and cluster.yml objects logged at any usual depth', () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _encoding, callback) {
        lines.push(String(chunk));
        callback();
      },
    });
    const log = pino({ redact: { paths: [...S3_REDACT_PATHS], censor: '***' } }, sink);
    log.info(settings, 'top level');
    log.info({ s3: settings }, 'nested');
    log.info({ config: { backup: { s3: { secret_key: SECRET, session_token: TOKEN } } } }, 'yaml');
    log.info({ flags: { secretKey: SECRET } }, 'flags');
    expect(lines).toHaveLength(4);
    for (const line of lines) {
      expect(line).not.toContain(SECRET);
      expect(line).not.toContain(TOKEN);
    }
    expect(lines[0]).toContain('AKIAEXAMPLE');
  });
});

describe('S3 error messages', () => {
  const cases: Array<[string, unknown, RegExp]> = [
    ['missing bucket', Object.assign(new Error('x'), { name: 'NoSuchBucket' }), /bucket backups is not found.*never creates/],
    ['bad access key', Object.assign(new Error('x'), { name: 'InvalidAccessKeyId' }), /does not know access key \[AKIAEXAMPLE\]/],
    ['bad secret', Object.assign(new Error('x'), { name: 'SignatureDoesNotMatch' }), /secret key does not match/],
    ['refused', Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), /connection refused/],
    ['dns', Object.assign(new Error('getaddrinfo'), { code: 'ENOTFOUND' }), /cannot resolve host minio.local/],
    ['tls', Object.assign(new Error('self-signed certificate in certificate chain'), { code: 'SELF_SIGNED_CERT_IN_CHAIN' }), /--s3-endpoint-ca/],
    ['plain http', Object.assign(new Error('wrong version number'), { code: 'EPROTO' }), /--s3-insecure/],
    ['timeout', Object.assign(new Error('t'), { name: 'TimeoutError' }), /no answer within 5m/],
    ['wrapped', new Error('outer', { cause: Object.assign(new Error('inner'), { code: 'ECONNRESET' }) }), /connection was dropped/],
  ];

  it.each(cases)('%s: one line naming endpoint and bucket', (_label, error, pattern) => {
    const storageError = toStorageError(error, { settings, action: 'check bucket backups' });
    const line = describeError(storageError);
    expect(line).toMatch(pattern);
    expect(line).toContain('https://minio.local:9000');
    expect(line).toContain('[backups]');
    expect(line).not.toContain('\n');
  });

  it('scrubs secrets echoed back by a server', () => {
    const echo = Object.assign(new Error(`bad request for key ${SECRET} token ${TOKEN}`), { name: 'Weird' });
    const line = describeError(toStorageError(echo, { settings, action: 'list snapshots' }));
    expect(line).not.toContain(SECRET);
    expect(line).not.toContain(TOKEN);
    expect(scrubSecrets(`x${SECRET}y`, settings)).toBe('x***y');
    expect(classifyS3Error(Object.assign(new Error('x'), { $metadata: { httpStatusCode: 403 }, name: 'Unknown' }))).toBe(
      'access-denied',
    );
  });
});
