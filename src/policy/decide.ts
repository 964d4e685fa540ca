import { capWait, guessWindowMs, isRateLimited, parseRateLimitHeaders, restFor, type Limit, type RateLimitSignal } from '../http/rate-limit-headers.js';
import { parseRetryAfter } from '../http/retry-after.js';
import { learnedWindowMs, observeWindow, type WindowObservation } from '../http/learn-window.js';
import { backoffDelay } from './backoff-delay.js';
import type { ErrorCode } from './error-codes.js';

// The one home of "what a response means": for the ID (done, failed, or try
// again when and with which credentials) and for the credential (rest,
// quarantine, limits learned). Pure, in the spirit of got's
// calculate-retry-delay.ts: the worker, the pool's report to Redis
// (reportResponse-0.lua's inputs) and `pullq check` all follow it, and the
// table in test/decide.test.ts is its specification.

/** Rate-limited retries of one ID before it fails: rate limits do not spend attempts, this keeps it finite. */
export const MAX_RATE_LIMITED = 50;

/** What one HTTP exchange (or its failure) looked like, as far as policy cares. */
export interface Exchange {
  /** HTTP status, or null when no response arrived. */
  status: number | null;
  headers?: Record<string, string | string[] | undefined>;
  /** got/Node error code when the request failed (ETIMEDOUT, ECONNRESET, ...). */
  errorCode?: string;
  /** The body passed request.maxBodyBytes and the download was aborted. */
  tooLarge?: boolean;
  /** A redirect request.redirects does not allow: why (`status` is the redirect's). */
  refusedRedirect?: string;
  /** The request carried validators (If-None-Match / If-Modified-Since): a 304 is an answer, not a fault. */
  conditional?: boolean;
}

/** Where an ID stands between attempts (the part of RetryState policy reads). */
export interface IdState {
  /** Attempts spent (rate limits and credential refusals do not spend one). */
  attempts: number;
  /** Rate-limited or credential-refused retries so far. */
  limited: number;
  /** Credential ids that refused this ID for good (403, or a second 401). */
  refusedBy: readonly string[];
  /** Credential ids that answered one 401 for this ID (it may have been a blip). */
  blipped: readonly string[];
}

/** What the caller knows about the credential that made the request. */
export interface CredentialState {
  id: string;
  /** A 401 whose OAuth2 token had already been replaced by a refresh: it says nothing about the credential. */
  tokenReplaced?: boolean;
  /** What this process saw of the credential's remaining/reset so far (windows no header states). */
  window?: WindowObservation;
  /** budget.free304: the API does not count a 304 to a conditional request against this credential's budget. */
  free304?: boolean;
}

export interface PolicyConfig {
  retry: { attempts: number; baseDelayMs: number; maxDelayMs: number; maxWaitMs: number };
}

/** What a response meant for the credential that made it ('stale': a 401 for an OAuth2 token already replaced). */
export type CredentialVerdict = 'ok' | 'limited' | 'unauthorized' | 'forbidden' | 'stale' | 'other';

/** The credential's part of a decision: what the pool tells the fleet (reportResponse-0.lua). */
export interface CredentialDecision {
  verdict: CredentialVerdict;
  /** A response came back (false: the request failed on the way; nothing to learn). */
  answered: boolean;
  /** Rest the credential this long (Retry-After, or remaining 0 until the reset), capped by retry.maxWaitMs. */
  restMs?: number;
  /** What the server asked for when it was more than retry.maxWaitMs. */
  askedMs?: number;
  /** The rest comes only from "remaining 0" on an answer that was not refused (pacing may already cover it). */
  soft: boolean;
  /** Limits the answer announced (windows no header states: learned over several answers); [] when none. */
  limits: Limit[];
  /** Whether the answer carried any rate-limit header. */
  headersSeen: boolean;
  /** The observation to keep for the next answer on this credential. */
  window?: WindowObservation;
  /** The answer did not count against the credential's budget (a 304 with budget.free304): give its start back. */
  free: boolean;
}

