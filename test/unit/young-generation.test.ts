import { describe, expect, it } from 'vitest';
import { runFresh } from '../support/fresh-node.js';

/**
 * Counts the scavenges of the same allocation pattern, spread over event-loop turns as a
 * stream's chunks are, in a fresh Node process started with bin/rke-ts.js's young generation.
 */
function scavenges(mode: 'normal' | 'early' | 'after a failed run'): number {
  const script = `
    import { PerformanceObserver, constants } from 'node:perf_hooks';
    import { withEarlyScavenges } from './src/run/young-generation.ts';
    let minor = 0;
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) if (entry.detail.kind === constants.NODE_PERFORMANCE_GC_MINOR) minor++;
    }).observe({ entryTypes: ['gc'] });
    const churn = async () => {
      let kept = [];
      for (let turn = 0; turn < 1500; turn++) {
        for (let i = 0; i < 4000; i++) {
          kept.push({ i });
          if (kept.length > 5000) kept = [];
        }
        await new Promise((resolve) => setImmediate(resolve));
      }
    };
    const mode = ${JSON.stringify(mode)};
    if (mode === 'after a failed run') await withEarlyScavenges(() => Promise.reject(new Error('failed'))).catch(() => {});
    await (mode === 'early' ? withEarlyScavenges(churn) : churn());
    await new Promise((resolve) => setTimeout(resolve, 20));
    console.log(minor);
  `;
  return Number(runFresh(script, ['--max-semi-space-size=4', '--single-threaded-gc']));
}

describe('withEarlyScavenges', () => {
  it('makes V8 scavenge long before the young generation is full, and only while it runs', () => {
    const normal = scavenges('normal');
    const early = scavenges('early');
    const afterwards = scavenges('after a failed run');
    expect(normal).toBeGreaterThan(0);
    // 5% instead of 80% of the young generation: many times more, not a rounding difference.
    expect(early).toBeGreaterThan(normal * 3);
    expect(afterwards).toBeLessThan(normal * 1.5);
  });
});
