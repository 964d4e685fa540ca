import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Cluster, Redis } from 'ioredis';
import { inject } from 'vitest';
import { deleteKeys } from '../../scripts/local-redis.js';
import { deleteClusterKeys } from '../../scripts/local-redis-cluster.js';
import { parseConfig, type Config } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { queuePatterns } from '../../src/redis/keys.js';

export const redisUrl = (): string => inject('redisUrl');

/** A queue name no other test uses. */
export function uniqueQueue(label = 't'): string {
  return `${label}-${randomBytes(5).toString('hex')}`;
}

/** True in the "cluster" test project (vitest.config.ts): redisUrl names a node of a 3-master cluster. */
export const onCluster = (): boolean => inject('redisCluster') === true;

/**
 * A client of the test Redis: a Cluster client in the cluster project. Typed as Redis for the tests'
 * convenience: the commands they use (single-key commands, scripts, SCAN through cleanQueue) work on both.
 */
export function newRedis(): Redis {
  if (onCluster()) {
    const u = new URL(redisUrl());
    return new Cluster([{ host: u.hostname, port: Number(u.port) }], { redisOptions: { maxRetriesPerRequest: null } }) as unknown as Redis;
  }
  return new Redis(redisUrl(), { maxRetriesPerRequest: null });
}

/** Deletes every key of a queue: BullMQ's and pullq's (on every master, in the cluster project). */
export async function cleanQueue(redis: Redis, queue: string): Promise<void> {
  if (redis instanceof Cluster) await deleteClusterKeys(redis, queuePatterns(queue));
  else await deleteKeys(redis, queuePatterns(queue));
}

export function tempDir(label = 'pullq'): { dir: string; remove(): void } {
  const dir = mkdtempSync(path.join(tmpdir(), `${label}-`));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A validated config for tests, with REDIS_URL from the test setup. */
export function testConfig(json: Record<string, unknown>, vars: Record<string, string> = {}): Config {
  return parseConfig(json, { env: { redisUrl: redisUrl(), vars } });
}

export const quietLogger = () => createLogger('silent');

/** Teardown of a test file that ran an API, a queue and a temp dir: closes and deletes all three. */
export async function tearDown(parts: { api?: { close(): Promise<void> }; queue: string; redis?: Redis; tmp: { remove(): void } }): Promise<void> {
  await parts.api?.close();
  const redis = parts.redis ?? newRedis();
  await cleanQueue(redis, parts.queue);
  redis.disconnect();
  parts.tmp.remove();
}

/** Waits until a redis-server just started on 127.0.0.1:`port` answers PING (5 s at most), else throws. */
export async function redisAnswersOn(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const r = new Redis(port, '127.0.0.1', { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
    r.on('error', () => undefined);
    try {
      await r.connect();
      await r.ping();
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 50));
    } finally {
      r.disconnect();
    }
  }
  throw new Error('redis-server did not start');
}
