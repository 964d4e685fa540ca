import { defineConfig } from 'vitest/config';

const shared = {
  testTimeout: 60_000,
  hookTimeout: 60_000,
};

/**
 * The unit suite (`npm run test:unit`, `vitest run --project unit`): pure policy, and in-process code
 * against one Redis; no spawned CLI, workers or fleets. `.ci/run` runs it again on Node 24 (the Docker
 * image's runtime). `npm test` runs it too, as its own project: every file runs once.
 */
export const UNIT_TESTS = [
  'authorization-code',
  'config',
  'credential',
  'credential-pool',
  'credential-rotation',
  'custom-credential',
  'decide',
  'decode-body',
  'docker-files',
  'enqueue-positions',
  'exactly-once',
  'faults',
  'id-url',
  'is-public-address',
  'layers',
  'learn-window',
  'library-api',
  'login-answer',
  'login-client',
  'login-token-fleet',
  'oauth2-refresh-policy',
  'oauth2-key-algorithm',
  'fleet-token-backoff',
  'pipeline',
  'oauth1-signature',
  'pull-summary',
  'rate-limit-headers',
  'read-ids',
  'redirect-policy',
  'redirects',
  'redis-retry',
  'retry-policy',
  'run-scripts',
  'runtime',
  'splice-report',
  'sink-data',
  'terminal',
  'third-party-limits',
  'token-failure',
].map((name) => `test/${name}.test.ts`);

export default defineConfig({
  test: {
    // 2 cores: a few files at a time; multi-process tests start their own workers.
    maxWorkers: 2,
    fileParallelism: true,
    projects: [
      { test: { ...shared, name: 'unit', include: UNIT_TESTS, globalSetup: ['test/helpers/global-redis.ts'] } },
      { test: { ...shared, name: 'redis', include: ['test/**/*.test.ts'], exclude: UNIT_TESTS, globalSetup: ['test/helpers/global-redis.ts'] } },
      {
        // The exactly-once, worker crash and close, fleet-budget, quarantine, OAuth2 and OAuth 1.0a tests again, on a real 3-master
        // Redis Cluster (issue #10); tests there that only repeat what another one covers are marked skipIf(onCluster()).
        test: { ...shared, name: 'cluster', include: ['test/exactly-once.test.ts', 'test/worker-crash.test.ts', 'test/fleet.test.ts', 'test/worker-close.test.ts', 'test/login-auth.test.ts', 'test/oauth2-keys.test.ts', 'test/oauth1-auth.test.ts', 'test/oauth2-refresh.test.ts', 'test/oauth2-login.test.ts'], globalSetup: ['test/helpers/global-cluster.ts'] },
      },
    ],
  },
});
