/**
 * Which proxy S3 requests go through.
 *
 * rke-tools and k3s are Go programs: their HTTP transport honours HTTPS_PROXY / HTTP_PROXY /
 * NO_PROXY from the environment. Node's does not, so we apply the same rules here. k3s's
 * `--s3-proxy URL` overrides the environment and `--s3-proxy none` disables it.
 */
import { isIP } from 'node:net';

import type { ParsedEndpoint } from './endpoint.js';

export type ProxySource = 'flag' | 'env';
export interface ResolvedProxy {
  url: string;
  source: ProxySource;
}

export type ProxyFlagProblem = { reason: string };

/** Validate `--s3-proxy`: "none", or a URL with an http(s) scheme and a host (k3s's rule). */
export function parseProxyFlag(value: string): { url: string } | 'none' | ProxyFlagProblem {
  const text = value.trim();
  if (text.toLowerCase() === 'none') return 'none';
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return { reason: `"${redactProxyUrl(text)}" is not a URL; expected http://host:port or "none"` };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return { reason: `"${redactProxyUrl(text)}" must use http:// or https://` };
  }
  if (url.hostname === '') return { reason: `"${redactProxyUrl(text)}" has no host` };
  return { url: text };
}

/** Go's http.ProxyFromEnvironment, including its rule that loopback hosts are never proxied. */
export function proxyFromEnvironment(
  env: Readonly<Record<string, string | undefined>>,
  endpoint: ParsedEndpoint,
): string | undefined {
  const pick = (...names: string[]): string | undefined =>
    names.map((name) => env[name]?.trim()).find((value) => value !== undefined && value !== '');
  const proxy =
    endpoint.protocol === 'https' ? pick('HTTPS_PROXY', 'https_proxy') : pick('HTTP_PROXY', 'http_proxy');
  if (proxy === undefined) return undefined;
  if (isLoopback(endpoint.hostname)) return undefined;
  if (matchesNoProxy(pick('NO_PROXY', 'no_proxy') ?? '', endpoint)) return undefined;
  // Go accepts "host:port" without a scheme and means http.
  return /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//.test(proxy) ? proxy : `http://${proxy}`;
}

function isLoopback(hostname: string): boolean {
  const host = hostname.toLowerCase();
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}

function matchesNoProxy(noProxy: string, endpoint: ParsedEndpoint): boolean {
  const host = endpoint.hostname.toLowerCase();
  const port = endpoint.host.includes(':') ? endpoint.host.slice(endpoint.host.lastIndexOf(':') + 1) : '';
  for (const rawEntry of noProxy.split(',')) {
    const entry = rawEntry.trim().toLowerCase();
    if (entry === '') continue;
    if (entry === '*') return true;
    const [entryHost = '', entryPort] = splitHostPort(entry);
    if (entryPort !== undefined && entryPort !== port) continue;
    if (entryHost.includes('/') && isIP(host) !== 0 && inCidr(host, entryHost)) return true;
    const bare = entryHost.replace(/^\*?\./, '');
    if (host === bare || host.endsWith(`.${bare}`)) return true;
  }
  return false;
}

function splitHostPort(entry: string): [string, string | undefined] {
  const bracketed = /^\[(.*)\](?::(\d+))?$/.exec(entry);
  if (bracketed) return [bracketed[1] ?? '', bracketed[2]];
  const parts = entry.split(':');
  return parts.length === 2 && /^\d+$/.test(parts[1] ?? '') ? [parts[0] ?? '', parts[1]] : [entry, undefined];
}

function inCidr(ip: string, cidr: string): boolean {
  const [base = '', bitsText = ''] = cidr.split('/');
  if (isIP(ip) !== 4 || isIP(base) !== 4) return false;
  const bits = Number(bitsText);
  if (!Number.isInteger(bits) || bits < 0 || bits > 32) return false;
  const toNumber = (address: string) =>
    address.split('.').reduce((sum, octet) => sum * 256 + Number(octet), 0);
  const blockSize = 2 ** (32 - bits);
  return Math.floor(toNumber(ip) / blockSize) === Math.floor(toNumber(base) / blockSize);
}

/** A proxy URL may carry user:password; show the user only. */
export function redactProxyUrl(text: string): string {
  try {
    const url = new URL(text);
    if (url.password !== '') url.password = '***';
    return url.toString().replace(/\/$/, '');
  } catch {
    return text.replace(/\/\/([^:/@]+):[^@/]*@/, '//$1:***@');
  }
}
