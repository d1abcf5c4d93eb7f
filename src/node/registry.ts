import type { RegistryConfig } from '../config/types.js';

/** The registry host of an image reference (`docker.io` for bare names, as Docker does). */
export function registryOf(image: string): string {
  const first = image.split('/')[0] ?? '';
  const hasRegistry = image.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost');
  return hasRegistry ? first : 'docker.io';
}

export interface RegistryAuth {
  username: string;
  password: string;
  serveraddress: string;
}

/**
 * Credentials for pulling `image`: the private_registries entry whose url is the image's
 * registry or a path prefix of the image (RKE matches by domain or prefix).
 */
export function registryAuthFor(image: string, registries: RegistryConfig[]): RegistryAuth | undefined {
  const registry = registryOf(image);
  const match = registries.find((entry) => {
    if (!entry.user) return false;
    const url = entry.url.replace(/^https?:\/\//, '').replace(/\/+$/, '');
    return url === registry || image.startsWith(`${url}/`);
  });
  if (!match?.user) return undefined;
  return { username: match.user, password: match.password ?? '', serveraddress: match.url };
}
