/**
 * Milliseconds to wait from a Retry-After header value, or undefined when it is
 * absent or unusable. RFC 9110 §10.2.3: delay-seconds or an HTTP-date.
 * https://www.rfc-editor.org/rfc/rfc9110#field.retry-after
 */
export function parseRetryAfter(value: string | string[] | undefined, nowMs: number): number | undefined {
  const raw = Array.isArray(value) ? value[0] : value;
  if (raw === undefined) return undefined;
  const text = raw.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  // An HTTP-date always names a weekday and "GMT"; Date.parse accepts looser strings we do not want.
  if (!/^[A-Za-z]{3},? .*GMT$/.test(text) && !/^[A-Za-z]+day, /.test(text)) return undefined;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - nowMs);
}
