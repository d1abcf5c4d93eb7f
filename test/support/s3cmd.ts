import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { TestS3Server } from './s3server.js';

/** Debian's s3cmd configured for the test server: an S3 client independent of rke-ts. */
export function s3cmdFor(server: TestS3Server): (...args: string[]) => string {
  const host = new URL(server.endpoint).host;
  // Inside the server's own directory, so that stopping the server removes it.
  const config = path.join(path.dirname(server.directory), 's3cfg');
  writeFileSync(
    config,
    [
      '[default]',
      `access_key = ${server.accessKey}`,
      `secret_key = ${server.secretKey}`,
      `host_base = ${host}`,
      `host_bucket = ${host}`,
      'use_https = False',
      'signature_v2 = False',
      'bucket_location = us-east-1',
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  return (...args: string[]) => execFileSync('s3cmd', ['-c', config, '--no-progress', ...args], { encoding: 'utf8', stdio: 'pipe' });
}
