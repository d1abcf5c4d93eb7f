/**
 * Endpoint and bucket-addressing rules.
 *
 * RKE passes a bare host ("s3.amazonaws.com", "minio.local:9000") and rke-tools always speaks
 * HTTPS; k3s does the same unless `--s3-insecure`. We also accept a full URL, where an explicit
 * scheme decides.
 */
import { isIP } from 'node:net';

export type BucketLookup = 'dns' | 'path';
export const BUCKET_LOOKUP_TYPES = ['auto', 'dns', 'path'] as const;
export type BucketLookupType = (typeof BUCKET_LOOKUP_TYPES)[number];

export interface ParsedEndpoint {
  /** Origin URL without a trailing slash, e.g. "https://minio.local:9000". */
  url: string;
  protocol: 'http' | 'https';
  /** Host name (brackets stripped from IPv6) for proxy and lookup decisions. */
  hostname: string;
  /** host[:port] as shown in logs, like RKE shows the endpoint. */
  host: string;
}

export type EndpointProblem =
  | { kind: 'empty' }
  | { kind: 'bad-url'; detail: string }
  | { kind: 'bad-scheme'; scheme: string }
  | { kind: 'has-path'; path: string }
  | { kind: 'insecure-https' };

export function parseEndpoint(
  raw: string,
  insecure: boolean,
): { ok: true; endpoint: ParsedEndpoint } | { ok: false; problem: EndpointProblem } {
  const text = raw.trim();
  if (text === '') return { ok: false, problem: { kind: 'empty' } };
  const schemeMatch = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//.exec(text);
  const scheme = schemeMatch?.[1]?.toLowerCase();
  if (scheme !== undefined && scheme !== 'http' && scheme !== 'https') {
    return { ok: false, problem: { kind: 'bad-scheme', scheme } };
  }
  // --s3-insecure means "plain HTTP"; an explicit https:// contradicts it.
  if (scheme === 'https' && insecure) return { ok: false, problem: { kind: 'insecure-https' } };
  const protocol: 'http' | 'https' = scheme ?? (insecure ? 'http' : 'https');

  let url: URL;
  try {
    url = new URL(scheme ? text : `${protocol}://${text}`);
  } catch (error) {
    return { ok: false, problem: { kind: 'bad-url', detail: (error as Error).message } };
  }
  if (url.pathname !== '/' && url.pathname !== '') {
    // The SDK puts the bucket in the path or the host; a path prefix would be silently lost.
    return { ok: false, problem: { kind: 'has-path', path: url.pathname } };
  }
  if (url.username || url.password || url.search || url.hash) {
    return { ok: false, problem: { kind: 'bad-url', detail: 'credentials, query or fragment in endpoint' } };
  }
  const hostname = url.hostname.replace(/^\[(.*)\]$/, '$1');
  return {
    ok: true,
    endpoint: { url: `${url.protocol}//${url.host}`, protocol, hostname, host: url.host },
  };
}

export function describeEndpointProblem(problem: EndpointProblem): string {
  switch (problem.kind) {
    case 'empty':
      return 'is empty';
    case 'bad-url':
      return `is not a valid host or URL (${problem.detail})`;
    case 'bad-scheme':
      return `has scheme "${problem.scheme}://"; use a bare host, http:// or https://`;
    case 'has-path':
      return `has a path ("${problem.path}"); give only the host[:port], put key prefixes in the folder`;
    case 'insecure-https':
      return 'says https:// but --s3-insecure asks for plain HTTP; drop one of them';
  }
}

/** Hosts whose S3 implementation serves virtual-hosted buckets (what minio-go's auto mode knows). */
const VIRTUAL_HOST_SUFFIXES = ['amazonaws.com', 'amazonaws.com.cn', 'googleapis.com', 'aliyuncs.com'];

/**
 * Resolve `--s3-bucket-lookup-type`. `auto` picks virtual-host (dns) style only for AWS, Google
 * and Aliyun endpoints and path style for everything else: path style works on every
 * S3-compatible server (MinIO, Ceph, s3rver, StorageGRID) without wildcard DNS for
 * `<bucket>.<host>`, while AWS prefers dns. An endpoint containing "aliyun" always gets dns,
 * as in rke-tools and k3s (Aliyun OSS rejects path style). IP endpoints can only be path style.
 */
export function resolveBucketLookup(type: BucketLookupType, endpoint: ParsedEndpoint): BucketLookup {
  if (endpoint.hostname.toLowerCase().includes('aliyun')) return 'dns';
  if (type === 'dns' || type === 'path') return type;
  if (isIP(endpoint.hostname) !== 0) return 'path';
  const host = endpoint.hostname.toLowerCase();
  return VIRTUAL_HOST_SUFFIXES.some((suffix) => host === suffix || host.endsWith(`.${suffix}`))
    ? 'dns'
    : 'path';
}

/**
 * The global AWS endpoint (RKE's and k3s's default) serves only us-east-1; for any other region
 * we let the SDK pick the regional endpoint instead of pinning this host, otherwise AWS answers
 * every request with a redirect or AuthorizationHeaderMalformed.
 */
export function isAwsGlobalEndpoint(endpoint: ParsedEndpoint): boolean {
  return endpoint.protocol === 'https' && endpoint.host.toLowerCase() === 's3.amazonaws.com';
}
