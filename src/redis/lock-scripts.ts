import type { RedisClient } from './connect-redis.js';
import { scriptsFor, type Scripts } from './scripts.js';

// Typed wrappers of the lock scripts (extendLock-1.lua, releaseLock-1.lua): a
// lock is a key holding its owner's value; only the owner extends or releases
// it, each in one atomic compare-and-act (never a GET then a DEL).

export class LockScripts {
  private readonly scripts: Scripts;

  constructor(redis: RedisClient) {
    this.scripts = scriptsFor(redis);
  }

  /** Extends the lock to `ms` while `owner` holds it; false when it is gone or someone else's. */
  async extend(key: string, owner: string, ms: number): Promise<boolean> {
    return (await this.scripts.extendLock(key, owner, ms)) === 1;
  }

  /** Releases the lock while `owner` holds it; false when it was not held by `owner`. */
  async release(key: string, owner: string): Promise<boolean> {
    return (await this.scripts.releaseLock(key, owner)) === 1;
  }
}
