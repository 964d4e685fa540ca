import { describe, expect, it } from 'vitest';
import { decide, MAX_RATE_LIMITED, type Exchange, type IdState } from '../src/policy/decide.js';

// The specification of src/policy/decide.ts: every status and header case,
// what happens to the ID and what the credential tells the fleet.

const now = Date.parse('2026-01-01T00:00:00Z');
const nowS = now / 1000;
const config = { retry: { attempts: 4, baseDelayMs: 1000, maxDelayMs: 60_000, maxWaitMs: 3_600_000 } };
const fresh: IdState = { attempts: 0, limited: 0, refusedBy: [], blipped: [] };
const cred = { id: 'c1' };
const half = () => 0.5;

type Row = [string, Exchange, { id: Record<string, unknown>; credential?: Record<string, unknown> }];

describe('decide: the ID and the credential, for one exchange', () => {
  const table: Row[] = [
    // Success and final answers.
    ['200', { status: 200 }, { id: { action: 'success', attempts: 1 }, credential: { verdict: 'ok', restMs: undefined, limits: [], headersSeen: false } }],
    ['204', { status: 204 }, { id: { action: 'success' }, credential: { verdict: 'ok' } }],
    ['404 ends the ID', { status: 404 }, { id: { action: 'fail', error: 'not_found', attempts: 1 }, credential: { verdict: 'other' } }],
    ['410 ends the ID', { status: 410 }, { id: { action: 'fail', error: 'not_found' } }],
    ['400', { status: 400 }, { id: { action: 'fail', error: 'client_error', message: 'HTTP 400' } }],
    ['422', { status: 422 }, { id: { action: 'fail', error: 'client_error' } }],
    // Conditional re-pulls: a 304 answers a request that carried validators; without them it is the server's fault.
    ['304 to a conditional request: unchanged', { status: 304, conditional: true }, { id: { action: 'unchanged', attempts: 1 }, credential: { verdict: 'ok', free: false } }],
    ['304 without validators sent: fails at once', { status: 304 }, { id: { action: 'fail', error: 'server_error', message: 'HTTP 304 Not Modified to a request without validators', attempts: 1 }, credential: { verdict: 'ok', free: false } }],
    ['200 to a conditional request: changed, fetched', { status: 200, conditional: true }, { id: { action: 'success' }, credential: { free: false } }],
    ['302 not followed', { status: 302 }, { id: { action: 'fail', error: 'client_error', message: 'HTTP 302 (redirect not followed)' } }],
    ['body over the cap', { status: null, tooLarge: true }, { id: { action: 'fail', error: 'body_too_large' } }],
    ['redirect loop', { status: null, errorCode: 'ERR_TOO_MANY_REDIRECTS' }, { id: { action: 'fail', error: 'client_error' } }],
    // The ID's own trouble: spends an attempt, backs off (full jitter: half of base·2^(n-1) here) or waits as asked.
    ['500 backs off', { status: 500 }, { id: { action: 'retry', error: 'server_error', delayMs: 500, next: { attempts: 1, limited: 0 } }, credential: { verdict: 'other' } }],
    ['503 with Retry-After seconds', { status: 503, headers: { 'retry-after': '7' } }, { id: { action: 'retry', error: 'server_error', delayMs: 7000 }, credential: { verdict: 'other', restMs: 7000 } }],
    ['503 with Retry-After HTTP-date', { status: 503, headers: { 'retry-after': 'Thu, 01 Jan 2026 00:00:10 GMT' } }, { id: { action: 'retry', delayMs: 10_000 } }],
    ['503 asking for a year is capped', { status: 503, headers: { 'retry-after': String(365 * 86400) } }, { id: { action: 'retry', delayMs: 3_600_000, askedMs: 365 * 86_400_000 } }],
    ['408', { status: 408 }, { id: { action: 'retry', error: 'timeout', next: { attempts: 1 } } }],
    ['timeout', { status: null, errorCode: 'ETIMEDOUT' }, { id: { action: 'retry', error: 'timeout', message: 'request timed out' }, credential: { verdict: 'other', answered: false } }],
    ['connection reset', { status: null, errorCode: 'ECONNRESET' }, { id: { action: 'retry', error: 'network', message: 'network error ECONNRESET' } }],
    ['connection refused', { status: null, errorCode: 'ECONNREFUSED' }, { id: { action: 'retry', error: 'network' } }],
    // Rate limits: the credential's fault; no attempt spent; at once, with whichever credential is free.
    ['429 bare', { status: 429 }, { id: { action: 'retry', error: 'client_error', delayMs: 0, next: { attempts: 0, limited: 1, refusedBy: [] } }, credential: { verdict: 'limited', restMs: undefined, soft: false } }],
    ['429 + Retry-After seconds', { status: 429, headers: { 'retry-after': '3' } }, { id: { action: 'retry', delayMs: 0, next: { attempts: 0, limited: 1 } }, credential: { verdict: 'limited', restMs: 3000, soft: false } }],
    ['429 + Retry-After HTTP-date', { status: 429, headers: { 'retry-after': 'Thu, 01 Jan 2026 00:00:10 GMT' } }, { id: { action: 'retry' }, credential: { verdict: 'limited', restMs: 10_000 } }],
    ['429 + a reset a decade away is capped', { status: 429, headers: { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(nowS + 10 * 365 * 86400) } }, { id: { action: 'retry' }, credential: { verdict: 'limited', restMs: 3_600_000, askedMs: 10 * 365 * 86_400_000 } }],
    ['403 with remaining 0 (GitHub) is a rate limit, not a refusal', { status: 403, headers: { 'x-ratelimit-limit': '60', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(nowS + 30) } }, { id: { action: 'retry', error: 'client_error', next: { attempts: 0, refusedBy: [] } }, credential: { verdict: 'limited', restMs: 30_000 } }],
    ['403 with Retry-After (GitHub secondary limit) is a rate limit', { status: 403, headers: { 'retry-after': '60' } }, { id: { action: 'retry', next: { refusedBy: [] } }, credential: { verdict: 'limited', restMs: 60_000 } }],
    // Refusals: the credential refuses the ID; another one tries.
    ['403 refuses the ID for this credential', { status: 403 }, { id: { action: 'retry', error: 'forbidden', delayMs: 0, next: { attempts: 0, refusedBy: ['c1'] } }, credential: { verdict: 'forbidden' } }],
    ['401 once is a blip', { status: 401 }, { id: { action: 'retry', error: 'unauthorized', next: { refusedBy: [], blipped: ['c1'] } }, credential: { verdict: 'unauthorized' } }],
    // Announced budgets on a success.
    ['200 + IETF draft 8 lists', { status: 200, headers: { 'ratelimit-policy': '"burst";q=100;w=60', ratelimit: '"burst";r=50;t=30' } }, { id: { action: 'success' }, credential: { verdict: 'ok', limits: [{ requests: 100, windowMs: 60_000 }], restMs: undefined, headersSeen: true } }],
    ['200 + draft 7 dictionary with remaining 0: a soft rest until the reset', { status: 200, headers: { ratelimit: 'limit=30, remaining=0, reset=1', 'ratelimit-policy': '30;w=1' } }, { id: { action: 'success' }, credential: { verdict: 'ok', limits: [{ requests: 30, windowMs: 1000 }], restMs: 1000, soft: true } }],
    ['200 + GitHub triple', { status: 200, headers: { 'x-ratelimit-limit': '5000', 'x-ratelimit-remaining': '4999', 'x-ratelimit-reset': String(nowS + 3600) } }, { credential: { verdict: 'ok', limits: [{ requests: 5000, windowMs: 3_600_000 }] }, id: { action: 'success' } }],
    ['200 with no rate-limit header', { status: 200, headers: { 'content-type': 'application/json' } }, { credential: { verdict: 'ok', limits: [], headersSeen: false }, id: { action: 'success' } }],
  ];
  it.each(table)('%s', (_, exchange, expected) => {
    const d = decide(exchange, fresh, cred, config, now, half);
    expect(d.id).toMatchObject(expected.id);
    if (expected.credential) expect(d.credential).toMatchObject(expected.credential);
  });
});

