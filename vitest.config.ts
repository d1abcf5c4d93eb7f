import { defineConfig } from 'vitest/config';

// Unit tests are pure and fast; integration tests share one real test cluster per file
// and run one file at a time (the cluster uses fixed node names and addresses).
export default defineConfig({
  test: {
    projects: [
      { test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          fileParallelism: false,
          testTimeout: 180_000,
          hookTimeout: 600_000,
        },
      },
    ],
  },
});
