import type { Config, CredentialConfig } from '../../config.js';
import { classifyLoginAnswer, loginForm, renderLoginBody } from '../../policy/login-answer.js';
import { credentialId, type Credential, type OutgoingRequest } from '../credential.js';
import { CredentialRefusedError, CredentialUnavailableError } from '../credential-errors.js';
import { FleetTokenSource, type FetchedToken } from '../fleet-token-source.js';
import type { KindContext } from './kind-context.js';

/** auth of type login, as this file takes it. */
export type LoginAuth = Extract<Config['auth'], { type: 'login' }>;

/**
 * How long a login token is taken to live when the answer gives no lifetime (no expiresInPath value,
 * no JWT `exp`): until the API answers 401, which drops it and logs in again (one login for the fleet).
 */
export const LOGIN_DEFAULT_LIFETIME_MS = 24 * 3600_000;

/**
 * The longest a login request may take (ms), whatever request.timeoutMs says: below the fleet's
 * token lock (LOCK_MS, 15 s), so no other replica logs the account in meanwhile (as OAuth2 token requests).
 */
export const LOGIN_TIMEOUT_MS = 10_000;

/**
 * How long a process remembers that the login endpoint refused an account: requests granted to it
 * before its quarantine reached the fleet get the same refusal instead of each posting the password
 * again (a fixed password is a new credential: its fingerprint changes).
 */
export const LOGIN_REFUSAL_MEMORY_MS = 60_000;

/**
 * The pool's login accounts: each a token from POST loginUrl, fetched once per account for the whole
 * fleet (FleetTokenSource), refreshed at 80 % of its lifetime and after a 401, sent as header/scheme.
 */
export function loginCredentials(auth: LoginAuth, credentials: readonly CredentialConfig[], ctx: KindContext): Credential[] {
  const header = auth.header.toLowerCase();
  const prefix = auth.scheme ? `${auth.scheme} ` : '';
  return credentials.map((c) => {
    const id = credentialId(c, ctx.key);
    const label = c.name ?? id;
    let refusal: { err: CredentialRefusedError; until: number } | undefined;
    const fetch = async (): Promise<FetchedToken> => {
      if (refusal && Date.now() < refusal.until) throw refusal.err;
      try {
        return await logIn(auth, c, label, ctx);
      } catch (err) {
        if (err instanceof CredentialRefusedError) refusal = { err, until: Date.now() + LOGIN_REFUSAL_MEMORY_MS };
        throw err;
      }
    };
    const source = new FleetTokenSource(
      { id, what: `login account ${label}`, sealSecret: c.secret, sealSalt: c.user ?? '', fetch, defaultLifetimeMs: LOGIN_DEFAULT_LIFETIME_MS },
      ctx,
    );
    return {
      id,
      label,
      kind: 'login',
      source: c.source ?? 'config',
      budget: c.budget,
      headerNames: [header],
      secrets: [c.secret],
      seenSecrets: () => source.seenTokens,
      endpointCalls: () => source.endpointCalls,
      async apply(p: OutgoingRequest): Promise<OutgoingRequest> {
        return { ...p, headers: { ...p.headers, [header]: prefix + (await source.token()) } };
      },
      async onUnauthorized(p: OutgoingRequest): Promise<boolean> {
        const sent = p.headers[header];
        if (sent === undefined) return true;
        return source.invalidate(sent.startsWith(prefix) ? sent.slice(prefix.length) : sent);
      },
    } satisfies Credential;
  });
}

/**
 * One login: POSTs the account's body to loginUrl through the worker's got client, with what the API's
 * requests set there overridden (method, answer as text, no redirects, no throwing on status, the body's
 * content type, a timeout of at most LOGIN_TIMEOUT_MS); its agents kept. Throws CredentialRefusedError (quarantine) or
 * CredentialUnavailableError (later); neither carries the password, the body or the token.
 */
export async function logIn(auth: LoginAuth, c: CredentialConfig, label: string, ctx: Pick<KindContext, 'http'>): Promise<FetchedToken> {
  const body = renderLoginBody(auth.body, { username: c.user ?? '', password: c.secret });
  const [text, contentType] = auth.form ? [loginForm(body), 'application/x-www-form-urlencoded'] : [JSON.stringify(body), 'application/json'];
  let res;
  try {
    res = await ctx.http.post(auth.loginUrl, {
      body: text,
      headers: { 'content-type': contentType, accept: 'application/json' },
      responseType: 'text',
      followRedirect: false,
      throwHttpErrors: false,
      timeout: { request: Math.min(ctx.http.defaults.options.timeout.request ?? LOGIN_TIMEOUT_MS, LOGIN_TIMEOUT_MS) },
    });
  } catch (err) {
    // A got error carries the request options (the body, the password): keep only its code.
    throw new CredentialUnavailableError('login_unavailable', `login account ${label}: login endpoint unreachable (${(err as { code?: string }).code ?? 'error'}); retrying later`);
  }
  const verdict = classifyLoginAnswer(res.statusCode, res.body, auth);
  switch (verdict.kind) {
    case 'ok':
      return { token: verdict.token, expiresIn: verdict.expiresIn };
    case 'refused':
      throw new CredentialRefusedError('login_refused', `login account ${label}: ${verdict.reason}`, verdict.reason);
    case 'unavailable':
      throw new CredentialUnavailableError('login_unavailable', `login account ${label}: ${verdict.why}; retrying later`);
  }
}
