import { describe, expect, it } from 'vitest';
import { registryAuthFor, registryOf } from '../../src/node/registry.js';

describe('registryOf', () => {
  it.each([
    ['rancher/mirrored-coreos-etcd:v3.5.16', 'docker.io'],
    ['etcd:latest', 'docker.io'],
    ['registry.example.com/rancher/etcd:v3', 'registry.example.com'],
    ['localhost:5000/etcd', 'localhost:5000'],
    ['localhost/etcd', 'localhost'],
  ])('%s is served by %s', (image, registry) => {
    expect(registryOf(image)).toBe(registry);
  });
});

describe('registryAuthFor', () => {
  const registries = [
    { url: 'registry.example.com', user: 'alice', password: 's3cret', isDefault: false },
    { url: 'https://other.example.com/team/', user: 'bob', password: 'pw', isDefault: false },
    { url: 'anon.example.com', isDefault: true },
  ];

  it('matches by registry domain', () => {
    expect(registryAuthFor('registry.example.com/rancher/etcd:v3', registries)).toEqual({
      username: 'alice',
      password: 's3cret',
      serveraddress: 'registry.example.com',
    });
  });

  it('matches by path prefix', () => {
    expect(registryAuthFor('other.example.com/team/etcd:v3', registries)?.username).toBe('bob');
  });

  it('has nothing for registries without credentials or not listed', () => {
    expect(registryAuthFor('anon.example.com/etcd', registries)).toBeUndefined();
    expect(registryAuthFor('rancher/etcd', registries)).toBeUndefined();
  });
});
