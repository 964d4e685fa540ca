import { backoffDelay } from './backoff-delay.js';
import { MAX_RATE_LIMITED } from './decide.js';

/**
 * What to do with an ID after its credential could not be made ready (a token or login endpoint failed, a signer
 * threw): no request went out, so it does not spend an attempt; it counts with the rate-limited retries, and after
 * MAX_RATE_LIMITED of those it fails as `unauthorized`. Otherwise it waits the ID backoff (backoff-delay.ts) of
 * that count and tries again (perhaps with another credential).
 */
export function tokenFailureStep(limitedBefore: number, retry: { baseDelayMs: number; maxDelayMs: number }, random: () => number = Math.random): { action: 'fail'; limited: number; message: string } | { action: 'retry'; limited: number; delayMs: number } {
  const limited = limitedBefore + 1;
  if (limited > MAX_RATE_LIMITED) return { action: 'fail', limited, message: 'no credential could get a token' };
  return { action: 'retry', limited, delayMs: backoffDelay(limited, retry.baseDelayMs, retry.maxDelayMs, random) };
}
