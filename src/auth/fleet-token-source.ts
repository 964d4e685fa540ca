import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RedisClient } from '../redis/connect-redis.js';
import type { Logger } from '../logger.js';
import { openToken, sealToken } from './token-cache-crypto.js';
import { queueKeys } from '../redis/keys.js';
import { LockScripts } from '../redis/lock-scripts.js';
import { CredentialUnavailableError } from './credential-errors.js';
import { RecentValues } from './recent-values.js';

/** What an issuer (a token endpoint, a login endpoint) handed out. */
export interface FetchedToken {
  token: string;
  /** Lifetime in seconds as the issuer said it (expires_in; a string or a number), else undefined. */
  expiresIn?: unknown;
  /**
   * Stores the sealed access token for the fleet (for `ttlMs`) together with whatever else the answer
   * changed (a rotated refresh token), in one step fenced by the lock; false when fenced out. Without
   * it the source stores the access token itself.
   */
  commit?: (sealedAccess: string, ttlMs: number) => Promise<boolean>;
}

/** The fleet's refresh lock of a credential, as its fetch holds it. */
export interface HeldLock {
  key: string;
  /** The holder's random value: scripts fence their writes with it. */
  owner: string;
  /** Extends the lock to `ms` from now; false when it is no longer the holder's. */
  extend(ms: number): Promise<boolean>;
}

export interface FleetTokenOptions {
  /** Safe id of the credential (fingerprint or name) for keys and logs. */
  id: string;
  /** How messages name it: "OAuth2 client crm-sync", "login account acct-a". */
  what: string;
  /** Key material the cached token is sealed with (a client secret, a password), and its salt (a client id, a username). */
  sealSecret: string;
  sealSalt: string;
  /**
   * Asks the issuer for a token, under the fleet's lock (it lives LOCK_MS; a fetch that may take longer
   * extends it): throws CredentialRefusedError (quarantine) or CredentialUnavailableError (later).
   */
  fetch: (lock: HeldLock) => Promise<FetchedToken>;
  /** Lifetime assumed when the issuer gives neither expires_in nor a JWT exp (ms); default an hour. */
  defaultLifetimeMs?: number;
}

interface CachedToken {
  token: string;
  /** Epoch ms: the token stops working. */
  expiresAt: number;
  /** Epoch ms: get a new one from here on (before it expires). */
  refreshAt: number;
}

/** Share of a token's lifetime after which it is refreshed. */
export const REFRESH_AT = 0.8;
/** Lifetime assumed when the endpoint gives neither expires_in nor a JWT exp (s). */
const DEFAULT_LIFETIME_S = 3600;
/** expires_in and exp are whole seconds, counted by the server from a whole-second issue time: a token may stop this much before the lifetime it announced. */
const EXPIRY_SLACK_MS = 1000;
/** After an unavailable answer, this process waits this long before it calls the issuer again (ms), doubling per failure up to FAILURE_BACKOFF_MAX_MS. */
export const FAILURE_BACKOFF_MS = 1_000;
export const FAILURE_BACKOFF_MAX_MS = 30_000;
/** The refresh lock's life (ms): longer than a token request's time-out (10 s), or the fetch extends it. */
export const LOCK_MS = 15_000;

/**
 * Tokens of one credential (an OAuth2 client, a login account), shared by the fleet: one fetch per
 * credential per token lifetime (a Redis lock), the token cached in Redis sealed with a key derived from
 * the credential's secret, refreshed at 80% of its lifetime (expires_in, else the JWT `exp`) while the
 * old one still works, and dropped after a 401. An issuer that answers "not now" is not called again by
 * this process for 1 s, doubling to 30 s: requests meanwhile use a token still valid, wait out the wait's
 * last second (all sharing the one call), or fail fast (CredentialUnavailableError: retried with backoff).
 */
export class FleetTokenSource {
  readonly options: FleetTokenOptions;
  private readonly redis: RedisClient;
  private readonly key: string;
  private readonly lockKey: string;
  private readonly logger: Logger;
  private local: CachedToken | undefined;
  private inflight: Promise<string> | undefined;
  /** The last tokens this process has held (RecentValues: bounded), so they can be scrubbed from any text. */
  readonly seenTokens = new RecentValues();
  /** Issuer calls made by this process. */
  endpointCalls = 0;
  /** After an unavailable answer: no issuer call from this process before `until` (epoch ms); `waitMs` the current wait. */
  private backoff: { until: number; waitMs: number } | undefined;

  constructor(options: FleetTokenOptions, deps: { redis: RedisClient; queue: string; logger: Logger }) {
    this.options = options;
    this.redis = deps.redis;
    this.logger = deps.logger;
    this.key = queueKeys(deps.queue).oauth(options.id);
    this.lockKey = queueKeys(deps.queue).oauthLock(options.id);
  }

