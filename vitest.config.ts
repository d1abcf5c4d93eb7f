import { defineConfig } from 'vitest/config';

// Unit tests are pure and fast. Integration tests share one real test cluster per file;
// files run one at a time because the 2-core machine cannot host several clusters well.
export default defineConfig({
  test: {
    fileParallelism: false,
    projects: [
      { test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          testTimeout: 180_000,
          hookTimeout: 600_000,
        },
      },
    ],
  },
});