describe('decide: budget.free304', () => {
  const free = { id: 'c1', free304: true };
  it.each([
    ['a conditional 304 is free', { status: 304, conditional: true, headers: { 'x-ratelimit-limit': '5000', 'x-ratelimit-remaining': '4990', 'x-ratelimit-reset': String(nowS + 600) } }, true],
    ['a 200 is not', { status: 200, conditional: true }, false],
    ['a 304 to a request without validators is not', { status: 304 }, false],
    ['no answer is not', { status: null, errorCode: 'ECONNRESET', conditional: true }, false],
  ] as [string, Exchange, boolean][])('%s', (_, exchange, expected) => {
    expect(decide(exchange, fresh, free, config, now, half).credential.free).toBe(expected);
  });
  it('without budget.free304 no answer is free', () => {
    expect(decide({ status: 304, conditional: true }, fresh, cred, config, now).credential.free).toBe(false);
  });
});

describe('decide: where the ID stands', () => {
  it('a second 401 from the same credential refuses the ID for it; an OAuth2 token already replaced is stale, not a refusal', () => {
    const once = decide({ status: 401 }, fresh, cred, config, now);
    if (once.id.action !== 'retry') throw new Error('expected a retry');
    const twice = decide({ status: 401 }, once.id.next, cred, config, now);
    expect(twice.id).toMatchObject({ action: 'retry', next: { refusedBy: ['c1'], blipped: ['c1'], limited: 2 } });
    const stale = decide({ status: 401 }, fresh, { id: 'c1', tokenReplaced: true }, config, now);
    expect(stale.credential.verdict).toBe('stale');
    expect(stale.id).toMatchObject({ action: 'retry', delayMs: 0, next: { refusedBy: [], blipped: [] } });
  });

  it('the last attempt fails the ID, naming how many were spent', () => {
    const d = decide({ status: 502 }, { ...fresh, attempts: 3 }, cred, config, now);
    expect(d.id).toEqual({ action: 'fail', error: 'server_error', message: 'HTTP 502 (gave up after 4 attempts)', attempts: 4 });
  });

  it(`rate limits do not spend attempts, but after ${MAX_RATE_LIMITED} of them the ID fails`, () => {
    const d = decide({ status: 429 }, { ...fresh, attempts: 2, limited: MAX_RATE_LIMITED }, cred, config, now);
    expect(d.id).toMatchObject({ action: 'fail', error: 'client_error', attempts: 2 });
    expect(d.id.action === 'fail' && d.id.message).toContain(`gave up after ${MAX_RATE_LIMITED + 1}`);
  });

  it('backoff grows per attempt and stays under retry.maxDelayMs', () => {
    const delays = [0, 1, 2, 3, 10].map((attempts) => {
      const d = decide({ status: 500 }, { ...fresh, attempts }, cred, { retry: { ...config.retry, attempts: 100 } }, now, () => 0.999);
      return d.id.action === 'retry' ? d.id.delayMs : -1;
    });
    expect(delays.slice(0, 4)).toEqual([999, 1998, 3996, 7992]);
    expect(delays[4]).toBeLessThan(60_000);
  });

  it('until a window is learned, its guess never shrinks as the reset nears (a 2 s window read "1" is not 1 s)', () => {
    let window = undefined as Parameters<typeof decide>[2]['window'];
    const guesses: number[] = [];
    for (const [t, remaining, reset] of [[0, '19', '2'], [600, '12', '2'], [1100, '8', '1'], [1500, '2', '1']] as const) {
      const d = decide({ status: 200, headers: { 'x-ratelimit-limit': '20', 'x-ratelimit-remaining': remaining, 'x-ratelimit-reset': reset } }, fresh, { id: 'c1', window }, config, now + t);
      window = d.credential.window;
      guesses.push(d.credential.limits[0]!.windowMs);
    }
    expect(guesses).toEqual([2000, 2000, 2000, 2000]);
  });

  it('a window no header states is learned across answers: 2 s, not the 1 s the first reset suggests', () => {
    // x-ratelimit-* with reset in delta seconds, a fixed 2 s window: the first answer comes 1 s into it.
    let window = undefined as Parameters<typeof decide>[2]['window'];
    const seen: number[] = [];
    const answers: [number, string, string][] = [
      [0, '9', '1'],
      [500, '8', '1'],
      [1000, '9', '2'], // a new window began: its time-to-reset is the window
      [1500, '8', '2'],
    ];
    for (const [t, remaining, reset] of answers) {
      const d = decide({ status: 200, headers: { 'x-ratelimit-limit': '10', 'x-ratelimit-remaining': remaining, 'x-ratelimit-reset': reset } }, fresh, { id: 'c1', window }, config, now + t);
      window = d.credential.window;
      seen.push(d.credential.limits[0]!.windowMs);
    }
    expect(seen[0]).toBe(1000);
    expect(seen[seen.length - 1]).toBe(2000);
  });
});
