import { describe, expect, it } from 'vitest';
import type { CredentialUsage } from '../src/auth/credential-pool.js';
import { budgetShare, credentialSummaryLines, formatRested } from '../src/cli/pull-summary.js';

const usage = (label: string, requests: number, n429: number, rests: number, restedMs: number, limits = ''): CredentialUsage => ({ label, requests, n429, rests, restedMs, limits });

describe('pull summary per credential', () => {
  it.each([
    // requests, limits, elapsed ms, share
    [3600, '1:1000', 3_600_000, 1],
    [1800, '1:1000', 3_600_000, 0.5],
    [50, '100:1000', 1000, 0.5],
    // The tightest limit counts: 5000/h allows 50 in 36 s; 10/s would allow 360.
    [50, '10:1000;5000:3600000', 36_000, 1],
    [10, '', 60_000, null],
    [10, '5:1000', 0, null],
    [0, '5:1000', 1000, 0],
  ] as const)('budgetShare(%d, %j, %d) = %s', (requests, limits, elapsed, share) => {
    const got = budgetShare(requests, limits, elapsed);
    if (share === null) expect(got).toBeNull();
    else expect(got).toBeCloseTo(share, 9);
  });

  it.each([
    [0, '0.0 s'],
    [9_240, '9.2 s'],
    [59_900, '59.9 s'],
    [65_000, '1m 05s'],
    [7_200_000, '2h 00m'],
  ] as const)('formatRested(%d) = %j', (ms, text) => {
    expect(formatRested(ms)).toBe(text);
  });

  it.each([
    // before, after, elapsed ms → line
    [usage('ci-bot', 100, 1, 2, 1000, '10:1000'), usage('ci-bot', 1304, 4, 16, 10_200, '10:1000'), 124_124, 'credential ci-bot: 1,204 requests, 3 429s, rested 14 times (9.2 s), 97% of its budget'],
    [usage('a', 0, 0, 0, 0), usage('a', 1, 1, 1, 1000), 10_000, 'credential a: 1 request, 1 429, rested once (1.0 s), no budget known'],
    [usage('a', 5, 0, 0, 0), usage('a', 5, 0, 0, 0, '5:1000'), 10_000, 'credential a: 0 requests, 0 429s, never rested, 0% of its budget'],
    [usage('a', 0, 0, 0, 0), usage('a', 1, 0, 0, 0, '5000:3600000'), 600_000, 'credential a: 1 request, 0 429s, never rested, <1% of its budget'],
    // A rest that began before the pull and went on into it: its time counts, the rest not again.
    [usage('a', 0, 1, 1, 2000), usage('a', 3, 1, 1, 2500), 1000, 'credential a: 3 requests, 0 429s, rested (0.5 s), no budget known'],
    // An hour's Retry-After near the end of a 2-minute pull: the pull spent at most its own length resting.
    [usage('a', 0, 0, 0, 0), usage('a', 9, 1, 1, 3_600_000), 120_000, 'credential a: 9 requests, 1 429, rested once (2m 00s), no budget known'],
    // Learned limits (known only at the end) count for the whole pull.
    [usage('fp-3b6f586dd30d', 0, 0, 0, 0), usage('fp-3b6f586dd30d', 200, 0, 0, 0, '100:1000'), 1000, 'credential fp-3b6f586dd30d: 200 requests, 0 429s, never rested, 200% of its budget'],
  ] as const)('%j → %j over %d ms', (before, after, elapsed, line) => {
    expect(credentialSummaryLines([before], [after], elapsed)).toEqual([line]);
  });

  it('a credential with no counters before the pull counts from zero; one line per credential, in pool order', () => {
    expect(credentialSummaryLines([usage('b', 2, 0, 0, 0)], [usage('a', 3, 0, 0, 0), usage('b', 4, 0, 0, 0)], 1000)).toEqual([
      'credential a: 3 requests, 0 429s, never rested, no budget known',
      'credential b: 2 requests, 0 429s, never rested, no budget known',
    ]);
  });
});
