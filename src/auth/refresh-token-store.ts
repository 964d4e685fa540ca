import { createHmac } from 'node:crypto';
import type { RedisClient } from '../redis/connect-redis.js';
import { queueKeys } from '../redis/keys.js';
import { retryRedis } from '../redis/redis-retry.js';
import { waitForReplicas, type ReplicaAck } from '../redis/wait-for-replicas.js';
import { openToken, sealToken } from './token-cache-crypto.js';

/** The fleet's refresh state of one client, as read (sealed values compare as strings; never a plain token in Redis). */
export interface RefreshState {
  /** The stored sealed refresh token ('' none). */
  sealed: string;
  /** It, opened; undefined when none is stored or it was sealed under another key. */
  token: string | undefined;
  /** The sealed refresh token of a request whose answer is not resolved yet, and its attempt. */
  inflight?: string;
  tries: number;
  /** A sealed refresh token the server refused, and the quarantine line's reason. */
  dead?: string;
  deadReason?: string;
  /** seedOf() of the config's starting refresh token the fleet adopted. */
  seed?: string;
}

/**
 * An OAuth2 client's refresh token as the fleet keeps it (grants refresh_token, authorization_code):
 * one key per client, no TTL, sealed (AES-256-GCM) under a key derived from `sealSecret` (the client
 * secret; for a public client auth.sealKey, else the deployment key), so a Redis dump alone holds no
 * usable refresh token. `pullq login` writes the first one; a rotation replaces it.
 */
export class RefreshTokenStore {
  readonly key: string;
  readonly stateKey: string;
  /** The client's pool state (quarantine): a new refresh token lifts it. */
  private readonly credKey: string;
  constructor(
    private readonly redis: RedisClient,
    queue: string,
    /** The client's credential id (fingerprint or name). */
    readonly id: string,
    private readonly sealSecret: string,
    private readonly sealSalt: string,
  ) {
    this.key = queueKeys(queue).refreshToken(id);
    this.stateKey = queueKeys(queue).refreshState(id);
    this.credKey = queueKeys(queue).cred(id);
    this.replicatedKey = queueKeys(queue).replicated;
  }
  private readonly replicatedKey: string;

  /** Waits (at most `timeoutMs`) until a Redis replica holds every write so far (a rotated refresh token); at once without replicas. */
  replicasHold(timeoutMs?: number): Promise<ReplicaAck> {
    return waitForReplicas(this.redis, { markerKey: this.replicatedKey, timeoutMs });
  }

  /** The current refresh token; undefined when none is stored (or it was sealed under another key). */
  async read(): Promise<string | undefined> {
    const sealed = await retryRedis(() => this.redis.get(this.key));
    return sealed ? openToken(sealed, this.sealSecret, this.sealSalt) : undefined;
  }

  /** The refresh token and its state (refreshState key: in flight, refused, adopted seed). */
  async state(): Promise<RefreshState> {
    const [sealed, h] = await retryRedis(() => Promise.all([this.redis.get(this.key), this.redis.hgetall(this.stateKey)]));
    return {
      sealed: sealed ?? '',
      token: sealed ? openToken(sealed, this.sealSecret, this.sealSalt) : undefined,
      inflight: h['inflight'] || undefined,
      tries: Number(h['tries'] ?? 0) || 0,
      dead: h['dead'] || undefined,
      deadReason: h['deadReason'] || undefined,
      seed: h['seed'] || undefined,
    };
  }

  /** A keyed hash of a starting refresh token (grant refresh_token), to tell whether the fleet already started from it. */
  seedOf(refreshToken: string): string {
    return createHmac('sha256', `pullq refresh seed:${this.sealSalt}:${this.sealSecret}`).update(refreshToken).digest('base64url');
  }

  /** What write() stores, for a caller that writes it in a script or a MULTI together with other keys. */
  seal(refreshToken: string): string {
    return sealToken(refreshToken, this.sealSecret, this.sealSalt);
  }

  /**
   * At a process's start (grant refresh_token): when the config names a starting refresh token the fleet
   * has not adopted (`seed`, seedOf() of it, differs from the adopted one), lifts the client's quarantine so
   * the pool takes it again and its next refresh adopts the new token (beginRefresh-4.lua clears the old
   * token's refusal then). A quarantined client is never taken, so without this the new token would wait
   * out the quarantine (24 h). True when it lifted one.
   */
  async liftForNewSeed(seed: string): Promise<boolean> {
    const adopted = await retryRedis(() => this.redis.hget(this.stateKey, 'seed'));
    if (adopted === seed) return false;
    const lifted = await retryRedis(() => this.redis.hdel(this.credKey, 'qUntil', 'qReason', 'u401'));
    return lifted > 0;
  }

  /**
   * Stores a refresh token for the fleet (`pullq login`): replaces any other, and in the same MULTI
   * clears what the old one left (an in-flight mark, a refusal) and lifts the client's quarantine, so
   * the fleet uses the new token at its next refresh.
   */
  async write(refreshToken: string): Promise<void> {
    const sealed = this.seal(refreshToken);
    await retryRedis(() =>
      this.redis.multi().set(this.key, sealed).hdel(this.stateKey, 'inflight', 'tries', 'owner', 'dead', 'deadReason').hdel(this.credKey, 'qUntil', 'qReason', 'u401').exec(),
    );
  }
}
