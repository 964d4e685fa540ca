import { parseRetryAfter } from './retry-after.js';

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
  /** The first limit's window was guessed from one reset (no header states it): learn it over several responses. */
  windowGuessed?: boolean;
  /** The reset was an epoch in whole seconds: it reads up to a second longer than the wait. */
  resetIsEpochSeconds?: boolean;
}

type Headers = Record<string, string | string[] | undefined>;

const first = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);

/** A non-negative number (integer or decimal), or undefined for anything else. */
function nonNeg(v: string | undefined): number | undefined {
  if (v === undefined || !/^\s*\d+(?:\.\d+)?\s*$/.test(v)) return undefined;
  return Number(v);
}

/** Typical quota windows (s): a window guessed from a reset is rounded up to one of them. */
const NICE_WINDOWS_S = [1, 2, 5, 10, 15, 30, 60, 300, 900, 3600, 86_400];

/**
 * Rounds a time-to-reset up to a typical window length, in ms: a window is at
 * least as long as the wait to its reset, and a guess too long only idles a
 * credential until the window is learned (learn-window.ts), while one too
 * short sends too much. An epoch in whole seconds reads up to a second long
 * (GitHub's hour reads 3601 s): a second of slack for windows of 2 s and
 * more. Not for 1 s: "2" may be a 1 s or a 2 s window, and 2 s is the safe guess.
 */
export function guessWindowMs(resetInMs: number, epochSeconds = false): number {
  const s = Math.max(1, Math.ceil(resetInMs / 1000));
  return 1000 * (NICE_WINDOWS_S.find((w) => s <= w + (epochSeconds && w >= 2 ? 1 : 0)) ?? s);
}

/** A reset this far in the future cannot be delta seconds (10 years): it is an epoch. */
const EPOCH_S_MIN = 315_360_000;
/** Epoch milliseconds are past this (year 2001 in ms; year 33658 in seconds). */
const EPOCH_MS_MIN = 1e12;

/**
 * Milliseconds until a reset announced as a number, whatever the convention:
 * delta seconds (`RateLimit-Reset: 7`, `x-ratelimit-reset: 2`), epoch seconds
 * (GitHub `1372700873`, Discord `1470173023.123`) or epoch milliseconds
 * (`1700000000000`), told apart by magnitude. An epoch is measured against the
 * response's `Date` (the server's clock) when it differs from ours by more than
 * 2 s, so a skewed local clock does not stretch or cut the wait. Pure.
 */
export function resetInMsFrom(value: number, nowMs: number, serverDateMs?: number): number {
  if (value < EPOCH_S_MIN) return value * 1000;
  const epochMs = value >= EPOCH_MS_MIN ? value : value * 1000;
  // The Date header has whole seconds: trust it only to correct a real skew.
  const now = serverDateMs !== undefined && Math.abs(serverDateMs - nowMs) > 2000 ? serverDateMs : nowMs;
  return Math.max(0, epochMs - now);
}

/** One member of a structured-field list: its bare item (a number or a "name"), and its numeric parameters. */
export interface ListMember {
  value?: number | string;
  params: Record<string, number>;
}

/**
 * Parses a structured-field list of the IETF httpapi ratelimit-headers drafts,
 * tolerantly: `"burst";q=100;w=60, "daily";q=1000;w=86400` (draft 8+ policy),
 * `"burst";r=50;t=30` (draft 8+ current), `100;w=60` (drafts 6–7 policy),
 * `10, 10;w=5, 80;w=60` (older RateLimit-Limit with policies). Non-numeric
 * parameters (`qu="requests"`, `pk=:…:`, `comment="…"`) are skipped; a member
 * that says nothing usable is dropped (malformed fields must be ignored).
 * https://datatracker.ietf.org/doc/draft-ietf-httpapi-ratelimit-headers/
 */
export function parseList(value: string): ListMember[] {
  const out: ListMember[] = [];
  for (const member of value.split(',')) {
    const [head = '', ...rest] = member.split(';');
    const params: Record<string, number> = {};
    for (const part of rest) {
      const m = /^\s*([a-z][a-z0-9_.*-]*)\s*=\s*(\d+(?:\.\d+)?)\s*$/.exec(part);
      if (m) params[m[1]!] = Number(m[2]);
    }
    const h = head.trim();
    const v = /^\d+(?:\.\d+)?$/.test(h) ? Number(h) : /^"[^"]*"$/.test(h) ? h.slice(1, -1) : /^[a-z*][a-z0-9_.*-]*$/i.test(h) ? h : undefined;
    if (v !== undefined || Object.keys(params).length > 0) out.push({ value: v, params });
  }
  return out;
}

/**
 * A structured-field dictionary with numeric values, as draft 7 sends it:
 * `RateLimit: limit=100, remaining=25, reset=5`. Undefined unless every member
 * is `key=number`.
 */
