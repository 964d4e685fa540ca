import * as oauth from 'oauth4webapi';
import type { CredentialConfig } from '../../config.js';
import { ConfigError, InputError, PullqError } from '../../errors.js';
import { authorizationServer, clientAuthOf, endpointOptions } from './oauth2-client-auth.js';
import type { OAuth2Auth } from './kind-context.js';
import { withoutIdToken } from './oauth2-token-answer.js';

/**
 * `pullq login` failed (exit 1): the IdP answered an error (access_denied), the answer's `state` was not
 * ours, or the token endpoint refused the code. Never carries the code, the verifier or a token: oauth4webapi's
 * errors hold the callback's parameters in their `cause`, so only their codes are kept.
 */
export class LoginError extends PullqError {
  constructor(code: 'login_refused' | 'login_aborted' | 'login_state_mismatch' | 'login_exchange_refused' | 'login_exchange_unavailable' | 'login_no_refresh_token' | 'login_listen_failed', message: string) {
    super(code, message);
  }
}

/** No answer reached the callback in time (exit 2): nothing was stored; run `pullq login` again. */
export class LoginTimeoutError extends PullqError {
  constructor(message: string) {
    super('login_timeout', message, { exitCode: 2 });
  }
}

/** How long `pullq login` waits for the browser's redirect by default: 5 minutes (SPEC). */
export const LOGIN_TIMEOUT_MS = 5 * 60_000;

/** The auth of a config `pullq login` can serve (oauth2 with grant authorization_code), else a ConfigError saying what to write. */
export function authorizationCodeAuth(auth: { type: string; grant?: string }): OAuth2Auth {
  if (auth.type !== 'oauth2') throw new ConfigError(`pullq login needs auth.type "oauth2" with grant "authorization_code"; this config has auth.type "${auth.type}"`);
  if (auth.grant !== 'authorization_code') throw new ConfigError(`pullq login needs auth.grant "authorization_code"; this config has grant "${auth.grant}" (its clients need no browser login)`);
  return auth as OAuth2Auth;
}

/**
 * The client `pullq login --client NAME` means: by name, clientId or credential id (the `fp-…` a
 * quarantine line names an unnamed client by); without --client the only one. Returns its index in
 * config order (the pool's credentials are in the same order).
 */
export function loginClientIndex(clients: readonly { name?: string; user?: string; id?: string }[], wanted: string | undefined): number {
  const names = clients.map((c) => c.name ?? c.user!);
  if (wanted === undefined) {
    if (clients.length === 1) return 0;
    throw new InputError(`pullq login: the config has ${clients.length} clients; pick one with --client (${names.join(', ')})`);
  }
  for (const field of ['name', 'user', 'id'] as const) {
    const i = clients.findIndex((c) => c[field] === wanted);
    if (i !== -1) return i;
  }
  throw new InputError(`pullq login: no client ${JSON.stringify(wanted)} in the config; --client takes a name or clientId (${names.join(', ')})`);
}

/**
 * The scope asked for at the authorize endpoint: auth.scope as written, plus `offline_access` when it
 * names `openid` and not that already. An OpenID Connect provider issues a refresh token only for
 * offline_access (OIDC Core §11: asked with prompt=consent), and pullq needs one; a plain OAuth2 server may not know that scope,
 * so it is not added there (such servers hand out refresh tokens by their own client settings).
 */
export function authorizeScope(scope: string | undefined): string | undefined {
  if (scope === undefined) return undefined;
  const parts = scope.split(/\s+/).filter((s) => s !== '');
  if (parts.includes('openid') && !parts.includes('offline_access')) parts.push('offline_access');
  return parts.join(' ');
}

/** RFC 8252 §7.3: the loopback redirect URI on the IPv4 literal (not "localhost", which may resolve elsewhere). */
export function redirectUriOf(port: number): string {
  return `http://127.0.0.1:${port}/callback`;
}

/** One authorization request: the URL to open, and what only this process knows (state, PKCE verifier). */
export interface AuthorizationRequest {
  url: string;
  state: string;
  codeVerifier: string;
  redirectUri: string;
}

/** The authorization URL with PKCE S256 (RFC 7636) and a random state (RFC 6749 §10.12); the URL holds no secret. */
export async function authorizationRequest(auth: OAuth2Auth, clientId: string, redirectUri: string): Promise<AuthorizationRequest> {
  const codeVerifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const url = new URL(auth.authorizeUrl!);
  url.searchParams.set('response_type', 'code');
  url.searchParams.set('client_id', clientId);
  url.searchParams.set('redirect_uri', redirectUri);
  const scope = authorizeScope(auth.scope);
  if (scope) url.searchParams.set('scope', scope);
  // OIDC Core §11: offline access is asked with prompt=consent (providers drop offline_access without it).
  if (scope && /(^| )openid( |$)/.test(scope) && /(^| )offline_access( |$)/.test(scope)) url.searchParams.set('prompt', 'consent');
  if (auth.audience) url.searchParams.set('audience', auth.audience);
  url.searchParams.set('code_challenge', await oauth.calculatePKCECodeChallenge(codeVerifier));
  url.searchParams.set('code_challenge_method', 'S256');
  url.searchParams.set('state', state);
  return { url: url.href, state, codeVerifier, redirectUri };
}

