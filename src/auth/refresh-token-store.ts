import type { RedisClient } from '../redis/connect-redis.js';
import { queueKeys } from '../redis/keys.js';
import { retryRedis } from '../redis/redis-retry.js';
import { openToken, sealToken } from './token-cache-crypto.js';

/**
 * An OAuth2 client's refresh token as the fleet keeps it (grants refresh_token, authorization_code):
 * one key per client, no TTL, sealed (AES-256-GCM) under a key derived from `sealSecret` (the client
 * secret; for a public client auth.sealKey, else the deployment key), so a Redis dump alone holds no
 * usable refresh token. `pullq login` writes the first one; a rotation replaces it.
 */
export class RefreshTokenStore {
  readonly key: string;
  constructor(
    private readonly redis: RedisClient,
    queue: string,
    /** The client's credential id (fingerprint or name). */
    readonly id: string,
    private readonly sealSecret: string,
    private readonly sealSalt: string,
  ) {
    this.key = queueKeys(queue).refreshToken(id);
  }

  /** The current refresh token; undefined when none is stored (or it was sealed under another key). */
  async read(): Promise<string | undefined> {
    const sealed = await retryRedis(() => this.redis.get(this.key));
    return sealed ? openToken(sealed, this.sealSecret, this.sealSalt) : undefined;
  }

  /** What write() stores, for a caller that writes it in a script or a MULTI together with other keys. */
  seal(refreshToken: string): string {
    return sealToken(refreshToken, this.sealSecret, this.sealSalt);
  }

  /** Stores a refresh token for the fleet (`pullq login`): replaces any other. */
  async write(refreshToken: string): Promise<void> {
    const sealed = this.seal(refreshToken);
    await retryRedis(() => this.redis.set(this.key, sealed));
  }
}
