import type { RedisClient } from './connect-redis.js';
import { queueKeys } from './keys.js';
import { scriptsFor, type Scripts } from './scripts.js';

// Typed wrappers of the refresh-token rotation scripts (beginRefresh-4.lua, commitRefresh-4.lua,
// endRefresh-3.lua): every one fenced by the refresh lock's owner, every key named by keys.ts and
// declared in KEYS (one hash slot per queue). Values are sealed strings, never plain tokens.

export type BeginResult = 'marked' | 'not-owner' | 'changed';
export type CommitResult = 'rotated' | 'stored' | 'not-owner';

export class RefreshScripts {
  private readonly scripts: Scripts;
  private readonly lock: string;
  private readonly access: string;
  private readonly rt: string;
  private readonly state: string;
  private readonly cred: string;

  constructor(redis: RedisClient, queue: string, id: string) {
    this.scripts = scriptsFor(redis);
    const k = queueKeys(queue);
    this.lock = k.oauthLock(id);
    this.access = k.oauth(id);
    this.rt = k.refreshToken(id);
    this.state = k.refreshState(id);
    this.cred = k.cred(id);
  }

  /** Marks `read` (the stored sealed refresh token, '' none) in flight, after adopting `adopt` (sealed, with its seed) when given: adopting lifts the client's quarantine. */
  async begin(input: { owner: string; read: string; adopt?: { sealed: string; seed: string }; tries: number }): Promise<BeginResult> {
    const r = (await this.scripts.beginRefresh(this.lock, this.rt, this.state, this.cred, input.owner, input.read, input.adopt?.sealed ?? '', input.adopt?.seed ?? '', input.tries)) as number;
    return r === 1 ? 'marked' : r === 0 ? 'not-owner' : 'changed';
  }

  /** Stores the sealed access token (for `ttlMs`) and the rotated refresh token (`rotated`, '' none) in place of `sent`. */
  async commit(input: { owner: string; sent: string; rotated: string; access: string; ttlMs: number }): Promise<CommitResult> {
    const r = (await this.scripts.commitRefresh(this.lock, this.access, this.rt, this.state, input.owner, input.sent, input.rotated, input.access, Math.max(1, Math.ceil(input.ttlMs)))) as number;
    return r === 2 ? 'rotated' : r === 1 ? 'stored' : 'not-owner';
  }

  /** Resolves the mark of `sent`; with `refusedReason`, `sent` is refused for good (never sent again). */
  async end(input: { owner: string; sent: string; refusedReason?: string }): Promise<boolean> {
    return ((await this.scripts.endRefresh(this.lock, this.rt, this.state, input.owner, input.sent, input.refusedReason ?? '')) as number) === 1;
  }
}
