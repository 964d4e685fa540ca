import { describe, expect, it } from 'vitest';
import { boundLimits, guessWindowMs, isRateLimited, MAX_POLICIES, parseList, parseNumericDictionary, parseRateLimitHeaders, resetInMsFrom, restFor } from '../src/http/rate-limit-headers.js';

const now = Date.parse('2026-01-01T00:00:00Z');
const epoch = (s: number) => String(now / 1000 + s);

describe('parseRateLimitHeaders', () => {
  const table: [string, Record<string, string>, Record<string, unknown>][] = [
    ['nothing', {}, { limits: [], seen: false }],
    ['Retry-After seconds', { 'retry-after': '30' }, { retryAfterMs: 30_000, seen: true }],
    ['Retry-After HTTP-date', { 'retry-after': 'Thu, 01 Jan 2026 00:01:00 GMT' }, { retryAfterMs: 60_000 }],
    ['GitHub', { 'x-ratelimit-limit': '5000', 'x-ratelimit-remaining': '4999', 'x-ratelimit-reset': epoch(3599), 'x-ratelimit-used': '1', 'x-ratelimit-resource': 'core' },
      { limits: [{ requests: 5000, windowMs: 3_600_000 }], remaining: 4999, resetInMs: 3_599_000, seen: true }],
    ['GitHub exhausted', { 'x-ratelimit-limit': '60', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': epoch(42) }, { remaining: 0, resetInMs: 42_000, limits: [{ requests: 60, windowMs: 60_000 }] }],
    ['GitHub-style reset in delta seconds', { 'x-ratelimit-limit': '10', 'x-ratelimit-remaining': '3', 'x-ratelimit-reset': '1' }, { remaining: 3, resetInMs: 1000, limits: [{ requests: 10, windowMs: 1000 }] }],
    ['IETF policy + current', { 'ratelimit-policy': '"default";q=100;w=60', ratelimit: '"default";r=50;t=30' },
      { limits: [{ requests: 100, windowMs: 60_000 }], remaining: 50, resetInMs: 30_000 }],
    ['IETF two policies: both limits, the scarcest remaining', { 'ratelimit-policy': '"burst";q=100;w=60, "daily";q=1000;w=86400', ratelimit: '"burst";r=50;t=30, "daily";r=7;t=4000' },
      { limits: [{ requests: 100, windowMs: 60_000 }, { requests: 1000, windowMs: 86_400_000 }], remaining: 7, resetInMs: 4_000_000 }],
    ['IETF with partition key and unit', { 'ratelimit-policy': '"p";q=10;w=1;qu="requests";pk=:YWJj:' }, { limits: [{ requests: 10, windowMs: 1000 }] }],
    ['earlier draft', { 'ratelimit-limit': '20', 'ratelimit-remaining': '0', 'ratelimit-reset': '7' }, { remaining: 0, resetInMs: 7000, limits: [{ requests: 20, windowMs: 10_000 }] }],
    ['garbage ignored', { 'x-ratelimit-remaining': 'lots', 'ratelimit-policy': 'nonsense' }, { limits: [], seen: false }],
  ];
  it.each(table)('%s', (_, headers, expected) => {
    const signal = parseRateLimitHeaders(headers, now);
    expect(signal).toMatchObject(expected);
    if (!('remaining' in expected)) expect(signal.remaining).toBeUndefined();
  });
});

describe('restFor / isRateLimited', () => {
  it('Retry-After wins over a reset', () => {
    expect(restFor(parseRateLimitHeaders({ 'retry-after': '5', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': epoch(60) }, now))).toBe(5000);
  });
  it('an exhausted quota rests until its reset; a live one does not rest', () => {
    expect(restFor(parseRateLimitHeaders({ 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': epoch(60) }, now))).toBe(60_000);
    expect(restFor(parseRateLimitHeaders({ 'x-ratelimit-remaining': '1', 'x-ratelimit-reset': epoch(60) }, now))).toBeUndefined();
  });
  it.each([
    [429, {}, true],
    [403, { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': epoch(60) }, true],
    [403, { 'retry-after': '60' }, true],
    [403, {}, false],
    [403, { 'x-ratelimit-remaining': '12' }, false],
    [200, { 'x-ratelimit-remaining': '0' }, false],
  ] as const)('status %d with %j → rate limited: %s', (status, headers, expected) => {
    expect(isRateLimited(status, parseRateLimitHeaders(headers, now))).toBe(expected);
  });
});

describe('helpers', () => {
  it('guessWindowMs rounds up to a typical window', () => {
    expect(guessWindowMs(400)).toBe(1000);
    // An epoch in whole seconds reads up to a second long: 1.9 s to a reset may be a 1 s window, but a 2 s
    // one too; the longer guess is the safe one (learned afterwards), a shorter one sends twice the limit.
    expect(guessWindowMs(1900, true)).toBe(2000);
    // For longer windows the second of slack holds: GitHub's hour read at its start is 3601 s.
    expect(guessWindowMs(3_601_000, true)).toBe(3_600_000);
    expect(guessWindowMs(3_601_000)).toBe(86_400_000);
    expect(guessWindowMs(2_900, true)).toBe(2000);
    // Delta seconds (rounded up) or milliseconds are not: "2" is more than 1 s away, so not a 1 s window
    // (guessing 1 s would send twice the limit until the window is learned; @fastify/rate-limit, 2 s windows).
    expect(guessWindowMs(2000)).toBe(2000);
    expect(guessWindowMs(1900)).toBe(2000);
    expect(guessWindowMs(1000)).toBe(1000);
    expect(guessWindowMs(2100)).toBe(5000);
    expect(guessWindowMs(45_000)).toBe(60_000);
    expect(guessWindowMs(3_599_000)).toBe(3_600_000);
  });
  it('parseList reads numeric parameters per member', () => {
    expect(parseList('"a";q=1;w=2, "b";r=3').map((m) => m.params)).toEqual([{ q: 1, w: 2 }, { r: 3 }]);
  });
});

// Issue #9, item 1: every header form in use, with values as each convention's documentation shows them.
describe('every header form', () => {
  const table: [string, Record<string, string>, Record<string, unknown>][] = [
    // IETF draft 8+ (structured lists with names, pk and qu).
    ['IETF draft 8+: named policy with pk and qu', { 'ratelimit-policy': '"default";q=100;w=10;pk=:cHsdsRa894==:;qu="requests"', ratelimit: '"default";r=50;t=30' },
      { limits: [{ requests: 100, windowMs: 10_000 }], remaining: 50, resetInMs: 30_000, seen: true }],
    ['IETF draft 8+: two policies appended as separate members', { 'ratelimit-policy': '"permin";q=50;w=60, "perhr";q=1000;w=3600', ratelimit: '"permin";r=20;t=12, "perhr";r=5;t=1800' },
      { limits: [{ requests: 50, windowMs: 60_000 }, { requests: 1000, windowMs: 3_600_000 }], remaining: 5, resetInMs: 1_800_000 }],
    // IETF draft 7 (what express-rate-limit calls draft-7).
    ['IETF draft 7: dictionary + bare-number policy', { 'ratelimit-policy': '100;w=60', ratelimit: 'limit=100, remaining=25, reset=5' },
      { limits: [{ requests: 100, windowMs: 60_000 }], remaining: 25, resetInMs: 5000, seen: true }],
    ['IETF draft 7: dictionary alone (window guessed from the reset)', { ratelimit: 'limit=30, remaining=12, reset=1' },
      { limits: [{ requests: 30, windowMs: 1000 }], remaining: 12, resetInMs: 1000 }],
    // IETF drafts <= 6: the triple, with or without RateLimit-Policy.
    ['IETF draft 6: triple + policy', { 'ratelimit-policy': '100;w=60', 'ratelimit-limit': '100', 'ratelimit-remaining': '25', 'ratelimit-reset': '5' },
      { limits: [{ requests: 100, windowMs: 60_000 }], remaining: 25, resetInMs: 5000 }],
    ['IETF early drafts: RateLimit-Limit carrying its policies', { 'ratelimit-limit': '10, 10;w=5, 80;w=60', 'ratelimit-remaining': '6', 'ratelimit-reset': '3' },
      { limits: [{ requests: 10, windowMs: 5000 }, { requests: 80, windowMs: 60_000 }], remaining: 6, resetInMs: 3000 }],
    // GitHub REST API.
    ['GitHub: used and resource, reset in epoch seconds', { 'x-ratelimit-limit': '60', 'x-ratelimit-remaining': '56', 'x-ratelimit-used': '4', 'x-ratelimit-reset': epoch(2400), 'x-ratelimit-resource': 'core' },
      { limits: [{ requests: 60, windowMs: 3_600_000 }], remaining: 56, resetInMs: 2_400_000 }],
    ['GitHub: limit inferred from used + remaining', { 'x-ratelimit-remaining': '56', 'x-ratelimit-used': '4', 'x-ratelimit-reset': epoch(2400) },
      { limits: [{ requests: 60, windowMs: 3_600_000 }], remaining: 56 }],
    // X (Twitter) API v2: x-rate-limit-*, epoch seconds, 15-minute windows.
    ['X: x-rate-limit-*', { 'x-rate-limit-limit': '900', 'x-rate-limit-remaining': '847', 'x-rate-limit-reset': epoch(600) },
      { limits: [{ requests: 900, windowMs: 900_000 }], remaining: 847, resetInMs: 600_000 }],
    // Discord: fractional epoch reset, and reset-after (wins).
    ['Discord: fractional epoch reset and reset-after', { 'x-ratelimit-limit': '5', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(now / 1000 + 1.5), 'x-ratelimit-reset-after': '1.234', 'x-ratelimit-bucket': 'abcd1234' },
      // 1.234 s to the reset: the window is longer than 1 s; guessed 2 s until learned.
      { remaining: 0, resetInMs: 1234, limits: [{ requests: 5, windowMs: 2000 }] }],
    // Epoch milliseconds (some limiters): not 55,000 years.
    ['x-ratelimit-reset in epoch milliseconds', { 'x-ratelimit-limit': '100', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(now + 10_000) },
      { remaining: 0, resetInMs: 10_000, limits: [{ requests: 100, windowMs: 10_000 }] }],
    // The window itself is only guessed from one reset here; learning it from several responses is issue #9's next step.
    ['x-ratelimit-reset as delta seconds', { 'x-ratelimit-limit': '20', 'x-ratelimit-remaining': '4', 'x-ratelimit-reset': '2' },
      { remaining: 4, resetInMs: 2000 }],
    // Retry-After, both forms (RFC 9110 examples).
    ['Retry-After: 120', { 'retry-after': '120' }, { retryAfterMs: 120_000, seen: true }],
    ['Retry-After: HTTP-date', { 'retry-after': 'Thu, 01 Jan 2026 00:02:00 GMT' }, { retryAfterMs: 120_000 }],
    // Malformed fields are ignored.
    ['malformed dictionary and list', { ratelimit: 'limit=ten, remaining=?', 'ratelimit-policy': ';;;' }, { limits: [], seen: false }],
  ];
  it.each(table)('%s', (_, headers, expected) => {
    expect(parseRateLimitHeaders(headers, now)).toMatchObject(expected);
  });

  it.each([
    ['delta seconds', 7, 7000],
    ['fractional delta seconds', 1.5, 1500],
    ['epoch seconds', now / 1000 + 42, 42_000],
    ['epoch milliseconds', now + 42_000, 42_000],
    ['a past epoch', now / 1000 - 5, 0],
  ])('resetInMsFrom: %s', (_, value, expected) => {
    expect(resetInMsFrom(value, now)).toBe(expected);
  });

  it('an epoch reset is measured on the server clock (Date) when ours is skewed by more than 2 s', () => {
    // Our clock runs 30 s ahead: the local delta would read 30 s short.
    expect(resetInMsFrom(now / 1000 + 60, now + 30_000, now)).toBe(60_000);
    // Within 2 s the local clock (ms precision) wins over Date's whole seconds.
    expect(resetInMsFrom(now / 1000 + 60, now + 500, now)).toBe(59_500);
    const h = { 'x-ratelimit-limit': '60', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': epoch(60), date: new Date(now).toUTCString() };
    expect(parseRateLimitHeaders(h, now + 30_000).resetInMs).toBe(60_000);
  });

  it('list and dictionary parsers', () => {
    expect(parseList('10, 10;w=5, "b";q=3;w=1;qu="requests"')).toEqual([{ value: 10, params: {} }, { value: 10, params: { w: 5 } }, { value: 'b', params: { q: 3, w: 1 } }]);
    expect(parseNumericDictionary('limit=100, remaining=25, reset=5')).toEqual({ limit: 100, remaining: 25, reset: 5 });
    expect(parseNumericDictionary('limit=100, "x"')).toBeUndefined();
  });
});

// Hostile or broken headers: a number that is not an integer, too many policies, a window of a year.
// Whatever they say, the budget read from them is never looser than what they state, and it stays small.
describe('hostile rate-limit headers', () => {
  const DAY = 86_400_000;
  const table: [string, Record<string, string>, Record<string, unknown>][] = [
    // The quota and window of the draft are Integers: a decimal is malformed, and a malformed member is ignored.
    ['a fractional quota is malformed: that member is ignored', { 'ratelimit-policy': '"half";q=0.5;w=1, "ok";q=20;w=60' }, { limits: [{ requests: 20, windowMs: 60_000 }] }],
    ['a fractional window is malformed too', { 'ratelimit-policy': '"p";q=10;w=0.5' }, { limits: [], seen: false }],
    ['a fractional bare-number policy (drafts 6-7) is ignored', { 'ratelimit-policy': '2.5;w=1' }, { limits: [], seen: false }],
    ['a fractional limit of a triple guesses no limit', { 'x-ratelimit-limit': '0.5', 'x-ratelimit-remaining': '3', 'x-ratelimit-reset': '1' }, { limits: [], remaining: 3 }],
    ['a fractional limit of the draft 7 dictionary guesses no limit', { ratelimit: 'limit=0.5, remaining=3, reset=1' }, { limits: [], remaining: 3 }],
    ['a fractional remaining of draft 8+ reads down', { 'ratelimit-policy': '"p";q=10;w=1', ratelimit: '"p";r=0.5;t=1' }, { remaining: 0 }],
    // A window over a day is read as a day with the quota scaled down (never up): q per 7 days allows
    // at most floor(q / 7) per day, so any 7 days hold at most q.
    ['a week-long window: a day, with a seventh of the quota', { 'ratelimit-policy': '"week";q=1000;w=604800' }, { limits: [{ requests: 142, windowMs: DAY }] }],
    ['a year-long window with a small quota: one a day at least', { 'ratelimit-policy': '"year";q=10;w=31536000' }, { limits: [{ requests: 1, windowMs: DAY }] }],
    ['a huge quota is capped', { 'ratelimit-policy': '"p";q=99999999999999999999;w=60' }, { limits: [{ requests: 1_000_000_000, windowMs: 60_000 }] }],
  ];
  it.each(table)('%s', (_, headers, expected) => {
    expect(parseRateLimitHeaders(headers, now)).toMatchObject(expected);
  });

  it('a 16 KB policy header keeps at most 8 limits: the 7 most restrictive, and one stricter than all the others', () => {
    const members = Array.from({ length: 2000 }, (_, i) => `"p${i}";q=${1000 + i};w=${1 + (i % 50)}`);
    members.push('"tight";q=3;w=1');
    const header = members.join(', ');
    expect(header.length).toBeGreaterThan(16_000);
    const { limits } = parseRateLimitHeaders({ 'ratelimit-policy': header }, now);
    expect(limits).toHaveLength(MAX_POLICIES);
    expect(limits[0]).toEqual({ requests: 3, windowMs: 1000 });
    // Every stated policy is implied by a kept one: at most as many requests, in at least as long a window.
    const stated = parseList(header).map((m) => ({ requests: m.params['q']!, windowMs: m.params['w']! * 1000 }));
    for (const s of stated) expect(limits.some((l) => l.requests <= s.requests && l.windowMs >= s.windowMs)).toBe(true);
  });

  it.each([
    ['kept as they are when few and in range', [{ requests: 5, windowMs: 1000 }, { requests: 50, windowMs: 60_000 }], [{ requests: 5, windowMs: 1000 }, { requests: 50, windowMs: 60_000 }]],
    ['a window in fractional ms rounds up (longer is stricter)', [{ requests: 5, windowMs: 999.2 }], [{ requests: 5, windowMs: 1000 }]],
    ['a month: a day with a 31st of the quota', [{ requests: 5000, windowMs: 31 * DAY }], [{ requests: 161, windowMs: DAY }]],
    ['a window just over a day counts as two', [{ requests: 100, windowMs: DAY + 1 }], [{ requests: 50, windowMs: DAY }]],
    ['nonsense dropped', [{ requests: 0, windowMs: 1000 }, { requests: 1.5, windowMs: 1000 }, { requests: 5, windowMs: 0 }, { requests: Number.NaN, windowMs: 1 }], []],
  ])('boundLimits: %s', (_, input, expected) => {
    expect(boundLimits(input)).toEqual(expected);
  });
});
