import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CredentialPool } from '../src/auth/credential-pool.js';
import type { Credential, OutgoingRequest as RequestParts } from '../src/auth/credential.js';
import { newRetryState } from '../src/runs/run-store.js';
import { createHttpClient } from '../src/jobs/http-client.js';
import { cleanQueue, newRedis, quietLogger, testConfig, uniqueQueue } from './helpers/test-env.js';
import { queueKeys } from '../src/redis/keys.js';
import { CredentialScripts } from '../src/redis/credential-scripts.js';
import { createLogger } from '../src/logger.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readLimitString } from '../src/auth/limit-string.js';

/** What one answer means for its credential, as the pool decides and reports it. */
async function say(p: CredentialPool, c: Credential, request: RequestParts, status: number | null, headers: Record<string, string>, start = ''): Promise<string> {
  return (await p.answer(c, request, { status, headers }, newRetryState(), start)).credential.verdict;
}

// The pool against a real Redis, without HTTP: what two replicas see when they share it.

const redis = newRedis();
const redis2 = newRedis();
let queue: string;
beforeEach(() => {
  queue = uniqueQueue('pool');
});
afterEach(async () => cleanQueue(redis, queue));
afterAll(() => {
  redis.disconnect();
  redis2.disconnect();
});

async function pool(auth: Record<string, unknown>, extra: Record<string, unknown> = {}, connection = redis) {
  const config = testConfig({ queue, request: { url: 'http://127.0.0.1:9/{id}' }, auth, ...extra });
  return CredentialPool.open({ redis: connection, config, logger: quietLogger(), http: createHttpClient(config) });
}
const none = new Set<string>();
const req = { method: 'GET', url: 'http://x/1', headers: {} };

describe('CredentialPool budgets', () => {
  it('two replicas share one budget: at most `requests` starts in any window; later starts are reserved at most half a window ahead', async () => {
    const a = await pool({ type: 'header', tokens: ['tok-a'] }, { budget: { requests: 5, perSeconds: 1, burst: 5 } });
    const b = await pool({ type: 'header', tokens: ['tok-a'] }, { budget: { requests: 5, perSeconds: 1, burst: 5 } }, redis2);
    for (let i = 0; i < 5; i++) expect(await (i % 2 ? b : a).acquire(none, 5000)).toMatchObject({ kind: 'granted', waitMs: expect.any(Number) });
    // The 6th start is a window plus the 10 ms margin after the 1st: not reservable yet (500 ms ahead at most).
    const sixth = await b.acquire(none, 5000);
    expect(sixth.kind).toBe('wait');
    const wait = sixth.kind === 'wait' ? sixth.waitMs : 0;
    expect(wait).toBeGreaterThanOrEqual(480);
    expect(wait).toBeLessThanOrEqual(530);
    await new Promise((r) => setTimeout(r, wait));
    const later = await a.acquire(none, 5000);
    expect(later.kind).toBe('granted');
    expect(later.kind === 'granted' && later.waitMs).toBeGreaterThan(400);
    expect(later.kind === 'granted' && later.waitMs).toBeLessThanOrEqual(520);
  });

  it('a start moves to when its response came back, and later starts are spaced from there', async () => {
    const p = await pool({ type: 'header', tokens: ['tok-a'] }, { budget: { requests: 1, perSeconds: 1 } });
    const first = await p.acquire(none, 5000);
    expect(first.kind).toBe('granted');
    await new Promise((r) => setTimeout(r, 300));
    await say(p, p.credentials[0]!, req, 200, {}, first.kind === 'granted' ? first.start : '');
    const next = await p.acquire(none, 5000);
    // Reservable 500 ms (the horizon) before 1000 + 10 ms after the response: ~510 ms from now.
    // Spaced from the reserved start instead, it would be ~220 ms.
    expect(next.kind === 'wait' && next.waitMs).toBeGreaterThan(450);
  });

  it('prefers the credential with the most headroom and honours exclusions', async () => {
    const p = await pool({ type: 'header', tokens: ['t1', 't2'] }, { budget: { requests: 10, perSeconds: 60, burst: 10 } });
    const [c1, c2] = p.credentials;
    const picks: string[] = [];
    for (let i = 0; i < 6; i++) {
      const got = await p.acquire(none, 0);
      if (got.kind === 'granted') picks.push(got.credential.id);
    }
    expect(picks.filter((x) => x === c1!.id)).toHaveLength(3);
    expect(picks.filter((x) => x === c2!.id)).toHaveLength(3);
    const only2 = await p.acquire(new Set([c1!.id]), 0);
    expect(only2.kind === 'granted' && only2.credential.id).toBe(c2!.id);
  });

  it('a per-credential budget overrides the default', async () => {
    const p = await pool({ type: 'header', tokens: [{ token: 'slow', name: 'slow', budget: { requests: 1, perSeconds: 60 } }] }, { budget: { requests: 100, perSeconds: 1 } });
    expect((await p.acquire(none, 0)).kind).toBe('granted');
    expect((await p.acquire(none, 0)).kind).toBe('wait');
  });
});

