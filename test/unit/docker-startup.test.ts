import { describe, expect, it } from 'vitest';
import { runFresh } from '../support/fresh-node.js';

describe('dockerode start-up', () => {
  it('does not load gRPC for BuildKit sessions until one is used', () => {
    const loaded = (defer: boolean) =>
      runFresh(`
        import { createRequire } from 'node:module';
        import { deferBuildKitSessions } from './src/transport/docker.ts';
        ${defer ? 'deferBuildKitSessions();' : ''}
        await import('dockerode');
        const cache = createRequire(import.meta.url).cache;
        console.log(Object.keys(cache).some((path) => path.includes('@grpc')));
      `);
    // Without the deferral dockerode does load it: the check below can fail.
    expect(loaded(false)).toBe('true');
    expect(loaded(true)).toBe('false');
  });

  it('still hands dockerode the real session module when it asks for one', () => {
    const kind = runFresh(`
      import { createRequire } from 'node:module';
      import { deferBuildKitSessions } from './src/transport/docker.ts';
      deferBuildKitSessions();
      await import('dockerode');
      const require = createRequire(import.meta.url);
      const path = require.resolve('dockerode/lib/session.js');
      let reached = 'none';
      // The real module opens a gRPC session over the Docker connection: a stub modem shows it
      // got that far.
      const modem = { dial: () => { reached = 'real session'; throw new Error('stop'); } };
      try { require.cache[path].exports({ modem }, undefined, () => {}); } catch {}
      console.log(reached, Object.keys(require.cache).some((file) => file.includes('@grpc')));
    `);
    expect(kind).toBe('real session true');
  });
});
