// What a refresh does, and what its outcome means (grants refresh_token, authorization_code):
// pure functions, tested by tables (test/oauth2-refresh-policy.test.ts). The I/O is in
// oauth2-refresh-grant.ts.
//
// The policy for a lost answer (the request may have reached the server, the answer never came back:
// a cut connection, a time-out after sending, the replica killed mid-refresh): the refresh token in
// flight is sent ONCE more, marked as the second attempt. If the server never got the first request
// (or it keeps a reuse grace period, as Okta and Auth0 can), that works and nothing is lost. If it had
// rotated the token, it answers invalid_grant (and a strict server revokes the grant, whose newest
// refresh token was lost with the answer anyway): the client is quarantined with one line that says
// what brings it back (recoveryHint: `pullq login` for authorization_code, a new refresh token in the
// config and a restart for refresh_token). A second lost answer is not sent a third time: quarantine. So a refresh token
// reaches the server at most twice, and only after a lost answer; never in a loop.

/** The fleet's refresh state as planRefresh reads it. */
export interface RefreshSituation {
  grant: 'refresh_token' | 'authorization_code';
  /** The client's name in messages (`pullq login --client <label>`). */
  label: string;
  /** Its place in auth.clients (`auth.clients[<index>].refreshToken`). */
  index: number;
  /** A refresh token is stored for the fleet ('' none). */
  stored: boolean;
  /** It could be opened with this client's seal key. */
  opened: boolean;
  /** grant refresh_token: the config's starting refresh token is one the fleet has not adopted yet. */
  newConfigToken: boolean;
  /** The stored token is the one the server refused (and the reason then). */
  refused: boolean;
  refusedReason?: string;
  /** The stored token is the one in flight of an unresolved request, and that request's attempt (1 or 2). */
  inFlight: boolean;
  tries: number;
}

export type RefreshPlan =
  /** Send a refresh token: the config's new one (adopting it), or the stored one; attempt 2 after a lost answer. */
  | { kind: 'send'; token: 'config' | 'stored'; tries: 1 | 2; afterLostAnswer: boolean }
  /** Do not call the token endpoint: quarantine with `reason`. */
  | { kind: 'refuse'; reason: string };

/** The client a hint names: its grant, name and place in auth.clients. */
export interface HintedClient {
  grant: 'refresh_token' | 'authorization_code';
  label: string;
  index: number;
}

/**
 * What brings a refused client back, per grant: authorization_code stores a new refresh token with
 * `pullq login`; refresh_token starts from the config's (`pullq login` refuses that grant), and a new one
 * there lifts the quarantine at the next start (oauth2-credential.ts prepare, beginRefresh-4.lua).
 */
export function recoveryHint(c: HintedClient): string {
  return c.grant === 'authorization_code' ? `run pullq login --client ${c.label}` : `put a new auth.clients[${c.index}].refreshToken in the config and restart`;
}

/** Which refresh token a refresh sends, or why it sends none. */
export function planRefresh(s: RefreshSituation): RefreshPlan {
  if (s.grant === 'refresh_token' && s.newConfigToken) return { kind: 'send', token: 'config', tries: 1, afterLostAnswer: false };
  if (!s.stored) {
    return { kind: 'refuse', reason: s.grant === 'authorization_code' ? `no refresh token yet: ${recoveryHint(s)}` : `the fleet's refresh token is gone from Redis: ${recoveryHint(s)}` };
  }
  if (!s.opened) return { kind: 'refuse', reason: `the stored refresh token was sealed under another key (clientSecret or auth.sealKey changed): ${recoveryHint(s)}` };
  if (s.refused) return { kind: 'refuse', reason: s.refusedReason ?? `refresh token refused: ${recoveryHint(s)}` };
  if (s.inFlight) {
    if (s.tries >= 2) return { kind: 'refuse', reason: `two token-endpoint answers lost in a row; the refresh token may have been rotated: ${recoveryHint(s)}` };
    return { kind: 'send', token: 'stored', tries: 2, afterLostAnswer: true };
  }
  return { kind: 'send', token: 'stored', tries: 1, afterLostAnswer: false };
}

