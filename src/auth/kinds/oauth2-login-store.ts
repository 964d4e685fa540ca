import type { RedisClient } from '../../redis/connect-redis.js';
import { queueKeys } from '../../redis/keys.js';
import { retryRedis } from '../../redis/redis-retry.js';
import type { RefreshTokenStore } from '../refresh-token-store.js';

/**
 * What `pullq login` leaves for the fleet, in one MULTI (the keys share the queue's hash slot): the new
 * refresh token (sealed) replaces any other, the client's quarantine is lifted (it was most likely
 * "invalid_grant: run pullq login"), and its cached access token, from the old grant, is dropped so the
 * next request refreshes with the new grant. Each command is idempotent, so a resent MULTI is harmless.
 */
export async function storeLogin(redis: RedisClient, queue: string, store: RefreshTokenStore, refreshToken: string): Promise<void> {
  const keys = queueKeys(queue);
  const sealed = store.seal(refreshToken);
  await retryRedis(async () => {
    const replies = await redis
      .multi()
      .set(store.key, sealed)
      .hdel(keys.cred(store.id), 'qUntil', 'qReason', 'u401')
      .del(keys.oauth(store.id))
      .exec();
    const failed = replies?.find(([err]) => err);
    if (!replies || failed) throw failed?.[0] ?? new Error('MULTI aborted');
  });
}
