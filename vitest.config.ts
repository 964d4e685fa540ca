import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/helpers/global-redis.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // 2 cores: a few files at a time; multi-process tests start their own workers.
    maxWorkers: 2,
    fileParallelism: true,
  },
});
