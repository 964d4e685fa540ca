import { randomBytes } from 'node:crypto';
import type { RedisClient } from '../redis/connect-redis.js';
import { queueKeys } from '../redis/keys.js';
import { retryRedis } from '../redis/redis-retry.js';

/**
 * The key credential fingerprints are keyed with (credential.ts), one per
 * deployment: 32 random bytes kept in the queue's Redis, written by the first
 * process that asks (SET NX) and read by every other, so all replicas, and
 * every restart, name a credential the same way. Without it a fingerprint in a
 * log, a metric or a Redis key could be checked offline against guessed
 * passwords. Deleting it renames every credential: their fleet state
 * (rests, learned limits, start logs) starts afresh.
 */
export async function credentialKey(redis: RedisClient, queue: string): Promise<Buffer> {
  const key = queueKeys(queue).credKey;
  const fresh = randomBytes(32).toString('base64');
  await retryRedis(() => redis.set(key, fresh, 'NX'));
  const stored = await retryRedis(() => redis.get(key));
  return Buffer.from(stored ?? fresh, 'base64');
}
