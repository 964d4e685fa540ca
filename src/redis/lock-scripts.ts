import type { RedisClient } from './connect-redis.js';
import { scriptsFor, type Scripts } from './scripts.js';

// Typed wrappers of the lock scripts (extendLock-1.lua, releaseLock-1.lua,
// setWhileLocked-2.lua): a
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

  /** Stores `value` at `key` for `ttlMs` while `owner` holds the lock; false (nothing stored) when it is gone or someone else's. */
  async setWhileHeld(lockKey: string, owner: string, key: string, value: string, ttlMs: number): Promise<boolean> {
    return (await this.scripts.setWhileLocked(lockKey, key, owner, value, Math.max(1, Math.ceil(ttlMs)))) === 1;
  }

  /** Releases the lock while `owner` holds it; false when it was not held by `owner`. */
  async release(key: string, owner: string): Promise<boolean> {
    return (await this.scripts.releaseLock(key, owner)) === 1;
  }
}
