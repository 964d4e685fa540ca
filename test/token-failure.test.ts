import { describe, expect, it } from 'vitest';
import { backoffDelay } from '../src/policy/backoff-delay.js';
import { MAX_RATE_LIMITED } from '../src/policy/decide.js';
import { tokenFailureStep } from '../src/policy/token-failure.js';

// A credential that could not be made ready (token endpoint down, signer threw): the ID's next step.
const retry = { baseDelayMs: 100, maxDelayMs: 5000 };
const fixed = () => 0.5;

describe('tokenFailureStep', () => {
  it.each([
    { before: 0, action: 'retry', limited: 1 },
    { before: 1, action: 'retry', limited: 2 },
    { before: 10, action: 'retry', limited: 11 },
    { before: MAX_RATE_LIMITED - 1, action: 'retry', limited: MAX_RATE_LIMITED },
    { before: MAX_RATE_LIMITED, action: 'fail', limited: MAX_RATE_LIMITED + 1 },
  ])('after $before such retries: $action', ({ before, action, limited }) => {
    const step = tokenFailureStep(before, retry, fixed);
    expect(step.action).toBe(action);
    expect(step.limited).toBe(limited);
    if (step.action === 'retry') expect(step.delayMs).toBe(backoffDelay(limited, retry.baseDelayMs, retry.maxDelayMs, fixed));
    else expect(step.message).toBe('no credential could get a token');
  });

  it('waits longer as failures repeat, never past retry.maxDelayMs', () => {
    const delays = [0, 1, 2, 3, 6, 20].map((n) => tokenFailureStep(n, retry, () => 0.999));
    const ms = delays.map((d) => (d.action === 'retry' ? d.delayMs : NaN));
    for (let i = 1; i < ms.length; i++) expect(ms[i]!).toBeGreaterThanOrEqual(ms[i - 1]!);
    expect(Math.max(...ms)).toBeLessThanOrEqual(retry.maxDelayMs);
  });
});
