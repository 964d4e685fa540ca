import type { TestProject } from 'vitest/node';
import { startLocalCluster } from '../../scripts/local-redis-cluster.js';

// The "cluster" test project: the same tests, against a real 3-master Redis
// Cluster started from the redis-server and redis-cli binaries.

declare module 'vitest' {
  export interface ProvidedContext {
    redisCluster: boolean;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const cluster = await startLocalCluster(3);
  if (!cluster) throw new Error('the cluster tests need redis-server and redis-cli (apt-get install redis-server)');
  project.provide('redisUrl', cluster.url);
  project.provide('redisCluster', true);
  return () => cluster.stop();
}
