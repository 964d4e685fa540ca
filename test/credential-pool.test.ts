import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CredentialPool } from '../src/auth/credential-pool.js';
import { createHttpClient } from '../src/jobs/http-client.js';
import { cleanQueue, newRedis, quietLogger, testConfig, uniqueQueue } from './helpers/test-env.js';

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

function pool(auth: Record<string, unknown>, extra: Record<string, unknown> = {}, connection = redis) {
  const config = testConfig({ queue, request: { url: 'http://127.0.0.1:9/{id}' }, auth, ...extra });
  return new CredentialPool({ redis: connection, config, logger: quietLogger(), http: createHttpClient(config) });
}
const none = new Set<string>();
const req = { url: 'http://x/1', headers: {} };

describe('CredentialPool budgets', () => {
  it('two replicas share one budget: at most `requests` starts in any window; later starts are reserved at most half a window ahead', async () => {
    const a = pool({ type: 'header', tokens: ['tok-a'] }, { budget: { requests: 5, perSeconds: 1 } });
    const b = pool({ type: 'header', tokens: ['tok-a'] }, { budget: { requests: 5, perSeconds: 1 } }, redis2);
    for (let i = 0; i < 5; i++) expect(await (i % 2 ? b : a).acquire(none, 5000)).toMatchObject({ kind: 'granted', waitMs: expect.any(Number) });
    // The 6th start is a window plus the 20 ms margin after the 1st: not reservable yet (500 ms ahead at most).
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
    const p = pool({ type: 'header', tokens: ['tok-a'] }, { budget: { requests: 1, perSeconds: 1 } });
    const first = await p.acquire(none, 5000);
    expect(first.kind).toBe('granted');
    await new Promise((r) => setTimeout(r, 300));
    await p.report(p.credentials[0]!, req, 200, {}, first.kind === 'granted' ? first.seq : 0);
    const next = await p.acquire(none, 5000);
    // Reservable 500 ms (the horizon) before 1000 + 20 ms after the response: ~520 ms from now.
    // Spaced from the reserved start instead, it would be ~220 ms.
    expect(next.kind === 'wait' && next.waitMs).toBeGreaterThan(450);
  });

  it('prefers the credential with the most headroom and honours exclusions', async () => {
    const p = pool({ type: 'header', tokens: ['t1', 't2'] }, { budget: { requests: 10, perSeconds: 60 } });
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
    const p = pool({ type: 'header', tokens: [{ token: 'slow', name: 'slow', budget: { requests: 1, perSeconds: 60 } }] }, { budget: { requests: 100, perSeconds: 1 } });
    expect((await p.acquire(none, 0)).kind).toBe('granted');
    expect((await p.acquire(none, 0)).kind).toBe('wait');
  });
});