export function parseNumericDictionary(value: string): Record<string, number> | undefined {
  const out: Record<string, number> = {};
  for (const member of value.split(',')) {
    const m = /^\s*([a-z][a-z0-9_.*-]*)\s*=\s*(\d+(?:\.\d+)?)\s*(?:;.*)?$/.exec(member);
    if (!m) return undefined;
    out[m[1]!] = Number(m[2]);
  }
  return out;
}

/** A quota count as the drafts define it: an Integer (RFC 8941 §3.3.1), here at least 1. */
const isCount = (n: number | undefined): n is number => n !== undefined && Number.isInteger(n) && n > 0;

/**
 * Quotas stated as policies: `q` (draft 8+) or a bare number (drafts 6–7), each with its window `w` in seconds.
 * Both are Integers in the drafts: a member with a decimal (`q=0.5`) or a zero is malformed and ignored, as the
 * drafts say malformed fields are. Guessing what `q=0.5` meant would be pullq making up a budget; without one the
 * credential still rests on `remaining` 0, Retry-After and 429s.
 */
function policiesOf(members: ListMember[]): Limit[] {
  const limits: Limit[] = [];
  for (const m of members) {
    const q = m.params['q'] ?? (typeof m.value === 'number' ? m.value : undefined);
    const w = m.params['w'];
    if (isCount(q) && isCount(w)) limits.push({ requests: q, windowMs: w * 1000 });
  }
  return limits;
}

/** Limits kept per credential: each costs Redis commands on every take (takeCredential-n.lua reads the same bound). */
export const MAX_POLICIES = 8;
/** The longest window kept, ms (a day): a window's starts stay in the credential's log for as long. */
export const MAX_WINDOW_MS = 86_400_000;
/** The largest quota kept: more is no limit in practice, and a smaller quota is only stricter. */
export const MAX_QUOTA = 1_000_000_000;

/**
 * Bounds the limits an API announced so a hostile header cannot make them costly, never looser than stated
 * (except below one request a day, the slowest budget pullq paces):
 * - a window is whole ms, rounded up (a longer window is stricter);
 * - a window over a day becomes a day with the quota divided by the number of days it spans, rounded down:
 *   q per n days allows at most floor(q / n) per day, and n such days hold at most q. At least 1 a day;
 * - a quota over MAX_QUOTA is MAX_QUOTA;
 * - over MAX_POLICIES limits, the MAX_POLICIES - 1 lowest rates are kept and the others merged into one with
 *   the smallest of their quotas and the longest of their windows, which implies each of them.
 * Anything that is not a positive integer quota and a positive window is dropped. Pure.
 */
export function boundLimits(limits: readonly Limit[]): Limit[] {
  const out: Limit[] = [];
  for (const l of limits) {
    if (!isCount(l.requests) || !(l.windowMs > 0) || !Number.isFinite(l.windowMs)) continue;
    let requests = Math.min(l.requests, MAX_QUOTA);
    let windowMs = Math.ceil(l.windowMs);
    if (windowMs > MAX_WINDOW_MS) {
      requests = Math.max(1, Math.floor(requests / Math.ceil(windowMs / MAX_WINDOW_MS)));
      windowMs = MAX_WINDOW_MS;
    }
    out.push({ requests, windowMs });
  }
  if (out.length <= MAX_POLICIES) return out;
  const byRate = [...out].sort((a, b) => a.requests / a.windowMs - b.requests / b.windowMs);
  const kept = byRate.slice(0, MAX_POLICIES - 1);
  const rest = byRate.slice(MAX_POLICIES - 1);
  kept.push({ requests: Math.min(...rest.map((l) => l.requests)), windowMs: Math.max(...rest.map((l) => l.windowMs)) });
  return kept;
}

/**
 * Reads every rate-limit convention pullq knows from response headers. Pure;
 * `nowMs` is the local clock, used only to turn an epoch reset into a delay.
 *
 * | convention | headers |
 * |---|---|
 * | RFC 9110 | `Retry-After: 120` or an HTTP-date; wins over everything else |
 * | IETF draft 8+ | `RateLimit-Policy: "burst";q=100;w=60` and `RateLimit: "burst";r=50;t=30` (several policies: all are limits, the scarcest remaining binds) |
 * | IETF draft 7 | `RateLimit-Policy: 100;w=60` and `RateLimit: limit=100, remaining=25, reset=5` |
 * | IETF drafts ≤ 6 | `RateLimit-Limit: 100` (or `10, 10;w=5, 80;w=60`), `RateLimit-Remaining`, `RateLimit-Reset` (delta seconds), `RateLimit-Policy: 100;w=60` |
 * | GitHub | `x-ratelimit-limit/-remaining/-used/-reset` (epoch seconds), `-resource` |
 * | X | `x-rate-limit-limit/-remaining/-reset` (epoch seconds) |
 * | Discord | `X-RateLimit-Reset: 1470173023.123`, `X-RateLimit-Reset-After: 1.234` (wins over the reset) |
 * | others | `x-ratelimit-reset` as delta seconds or epoch milliseconds (told apart by magnitude) |
 */
