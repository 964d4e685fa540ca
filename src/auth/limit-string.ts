import { boundLimits, MAX_POLICIES, MAX_QUOTA, MAX_WINDOW_MS, type Limit } from '../http/rate-limit-headers.js';

/** Limits as the Lua scripts read them ("q:wMs;…"), bounded first (a learned window may be longer than a day). */
export function toLimitString(limits: readonly Limit[]): string {
  return boundLimits(limits).map((l) => `${l.requests}:${l.windowMs}`).join(';');
}

/**
 * Reads a stored budget "q:wMs;…" as takeCredential-n.lua does (src/redis/lua/include/read-limits.lua):
 * undefined for one the scripts do not trust (a decimal, more than MAX_POLICIES limits, a window over a
 * day), which they replace by the slow start; [] for "".
 */
export function readLimitString(s: string): Limit[] | undefined {
  if (s === '') return [];
  if (s.length > 200) return undefined;
  const out: Limit[] = [];
  for (const member of s.split(';')) {
    const m = /^(\d{1,10}):(\d{1,8})$/.exec(member);
    if (!m || out.length === MAX_POLICIES) return undefined;
    const requests = Number(m[1]);
    const windowMs = Number(m[2]);
    if (requests < 1 || requests > MAX_QUOTA || windowMs < 1 || windowMs > MAX_WINDOW_MS) return undefined;
    out.push({ requests, windowMs });
  }
  return out;
}