describe('CredentialPool signals', () => {
  it('Retry-After rests the credential for every replica; the other one carries on', async () => {
    const a = pool({ type: 'header', tokens: ['t1', 't2'] }, { budget: { requests: 100, perSeconds: 1 } });
    const b = pool({ type: 'header', tokens: ['t1', 't2'] }, { budget: { requests: 100, perSeconds: 1 } }, redis2);
    const [c1, c2] = a.credentials;
    expect(await a.report(c1!, req, 429, { 'retry-after': '2' })).toBe('limited');
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
    const p = pool({ type: 'header', tokens: ['t1'] });
    const c = p.credentials[0]!;
    const reset = String(Math.ceil(Date.now() / 1000) + 30);
    expect(await p.report(c, req, 403, { 'x-ratelimit-limit': '60', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': reset })).toBe('limited');
    const got = await p.acquire(none, 0);
    expect(got.kind === 'wait' && got.waitMs).toBeGreaterThan(25_000);
    expect(await p.report(c, req, 403, {})).toBe('forbidden');
  });

  it('"remaining 0" on a success rests the credential until the reset, unless its own pacing already holds a full window', async () => {
    const reset = () => String(Math.ceil(Date.now() / 1000) + 30);
    const paced = pool({ type: 'header', tokens: ['t-paced'] }, { budget: { requests: 2, perSeconds: 60 } });
    const c = paced.credentials[0]!;
    const seqs: number[] = [];
    for (let i = 0; i < 2; i++) {
      const got = await paced.acquire(none, 0);
      if (got.kind === 'granted') seqs.push(got.seq);
    }
    // Our log holds 2 of 2: the API's "remaining 0" says nothing new; no rest.
    await paced.report(c, req, 200, { 'x-ratelimit-limit': '2', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': reset() }, seqs[1]);
    expect((await paced.health())[0]!.state).toBe('ok');
    // Another consumer used the window: one start of ours, remaining 0 → rest until the reset.
    const shared = pool({ type: 'header', tokens: ['t-shared'] }, { budget: { requests: 2, perSeconds: 60 } });
    const one = await shared.acquire(none, 0);
    await shared.report(shared.credentials[0]!, req, 200, { 'x-ratelimit-limit': '2', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': reset() }, one.kind === 'granted' ? one.seq : 0);
    expect((await shared.health())[0]!.state).toBe('resting');
    expect(await shared.isResting(shared.credentials[0]!, false)).toBe(true);
  });

  it('a bare 429 backs off exponentially per credential; a success resets it', async () => {
    const p = pool({ type: 'header', tokens: ['t1'] }, { retry: { baseDelayMs: 1000, maxDelayMs: 60_000 } });
    const c = p.credentials[0]!;
    const rests: number[] = [];
    for (let i = 0; i < 3; i++) {
      await p.report(c, req, 429, {});
      const got = await p.acquire(none, 0);
      rests.push(got.kind === 'wait' ? got.waitMs : 0);
    }
    // Equal jitter: attempt n rests between half and all of base * 2^(n-1).
    expect(rests[0]).toBeGreaterThanOrEqual(490);
    expect(rests[2]).toBeGreaterThanOrEqual(1990);
    await redis.hdel(`pullq:${queue}:cred:${c.id}`, 'restUntil');
    await p.report(c, req, 200, {});
    expect(await redis.hget(`pullq:${queue}:cred:${c.id}`, 'bare429')).toBeNull();
  });

  it('two 401s in a row quarantine a credential; when all are, the pool says so', async () => {
    const p = pool({ type: 'header', tokens: ['t1', 't2'] });
    const [c1, c2] = p.credentials;
    await p.report(c1!, req, 401, {});
    await p.report(c1!, req, 200, {});
    await p.report(c1!, req, 401, {});
    expect(await p.allQuarantined()).toBe(false);
    expect((await p.health())[0]!.state).toBe('ok');
    await p.report(c1!, req, 401, {});
    expect((await p.health())[0]).toMatchObject({ state: 'quarantined', reason: 'unauthorized', n401: 3 });
    const got = await p.acquire(none, 0);
    expect(got.kind === 'granted' && got.credential.id).toBe(c2!.id);
    await p.report(c2!, req, 401, {});
    await p.report(c2!, req, 401, {});
    expect(await p.allQuarantined()).toBe(true);
    expect(await p.acquire(none, 0)).toEqual({ kind: 'exhausted', allQuarantined: true });
  });

  it('learns a budget from IETF headers when none is configured', async () => {
    const p = pool({ type: 'header', tokens: ['t1'] });
    const c = p.credentials[0]!;
    // Slow start: before any answer, one start per 250 ms.
    expect((await p.acquire(none, 0)).kind).toBe('granted');
    expect((await p.acquire(none, 0)).kind).toBe('wait');
    await p.report(c, req, 200, { 'ratelimit-policy': '"default";q=3;w=1', ratelimit: '"default";r=2;t=1' });
    // The log already holds one start; two more fit in the window, then the learned budget binds.
    expect((await p.acquire(none, 0)).kind).toBe('granted');
    expect((await p.acquire(none, 0)).kind).toBe('granted');
    expect((await p.acquire(none, 0)).kind).toBe('wait');
    expect((await p.health())[0]!.budget).toBe('3/1s (learned)');
  });

  it('an API without rate-limit headers is not paced once it has answered', async () => {
    const p = pool({ type: 'none' });
    await p.report(p.credentials[0]!, req, 200, {});
    for (let i = 0; i < 20; i++) expect(await p.acquire(none, 0)).toMatchObject({ kind: 'granted', waitMs: 0 });
  });

  it('credentials without a budget take turns', async () => {
    const p = pool({ type: 'header', tokens: ['r1', 'r2', 'r3'] });
    for (const c of p.credentials) await p.report(c, req, 200, {});
    const picks: string[] = [];
    for (let i = 0; i < 9; i++) {
      const got = await p.acquire(none, 0);
      if (got.kind === 'granted') picks.push(got.credential.label);
    }
    expect(picks.slice(0, 3).sort()).toEqual([...p.credentials.map((c) => c.label)].sort());
    expect(picks.slice(3, 6)).toEqual(picks.slice(0, 3));
    expect(picks.slice(6, 9)).toEqual(picks.slice(0, 3));
  });

  it('keeps no secret in Redis', async () => {
    const p = pool({ type: 'header', tokens: ['super-secret-token-1'] }, { budget: { requests: 5, perSeconds: 1 } });
    await p.acquire(none, 0);
    await p.report(p.credentials[0]!, req, 429, { 'retry-after': '1' });
    const keys = await redis.keys(`pullq:${queue}:*`);
    expect(keys.length).toBeGreaterThan(0);
    for (const k of keys) {
      expect(k).not.toContain('super-secret');
      const type = await redis.type(k);
      const dump = type === 'hash' ? JSON.stringify(await redis.hgetall(k)) : type === 'zset' ? JSON.stringify(await redis.zrange(k, 0, -1)) : '';
      expect(dump).not.toContain('super-secret');
    }
  });
});