  /** A valid token, from this process, the fleet's cache, or the issuer. */
  async token(): Promise<string> {
    if (this.local && Date.now() < this.local.refreshAt) return this.local.token;
    this.inflight ??= this.obtain().finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  /**
   * After a 401: forgets `token` here, and in the fleet cache if it is still the current one there, and
   * says whether the 401 is the credential's: true only for the call that dropped it from the fleet cache
   * (one compare-and-delete, releaseLock-1.lua on its sealed value), so when every replica holds the same
   * dead token and each gets its 401, the fleet counts one 401, not one per replica (two in a row would
   * quarantine a credential whose only fault is an expired token). False too when the token was in its
   * last second: it may have run out at the server (which counts whole seconds from a whole-second issue time).
   */
  async invalidate(token: string): Promise<boolean> {
    let expiring = false;
    if (this.local?.token === token) {
      expiring = Date.now() >= this.local.expiresAt - EXPIRY_SLACK_MS;
      this.local = undefined;
    }
    const sealed = await this.redis.get(this.key);
    if (!sealed) return false;
    const text = openToken(sealed, this.options.sealSecret, this.options.sealSalt);
    if (!text) return false;
    const cached = JSON.parse(text) as CachedToken;
    if (cached.token !== token) return false;
    expiring ||= Date.now() >= cached.expiresAt - EXPIRY_SLACK_MS;
    const dropped = await new LockScripts(this.redis).release(this.key, sealed);
    return dropped && !expiring;
  }

  private async obtain(): Promise<string> {
    const deadline = Date.now() + LOCK_MS;
    const owner = randomUUID();
    const locks = new LockScripts(this.redis);
    for (;;) {
      const cached = await this.readCache();
      if (cached && Date.now() < cached.refreshAt) return this.keep(cached);
      // The issuer failed a moment ago: a token still valid serves meanwhile, else fail fast without a call.
      if (this.backoff && Date.now() < this.backoff.until) {
        if (cached && Date.now() < cached.expiresAt - 1000) return this.keep(cached);
        const leftMs = this.backoff.until - Date.now();
        // The last second of the wait is waited out (every caller shares this one fetch); a longer one fails fast.
        if (leftMs > FAILURE_BACKOFF_MS) throw new CredentialUnavailableError('token_unavailable', `${this.options.what}: the issuer failed; next try in ${Math.ceil(leftMs / 1000)} s`);
        await sleep(leftMs);
        continue;
      }
      // A SET NX whose reply was lost is sent again and answers null: the lock holding our value is ours.
      if ((await this.redis.set(this.lockKey, owner, 'PX', LOCK_MS, 'NX')) === 'OK' || (await this.redis.get(this.lockKey)) === owner) {
        try {
          const again = await this.readCache();
          if (again && Date.now() < again.refreshAt) return this.keep(again);
          const started = Date.now();
          this.endpointCalls++;
          const lock: HeldLock = { key: this.lockKey, owner, extend: (ms) => locks.extend(this.lockKey, owner, ms) };
          let got: FetchedToken;
          try {
            got = await this.options.fetch(lock);
            this.backoff = undefined;
          } catch (err) {
            if (err instanceof CredentialUnavailableError) {
              const waitMs = Math.min(FAILURE_BACKOFF_MAX_MS, this.backoff ? this.backoff.waitMs * 2 : FAILURE_BACKOFF_MS);
              this.backoff = { until: Date.now() + waitMs, waitMs };
            }
            throw err;
          }
          const lifetimeMs = tokenLifetimeMs(got.token, got.expiresIn, started, this.options.defaultLifetimeMs);
          const fresh = { token: got.token, expiresAt: started + lifetimeMs, refreshAt: started + Math.floor(lifetimeMs * REFRESH_AT) };
          this.logger.debug({ credential: this.options.id, lifetimeMs }, 'token refreshed');
          const sealed = sealToken(JSON.stringify(fresh), this.options.sealSecret, this.options.sealSalt);
          const ttlMs = Math.max(1, fresh.expiresAt - Date.now());
          // Fenced by the lock (setWhileLocked-2.lua): a fetch that outlived it leaves the next holder's token in place.
          if (got.commit) await got.commit(sealed, ttlMs);
          else if (!(await locks.setWhileHeld(this.lockKey, owner, this.key, sealed, ttlMs))) this.logger.warn({ credential: this.options.id }, `${this.options.what}: the token came after the fleet's lock expired; it is used here but not shared`);
          return this.keep(fresh);
        } finally {
          // One atomic compare-and-delete (releaseLock-1.lua): a lock that expired and was taken by another replica stays.
          await locks.release(this.lockKey, owner);
        }
      }
      // Another replica is refreshing: the current token still works until it expires, so use it meanwhile.
      if (cached && Date.now() < cached.expiresAt - 1000) return this.keep(cached);
      if (Date.now() > deadline) throw new CredentialUnavailableError('token_unavailable', `${this.options.what}: no token after ${LOCK_MS} ms`);
      await sleep(50);
    }
  }

  private keep(t: CachedToken): string {
    this.local = t;
    this.seenTokens.add(t.token);
    return t.token;
  }

  private async readCache(): Promise<CachedToken | undefined> {
    const sealed = await this.redis.get(this.key);
    if (!sealed) return undefined;
    const text = openToken(sealed, this.options.sealSecret, this.options.sealSalt);
    if (!text) return undefined;
    return JSON.parse(text) as CachedToken;
  }
}

/** Lifetime from expires_in (s), else the JWT `exp` claim, else `fallbackMs` (an hour). */
export function tokenLifetimeMs(token: string, expiresIn: unknown, nowMs: number, fallbackMs = DEFAULT_LIFETIME_S * 1000): number {
  const n = typeof expiresIn === 'string' ? Number(expiresIn) : expiresIn;
  if (typeof n === 'number' && Number.isFinite(n) && n > 0) return n * 1000;
  const exp = jwtExp(token);
  if (exp !== undefined && exp * 1000 > nowMs) return exp * 1000 - nowMs;
  return fallbackMs;
}

function jwtExp(token: string): number | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  try {
    const payload = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as { exp?: unknown };
    return typeof payload.exp === 'number' ? payload.exp : undefined;
  } catch {
    return undefined;
  }
}