/** The ID's part of a decision. */
export type IdDecision =
  | { action: 'success'; attempts: number }
  /** A 304 to a conditional request: the ID is as the last complete run had it. */
  | { action: 'unchanged'; attempts: number }
  | { action: 'fail'; error: ErrorCode; message: string; attempts: number }
  | {
      action: 'retry';
      error: ErrorCode;
      message: string;
      /** ms from now before the next try (0: at once, with another credential when `next.refusedBy` grew or the credential rests). */
      delayMs: number;
      /** The server asked for a longer wait than retry.maxWaitMs: what it asked (the delay is capped). */
      askedMs?: number;
      /** The ID's state for its next try. */
      next: IdState;
    };

export interface Decision {
  credential: CredentialDecision;
  id: IdDecision;
}

const NETWORK_CODES = new Set([
  'ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH',
  'ECONNABORTED', 'ERR_STREAM_PREMATURE_CLOSE', 'ERR_GOT_REQUEST_ERROR', 'ERR_HTTP2_STREAM_ERROR', 'UND_ERR_SOCKET',
]);

/**
 * Decides, for one exchange, what happens to the ID and what the credential
 * tells the fleet. `random` draws the backoff jitter (injectable for tests).
 */
export function decide(x: Exchange, id: IdState, credential: CredentialState, config: PolicyConfig, now: number, random: () => number = Math.random): Decision {
  const signal = x.status === null ? undefined : parseRateLimitHeaders(x.headers ?? {}, now);
  const part = credentialPart(x.status, signal, credential, config, now);
  // GitHub: "a 304 to a conditional request does not count against your primary rate limit"; only the
  // user knows whether their API does the same (budget.free304), and only a conditional 304 is free.
  const cred = { ...part, free: part.answered && x.status === 304 && x.conditional === true && credential.free304 === true };
  return { credential: cred, id: idPart(x, signal, id, credential, cred.verdict, config, now, random) };
}

function credentialPart(status: number | null, signal: RateLimitSignal | undefined, c: CredentialState, config: PolicyConfig, now: number): CredentialDecision {
  if (status === null || signal === undefined) return { verdict: 'other', answered: false, soft: false, limits: [], headersSeen: false, window: c.window, free: false };
  let limits = signal.limits;
  let window = c.window;
  if (signal.windowGuessed && signal.remaining !== undefined && signal.resetInMs !== undefined) {
    window = observeWindow(c.window, signal.remaining, signal.resetInMs, now, signal.resetIsEpochSeconds);
    // Learned once a new window was seen to begin; until then guessed from the longest reset seen, so the
    // guess never shrinks as a reset nears (a 2 s window read "1" late in it is not a 1 s window).
    const windowMs = learnedWindowMs(window) ?? guessWindowMs(window.maxResetMs, signal.resetIsEpochSeconds);
    if (limits[0]) limits = [{ ...limits[0], windowMs }, ...limits.slice(1)];
  }
  let verdict: CredentialVerdict = 'other';
  if (status >= 200 && status < 400) verdict = 'ok';
  else if (isRateLimited(status, signal)) verdict = 'limited';
  else if (status === 401) verdict = c.tokenReplaced ? 'stale' : 'unauthorized';
  else if (status === 403) verdict = 'forbidden';
  const wait = restFor(signal);
  const rest = wait === undefined ? undefined : capWait(wait, config.retry.maxWaitMs);
  return {
    verdict,
    answered: true,
    restMs: rest?.waitMs,
    askedMs: rest?.capped ? rest.askedMs : undefined,
    soft: rest !== undefined && signal.retryAfterMs === undefined && verdict !== 'limited',
    limits,
    headersSeen: signal.seen,
    window,
    free: false,
  };
}

