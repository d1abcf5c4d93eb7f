import { createHmac } from 'node:crypto';

/**
 * OpenSSH known_hosts matching, for the optional host-key check (RKE does none). Supports
 * plain and hashed (`|1|salt|hash`) host patterns, `[host]:port` for non-standard ports,
 * comma-separated host lists, `*`/`?` wildcards and `!` negation; @revoked marks a key as
 * refused; @cert-authority lines are skipped (host certificates are not checked).
 */
export interface KnownHostEntry {
  marker?: '@revoked' | '@cert-authority';
  patterns: string;
  keyType: string;
  key: string;
}

export function parseKnownHosts(text: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const fields = line.split(/\s+/);
    const marker = fields[0] === '@revoked' || fields[0] === '@cert-authority' ? fields.shift() : undefined;
    const [patterns, keyType, key] = fields;
    if (!patterns || !keyType || !key) continue;
    entries.push({ marker: marker as KnownHostEntry['marker'], patterns, keyType, key });
  }
  return entries;
}

function hostName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

function globMatches(pattern: string, name: string): boolean {
  const regex = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${regex}$`, 'i').test(name);
}

function patternsMatch(patterns: string, name: string): boolean {
  if (patterns.startsWith('|1|')) {
    const [, , salt, hash] = patterns.split('|');
    if (!salt || !hash) return false;
    const digest = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64');
    return digest === hash;
  }
  let matched = false;
  for (const pattern of patterns.split(',')) {
    if (pattern.startsWith('!')) {
      if (globMatches(pattern.slice(1), name)) return false;
    } else if (globMatches(pattern, name)) {
      matched = true;
    }
  }
  return matched;
}

export type HostKeyVerdict = 'trusted' | 'unknown' | 'mismatch' | 'revoked';

/** Decides whether `key` (the raw SSH public key blob) is the known key of host:port. */
export function checkHostKey(
  entries: KnownHostEntry[],
  host: string,
  port: number,
  key: Buffer,
): HostKeyVerdict {
  const name = hostName(host, port);
  const keyBase64 = key.toString('base64');
  let seenHost = false;
  for (const entry of entries) {
    if (entry.marker === '@revoked' && entry.key === keyBase64) return 'revoked';
  }
  for (const entry of entries) {
    if (entry.marker || !patternsMatch(entry.patterns, name)) continue;
    seenHost = true;
    if (entry.key === keyBase64) return 'trusted';
  }
  return seenHost ? 'mismatch' : 'unknown';
}
