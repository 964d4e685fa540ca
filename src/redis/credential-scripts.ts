import type { RedisClient } from './connect-redis.js';
import { queueKeys } from './keys.js';
import { scriptsFor, type Scripts } from './scripts.js';

// Typed wrappers of the credential pool's Lua scripts (src/redis/lua): named
// arguments in, a tagged result out, every key named by keys.ts and declared
// in KEYS (one hash slot per queue).

/** A candidate credential of a take. */
export interface TakeCandidate {
  id: string;
  /** Configured limits "q:wMs;…", or "" to use the learned ones. */
  limits: string;
  /** budget.maxInFlight, if any. */
  maxInFlight?: number;
  /** budget.burst, if any (else the pacing default). */
  burst?: number;
}

export type TakeResult =
  | { kind: 'granted'; /** 0-based index into the candidates. */ index: number; startAt: number; now: number; /** Its window log entry ('': none). */ start: string; paceUs: number }
  | { kind: 'wait'; index: number; retryAt: number; now: number }
  | { kind: 'quarantined'; now: number };

export interface ReportInput {
  id: string;
  outcome: 'ok' | 'limited' | 'unauthorized' | 'forbidden' | 'stale' | 'other';
  /** Rest asked for, ms. */
  restMs?: number;
  /** Limits announced "q:wMs;…", "-" no rate-limit headers, "" keep. */
  limits: string;
  backoffBaseMs: number;
  backoffMaxMs: number;
  jitter: number;
  /** Consecutive 401s that quarantine. */
  confirm401: number;
  quarantineMs: number;
  reason: string;
  /** The logged start to confirm ('': none). */
  start: string;
  /** The rest only comes from "remaining 0" on an answer that was not refused. */
  soft: boolean;
  /** The credential's configured limits, or "". */
  configured: string;
  /** Unique per call: a replay answers the first call's result. */
  opId: string;
  /** What the server asked for when more than the rest sent (capped). */
  askedMs?: number;
}

export type ReportResult = { kind: 'nothing' } | { kind: 'resting'; until: number } | { kind: 'quarantined'; until: number };

/** The client's 20 s bucket of take records (a replayed take names the same keys). */
const TAKE_BUCKET_MS = 20_000;

export class CredentialScripts {
  private readonly scripts: Scripts;
  private readonly keys: ReturnType<typeof queueKeys>;

  constructor(redis: RedisClient, queue: string) {
    this.scripts = scriptsFor(redis);
    this.keys = queueKeys(queue);
  }

  /** takeCredential-n.lua: picks among `candidates` and reserves a start at most `horizonMs` ahead. */
  async take(input: { candidates: TakeCandidate[]; horizonMs: number; slowStart: string; opId: string; leaseMs: number }): Promise<TakeResult> {
    const k = this.keys;
    const bucket = Math.floor(Date.now() / TAKE_BUCKET_MS);
    const keys = [k.takeTurn, k.takes(bucket), k.takes(bucket - 1)];
    const args: (string | number)[] = [input.horizonMs, input.slowStart, input.opId, input.leaseMs];
    for (const c of input.candidates) {
      keys.push(k.cred(c.id), k.credLog(c.id), k.credInFlight(c.id));
      args.push(c.limits, c.maxInFlight ?? '', c.burst ?? '');
    }
    const [status, index, at, now, start, paceUs] = (await this.scripts.takeCredential(keys.length, ...keys, ...args)) as [number, number, number, number, string | number | undefined, number | undefined];
    // A take remembered from before starts were named by their take (a number, 0: none) names its entry so.
    if (status === 1) return { kind: 'granted', index: index - 1, startAt: at, now, start: typeof start === 'string' ? start : start ? String(start) : '', paceUs: paceUs ?? 0 };
    if (status === 0) return { kind: 'wait', index: index - 1, retryAt: at, now };
    return { kind: 'quarantined', now };
  }

  /** reportResponse-3.lua: what one answer said about a credential. */
  async report(r: ReportInput): Promise<ReportResult> {
    const k = this.keys;
    const [event, until] = (await this.scripts.reportResponse(
      k.cred(r.id), k.credLog(r.id), k.op(r.opId),
      r.outcome, r.restMs === undefined ? '' : Math.ceil(r.restMs), r.limits, r.backoffBaseMs, r.backoffMaxMs, r.jitter,
      r.confirm401, r.quarantineMs, r.reason, r.start, r.soft ? '1' : '0', r.configured, r.askedMs === undefined ? '' : Math.ceil(r.askedMs),
    )) as number[];
    if (event === 1) return { kind: 'resting', until: until! };
    if (event === 2) return { kind: 'quarantined', until: until! };
    return { kind: 'nothing' };
  }

  /** confirmStart-1.lua: moves a logged start to now (idempotent). */
  async confirm(id: string, start: string): Promise<void> {
    if (start === '') return;
    await this.scripts.confirmStart(this.keys.credLog(id), start);
  }

  /** releaseStart-3.lua: gives back a start that was not sent: its slot, its pacing interval, its count. `opId` unique per call. */
  async release(id: string, start: string, paceUs: number, opId: string): Promise<void> {
    await this.scripts.releaseStart(this.keys.cred(id), this.keys.credLog(id), this.keys.op(opId), start, paceUs);
  }

  /** refundStart-3.lua: gives back the budget of a start the API did not count (budget.free304). `opId` unique per call. */
  async refund(id: string, start: string, paceUs: number, opId: string): Promise<void> {
    await this.scripts.refundStart(this.keys.cred(id), this.keys.credLog(id), this.keys.op(opId), start, paceUs);
  }
}
