import type { RedisClient } from './connect-redis.js';

/** True when Redis answers a PING within `timeoutMs` (readiness probes). */
export async function redisAnswers(redis: RedisClient, timeoutMs = 1000): Promise<boolean> {
  // Not connected: say so at once (a PING on a connection that waits for Redis would queue up until it is back).
  if (redis.status !== 'ready') return false;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([redis.ping(), new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('timeout')), timeoutMs)))]);
    return true;
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}