export function parseRateLimitHeaders(headers: Headers, nowMs: number): RateLimitSignal {
  const signal: RateLimitSignal = { limits: [], seen: false };
  const dateHeader = first(headers['date']);
  const serverDateMs = dateHeader === undefined ? undefined : Date.parse(dateHeader);
  const serverNow = serverDateMs !== undefined && !Number.isNaN(serverDateMs) ? serverDateMs : undefined;

  const retryAfterMs = parseRetryAfter(headers['retry-after'], nowMs);
  if (retryAfterMs !== undefined) {
    signal.retryAfterMs = retryAfterMs;
    signal.seen = true;
  }

  const policy = first(headers['ratelimit-policy']);
  if (policy !== undefined) {
    const limits = policiesOf(parseList(policy));
    if (limits.length > 0) {
      signal.limits.push(...limits);
      signal.seen = true;
    }
  }

  const current = first(headers['ratelimit']);
  if (current !== undefined) {
    const dict = /\bremaining\s*=/.test(current) ? parseNumericDictionary(current) : undefined;
    if (dict?.['remaining'] !== undefined) {
      // Draft 7: one dictionary for the current window.
      signal.remaining = Math.floor(dict['remaining']);
      if (dict['reset'] !== undefined) signal.resetInMs = dict['reset'] * 1000;
      if (signal.limits.length === 0 && dict['limit'] !== undefined) addGuessedLimit(signal, dict['limit']);
      signal.seen = true;
    } else if (/\br\s*=/.test(current)) {
      // Draft 8+: one member per policy; the scarcest binds.
      for (const m of parseList(current)) {
        const r = m.params['r'] === undefined ? undefined : Math.floor(m.params['r']);
        if (r === undefined) continue;
        if (signal.remaining === undefined || r < signal.remaining) {
          signal.remaining = r;
          signal.resetInMs = m.params['t'] !== undefined ? m.params['t'] * 1000 : undefined;
        }
      }
      signal.seen = true;
    }
  }

  if (signal.remaining === undefined) readLimitTriple(signal, headers, 'ratelimit-', nowMs, serverNow);
  if (signal.remaining === undefined) readLimitTriple(signal, headers, 'x-ratelimit-', nowMs, serverNow);
  if (signal.remaining === undefined) readLimitTriple(signal, headers, 'x-rate-limit-', nowMs, serverNow);
  if (signal.resetInMs === undefined) delete signal.resetInMs;
  signal.limits = boundLimits(signal.limits);
  return signal;
}

/**
 * Reads `<prefix>limit / -remaining / -reset` (and `-used`, `-reset-after`)
 * into `signal`. The limit may carry policies (`10, 10;w=5`); without one, its
 * window is guessed from the reset (a window no header states), else 1 minute.
 */
function readLimitTriple(signal: RateLimitSignal, headers: Headers, prefix: string, nowMs: number, serverDateMs: number | undefined): void {
  const remaining = nonNeg(first(headers[`${prefix}remaining`]));
  if (remaining === undefined) return;
  signal.remaining = Math.floor(remaining);
  signal.seen = true;
  const resetAfter = nonNeg(first(headers[`${prefix}reset-after`]));
  const reset = nonNeg(first(headers[`${prefix}reset`]));
  if (resetAfter !== undefined) signal.resetInMs = resetAfter * 1000;
  else if (reset !== undefined) {
    signal.resetInMs = resetInMsFrom(reset, nowMs, serverDateMs);
    if (reset >= EPOCH_S_MIN && reset < EPOCH_MS_MIN) signal.resetIsEpochSeconds = true;
  }
  if (signal.limits.length > 0) return;
  const limitHeader = first(headers[`${prefix}limit`]);
  const members = limitHeader === undefined ? [] : parseList(limitHeader);
  const stated = policiesOf(members);
  if (stated.length > 0) {
    signal.limits.push(...stated);
    return;
  }
  const used = nonNeg(first(headers[`${prefix}used`]));
  const limit = typeof members[0]?.value === 'number' ? members[0].value : used !== undefined ? used + remaining : undefined;
  if (limit !== undefined) addGuessedLimit(signal, limit);
}

/** A quota no header gives a window for: guessed from the reset (else 1 minute), to be learned (learn-window.ts). */
function addGuessedLimit(signal: RateLimitSignal, requests: number): void {
  if (!isCount(requests)) return;
  signal.limits.push({ requests, windowMs: guessWindowMs(signal.resetInMs ?? 60_000, signal.resetIsEpochSeconds) });
  signal.windowGuessed = true;
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
