import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Got } from 'got';
import type { RedisClient } from '../redis/connect-redis.js';
import { PullqError } from '../errors.js';
import type { Logger } from '../logger.js';
import { openToken, sealToken } from './token-cache-crypto.js';
import { queueKeys } from '../redis/keys.js';
import { LockScripts } from '../redis/lock-scripts.js';

/** The token endpoint refused the client (400/401/403): the client is quarantined. */
export class OAuth2RefusedError extends PullqError {
  constructor(message: string) {
    super('oauth2_refused', message);
  }
}

/** The token endpoint failed in a way that may pass (5xx, network): retry later. */
export class OAuth2UnavailableError extends PullqError {
  constructor(message: string) {
    super('oauth2_unavailable', message);
  }
}

export interface OAuth2ClientOptions {
  /** Safe id of the client (fingerprint or name) for keys and logs. */
  id: string;
  tokenUrl: string;
  clientId: string;
  clientSecret: string;
  scope?: string;
  audience?: string;
  authMethod: 'client_secret_basic' | 'client_secret_post';
}

interface CachedToken {
  token: string;
  /** Epoch ms: the token stops working. */
  expiresAt: number;
  /** Epoch ms: get a new one from here on (before it expires). */
  refreshAt: number;
}

/** Share of a token's lifetime after which it is refreshed. */
const REFRESH_AT = 0.8;
/** Lifetime assumed when the endpoint gives neither expires_in nor a JWT exp (s). */
const DEFAULT_LIFETIME_S = 3600;
const LOCK_MS = 15_000;

/**
 * OAuth2 client-credentials tokens for one client, shared by the fleet: one
 * refresh per client per token lifetime (a Redis lock), the token cached in
 * Redis sealed with a key derived from the client secret, refreshed at 80% of
 * its lifetime (expires_in, else the JWT `exp`) while the old one still works.
 */
export class OAuth2TokenSource {
  readonly options: OAuth2ClientOptions;
  private readonly redis: RedisClient;
  private readonly http: Got;
  private readonly key: string;
  private readonly logger: Logger;
  private local: CachedToken | undefined;
  private inflight: Promise<string> | undefined;
  /** Tokens this process has held, so they can be scrubbed from any text. */
  readonly seenTokens = new Set<string>();
  /** Token-endpoint calls made by this process. */
  endpointCalls = 0;

  constructor(options: OAuth2ClientOptions, deps: { redis: RedisClient; queue: string; http: Got; logger: Logger }) {
    this.options = options;
    this.redis = deps.redis;
    this.http = deps.http;
    this.logger = deps.logger;
    this.key = queueKeys(deps.queue).oauth(options.id);
  }

