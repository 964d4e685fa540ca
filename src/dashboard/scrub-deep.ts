import { scrubSecrets } from '../policy/scrub-secrets.js';

/**
 * A copy of a JSON value with every known secret replaced in every string,
 * keys included: the last net before anything reaches a web page (what the
 * dashboard shows is built without secrets in the first place).
 */
export function scrubDeep<T>(value: T, secrets: readonly string[]): T {
  if (secrets.length === 0) return value;
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return scrubSecrets(v, secrets);
    if (Array.isArray(v)) return v.map(walk);
    if (v !== null && typeof v === 'object' && !(v instanceof Date)) {
      return Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [scrubSecrets(k, secrets), walk(x)]));
    }
    return v;
  };
  return walk(value) as T;
}