function idPart(x: Exchange, signal: RateLimitSignal | undefined, id: IdState, c: CredentialState, verdict: CredentialVerdict, config: PolicyConfig, now: number, random: () => number): IdDecision {
  const { retry } = config;
  const spent = id.attempts + 1;
  if (x.tooLarge) return { action: 'fail', error: 'body_too_large', message: 'response body larger than request.maxBodyBytes', attempts: spent };
  if (x.refusedRedirect !== undefined) return { action: 'fail', error: 'redirect_refused', message: x.refusedRedirect, attempts: spent };
  const s = x.status;
  if (s !== null && s >= 200 && s < 300) return { action: 'success', attempts: spent };
  // RFC 9110 §15.4.5: 304 answers a conditional GET/HEAD whose validators still match.
  if (s === 304 && x.conditional) return { action: 'unchanged', attempts: spent };
  // Without validators no 304 is possible: the server (or a cache before it) is wrong, and asking again
  // would only spend budget on the same answer.
  if (s === 304) return { action: 'fail', error: 'server_error', message: 'HTTP 304 Not Modified to a request without validators', attempts: spent };
  if (s === 404 || s === 410) return { action: 'fail', error: 'not_found', message: `HTTP ${s}`, attempts: spent };
  if (s !== null && s >= 300 && s < 400) return { action: 'fail', error: 'client_error', message: `HTTP ${s} (redirect not followed)`, attempts: spent };
  if (s === null && x.errorCode === 'ERR_TOO_MANY_REDIRECTS') return { action: 'fail', error: 'client_error', message: 'too many redirects', attempts: spent };

  // The credential's fault, not the ID's: no attempt spent; retried at once (the pool rests or quarantines the credential).
  if (verdict === 'limited' || verdict === 'unauthorized' || verdict === 'forbidden' || verdict === 'stale') {
    const error: ErrorCode = verdict === 'limited' ? 'client_error' : verdict === 'forbidden' ? 'forbidden' : 'unauthorized';
    const message = verdict === 'limited' ? `HTTP ${s} rate limited` : `HTTP ${s}`;
    const limited = id.limited + 1;
    if (limited > MAX_RATE_LIMITED) {
      const why = verdict === 'stale' ? ' (tokens kept expiring)' : ` (gave up after ${limited} credential refusals or rate limits)`;
      return { action: 'fail', error, message: message + why, attempts: id.attempts };
    }
    let refusedBy = id.refusedBy;
    let blipped = id.blipped;
    if (verdict === 'forbidden') refusedBy = [...refusedBy, c.id];
    // Confirm before condemning: a credential refuses this ID for good on its second 401.
    if (verdict === 'unauthorized') {
      if (blipped.includes(c.id)) refusedBy = [...refusedBy, c.id];
      else blipped = [...blipped, c.id];
    }
    return { action: 'retry', error, message, delayMs: 0, next: { attempts: id.attempts, limited, refusedBy, blipped } };
  }

  // The ID's own trouble: a 5xx, 408, other 4xx, or no answer.
  let error: ErrorCode;
  let message: string;
  let retryable = true;
  if (s === null) {
    const code = x.errorCode ?? 'unknown';
    error = code === 'ETIMEDOUT' ? 'timeout' : 'network';
    message = code === 'ETIMEDOUT' ? 'request timed out' : NETWORK_CODES.has(code) || code.startsWith('E') || code.startsWith('ERR_') ? `network error ${code}` : `request failed (${code})`;
  } else if (s === 408) {
    error = 'timeout';
    message = 'HTTP 408';
  } else if (s >= 500) {
    error = 'server_error';
    message = `HTTP ${s}`;
  } else {
    // 400, 422, a 401/403 already handled above, any other 4xx: the request itself is wrong.
    error = 'client_error';
    message = `HTTP ${s}`;
    retryable = false;
  }
  if (!retryable) return { action: 'fail', error, message, attempts: spent };
  if (spent >= retry.attempts) return { action: 'fail', error, message: `${message} (gave up after ${spent} attempts)`, attempts: spent };
  const next = { ...id, attempts: spent };
  const asked = signal?.retryAfterMs ?? (s === null ? undefined : parseRetryAfter(x.headers?.['retry-after'], now));
  if (asked !== undefined) {
    const w = capWait(asked, retry.maxWaitMs);
    return { action: 'retry', error, message, delayMs: w.waitMs, askedMs: w.capped ? w.askedMs : undefined, next };
  }
  return { action: 'retry', error, message, delayMs: backoffDelay(spent, retry.baseDelayMs, retry.maxDelayMs, random), next };
}
