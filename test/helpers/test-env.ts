import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { inject } from 'vitest';
import { deleteKeys } from '../../scripts/local-redis.js';
import { parseConfig, type Config } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { queuePatterns } from '../../src/redis/keys.js';

export const redisUrl = (): string => inject('redisUrl');

/** A queue name no other test uses. */
export function uniqueQueue(label = 't'): string {
  return `${label}-${randomBytes(5).toString('hex')}`;
}

export function newRedis(): Redis {
  return new Redis(redisUrl(), { maxRetriesPerRequest: null });
}

/** Deletes every key of a queue: BullMQ's and pullq's. */
export async function cleanQueue(redis: Redis, queue: string): Promise<void> {
  await deleteKeys(redis, queuePatterns(queue));
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
