import { createHmac, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { checkHostKey, parseKnownHosts } from '../../src/transport/known-hosts.js';

const keyA = Buffer.from('AAAAC3NzaC1lZDI1NTE5AAAAIKeyAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', 'base64');
const keyB = Buffer.from('AAAAC3NzaC1lZDI1NTE5AAAAIKeyBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB', 'base64');

function hashed(name: string): string {
  const salt = randomBytes(20);
  return `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`;
}

describe('known_hosts', () => {
  const text = [
    '# comment',
    `10.0.0.1,node1 ssh-ed25519 ${keyA.toString('base64')}`,
    `[10.0.0.2]:2222 ssh-ed25519 ${keyA.toString('base64')}`,
    `${hashed('10.0.0.3')} ssh-ed25519 ${keyB.toString('base64')}`,
    `*.example.com,!bad.example.com ssh-ed25519 ${keyB.toString('base64')}`,
    '',
  ].join('\r\n');
  const entries = parseKnownHosts(text);

  it.each([
    ['10.0.0.1', 22, keyA, 'trusted'],
    ['node1', 22, keyA, 'trusted'],
    ['10.0.0.1', 22, keyB, 'mismatch'],
    ['10.0.0.2', 2222, keyA, 'trusted'],
    ['10.0.0.2', 22, keyA, 'unknown'],
    ['10.0.0.3', 22, keyB, 'trusted'],
    ['10.0.0.3', 22, keyA, 'mismatch'],
    ['a.example.com', 22, keyB, 'trusted'],
    ['bad.example.com', 22, keyB, 'unknown'],
    ['10.9.9.9', 22, keyA, 'unknown'],
  ] as const)('%s:%i → %s', (host, port, key, verdict) => {
    expect(checkHostKey(entries, host, port, key)).toBe(verdict);
  });

  it('refuses revoked keys even when listed for the host', () => {
    const revoked = parseKnownHosts(`@revoked * ssh-ed25519 ${keyA.toString('base64')}\n${text}`);
    expect(checkHostKey(revoked, '10.0.0.1', 22, keyA)).toBe('revoked');
  });
});
