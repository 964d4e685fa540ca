import { describe, expect, it } from 'vitest';
import { backoffDelay } from '../src/policy/backoff-delay.js';
import { parseRetryAfter } from '../src/http/retry-after.js';

describe('parseRetryAfter (RFC 9110 §10.2.3)', () => {
  const now = Date.parse('Wed, 21 Oct 2015 07:28:00 GMT');
  it.each([
    ['120', 120_000],
    [' 0 ', 0],
    ['Wed, 21 Oct 2015 07:28:30 GMT', 30_000],
    ['Wed, 21 Oct 2015 07:27:00 GMT', 0],
    ['Wednesday, 21-Oct-15 07:28:10 GMT', 10_000],
  ])('%j → %d ms', (value, ms) => {
    expect(parseRetryAfter(value, now)).toBe(ms);
  });
  it.each([[undefined], ['soon'], ['-5'], ['1.5'], ['2015-10-21']])('%j is ignored', (value) => {
    expect(parseRetryAfter(value, now)).toBeUndefined();
  });
});

describe('backoffDelay: exponential, full jitter', () => {
  it('grows as base * 2^(attempt-1) and is capped', () => {
    const top = () => 0.999999;
    expect(backoffDelay(1, 1000, 300_000, top)).toBe(999);
    expect(backoffDelay(3, 1000, 300_000, top)).toBe(3999);
    expect(backoffDelay(20, 1000, 300_000, top)).toBe(299_999);
  });
  it('draws uniformly from zero', () => {
    expect(backoffDelay(5, 1000, 300_000, () => 0)).toBe(0);
    expect(backoffDelay(5, 1000, 300_000, () => 0.5)).toBe(8000);
  });
});
