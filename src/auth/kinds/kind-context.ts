import type { Got } from 'got';
import type { Config } from '../../config.js';
import type { Logger } from '../../logger.js';
import type { RedisClient } from '../../redis/connect-redis.js';

/** What a kind needs to build its credentials: the fingerprint key, and for token kinds the fleet's Redis and an HTTP client. */
export interface KindContext {
  /** The deployment's fingerprint key (credential-key.ts). */
  key: Buffer;
  redis: RedisClient;
  queue: string;
  /** The worker's got client (token and login endpoints; its redirect guard and timeouts). */
  http: Got;
  logger: Logger;
}

/** auth of type oauth2, as the grant files take it. */
export type OAuth2Auth = Extract<Config['auth'], { type: 'oauth2' }>;
