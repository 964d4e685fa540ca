import { describe, expect, it } from 'vitest';
import { learnedWindowMs, observeWindow, type WindowObservation } from '../src/http/learn-window.js';
import { parseRateLimitHeaders } from '../src/http/rate-limit-headers.js';

// Issue #9, item 1: a window no header states is learned from how `remaining`
// and `reset` move over several responses, not guessed from the first one.

/** A fixed-window API: `limit` per `windowS`, answering the triple with the reset as delta seconds (rounded up) or an epoch in seconds. */
function fixedWindowApi(limit: number, windowS: number, reset: 'delta' | 'epoch', startMs: number) {
  let windowStart = startMs;
  let used = 0;
  return (nowMs: number): Record<string, string> => {
    while (nowMs >= windowStart + windowS * 1000) {
      windowStart += windowS * 1000;
      used = 0;
    }
    used = Math.min(limit, used + 1);
    const endMs = windowStart + windowS * 1000;
    return {
      'x-ratelimit-limit': String(limit),
      'x-ratelimit-remaining': String(limit - used),
      'x-ratelimit-reset': reset === 'delta' ? String(Math.ceil((endMs - nowMs) / 1000)) : String(Math.ceil(endMs / 1000)),
    };
  };
}

/** Feeds `n` responses `everyMs` apart into the learner; returns what the first response guessed and what was learned. */
function learn(api: (nowMs: number) => Record<string, string>, startMs: number, everyMs: number, n: number) {
  let obs: WindowObservation | undefined;
  let guessed: number | undefined;
  for (let i = 0; i < n; i++) {
    const now = startMs + i * everyMs;
    const signal = parseRateLimitHeaders(api(now), now);
    guessed ??= signal.limits[0]?.windowMs;
    obs = observeWindow(obs, signal.remaining!, signal.resetInMs!, now, signal.resetIsEpochSeconds);
  }
  return { guessed, learned: learnedWindowMs(obs), rollovers: obs?.rollovers };
}

const t0 = Date.parse('2026-11-23T00:00:00.300Z');

describe('learning a window from moving resets', () => {
  it.each([
    // A first reset of "2" is more than 1 s away: not a 1 s window.
    ['2 s window, delta-second resets (the one a single reset once mis-guessed as 1 s)', 20, 2, 'delta', 50, 200, 2000, 2000],
    // A reset of "1" every time says nothing new: the guess (1 s) stands, and is right.
    ['1 s window, delta-second resets', 10, 1, 'delta', 60, 100, 1000, 1000],
    ['10 s window, delta-second resets', 100, 10, 'delta', 100, 300, 10_000, 10_000],
    ['2 s window, epoch-second resets (read up to a second long; once mis-guessed as 1 s)', 20, 2, 'epoch', 50, 200, 2000, 2000],
    ['60 s window, epoch-second resets, first seen mid-window', 1000, 60, 'epoch', 500, 200, 60_000, 60_000],
    ['1 hour window (GitHub), epoch-second resets, first seen 40 min in', 5000, 3600, 'epoch', 10_000, 400, 3_600_000, 3_600_000],
  ] as const)('%s', (_, limit, windowS, reset, everyMs, n, guessed, effective) => {
    // The API's window began 40% of a window before the first response.
    const start = t0 - windowS * 400;
    const r = learn(fixedWindowApi(limit, windowS, reset, start), t0, everyMs, n);
    expect(r.guessed).toBe(guessed);
    // What the pool uses: the learned window once a new window was seen to begin, else the guess.
    expect(r.learned ?? r.guessed).toBe(effective);
  });

  it('before a new window is seen to begin, nothing is learned (the guess stands)', () => {
    const api = fixedWindowApi(20, 2, 'delta', t0 - 500);
    expect(learn(api, t0, 50, 10).learned).toBeUndefined();
  });

  it('within one window the reset jitters by rounding while remaining falls: no rollover', () => {
    let obs = observeWindow(undefined, 10, 2000, t0);
    obs = observeWindow(obs, 9, 2000, t0 + 800);
    obs = observeWindow(obs, 8, 2000, t0 + 900);
    expect(obs.rollovers).toBe(0);
  });
});
