import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  authorizationCodeAuth,
  authorizationRequest,
  authorizeScope,
  judgeCallback,
  loginClientIndex,
  loginServer,
  redirectUriOf,
} from '../src/auth/kinds/oauth2-authorization-code.js';
import { parseConfig } from '../src/config.js';

// The pure parts of `pullq login` (issue #20): which client, which scope, the authorization URL, and
// what a redirect to /callback means. The flow itself runs against oidc-provider in oauth2-login.test.ts.

const config = parseConfig(
  {
    queue: 'unit-login',
    request: { url: 'https://api.example.com/items/{id}' },
    auth: {
      type: 'oauth2', grant: 'authorization_code', tokenUrl: 'https://idp.example.com/oauth/token', authorizeUrl: 'https://idp.example.com/oauth/authorize?tenant=t1',
      scope: 'openid read', audience: 'https://api.example.com',
      clients: [{ clientId: 'app-public', name: 'public' }, { clientId: 'app-conf', clientSecret: 's3cret' }],
    },
  },
  { env: { vars: {} } },
);
const auth = authorizationCodeAuth(config.auth);

describe('authorizeScope', () => {
  it.each([
    [undefined, undefined],
    ['read', 'read'],
    ['openid', 'openid offline_access'],
    ['openid  read', 'openid read offline_access'],
    ['openid offline_access read', 'openid offline_access read'],
    ['openidx read', 'openidx read'],
  ])('%j → %j', (scope, asked) => expect(authorizeScope(scope)).toBe(asked));
});

describe('loginClientIndex', () => {
  it.each([
    ['public', 0],
    ['app-public', 0],
    ['app-conf', 1],
  ])('--client %s → client %i', (wanted, i) => expect(loginClientIndex(config.credentials, wanted)).toBe(i));

  it('a name wins over another client\'s clientId; the fp- id a quarantine line names works too; one client needs no --client', () => {
    expect(loginClientIndex([{ user: 'a', name: 'b' }, { user: 'b' }], 'b')).toBe(0);
    expect(loginClientIndex([{ user: 'a', id: 'fp-111' }, { user: 'b', id: 'fp-222' }], 'fp-222')).toBe(1);
    expect(loginClientIndex([{ user: 'only' }], undefined)).toBe(0);
  });

  it.each([
    [undefined, 'pullq login: the config has 2 clients; pick one with --client (public, app-conf)'],
    ['nobody', 'pullq login: no client "nobody" in the config; --client takes a name or clientId (public, app-conf)'],
  ])('--client %j is refused: %s', (wanted, message) => expect(() => loginClientIndex(config.credentials, wanted)).toThrow(message));
});

describe('authorizationCodeAuth', () => {
  it.each([
    [{ type: 'header' }, 'pullq login needs auth.type "oauth2" with grant "authorization_code"; this config has auth.type "header"'],
    [{ type: 'oauth2', grant: 'refresh_token' }, 'pullq login needs auth.grant "authorization_code"; this config has grant "refresh_token" (its clients need no browser login)'],
  ])('%j is refused', (a, message) => expect(() => authorizationCodeAuth(a)).toThrow(message));
});

describe('authorizationRequest', () => {
  it('S256 challenge of a fresh verifier, a fresh state, the loopback redirect, scope with offline_access and prompt=consent; the authorize URL\'s own query kept', async () => {
    const a = await authorizationRequest(auth, 'app-public', redirectUriOf(8976));
    const b = await authorizationRequest(auth, 'app-public', redirectUriOf(8976));
    const q = new URL(a.url).searchParams;
    expect(a.url.startsWith('https://idp.example.com/oauth/authorize?')).toBe(true);
    expect(Object.fromEntries(q)).toEqual({
      tenant: 't1', response_type: 'code', client_id: 'app-public', redirect_uri: 'http://127.0.0.1:8976/callback', scope: 'openid read offline_access', prompt: 'consent',
      audience: 'https://api.example.com', code_challenge: createHash('sha256').update(a.codeVerifier).digest('base64url'), code_challenge_method: 'S256', state: a.state,
    });
    expect(a.codeVerifier).toMatch(/^[A-Za-z0-9_-]{43,128}$/);
    expect(a.codeVerifier).not.toBe(b.codeVerifier);
    expect(a.state).not.toBe(b.state);
    // The URL is printed: it holds neither the verifier nor a secret.
    expect(a.url).not.toContain(a.codeVerifier);
  });

  it('a plain OAuth2 scope is sent as written, without prompt', async () => {
    const q = new URL((await authorizationRequest({ ...auth, scope: 'crm.read' }, 'x', redirectUriOf(1))).url).searchParams;
    expect([q.get('scope'), q.get('prompt')]).toEqual(['crm.read', null]);
  });
});

describe('judgeCallback', () => {
  const q = (s: string) => new URLSearchParams(s);
  it.each([
    ['code=abc&state=S', 'code', undefined],
    ['code=abc&state=S&iss=https%3A%2F%2Fidp.example.com%2Frealms%2Fr', 'code', undefined],
    ['code=abc&state=T', 'login_state_mismatch', /^login of client public: the answer's state is not this login's \(unexpected "state" response parameter value\); nothing stored, run pullq login again$/],
    ['code=abc', 'login_state_mismatch', /state" missing/],
    ['error=access_denied&error_description=User+said+no&state=S', 'login_refused', /^login of client public refused by the authorization server \(access_denied: User said no\); nothing stored$/],
    ['error=access_denied&state=T', 'login_state_mismatch', /state/],
    // A terminal escape in the description (anyone can hit the callback) is not printed.
    ['error=access_denied&error_description=no%1B%5B2J%0Adeal&state=S', 'login_refused', /\(access_denied: no\[2J deal\); nothing stored$/],
  ])('%s → %s', (query, kind, message) => {
    const r = judgeCallback(loginServer(auth, q(query)), 'app-public', q(query), 'S', 'public');
    if (kind === 'code') {
      expect(r.kind).toBe('code');
      expect(r.kind === 'code' && r.params.get('code')).toBe('abc');
    } else {
      expect(r.kind).toBe('error');
      expect(r.kind === 'error' && r.error.code).toBe(kind);
      expect(r.kind === 'error' && r.error.message).toMatch(message!);
      // Never the code.
      expect(r.kind === 'error' && r.error.message).not.toContain('abc');
      expect(r.kind === 'error' && r.error.cause).toBeUndefined();
    }
  });

  it('the issuer is the redirect\'s iss (RFC 9207) when it has one, else the token URL\'s origin', () => {
    expect(loginServer(auth, q('iss=https://idp.example.com/realms/r')).issuer).toBe('https://idp.example.com/realms/r');
    expect(loginServer(auth, q('code=x')).issuer).toBe('https://idp.example.com');
  });
});