describe('CredentialPool pacing (GCRA)', () => {
  /**
   * The starts reserved by n more takes, in ms after the first of them, as Redis logged them (its clock:
   * what a slow machine's call times do to the waits does not matter).
   */
  async function starts(p: CredentialPool, n: number, horizonMs = 5000): Promise<number[]> {
    const log = queueKeys(queue).credLog(p.credentials[0]!.id);
    const seen = new Set(await redis.zrange(log, '0', '-1'));
    for (let i = 0; i < n; i++) {
      const g = await p.acquire(none, horizonMs);
      if (g.kind !== 'granted') throw new Error(`take ${i + 1}: ${g.kind}`);
    }
    const all = await redis.zrange(log, '0', '-1', 'WITHSCORES');
    const at: number[] = [];
    for (let i = 0; i < all.length; i += 2) if (!seen.has(all[i]!)) at.push(Number(all[i + 1]));
    at.sort((a, b) => a - b);
    return at.map((t) => t - at[0]!);
  }

  it('budget.burst starts go back to back, then one every perSeconds/requests, across replicas', async () => {
    const a = await pool({ type: 'header', tokens: ['t1'] }, { budget: { requests: 20, perSeconds: 1, burst: 4 } });
    const b = await pool({ type: 'header', tokens: ['t1'] }, { budget: { requests: 20, perSeconds: 1, burst: 4 } }, redis2);
    const first = await starts(a, 4);
    const next = await starts(b, 4);
    expect(Math.max(...first)).toBeLessThan(40);
    // Then spaced 50 ms (1000 / 20) from the burst: ~50, 100, 150, 200 ms after it.
    expect(next[1]! - next[0]!).toBeGreaterThanOrEqual(49);
    expect(next[3]! - next[0]!).toBeGreaterThanOrEqual(149);
    expect(next[3]! - next[0]!).toBeLessThanOrEqual(200);
  });

  it('by default a burst is 250 ms worth of starts (at least 1)', async () => {
    // 200 per 10 s: one each 50 ms, bursts of 5.
    const fast = await pool({ type: 'header', tokens: ['fast'] }, { budget: { requests: 200, perSeconds: 10 } });
    const s = await starts(fast, 8);
    expect(Math.max(...s.slice(0, 5))).toBeLessThan(40);
    expect(s[5]! - s[4]!).toBeGreaterThanOrEqual(10);
    expect(s[7]! - s[5]!).toBeGreaterThanOrEqual(99);
    const slow = await pool({ type: 'header', tokens: ['slow'] }, { budget: { requests: 5, perSeconds: 1 } });
    const t = await starts(slow, 3);
    expect(t[1]).toBeGreaterThanOrEqual(190);
    expect(t[2]).toBeGreaterThanOrEqual(390);
  });

  it('after a rest a credential restarts one start at a time: no burst on the wire when the next 429 comes', async () => {
    const p = await pool({ type: 'header', tokens: ['t1'] }, { budget: { requests: 100, perSeconds: 1, burst: 50 } });
    const c = p.credentials[0]!;
    expect(Math.max(...(await starts(p, 10)))).toBeLessThan(40);
    expect(await say(p, c, req, 429, { 'retry-after': '1' })).toBe('limited');
    await new Promise((r) => setTimeout(r, 600));
    const after = await starts(p, 4, 5000);
    // Each 10 ms (1000 / 100) apart: the burst credit is gone with the rest.
    expect(after[1]! - after[0]!).toBeGreaterThanOrEqual(9);
    expect(after[3]! - after[0]!).toBeGreaterThanOrEqual(29);
  });

  it('a start given back unsent gives back its pacing interval too', async () => {
    // One start each 500 ms: wide enough that a slow machine's call times do not matter.
    const p = await pool({ type: 'header', tokens: ['t1'] }, { budget: { requests: 2, perSeconds: 1, burst: 1 } });
    const a = await p.acquire(none, 5000);
    const b = await p.acquire(none, 5000);
    if (a.kind !== 'granted' || b.kind !== 'granted') throw new Error('not granted');
    expect(b.waitMs).toBeGreaterThanOrEqual(350);
    await p.release(b.credential, b.start, b.paceUs);
    const c = await p.acquire(none, 5000);
    // The slot b took is free again: ~500 ms ahead, not ~1000 ms.
    expect(c.kind === 'granted' && c.waitMs).toBeLessThan(750);
    expect(c.kind === 'granted' && c.waitMs).toBeGreaterThanOrEqual(250);
    // Nor does it count as a request (once, however often it is given back).
    await p.release(b.credential, b.start, b.paceUs);
    expect((await p.health())[0]!.requests).toBe(2);
  });

  it('a start given back names its own log entry: with the state hash lost between two takes, releasing the first leaves the second logged', async () => {
    const p = await pool({ type: 'header', tokens: ['t1'] }, { budget: { requests: 5, perSeconds: 10, burst: 5 } });
    const c = p.credentials[0]!;
    const log = queueKeys(queue).credLog(c.id);
    const a = await p.acquire(none, 0);
    // The credential's hash goes (an eviction, a hand-made reset) while its log stays.
    await redis.del(queueKeys(queue).cred(c.id));
    const b = await p.acquire(none, 0);
    if (a.kind !== 'granted' || b.kind !== 'granted') throw new Error('not granted');
    expect(await redis.zcard(log)).toBe(2);
    await p.release(a.credential, a.start, a.paceUs);
    expect(await redis.zcard(log)).toBe(1);
    await p.release(b.credential, b.start, b.paceUs);
    expect(await redis.zcard(log)).toBe(0);
  });

  it('a start of a credential with no known limits (not logged) given back unsent does not count as a request; a replay gives back nothing twice', async () => {
    const p = await pool({ type: 'header', tokens: ['t-unpaced'] });
    const c = p.credentials[0]!;
    await say(p, c, req, 200, {});
    const got = await p.acquire(none, 0);
    if (got.kind !== 'granted') throw new Error('not granted');
    expect(got.start).toBe('');
    expect((await p.health())[0]!.requests).toBe(1);
    await p.release(c, got.start, got.paceUs);
    expect((await p.health())[0]!.requests).toBe(0);
    const scripts = new CredentialScripts(redis, queue);
    const again = await p.acquire(none, 0);
    if (again.kind !== 'granted') throw new Error('not granted');
    await scripts.release(c.id, '', 0, 'replayed-release');
    await scripts.release(c.id, '', 0, 'replayed-release');
    expect((await p.health())[0]!.requests).toBe(0);
  });
});

