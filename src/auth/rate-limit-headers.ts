import { parseRetryAfter } from '../jobs/retry-after.js';

/** One quota: at most `requests` per `windowMs`. */
export interface Limit {
  requests: number;
  windowMs: number;
}

/** What an API's response says about the credential's rate limit. */
export interface RateLimitSignal {
  /** Quotas the API announced (IETF RateLimit-Policy, or limit + window guessed from a reset). */
  limits: Limit[];
  /** Requests left in the current window, when announced. */
  remaining?: number;
  /** Milliseconds until the current window resets, when announced. */
  resetInMs?: number;
  /** Retry-After, in ms, when present (RFC 9110 §10.2.3). */
  retryAfterMs?: number;
  /** Whether any rate-limit header was present at all. */
  seen: boolean;
}

type Headers = Record<string, string | string[] | undefined>;

const first = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);

function nonNegInt(v: string | undefined): number | undefined {
  if (v === undefined || !/^\s*\d+\s*$/.test(v)) return undefined;
  return Number(v);
}

/** Typical quota windows (s): a window guessed from a reset is rounded up to one of them. */
const NICE_WINDOWS_S = [1, 10, 60, 300, 900, 3600, 86_400];

/**
 * Rounds a time-to-reset up to a typical window length, in ms. A reset given
 * as epoch seconds can read up to a second long, so a window may be a second
 * shorter than the reset suggests.
 */
export function guessWindowMs(resetInMs: number): number {
  const s = Math.max(1, Math.ceil(resetInMs / 1000));
  return 1000 * (NICE_WINDOWS_S.find((w) => s <= w + 1) ?? s);
}

/**
 * Parses a structured-field list of the IETF httpapi ratelimit-headers draft:
 * `"burst";q=100;w=60, "daily";q=1000;w=86400` (policy) or `"burst";r=50;t=30`.
 * https://datatracker.ietf.org/doc/draft-ietf-httpapi-ratelimit-headers/
 * Returns one record of numeric parameters per list member.
 */
export function parseStructuredList(value: string): Record<string, number>[] {
  const out: Record<string, number>[] = [];
  for (const member of value.split(',')) {
    const params: Record<string, number> = {};
    for (const part of member.split(';').slice(1)) {
      const m = /^\s*([a-z][a-z0-9_.*-]*)\s*=\s*(\d+(?:\.\d+)?)\s*$/.exec(part);
      if (m) params[m[1]!] = Number(m[2]);
    }
    if (Object.keys(params).length > 0) out.push(params);
  }
  return out;
}

/**
 * Reads every rate-limit convention pullq knows from response headers. Pure;
 * `nowMs` is the local clock, used only to turn an epoch reset into a delay.
 */
export function parseRateLimitHeaders(headers: Headers, nowMs: number): RateLimitSignal {
  const signal: RateLimitSignal = { limits: [], seen: false };

  // RFC 9110 §10.2.3: Retry-After, seconds or HTTP-date. Wins over everything else below.
  const retryAfterMs = parseRetryAfter(headers['retry-after'], nowMs);
  if (retryAfterMs !== undefined) {
    signal.retryAfterMs = retryAfterMs;
    signal.seen = true;
  }

  // IETF draft (current): RateLimit-Policy: "p";q=100;w=60  and  RateLimit: "p";r=50;t=30
  const policy = first(headers['ratelimit-policy']);
  const current = first(headers['ratelimit']);
  if (policy !== undefined && /q=/.test(policy)) {
    for (const p of parseStructuredList(policy)) {
      if (p['q'] !== undefined && p['w'] !== undefined && p['q'] > 0 && p['w'] > 0) signal.limits.push({ requests: p['q'], windowMs: p['w'] * 1000 });
    }
    signal.seen = true;
  }
  if (current !== undefined && /r=/.test(current)) {
    // Several policies: the scarcest one binds.
    for (const p of parseStructuredList(current)) {
      if (p['r'] === undefined) continue;
      if (signal.remaining === undefined || p['r'] < signal.remaining) {
        signal.remaining = p['r'];
        if (p['t'] !== undefined) signal.resetInMs = p['t'] * 1000;
      }
    }
    signal.seen = true;
  }

  // IETF draft (earlier revisions): RateLimit-Limit / -Remaining / -Reset (delta seconds).
  if (signal.remaining === undefined) readLimitTriple(signal, headers, 'ratelimit-', 60_000, nowMs);
  // GitHub: x-ratelimit-limit / -remaining / -reset (epoch seconds).
  // https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api
  if (signal.remaining === undefined) readLimitTriple(signal, headers, 'x-ratelimit-', 3_600_000, nowMs);
  return signal;
}

/**
 * Reads `<prefix>limit / -remaining / -reset` into `signal`. The reset is
 * delta seconds or epoch seconds (an epoch is recognisably large); the limit's
 * window is guessed from the reset, else `defaultWindowMs`.
 */
function readLimitTriple(signal: RateLimitSignal, headers: Headers, prefix: string, defaultWindowMs: number, nowMs: number): void {
  const limit = nonNegInt(first(headers[`${prefix}limit`]));
  const remaining = nonNegInt(first(headers[`${prefix}remaining`]));
  const reset = nonNegInt(first(headers[`${prefix}reset`]));
  if (remaining === undefined) return;
  signal.remaining = remaining;
  if (reset !== undefined) signal.resetInMs = reset > 1_000_000_000 ? Math.max(0, reset * 1000 - nowMs) : reset * 1000;
  if (limit !== undefined && limit > 0 && signal.limits.length === 0) signal.limits.push({ requests: limit, windowMs: guessWindowMs(signal.resetInMs ?? defaultWindowMs) });
  signal.seen = true;
}

/**
 * How long a credential must rest after this response, in ms, or undefined
 * when the response says nothing about resting. Retry-After wins (IETF draft
 * §5: "Retry-After takes precedence"); otherwise an exhausted quota (remaining
 * 0) rests until its reset. GitHub documents both for primary and secondary limits.
 */
export function restFor(signal: RateLimitSignal): number | undefined {
  if (signal.retryAfterMs !== undefined) return signal.retryAfterMs;
  if (signal.remaining === 0 && signal.resetInMs !== undefined) return signal.resetInMs;
  return undefined;
}

/**
 * Bounds a wait a server asked for (Retry-After, a reset) by `maxWaitMs`
 * (config retry.maxWaitMs): a misread epoch or a hostile header must not
 * park a credential or an ID for years.
 */
export function capWait(askedMs: number, maxWaitMs: number): { waitMs: number; capped: boolean; askedMs: number } {
  const asked = Number.isFinite(askedMs) ? Math.max(0, askedMs) : Number.MAX_SAFE_INTEGER;
  return asked > maxWaitMs ? { waitMs: maxWaitMs, capped: true, askedMs: asked } : { waitMs: asked, capped: false, askedMs: asked };
}

/** True when a 403 (or 429) is a rate limit rather than a refusal: GitHub answers 403 with remaining 0. */
export function isRateLimited(status: number, signal: RateLimitSignal): boolean {
  if (status === 429) return true;
  if (status === 403) return signal.remaining === 0 || signal.retryAfterMs !== undefined;
  return false;
}
