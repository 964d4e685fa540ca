import type { ErrorCode } from './error-codes.js';
import { parseRetryAfter } from '../http/retry-after.js';

/** What one HTTP exchange (or its failure) looked like, as far as policy cares. */
export interface Exchange {
  /** HTTP status, or null when no response arrived. */
  status: number | null;
  headers?: Record<string, string | string[] | undefined>;
  /** got/Node error code when the request failed (ETIMEDOUT, ECONNRESET, ...). */
  errorCode?: string;
  /** The body passed request.maxBodyBytes and the download was aborted. */
  tooLarge?: boolean;
}

/** What to do with an ID after one exchange. */
export type Verdict =
  | { action: 'success' }
  | { action: 'fail'; error: ErrorCode; message: string }
  | {
      action: 'retry';
      error: ErrorCode;
      message: string;
      /** A wait the server asked for (Retry-After), in ms; otherwise backoff decides. */
      waitMs?: number;
      /** false for rate limiting: a 429 does not spend one of the ID's attempts. */
      countsAttempt: boolean;
      /** Retry with a different credential than this one. */
      switchCredential: boolean;
    };

const NETWORK_CODES = new Set([
  'ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH',
  'ECONNABORTED', 'ERR_STREAM_PREMATURE_CLOSE', 'ERR_GOT_REQUEST_ERROR', 'ERR_HTTP2_STREAM_ERROR', 'UND_ERR_SOCKET',
]);

/**
 * Decides retry / fail / success for one exchange. Pure: the table in
 * test/classify-response.test.ts is the specification.
 */
export function classifyResponse(x: Exchange, nowMs: number): Verdict {
  if (x.tooLarge) return { action: 'fail', error: 'body_too_large', message: 'response body larger than request.maxBodyBytes' };
  if (x.status === null) {
    const code = x.errorCode ?? 'unknown';
    if (code === 'ETIMEDOUT') return { action: 'retry', error: 'timeout', message: 'request timed out', countsAttempt: true, switchCredential: false };
    if (code === 'ERR_TOO_MANY_REDIRECTS') return { action: 'fail', error: 'client_error', message: 'too many redirects' };
    if (NETWORK_CODES.has(code) || code.startsWith('E') || code.startsWith('ERR_')) {
      return { action: 'retry', error: 'network', message: `network error ${code}`, countsAttempt: true, switchCredential: false };
    }
    return { action: 'retry', error: 'network', message: `request failed (${code})`, countsAttempt: true, switchCredential: false };
  }
  const s = x.status;
  if (s >= 200 && s < 300) return { action: 'success' };
  const retryAfterMs = parseRetryAfter(x.headers?.['retry-after'], nowMs);
  if (s === 404 || s === 410) return { action: 'fail', error: 'not_found', message: `HTTP ${s}` };
  if (s === 429) {
    return { action: 'retry', error: 'client_error', message: 'HTTP 429 Too Many Requests', waitMs: retryAfterMs, countsAttempt: false, switchCredential: true };
  }
  if (s === 401) return { action: 'retry', error: 'unauthorized', message: 'HTTP 401', countsAttempt: true, switchCredential: true };
  if (s === 403) return { action: 'retry', error: 'forbidden', message: 'HTTP 403', countsAttempt: true, switchCredential: true };
  if (s === 408) return { action: 'retry', error: 'timeout', message: 'HTTP 408', waitMs: retryAfterMs, countsAttempt: true, switchCredential: false };
  if (s >= 500) {
    return { action: 'retry', error: 'server_error', message: `HTTP ${s}`, waitMs: retryAfterMs, countsAttempt: true, switchCredential: false };
  }
  if (s >= 300 && s < 400) return { action: 'fail', error: 'client_error', message: `HTTP ${s} (redirect not followed)` };
  return { action: 'fail', error: 'client_error', message: `HTTP ${s}` };
}