describe('CredentialPool signals', () => {
  it('Retry-After rests the credential for every replica; the other one carries on', async () => {
    const a = await pool({ type: 'header', tokens: ['t1', 't2'] }, { budget: { requests: 100, perSeconds: 1 } });
    const b = await pool({ type: 'header', tokens: ['t1', 't2'] }, { budget: { requests: 100, perSeconds: 1 } }, redis2);
    const [c1, c2] = a.credentials;
    expect(await say(a, c1!, req, 429, { 'retry-after': '2' })).toBe('limited');
    for (let i = 0; i < 4; i++) {
      const got = await b.acquire(none, 0);
      expect(got.kind === 'granted' && got.credential.id).toBe(c2!.id);
    }
    const onlyRested = await b.acquire(new Set([c2!.id]), 0);
    expect(onlyRested.kind).toBe('wait');
    expect(onlyRested.kind === 'wait' && onlyRested.waitMs).toBeGreaterThan(1500);
    const health = await b.health();
    expect(health[0]).toMatchObject({ state: 'resting', n429: 1 });
    expect(health[1]).toMatchObject({ state: 'ok' });
  });

  it('a 403 with remaining 0 is a rate limit until the reset, not a refusal', async () => {
    const p = await pool({ type: 'header', tokens: ['t1'] });
    const c = p.credentials[0]!;
    const reset = String(Math.ceil(Date.now() / 1000) + 30);
    expect(await say(p, c, req, 403, { 'x-ratelimit-limit': '60', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': reset })).toBe('limited');
    const got = await p.acquire(none, 0);
    expect(got.kind === 'wait' && got.waitMs).toBeGreaterThan(25_000);
    expect(await say(p, c, req, 403, {})).toBe('forbidden');
  });

  it('"remaining 0" on a success rests the credential until the reset, unless its own pacing already holds a full window', async () => {
    const reset = () => String(Math.ceil(Date.now() / 1000) + 30);
    const paced = await pool({ type: 'header', tokens: ['t-paced'] }, { budget: { requests: 2, perSeconds: 60, burst: 2 } });
    const c = paced.credentials[0]!;
    const starts: string[] = [];
    for (let i = 0; i < 2; i++) {
      const got = await paced.acquire(none, 0);
      if (got.kind === 'granted') starts.push(got.start);
    }
    // Our log holds 2 of 2: the API's "remaining 0" says nothing new; no rest.
    await say(paced, c, req, 200, { 'x-ratelimit-limit': '2', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': reset() }, starts[1]);
    expect((await paced.health())[0]!.state).toBe('ok');
    // Another consumer used the window: one start of ours, remaining 0 → rest until the reset.
    const shared = await pool({ type: 'header', tokens: ['t-shared'] }, { budget: { requests: 2, perSeconds: 60 } });
    const one = await shared.acquire(none, 0);
    await say(shared, shared.credentials[0]!, req, 200, { 'x-ratelimit-limit': '2', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': reset() }, one.kind === 'granted' ? one.start : '');
    expect((await shared.health())[0]!.state).toBe('resting');
    expect(await shared.isResting(shared.credentials[0]!, false)).toBe(true);
  });

  it('a bare 429 backs off exponentially per credential; a success resets it', async () => {
    const p = await pool({ type: 'header', tokens: ['t1'] }, { retry: { baseDelayMs: 1000, maxDelayMs: 60_000 } });
    const c = p.credentials[0]!;
    const rests: number[] = [];
    for (let i = 0; i < 3; i++) {
      await say(p, c, req, 429, {});
      const got = await p.acquire(none, 0);
      rests.push(got.kind === 'wait' ? got.waitMs : 0);
    }
    // Equal jitter: attempt n rests between half and all of base * 2^(n-1).
    expect(rests[0]).toBeGreaterThanOrEqual(490);
    expect(rests[2]).toBeGreaterThanOrEqual(1990);
    await redis.hdel(`${queueKeys(queue).credPrefix}${c.id}`, 'restUntil');
    await say(p, c, req, 200, {});
    expect(await redis.hget(`${queueKeys(queue).credPrefix}${c.id}`, 'bare429')).toBeNull();
  });

  it('a quarantine reason (a signer\'s CredentialRefusedError.reason) reaches Redis, the log and health with the pool\'s secrets scrubbed', async () => {
    const lines: string[] = [];
    const config = testConfig({ queue, request: { url: 'http://127.0.0.1:9/{id}' }, auth: { type: 'header', tokens: ['tok-very-secret-1'] } });
    const p = await CredentialPool.open({ redis, config, logger: createLogger('info', 'human', { write: (l) => lines.push(l) }), http: createHttpClient(config) });
    const c = p.credentials[0]!;
    await p.quarantine(c, `the API revoked key tok-very-secret-1 (${encodeURIComponent('tok-very-secret-1')})`);
    expect((await p.health())[0]).toMatchObject({ state: 'quarantined', reason: 'the API revoked key [redacted] ([redacted])' });
    expect(await redis.hget(queueKeys(queue).cred(c.id), 'qReason')).toBe('the API revoked key [redacted] ([redacted])');
    expect(lines.join('\n')).toContain('quarantined (the API revoked key [redacted] ([redacted]))');
    expect(lines.join('\n')).not.toContain('tok-very-secret-1');
  });

  it('two 401s in a row quarantine a credential; when all are, the pool says so', async () => {
    const p = await pool({ type: 'header', tokens: ['t1', 't2'] });
    const [c1, c2] = p.credentials;
    await say(p, c1!, req, 401, {});
    await say(p, c1!, req, 200, {});
    await say(p, c1!, req, 401, {});
    expect(await p.allQuarantined()).toBe(false);
    expect((await p.health())[0]!.state).toBe('ok');
    await say(p, c1!, req, 401, {});
    expect((await p.health())[0]).toMatchObject({ state: 'quarantined', reason: 'unauthorized', n401: 3 });
    const got = await p.acquire(none, 0);
    expect(got.kind === 'granted' && got.credential.id).toBe(c2!.id);
    await say(p, c2!, req, 401, {});
    await say(p, c2!, req, 401, {});
    expect(await p.allQuarantined()).toBe(true);
    expect(await p.acquire(none, 0)).toEqual({ kind: 'exhausted', allQuarantined: true });
  });

  it('a token kind: a replica that saw a stale 401 (its token already dropped by another) resets the count with its next success, so two dead tokens in a run are not two 401s in a row', async () => {
    // Three replicas share one token credential; `counted` says what its onUnauthorized answers (true: this
    // replica dropped the dead token for the fleet, false: already dropped, a stale 401).
    const [a, b, c] = await Promise.all([pool({ type: 'header', tokens: ['tok-t'] }), pool({ type: 'header', tokens: ['tok-t'] }, {}, redis2), pool({ type: 'header', tokens: ['tok-t'] })]);
    const asToken = (p: CredentialPool, counted: boolean): Credential => ({ ...p.credentials[0]!, onUnauthorized: async () => counted });
    // Each replica has answered before (its first answer is always reported: what it learnt of the limits).
    for (const p of [a, b, c]) await say(p, asToken(p, true), req, 200, {});
    // The first token dies: replica a drops it (counted), replica b's request with it is stale.
    await say(a, asToken(a, true), req, 401, {});
    await say(b, asToken(b, false), req, 401, {});
    // The new token works, and only replica b happens to use it before it dies too.
    await say(b, asToken(b, false), req, 200, {});
    // The second token dies; replica c, which saw neither 401, drops it (counted).
    await say(c, asToken(c, true), req, 401, {});
    expect((await c.health())[0]!.state).toBe('ok');
  });

  it('learns a budget from IETF headers when none is configured', async () => {
    const p = await pool({ type: 'header', tokens: ['t1'] });
    const c = p.credentials[0]!;
    // Slow start: before any answer, one start per 250 ms.
    expect((await p.acquire(none, 0)).kind).toBe('granted');
    expect((await p.acquire(none, 0)).kind).toBe('wait');
    await say(p, c, req, 200, { 'ratelimit-policy': '"default";q=12;w=1', ratelimit: '"default";r=11;t=1' });
    // Learned limits start afresh: a burst of 250 ms worth (3 starts), then one each 83 ms.
    expect((await p.acquire(none, 0)).kind).toBe('granted');
    expect((await p.acquire(none, 0)).kind).toBe('granted');
    expect((await p.acquire(none, 0)).kind).toBe('granted');
    expect((await p.acquire(none, 0)).kind).toBe('wait');
    expect((await p.health())[0]!.budget).toBe('12/1s (learned)');
  });

  it('an API without rate-limit headers is not paced once it has answered', async () => {
    const p = await pool({ type: 'none' });
    await say(p, p.credentials[0]!, req, 200, {});
    for (let i = 0; i < 20; i++) expect(await p.acquire(none, 0)).toMatchObject({ kind: 'granted', waitMs: 0 });
  });

  it('credentials without a budget take turns', async () => {
    const p = await pool({ type: 'header', tokens: ['r1', 'r2', 'r3'] });
    for (const c of p.credentials) await say(p, c, req, 200, {});
    const picks: string[] = [];
    for (let i = 0; i < 9; i++) {
      const got = await p.acquire(none, 0);
      if (got.kind === 'granted') picks.push(got.credential.label);
    }
    expect(picks.slice(0, 3).sort()).toEqual([...p.credentials.map((c) => c.label)].sort());
    expect(picks.slice(3, 6)).toEqual(picks.slice(0, 3));
    expect(picks.slice(6, 9)).toEqual(picks.slice(0, 3));
  });

  it('counts rests and the time they cover once, fleet-wide: a second replica’s 429 adds only the newly covered time; a replay adds nothing', async () => {
    const a = await pool({ type: 'header', tokens: ['t-rest'] });
    const b = await pool({ type: 'header', tokens: ['t-rest'] }, {}, redis2);
    const c = a.credentials[0]!;
    const key = queueKeys(queue).cred(c.id);
    const read = async () => {
      const [restUntil, rests, restedMs] = await redis.hmget(key, 'restUntil', 'rests', 'restedMs');
      return { restUntil: Number(restUntil), rests: Number(rests), restedMs: Number(restedMs) };
    };
    await say(a, c, req, 429, { 'retry-after': '2' });
    const first = await read();
    expect(first.rests).toBe(1);
    expect(first.restedMs).toBeGreaterThan(1000);
    expect(first.restedMs).toBeLessThanOrEqual(2000);
    await sleep(30);
    await say(b, b.credentials[0]!, req, 429, { 'retry-after': '2' });
    const second = await read();
    // The same rest, extended: still one rest; only the time past the first rest's end is added.
    expect(second.rests).toBe(1);
    expect(second.restUntil).toBeGreaterThan(first.restUntil);
    expect(second.restedMs - first.restedMs).toBe(second.restUntil - first.restUntil);
    // A shorter rest inside the current one adds nothing.
    await say(b, b.credentials[0]!, req, 429, { 'retry-after': '1' });
    expect(await read()).toEqual(second);
    // A replayed report (a reply lost with a dropped connection) answers the first result and counts nothing again.
    await redis.hset(key, 'restUntil', String(Date.now() - 1000));
    const scripts = new CredentialScripts(redis, queue);
    const input = { id: c.id, outcome: 'limited' as const, restMs: 1500, limits: '', backoffBaseMs: 1000, backoffMaxMs: 60_000, jitter: 0, confirm401: 2, quarantineMs: 1000, reason: 'unauthorized', start: '', soft: false, configured: '', opId: 'replayed-op' };
    expect((await scripts.report(input)).kind).toBe('resting');
    const third = await read();
    expect(third.rests).toBe(2);
    expect(third.restedMs - second.restedMs).toBe(1500);
    expect((await scripts.report(input)).kind).toBe('resting');
    expect(await read()).toEqual(third);
    expect((await a.usage())[0]).toMatchObject({ label: c.label, n429: 4, rests: 2, restedMs: third.restedMs });
    expect((await a.health())[0]).toMatchObject({ rests: 2, restedMs: third.restedMs });
  });

  it('a routine rest is logged as info; a rest longer than a minute as a warning', async () => {
    const lines: string[] = [];
    const config = testConfig({ queue, request: { url: 'http://127.0.0.1:9/{id}' }, auth: { type: 'header', tokens: ['t-short', 't-long'] }, retry: { maxWaitMs: 3_600_000 } });
    const p = await CredentialPool.open({ redis, config, logger: createLogger('info', 'human', { write: (l) => lines.push(l) }), http: createHttpClient(config) });
    const [short, long] = p.credentials;
    await say(p, short!, req, 429, { 'retry-after': '2' });
    await say(p, long!, req, 429, { 'retry-after': '90' });
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(new RegExp(`^pullq: info: credential ${short!.label} is rate limited: resting 2 s, until \\S+Z\n$`));
    expect(lines[1]).toMatch(new RegExp(`^pullq: warning: credential ${long!.label} is rate limited: resting 90 s, until \\S+Z\n$`));
  });

  it('keeps no secret in Redis', async () => {
    const p = await pool({ type: 'header', tokens: ['super-secret-token-1'] }, { budget: { requests: 5, perSeconds: 1 } });
    await p.acquire(none, 0);
    await say(p, p.credentials[0]!, req, 429, { 'retry-after': '1' });
    const keys = await redis.keys(`${queueKeys(queue).base}*`);
    expect(keys.length).toBeGreaterThan(0);
    for (const k of keys) {
      expect(k).not.toContain('super-secret');
      const type = await redis.type(k);
      const dump = type === 'hash' ? JSON.stringify(await redis.hgetall(k)) : type === 'zset' ? JSON.stringify(await redis.zrange(k, '0', '-1')) : '';
      expect(dump).not.toContain('super-secret');
    }
  });
});

// A hostile (or broken) rate-limit header must not make a take slow, nor loosen the budget; and the Lua
// scripts check a stored budget again, since the TypeScript parser is not the only writer (data stored by
// an older version, a replayed report).
describe('credential ids', () => {
  it('are keyed per deployment: two replicas of a queue agree; another queue (deployment) does not; no unsalted hash of the secret', async () => {
    const auth = { type: 'basic', credentials: [{ username: 'ann', password: 'hunter2' }] };
    const a = await pool(auth);
    const b = await pool(auth, {}, redis2);
    const other = uniqueQueue('pool-other');
    const elsewhere = await CredentialPool.open({ redis, config: testConfig({ queue: other, request: { url: 'http://127.0.0.1:9/{id}' }, auth }), logger: quietLogger(), http: createHttpClient(testConfig({ queue: other, request: { url: 'http://127.0.0.1:9/{id}' } })) });
    try {
      expect(b.credentials[0]!.id).toBe(a.credentials[0]!.id);
      expect(elsewhere.credentials[0]!.id).not.toBe(a.credentials[0]!.id);
      expect(a.credentials[0]!.id).not.toBe(`fp-${createHash('sha256').update('ann').update('\0').update('hunter2').digest('hex').slice(0, 12)}`);
      // A replica started after a restart reads the same key: the same id, the same fleet state.
      expect((await pool(auth)).credentials[0]!.id).toBe(a.credentials[0]!.id);
    } finally {
      await cleanQueue(redis, other);
    }
  });
});

describe('CredentialPool and hostile rate-limit headers', () => {
  it.each([
    ['', true], ['5:1000', true], ['5:1000;100:60000', true], ['1000000000:86400000', true],
    [Array.from({ length: 8 }, () => '1:1000').join(';'), true],
    [Array.from({ length: 9 }, () => '1:1000').join(';'), false],
    ['0.5:1000', false], ['5:1000.5', false], ['0:1000', false], ['5:0', false], ['1000000001:1000', false],
    ['5:86400001', false], ['5:1000;', false], [';5:1000', false], ['5:1000;;6:1000', false], ['5:1e3', false], ['-5:1000', false], ['abc', false],
  ])('the TypeScript and the Lua reading of a stored budget agree: %j trusted %s', async (text, trusted) => {
    expect(readLimitString(text) !== undefined).toBe(trusted);
    const lua = `${readFileSync(new URL('../src/redis/lua/include/read-limits.lua', import.meta.url), 'utf8')}\nif readLimits(ARGV[1]) then return 1 else return 0 end`;
    expect(await redis.eval(lua, 0, text)).toBe(trusted ? 1 : 0);
  });

  const stored = async (id: string) => redis.hget(queueKeys(queue).cred(id), 'limits');

  it('a 16 KB policy header stores at most 8 limits, and the tightest still binds', async () => {
    const p = await pool({ type: 'header', tokens: ['t1'] });
    const c = p.credentials[0]!;
    const members = Array.from({ length: 2000 }, (_, i) => `"p${i}";q=${1000 + i};w=${1 + (i % 50)}`);
    members.push('"tight";q=2;w=1', '"year";q=100000;w=31536000');
    await say(p, c, req, 200, { 'ratelimit-policy': members.join(', ') });
    const limits = (await stored(c.id))!;
    expect(limits.split(';').length).toBeLessThanOrEqual(8);
    // Read back, the year is a day (a 365th of its quota) and 2 per second binds.
    expect(limits).toContain('2:1000');
    expect(limits).toContain('273:86400000');
    let granted = 0;
    for (let i = 0; i < 5; i++) if ((await p.acquire(none, 0)).kind === 'granted') granted++;
    expect(granted).toBeLessThanOrEqual(2);
  });

  it('a fractional quota is not read as a whole one: "q=0.5" is never 5', async () => {
    const p = await pool({ type: 'header', tokens: ['t1'] });
    const c = p.credentials[0]!;
    await say(p, c, req, 200, { 'ratelimit-policy': '"p";q=0.5;w=60' });
    expect(await stored(c.id)).toBeNull();
    expect((await p.health())[0]!.budget).toBe('none announced');
  });

  it.each([
    ['a decimal quota', '0.5:100000'],
    ['more than 8 limits', Array.from({ length: 9 }, () => '1:100000').join(';')],
    ['a window over a day', '1:31536000000'],
    ['2,000 limits', Array.from({ length: 2000 }, () => '1:100000').join(';')],
  ])('the scripts do not trust a stored budget with %s: a report does not store it, a take goes at the slow start', async (_, bad) => {
    const p = await pool({ type: 'header', tokens: ['t1'] });
    const c = p.credentials[0]!;
    const scripts = new CredentialScripts(redis, queue);
    await scripts.report({ id: c.id, outcome: 'ok', limits: bad, backoffBaseMs: 10, backoffMaxMs: 100, jitter: 0, confirm401: 2, quarantineMs: 1000, reason: 'unauthorized', start: '', soft: false, configured: '', opId: `op-${Math.random()}` });
    expect(await stored(c.id)).toBeNull();
    // Stored anyway (by an older version): read as unknown, so the slow start (one per 250 ms), not one per 100 s.
    await redis.hset(queueKeys(queue).cred(c.id), 'limits', bad, 'observed', '1');
    expect((await p.acquire(none, 0)).kind).toBe('granted');
    const second = await p.acquire(none, 0);
    expect(second.kind === 'granted' ? second.waitMs : second.kind === 'wait' ? second.waitMs : -1).toBeLessThanOrEqual(300);
    // The next answer without a budget clears it.
    await say(p, c, req, 200, {});
    expect(await stored(c.id)).toBeNull();
  });
});
