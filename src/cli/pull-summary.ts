import type { CredentialUsage } from '../auth/credential-pool.js';
import { readLimitString } from '../auth/limit-string.js';
import { formatDuration } from './progress.js';

/**
 * The share of a budget that `requests` used over `elapsedMs`, against the
 * tightest of `limits` ("q:wMs;…", configured or learned): what the pool's
 * even pacing lets through in that time is q × elapsed ÷ w. Null when no
 * limit is known or no time passed.
 */
export function budgetShare(requests: number, limits: string, elapsedMs: number): number | null {
  if (!(elapsedMs > 0)) return null;
  let allowed: number | null = null;
  for (const { requests: q, windowMs: w } of readLimitString(limits) ?? []) {
    const a = (q * elapsedMs) / w;
    allowed = allowed === null ? a : Math.min(allowed, a);
  }
  if (allowed === null) return null;
  return allowed > 0 ? requests / allowed : requests > 0 ? Infinity : 0;
}

/** "9.2 s" under a minute, else "1m 05s". */
export function formatRested(ms: number): string {
  return ms < 59_950 ? `${(ms / 1000).toFixed(1)} s` : formatDuration(ms);
}

const count = (n: number, one: string, many: string) => `${n.toLocaleString('en-US')} ${n === 1 ? one : many}`;

function formatShare(share: number | null): string {
  if (share === null) return 'no budget known';
  if (!Number.isFinite(share)) return 'over its budget';
  const pct = Math.round(share * 100);
  return `${pct === 0 && share > 0 ? '<1' : pct}% of its budget`;
}

/**
 * One line per credential for `pull`'s summary: what it did between two
 * snapshots of its fleet-wide counters (every replica's work with it in that
 * time, other runs of the queue included) taken `elapsedMs` apart.
 * `credential ci-bot: 1,204 requests, 3 429s, rested 14 times (9.2 s), 97% of its budget`
 */
export function credentialSummaryLines(before: readonly CredentialUsage[], after: readonly CredentialUsage[], elapsedMs: number): string[] {
  return after.map((a) => {
    const b = before.find((x) => x.label === a.label);
    const requests = Math.max(0, a.requests - (b?.requests ?? 0));
    const free = Math.max(0, (a.free ?? 0) - (b?.free ?? 0));
    const n429 = Math.max(0, a.n429 - (b?.n429 ?? 0));
    const rests = Math.max(0, a.rests - (b?.rests ?? 0));
    // A rest's whole length counts when it begins: one set near the end may reach past the pull; show what the pull spent.
    const restedMs = Math.min(elapsedMs, Math.max(0, a.restedMs - (b?.restedMs ?? 0)));
    const rested = rests === 0 ? (restedMs > 0 ? `rested (${formatRested(restedMs)})` : 'never rested') : `rested ${rests === 1 ? 'once' : `${rests.toLocaleString('en-US')} times`} (${formatRested(restedMs)})`;
    const freeText = free > 0 ? ` (${free.toLocaleString('en-US')} free 304s)` : '';
    return `credential ${a.label}: ${count(requests, 'request', 'requests')}${freeText}, ${count(n429, '429', '429s')}, ${rested}, ${formatShare(budgetShare(requests - free, a.limits, elapsedMs))}`;
  });
}
