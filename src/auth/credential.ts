import { createHmac } from 'node:crypto';
import type { Budget } from '../config.js';

/**
 * A request as a credential sees it: the whole of it, so a signer (OAuth 1.0a, an HMAC, AWS SigV4) can sign
 * what is sent. Header names are lower case; `headers` holds the configured fixed headers and the templated
 * ones. `body` is the text sent (request.body's JSON), absent for none.
 */
export interface OutgoingRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: string;
}

/** Where a credential came from, for `pullq credentials`. */
export type CredentialSource = 'config' | 'tokensFile' | 'credentialsFile' | 'library';

/**
 * One credential of the pool. `id` and `label` are safe to log and to store in
 * Redis (a name or a hash prefix); the secret stays inside `apply`.
 */
export interface Credential {
  /** Stable, secret-free key of the fleet-wide state: "fp-<12 hex>" of an HMAC of the secret (fingerprint). */
  readonly id: string;
  /** What people see: the configured name, else the id. */
  readonly label: string;
  /** The auth type it serves: header, query, basic, oauth2, login, oauth1, custom, none. */
  readonly kind: string;
  readonly source: CredentialSource;
  readonly budget?: Budget;
  /** Returns the request with this credential on it (tokens: after getting one; signers: signed afresh each call). */
  apply(request: OutgoingRequest): OutgoingRequest | Promise<OutgoingRequest>;
  /**
   * Token kinds (oauth2, login): a 401 answered `request`. Drops its token so the next apply
   * gets a new one; false when that token had already been replaced (a stale 401
   * that says nothing about the credential).
   */
  onUnauthorized?(request: OutgoingRequest): Promise<boolean>;
  /** Header names (lower case) and query parameter that carry the secret, to strip on a cross-origin redirect. */
  readonly headerNames: readonly string[];
  readonly queryParam?: string;
  /** The secret strings themselves, only so output can be scrubbed of them. */
  readonly secrets: readonly string[];
  /** Secrets learnt while running (tokens fetched), for scrubbing too. */
  seenSecrets?(): Iterable<string>;
  /** Start-up work against the fleet's state, run once when the pool opens (an OAuth2 refresh_token client lifts its quarantine for a new config refresh token). */
  prepare?(): Promise<void>;
  /** Calls this process made to a token or login endpoint (tests, benchmarks). */
  endpointCalls?(): number;
}

/**
 * A short fingerprint of a secret: enough to tell credentials apart, useless to an attacker. An HMAC-SHA-256
 * under the deployment's key (credential-key.ts), so a fingerprint seen in a log or a metric cannot be
 * checked against guessed passwords without that key; the same key gives every replica the same id.
 */
export function fingerprint(secret: string, user: string, key: Buffer): string {
  return createHmac('sha256', key).update(user).update('\0').update(secret).digest('hex').slice(0, 12);
}

/** A configured credential's id: `fp-` and the fingerprint of its secret and user (every kind, and `pullq login`). */
export function credentialId(c: { secret: string; user?: string | undefined }, key: Buffer): string {
  return `fp-${fingerprint(c.secret, c.user ?? '', key)}`;
}

/** Appends `pair` to the query, keeping every existing byte of the URL (no re-encoding). */
export function appendQuery(url: string, pair: string): string {
  const hash = url.indexOf('#');
  const head = hash === -1 ? url : url.slice(0, hash);
  const sep = head.includes('?') ? (head.endsWith('?') || head.endsWith('&') ? '' : '&') : '?';
  return head + sep + pair;
}