  /** A valid access token, from this process, the fleet's cache, or the endpoint. */
  async token(): Promise<string> {
    if (this.local && Date.now() < this.local.refreshAt) return this.local.token;
    this.inflight ??= this.obtain().finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  /**
   * After a 401: forgets `token` (here and in the fleet cache) if it is still
   * the current one, and says whether it was (false: already replaced).
   */
  async invalidate(token: string): Promise<boolean> {
    let current = false;
    if (this.local?.token === token) {
      this.local = undefined;
      current = true;
    }
    const cached = await this.readCache();
    if (cached?.token === token) {
      await this.redis.del(this.key);
      current = true;
    }
    return current;
  }

  private async obtain(): Promise<string> {
    const deadline = Date.now() + LOCK_MS;
    const owner = randomUUID();
    for (;;) {
      const cached = await this.readCache();
      if (cached && Date.now() < cached.refreshAt) return this.keep(cached);
      // A SET NX whose reply was lost is sent again and answers null: the lock holding our value is ours.
      if ((await this.redis.set(`${this.key}:lock`, owner, 'PX', LOCK_MS, 'NX')) === 'OK' || (await this.redis.get(`${this.key}:lock`)) === owner) {
        try {
          const again = await this.readCache();
          if (again && Date.now() < again.refreshAt) return this.keep(again);
          const fresh = await this.fetchToken();
          await this.redis.set(this.key, sealToken(JSON.stringify(fresh), this.options.clientSecret, this.options.clientId), 'PX', Math.max(1, fresh.expiresAt - Date.now()));
          return this.keep(fresh);
        } finally {
          // One atomic compare-and-delete (releaseLock-1.lua): a lock that expired and was taken by another replica stays.
          await new LockScripts(this.redis).release(`${this.key}:lock`, owner);
        }
      }
      // Another replica is refreshing: the current token still works until it expires, so use it meanwhile.
      if (cached && Date.now() < cached.expiresAt - 1000) return this.keep(cached);
      if (Date.now() > deadline) throw new OAuth2UnavailableError(`OAuth2 client ${this.options.id}: no token after ${LOCK_MS} ms`);
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
    const text = openToken(sealed, this.options.clientSecret, this.options.clientId);
    if (!text) return undefined;
    return JSON.parse(text) as CachedToken;
  }

  private async fetchToken(): Promise<CachedToken> {
    const o = this.options;
    const form: Record<string, string> = { grant_type: 'client_credentials' };
    if (o.scope) form['scope'] = o.scope;
    if (o.audience) form['audience'] = o.audience;
    const headers: Record<string, string> = { accept: 'application/json' };
    if (o.authMethod === 'client_secret_basic') {
      // RFC 6749 §2.3.1: id and secret are form-urlencoded before Basic encoding.
      const enc = (s: string) => encodeURIComponent(s).replace(/%20/g, '+');
      headers['authorization'] = `Basic ${Buffer.from(`${enc(o.clientId)}:${enc(o.clientSecret)}`).toString('base64')}`;
    } else {
      form['client_id'] = o.clientId;
      form['client_secret'] = o.clientSecret;
    }
    this.endpointCalls++;
    const started = Date.now();
    let res;
    try {
      res = await this.http.post(o.tokenUrl, { form, headers, responseType: 'text', followRedirect: false, throwHttpErrors: false });
    } catch (err) {
      // The got error carries the request (and the secret): keep only its code.
      throw new OAuth2UnavailableError(`OAuth2 client ${o.id}: token endpoint unreachable (${(err as { code?: string }).code ?? 'error'})`);
    }
    if (res.statusCode >= 500 || res.statusCode === 429) throw new OAuth2UnavailableError(`OAuth2 client ${o.id}: token endpoint answered ${res.statusCode}`);
    if (res.statusCode !== 200) throw new OAuth2RefusedError(`OAuth2 client ${o.id}: token endpoint refused the client (HTTP ${res.statusCode})`);
    let body: { access_token?: unknown; expires_in?: unknown };
    try {
      body = JSON.parse(res.body as string) as typeof body;
    } catch {
      throw new OAuth2UnavailableError(`OAuth2 client ${o.id}: token endpoint answered non-JSON`);
    }
    if (typeof body.access_token !== 'string' || body.access_token === '') throw new OAuth2RefusedError(`OAuth2 client ${o.id}: token response has no access_token`);
    const lifetimeMs = tokenLifetimeMs(body.access_token, body.expires_in, started);
    this.logger.debug({ client: o.id, lifetimeMs }, 'OAuth2 token refreshed');
    return { token: body.access_token, expiresAt: started + lifetimeMs, refreshAt: started + Math.floor(lifetimeMs * REFRESH_AT) };
  }
}

/** Lifetime from expires_in (s), else the JWT `exp` claim, else an hour. */
export function tokenLifetimeMs(token: string, expiresIn: unknown, nowMs: number): number {
  const n = typeof expiresIn === 'string' ? Number(expiresIn) : expiresIn;
  if (typeof n === 'number' && Number.isFinite(n) && n > 0) return n * 1000;
  const exp = jwtExp(token);
  if (exp !== undefined && exp * 1000 > nowMs) return exp * 1000 - nowMs;
  return DEFAULT_LIFETIME_S * 1000;
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