/**
 * The server metadata for one login. No discovery: the config names the endpoints. The issuer is the
 * `iss` the redirect carries when it carries one (RFC 9207; with one configured server there is no
 * mix-up to guard against), else the token URL's origin.
 */
export function loginServer(auth: OAuth2Auth, callback: URLSearchParams): oauth.AuthorizationServer {
  const as = authorizationServer(auth.tokenUrl, auth.authorizeUrl);
  const iss = callback.get('iss');
  return iss ? { ...as, issuer: iss } : as;
}

/** What the redirect to /callback said. */
export type CallbackOutcome = { kind: 'code'; params: URLSearchParams } | { kind: 'error'; error: LoginError };

/**
 * Judges the redirect's query (oauth4webapi's validateAuthResponse): our state and a code, or why not.
 * The messages name the IdP's error code and description, never the code or the state.
 */
export function judgeCallback(as: oauth.AuthorizationServer, clientId: string, query: URLSearchParams, expectedState: string, label: string): CallbackOutcome {
  try {
    return { kind: 'code', params: oauth.validateAuthResponse(as, { client_id: clientId }, query, expectedState) };
  } catch (err) {
    if (err instanceof oauth.AuthorizationResponseError) {
      const why = err.error_description ? `: ${oneLine(err.error_description)}` : '';
      return { kind: 'error', error: new LoginError('login_refused', `login of client ${label} refused by the authorization server (${oneLine(err.error)}${why}); nothing stored`) };
    }
    const message = (err as Error).message;
    if (/"state"/.test(message)) {
      return { kind: 'error', error: new LoginError('login_state_mismatch', `login of client ${label}: the answer's state is not this login's (${message}); nothing stored, run pullq login again`) };
    }
    return { kind: 'error', error: new LoginError('login_refused', `login of client ${label}: unusable answer from the authorization server (${message}); nothing stored`) };
  }
}

/** What the token endpoint gave for the code. */
export interface ExchangedTokens {
  refreshToken: string;
  accessToken: string;
  expiresIn: number | undefined;
}

/** RFC 6749 §4.1.3 with the PKCE verifier: the code for tokens; the client authenticates as its config says (a public client: none). */
export async function exchangeCode(
  as: oauth.AuthorizationServer,
  c: CredentialConfig,
  params: URLSearchParams,
  request: Pick<AuthorizationRequest, 'redirectUri' | 'codeVerifier'>,
  label: string,
  timeoutMs: number,
): Promise<ExchangedTokens> {
  const client: oauth.Client = { client_id: c.user! };
  const auth = await clientAuthOf(c, `client ${label}`);
  let response: Response;
  try {
    response = await oauth.authorizationCodeGrantRequest(as, client, auth, params, request.redirectUri, request.codeVerifier, endpointOptions(as.token_endpoint!, timeoutMs));
  } catch (err) {
    throw new LoginError('login_exchange_unavailable', `login of client ${label}: token endpoint unreachable (${codeOf(err)}); nothing stored, run pullq login again`);
  }
  let tokens: oauth.TokenEndpointResponse;
  try {
    tokens = await oauth.processAuthorizationCodeResponse(as, client, await withoutIdToken(response));
  } catch (err) {
    if (err instanceof oauth.ResponseBodyError) {
      const why = err.error_description ? `: ${oneLine(err.error_description)}` : '';
      throw new LoginError('login_exchange_refused', `login of client ${label}: token endpoint refused the code (HTTP ${err.status} ${oneLine(err.error)}${why}); nothing stored, run pullq login again`);
    }
    throw new LoginError('login_exchange_refused', `login of client ${label}: token endpoint answer unusable (${(err as Error).message}); nothing stored`);
  }
  if (!tokens.refresh_token) {
    throw new LoginError(
      'login_no_refresh_token',
      `login of client ${label}: the authorization server gave no refresh token; allow the refresh_token grant for the client at the IdP (an OpenID provider: put "openid" in auth.scope, pullq adds offline_access); nothing stored`,
    );
  }
  return { refreshToken: tokens.refresh_token, accessToken: tokens.access_token, expiresIn: tokens.expires_in };
}

/** An error's code only (a fetch error's cause may hold the request). */
function codeOf(err: unknown): string {
  const e = err as { code?: unknown; cause?: { code?: unknown }; name?: string };
  const code = e.cause?.code ?? e.code ?? e.name;
  return typeof code === 'string' ? code : 'error';
}

/** Text from the IdP (or whoever hit the callback) as one short line with no control characters: it is printed to a terminal. */
function oneLine(s: string): string {
  const line = s.replace(/\s+/g, ' ').replace(/[\u0000-\u001f\u007f-\u009f]/g, '').trim();
  return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}
