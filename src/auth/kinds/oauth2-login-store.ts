import type { RedisClient } from '../../redis/connect-redis.js';
import { queueKeys } from '../../redis/keys.js';
import { retryRedis } from '../../redis/redis-retry.js';
import type { RefreshTokenStore } from '../refresh-token-store.js';

/**
 * What `pullq login` leaves for the fleet, in one MULTI (the keys share the queue's hash slot): the new
 * refresh token (sealed) replaces any other, the client's quarantine is lifted (it was most likely
 * "invalid_grant: run pullq login"), its refresh marks (a token in flight, a refused one: they name the
 * old token) are cleared, and its cached access token, from the old grant, is dropped so the next
 * refresh uses the new grant. A refresh under way meanwhile cannot undo this: commitRefresh-4.lua
 * replaces the refresh token only while it is still the one sent. Each command is idempotent, so a
 * resent MULTI is harmless.
 */
export async function storeLogin(redis: RedisClient, queue: string, store: RefreshTokenStore, refreshToken: string): Promise<void> {
  const keys = queueKeys(queue);
  const sealed = store.seal(refreshToken);
  await retryRedis(async () => {
    const replies = await redis
      .multi()
      .set(store.key, sealed)
      .hdel(keys.cred(store.id), 'qUntil', 'qReason', 'u401')
      .hdel(store.stateKey, 'inflight', 'tries', 'dead', 'deadReason')
      .del(keys.oauth(store.id))
      .exec();
    const failed = replies?.find(([err]) => err);
    if (!replies || failed) throw failed?.[0] ?? new Error('MULTI aborted');
  });
}
