import { defineConfig } from 'vitest/config';

const shared = {
  testTimeout: 60_000,
  hookTimeout: 60_000,
};

export default defineConfig({
  test: {
    // 2 cores: a few files at a time; multi-process tests start their own workers.
    maxWorkers: 2,
    fileParallelism: true,
    projects: [
      { test: { ...shared, name: 'redis', include: ['test/**/*.test.ts'], globalSetup: ['test/helpers/global-redis.ts'] } },
      {
        // The exactly-once, crash, fleet-budget and OAuth2 tests again, on a real 3-master Redis Cluster (issue #10).
        test: { ...shared, name: 'cluster', include: ['test/exactly-once.test.ts', 'test/worker-crash.test.ts', 'test/fleet.test.ts'], globalSetup: ['test/helpers/global-cluster.ts'] },
      },
    ],
  },
});
