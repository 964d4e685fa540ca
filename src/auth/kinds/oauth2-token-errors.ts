import * as oauth from 'oauth4webapi';
import { CredentialRefusedError, OAuth2RefusedError, OAuth2UnavailableError } from '../credential-errors.js';
import type { FetchedToken } from '../fleet-token-source.js';

/** What a failed token-endpoint call means for the client: refused for good (quarantine, `reason` its one line) or try later. */
export type TokenFailure = { kind: 'refused'; reason: string } | { kind: 'unavailable'; detail: string };

/**
 * RFC 6749 §5.2 / RFC 7523 §3.1 error codes that refuse a client or its grant for good, with what to do. Other
 * codes in a 4xx answer (invalid_request, unsupported_grant_type, …) are refused too, with the generic hint.
 */
const REFUSED_HINTS: Record<string, string> = {
  invalid_client: 'check its client id and its secret or key',
  invalid_grant: 'check its key, subject and the audience',
  unauthorized_client: 'the server does not let this client use this grant',
  invalid_scope: 'check auth.scope',
};
/** Codes a server may send in a 4xx that say "not now" (RFC 6749 §4.1.2.1 names the first two; RFC 8628 slow_down). */
const TRANSIENT_CODES = new Set(['temporarily_unavailable', 'server_error', 'slow_down']);

/** An error code as the server sent it, if it looks like one (RFC 6749 §5.2: printable ASCII, no quotes): never free text. */
function codeOf(value: unknown): string | undefined {
  return typeof value === 'string' && /^[A-Za-z0-9_.:-]{1,64}$/.test(value) ? value : undefined;
}

const unavailableStatus = (status: number) => status >= 500 || status === 429 || status === 408;

function byStatus(status: number, hints: Record<string, string>): TokenFailure {
  if (unavailableStatus(status)) return { kind: 'unavailable', detail: `token endpoint answered HTTP ${status}` };
  if (status >= 300 && status < 400) return { kind: 'refused', reason: `token endpoint answered HTTP ${status} (a redirect); check auth.tokenUrl` };
  if (status === 200) return { kind: 'unavailable', detail: 'token endpoint answered HTTP 200 without JSON' };
  return { kind: 'refused', reason: `token endpoint refused the client (HTTP ${status}); ${hints['invalid_client'] ?? REFUSED_HINTS['invalid_client']}` };
}

function byCode(code: string, status: number, hints: Record<string, string>): TokenFailure {
  if (status === 429 || status >= 500 || TRANSIENT_CODES.has(code)) return { kind: 'unavailable', detail: `token endpoint answered ${code} (HTTP ${status})` };
  const what = code === 'invalid_grant' ? 'grant' : code === 'invalid_scope' ? 'scope' : 'client';
  return { kind: 'refused', reason: `token endpoint refused the ${what}: ${code}; ${hints[code] ?? REFUSED_HINTS[code] ?? 'check the client and auth settings'}` };
}

/**
 * What an error from an oauth4webapi token-endpoint call (or its fetch) means: a ResponseBodyError's OAuth2 code
 * (invalid_client, invalid_grant, unauthorized_client, invalid_scope, … → refused, naming the code), a 401 challenge,
 * an answer that is no token endpoint answer (5xx, 429, 408 → later; a redirect or another 4xx → refused), a
 * network error or time-out (later). `hints` overrides what the reason says to do per code (a grant's own advice).
 * Only the status and the error code are kept: never error_description, a body, or a request.
 */
export function tokenFailureOf(err: unknown, hints: Record<string, string> = {}): TokenFailure {
  if (err instanceof oauth.ResponseBodyError) return byCode(codeOf(err.error) ?? 'an error', err.status, hints);
  if (err instanceof oauth.WWWAuthenticateChallengeError) {
    const code = codeOf(err.cause.find((c) => c.parameters['error'])?.parameters['error']);
    return code ? byCode(code, err.status, hints) : byStatus(err.status, hints);
  }
  if (err instanceof oauth.UnsupportedOperationError) return { kind: 'refused', reason: 'token endpoint answered a token_type pullq cannot send (not Bearer)' };
  if (err instanceof oauth.OperationProcessingError) {
    if (err.cause instanceof Response) return byStatus(err.cause.status, hints);
    switch (err.code) {
      case oauth.PARSE_ERROR:
        return { kind: 'unavailable', detail: 'token endpoint answered a body that is not JSON' };
      case oauth.INVALID_RESPONSE:
        return { kind: 'refused', reason: 'token endpoint answered no usable token (access_token, token_type or expires_in missing or wrong)' };
      case oauth.HTTP_REQUEST_FORBIDDEN:
      case oauth.REQUEST_PROTOCOL_FORBIDDEN:
        return { kind: 'refused', reason: 'auth.tokenUrl is plain http on a host that is not loopback; use https' };
      default:
        return { kind: 'refused', reason: `token endpoint answer not usable (${codeOf(err.code) ?? 'unknown'})` };
    }
  }
  const name = (err as { name?: unknown } | null)?.name;
  if (name === 'TimeoutError' || name === 'AbortError') return { kind: 'unavailable', detail: 'token endpoint timed out' };
  // fetch's TypeError("fetch failed") carries the socket error as its cause (an AggregateError when several addresses failed).
  const cause = (err as { cause?: { code?: unknown; errors?: { code?: unknown }[] } } | null)?.cause;
  const code = codeOf(cause?.code) ?? codeOf(cause?.errors?.[0]?.code) ?? codeOf((err as { code?: unknown } | null)?.code);
  return { kind: 'unavailable', detail: `token endpoint unreachable (${code ?? 'network error'})` };
}

/**
 * Runs one token-endpoint call of an oauth4webapi grant and turns its answer into a FetchedToken, or its failure into
 * OAuth2RefusedError (quarantine) / OAuth2UnavailableError (later). A CredentialRefusedError from the call itself (an
 * unusable private key) passes as it is.
 */
export async function callTokenEndpoint(what: string, call: () => Promise<oauth.TokenEndpointResponse>, hints?: Record<string, string>): Promise<FetchedToken & { refreshToken?: string }> {
  let answer: oauth.TokenEndpointResponse;
  try {
    answer = await call();
  } catch (err) {
    if (err instanceof CredentialRefusedError) throw err;
    const failure = tokenFailureOf(err, hints);
    if (failure.kind === 'refused') throw new OAuth2RefusedError(`${what}: ${failure.reason}`, failure.reason);
    throw new OAuth2UnavailableError(`${what}: ${failure.detail}`);
  }
  return { token: answer.access_token, expiresIn: answer.expires_in, ...(answer.refresh_token ? { refreshToken: answer.refresh_token } : {}) };
}
