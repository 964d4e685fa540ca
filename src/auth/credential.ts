import { createHmac } from 'node:crypto';
import type { Budget, CredentialConfig } from '../config.js';

/** How a request looks before and after a credential is put on it. */
export interface RequestParts {
  url: string;
  headers: Record<string, string>;
}

/**
 * One credential of the pool. `id` and `label` are safe to log and to store in
 * Redis (a name or a hash prefix); the secret stays inside `apply`.
 */
export interface Credential {
  /** Stable, secret-free key of the fleet-wide state: "fp-<12 hex>" of an HMAC of the secret (fingerprint). */
  readonly id: string;
  /** What people see: the configured name, else the id. */
  readonly label: string;
  readonly budget?: Budget;
  /** Returns the request with this credential on it (OAuth2: after getting a token). */
  apply(parts: RequestParts): RequestParts | Promise<RequestParts>;
  /**
   * OAuth2 only: a 401 answered `parts`. Drops its token so the next apply
   * refreshes; false when that token had already been replaced (a stale 401
   * that says nothing about the client).
   */
  onUnauthorized?(parts: RequestParts): Promise<boolean>;
  /** Header names (lower case) and query parameter that carry the secret, to strip on a cross-origin redirect. */
  readonly headerNames: readonly string[];
  readonly queryParam?: string;
  /** The secret strings themselves (and OAuth2 tokens seen), only so output can be scrubbed of them. */
  readonly secrets: readonly string[];
}

/**
 * A short fingerprint of a secret: enough to tell credentials apart, useless to an attacker. An HMAC-SHA-256
 * under the deployment's key (credential-key.ts), so a fingerprint seen in a log or a metric cannot be
 * checked against guessed passwords without that key; the same key gives every replica the same id.
 */
export function fingerprint(secret: string, user: string, key: Buffer): string {
  return createHmac('sha256', key).update(user).update('\0').update(secret).digest('hex').slice(0, 12);
}

/** A credential whose request decoration needs no I/O (header, query, basic). */
export interface StaticCredential extends Credential {
  apply(parts: RequestParts): RequestParts;
}

export interface AuthShape {
  type: 'header' | 'query' | 'basic' | 'oauth2';
  header?: string;
  scheme?: string;
  param?: string;
}

/** Builds the request decoration for one configured static credential; `key` names it (fingerprint). */
export function createCredential(c: CredentialConfig, shape: AuthShape, key: Buffer): StaticCredential {
  const id = `fp-${fingerprint(c.secret, c.user ?? '', key)}`;
  const base = { id, label: c.name ?? id, budget: c.budget, secrets: [c.secret] };
  switch (shape.type) {
    case 'header': {
      const header = (shape.header ?? 'Authorization').toLowerCase();
      const value = shape.scheme ? `${shape.scheme} ${c.secret}` : c.secret;
      return { ...base, headerNames: [header], apply: (p) => ({ url: p.url, headers: { ...p.headers, [header]: value } }) };
    }
    case 'query': {
      const param = shape.param!;
      const pair = `${encodeURIComponent(param)}=${encodeURIComponent(c.secret)}`;
      return { ...base, headerNames: [], queryParam: param, apply: (p) => ({ url: appendQuery(p.url, pair), headers: p.headers }) };
    }
    case 'basic': {
      const value = `Basic ${Buffer.from(`${c.user ?? ''}:${c.secret}`, 'utf8').toString('base64')}`;
      return { ...base, secrets: [c.secret, value.slice(6)], headerNames: ['authorization'], apply: (p) => ({ url: p.url, headers: { ...p.headers, authorization: value } }) };
    }
    case 'oauth2':
      throw new Error('oauth2 credentials are built by the OAuth2 client, not createCredential');
  }
}

/** Appends `pair` to the query, keeping every existing byte of the URL (no re-encoding). */
function appendQuery(url: string, pair: string): string {
  const hash = url.indexOf('#');
  const head = hash === -1 ? url : url.slice(0, hash);
  const sep = head.includes('?') ? (head.endsWith('?') || head.endsWith('&') ? '' : '&') : '?';
  return head + sep + pair;
}
