import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

import { backoffDelay, DEFAULT_RETRY_POLICY } from '../../src/storage/retry.js';

const STORAGE_DIR = fileURLToPath(new URL('../../src/storage/', import.meta.url));
const HEAVY = /^(@aws-sdk\/|@smithy\/|https-proxy-agent)/;

describe('start-up cost', () => {
  it('loads the AWS SDK only inside functions (await import), never at module load', () => {
    const offenders: string[] = [];
    for (const file of readdirSync(STORAGE_DIR).filter((name) => name.endsWith('.ts'))) {
      const source = readFileSync(join(STORAGE_DIR, file), 'utf8');
      for (const match of source.matchAll(/^\s*(import|export)\s+(type\s+)?[^'"]*?from\s+'([^']+)'/gm)) {
        const [, , isType, specifier = ''] = match;
        if (HEAVY.test(specifier) && isType === undefined) offenders.push(`${file}: ${specifier}`);
      }
    }
    expect(offenders).toEqual([]);
  });
});

describe('retry backoff', () => {
  it('grows exponentially with jitter and stays under the cap', () => {
    const low = () => 0;
    const high = () => 1;
    expect([0, 1, 2].map((retry) => backoffDelay(DEFAULT_RETRY_POLICY, retry, low))).toEqual([250, 500, 1000]);
    expect([0, 1, 2].map((retry) => backoffDelay(DEFAULT_RETRY_POLICY, retry, high))).toEqual([500, 1000, 2000]);
    expect(backoffDelay(DEFAULT_RETRY_POLICY, 20, high)).toBe(DEFAULT_RETRY_POLICY.maxDelayMs);
  });
});
