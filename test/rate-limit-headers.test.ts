import { describe, expect, it } from 'vitest';
import { guessWindowMs, isRateLimited, parseRateLimitHeaders, parseStructuredList, restFor } from '../src/auth/rate-limit-headers.js';

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
    expect(guessWindowMs(1900)).toBe(1000);
    expect(guessWindowMs(2100)).toBe(10_000);
    expect(guessWindowMs(45_000)).toBe(60_000);
    expect(guessWindowMs(3_599_000)).toBe(3_600_000);
  });
  it('parseStructuredList reads numeric parameters per member', () => {
    expect(parseStructuredList('"a";q=1;w=2, "b";r=3')).toEqual([{ q: 1, w: 2 }, { r: 3 }]);
  });
});