/** How a token request ended, from what oauth4webapi returned or threw. */
export type RefreshOutcome =
  /** The server refused the refresh token, the client, the scope or the grant for good (REFUSALS). */
  | { kind: 'refused'; error: string }
  /** The server answered with another error (5xx, 429, temporarily_unavailable, invalid_request…): it rotated nothing. */
  | { kind: 'error-answer'; detail: string }
  /** The request never left (connection refused, DNS): nothing reached the server. */
  | { kind: 'not-sent'; detail: string }
  /** The request may have reached the server but no usable answer came back: the server may have rotated. */
  | { kind: 'lost'; detail: string };

/**
 * The OAuth2 error codes (RFC 6749 §5.2) that never pass on a retry: the refresh token, the client, the scope
 * or the grant refused for good (the client-credentials and JWT-bearer grants refuse these too, tokenFailureOf).
 */
const REFUSALS = new Set(['invalid_grant', 'invalid_client', 'unauthorized_client', 'unsupported_grant_type', 'invalid_scope']);
/** Connection errors raised before a byte of the request was written. */
const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ERR_INVALID_URL', 'UND_ERR_CONNECT_TIMEOUT', 'CERT_HAS_EXPIRED', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'ERR_TLS_CERT_ALTNAME_INVALID']);

/** What an error facts say: an OAuth2 error answer (status and `error`), or a thrown error's name and code (fetch's cause). */
export interface FailureFacts {
  /** The HTTP status when the server answered, else undefined. */
  status?: number;
  /** The answer's OAuth2 `error`, when it had one. */
  oauthError?: string;
  /** The thrown error's name (TimeoutError, AbortError, TypeError, OperationProcessingError…). */
  name?: string;
  /** The network error code (the fetch error's cause.code), if any. */
  code?: string;
}

/** What a failed token request means for the refresh token sent. */
export function classifyFailure(f: FailureFacts): RefreshOutcome {
  if (f.status !== undefined) {
    if (f.oauthError && REFUSALS.has(f.oauthError)) return { kind: 'refused', error: f.oauthError };
    // 401 without an OAuth2 body (a WWW-Authenticate challenge): the client was refused.
    if (f.status === 401 && !f.oauthError) return { kind: 'refused', error: 'invalid_client' };
    // A 2xx that could not be used (no JSON, no access_token): the server may have rotated.
    if (f.status >= 200 && f.status < 300) return { kind: 'lost', detail: `unusable ${f.status} answer` };
    return { kind: 'error-answer', detail: f.oauthError ? `${f.status} ${f.oauthError}` : `HTTP ${f.status}` };
  }
  if (f.code && NOT_SENT_CODES.has(f.code)) return { kind: 'not-sent', detail: f.code };
  if (f.name === 'TimeoutError' || f.name === 'AbortError') return { kind: 'lost', detail: 'no answer within the time-out' };
  return { kind: 'lost', detail: f.code ?? f.name ?? 'error' };
}

/** The quarantine line's reason for a refused refresh. */
export function refusalReason(c: HintedClient, error: string, afterLostAnswer: boolean): string {
  // Not the refresh token's fault: a new one would not help; what to check instead.
  if (error === 'invalid_scope') return `token endpoint refused the scope (${error}): check auth.scope, then restart`;
  if (error === 'unauthorized_client') return `token endpoint refused the client (${error}): the server does not let this client use grant ${c.grant}; check its settings at the server, then restart`;
  if (error === 'unsupported_grant_type') return `token endpoint refused the grant (${error}): it does not support grant ${c.grant}; check auth.tokenUrl and auth.grant, then restart`;
  const what = error === 'invalid_client' ? `token endpoint refused the client (${error})` : `refresh token refused (${error})`;
  const cause = afterLostAnswer ? ' after a lost token-endpoint answer (the server had rotated it)' : '';
  return `${what}${cause}: ${recoveryHint(c)}`;
}

/**
 * The newest refresh token `token` was rotated into, following `rotations` (sent → the one the server gave
 * for it) until no entry is left: Redis may have lost more than one rotation, or rewound to before the
 * first adoption (the config's token). `token` itself when it was never rotated away. A cycle (a server
 * that gave back a token it had rotated away) stops the walk at the first token seen twice.
 */
export function newestRotation(rotations: ReadonlyMap<string, string>, token: string): string {
  const seen = new Set<string>([token]);
  let newest = token;
  for (let next = rotations.get(newest); next !== undefined && !seen.has(next); next = rotations.get(newest)) {
    seen.add(next);
    newest = next;
  }
  return newest;
}
