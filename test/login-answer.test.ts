import { describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config.js';
import { ConfigError } from '../src/errors.js';
import { classifyLoginAnswer, loginForm, renderLoginBody, type LoginVerdict } from '../src/policy/login-answer.js';

// The login kind's policy (src/policy/login-answer.ts): what body is posted, what an answer means.

const ann = { username: 'ann@example.com', password: 'p"w{username}\\n' };

describe('renderLoginBody', () => {
  it.each<[string, unknown, unknown]>([
    ['the default body', { username: '{username}', password: '{password}' }, { username: 'ann@example.com', password: 'p"w{username}\\n' }],
    ['other field names, nested', { auth: { email: '{username}', secret: '{password}' }, remember: true, ttl: 60 }, { auth: { email: 'ann@example.com', secret: 'p"w{username}\\n' }, remember: true, ttl: 60 }],
    ['inside a longer string', { user: 'tenant\\{username}', grant: 'password' }, { user: 'tenant\\ann@example.com', grant: 'password' }],
    ['other placeholders and keys stay as written', { '{username}': '{id}', x: '{user}' }, { '{username}': '{id}', x: '{user}' }],
    ['arrays and null', ['{username}', null, 1], ['ann@example.com', null, 1]],
  ])('%s', (_, template, expected) => {
    expect(renderLoginBody(template, ann)).toEqual(expected);
  });

  it('a password is JSON string content, never JSON text', () => {
    const text = JSON.stringify(renderLoginBody({ password: '{password}' }, { username: 'u', password: '","admin":true,"x":"' }));
    expect(JSON.parse(text)).toEqual({ password: '","admin":true,"x":"' });
  });
});

describe('loginForm', () => {
  it.each<[unknown, string]>([
    [{ username: 'ann@example.com', password: 'a&b=c d+é' }, 'username=ann%40example.com&password=a%26b%3Dc+d%2B%C3%A9'],
    [{ n: 1, ok: false, none: null, nested: { a: 1 } }, 'n=1&ok=false&none=&nested=%7B%22a%22%3A1%7D'],
    [['not', 'fields'], ''],
  ])('%j → %s', (body, expected) => {
    expect(loginForm(body)).toBe(expected);
  });
});

describe('classifyLoginAnswer', () => {
  const paths = { tokenPath: 'token', expiresInPath: 'expires_in' };
  it.each<[string, number, string, { tokenPath: string; expiresInPath?: string }, LoginVerdict]>([
    ['200 with token and lifetime', 200, '{"token":"t1","expires_in":3}', paths, { kind: 'ok', token: 't1', expiresIn: 3 }],
    ['201, lifetime as a string', 201, '{"token":"t1","expires_in":"3600"}', paths, { kind: 'ok', token: 't1', expiresIn: '3600' }],
    ['no expiresInPath configured', 200, '{"token":"t1","expires_in":3}', { tokenPath: 'token' }, { kind: 'ok', token: 't1', expiresIn: undefined }],
    ['lifetime missing', 200, '{"token":"t1"}', paths, { kind: 'ok', token: 't1', expiresIn: undefined }],
    ['a dot path', 200, '{"data":{"session":{"jwt":"t2"}},"meta":{"ttl":5}}', { tokenPath: 'data.session.jwt', expiresInPath: 'meta.ttl' }, { kind: 'ok', token: 't2', expiresIn: 5 }],
    ['no token at tokenPath', 200, '{"access":"t1"}', paths, { kind: 'refused', reason: 'login answer has no token at tokenPath "token": check auth.tokenPath' }],
    ['a token that is not a string', 200, '{"token":12345}', paths, { kind: 'refused', reason: 'login answer has no token at tokenPath "token": check auth.tokenPath' }],
    ['an empty token', 200, '{"token":""}', paths, { kind: 'refused', reason: 'login answer has no token at tokenPath "token": check auth.tokenPath' }],
    ['a token with a newline', 200, '{"token":"a\\nb"}', paths, { kind: 'refused', reason: 'login answer\'s token at tokenPath "token" holds a control character: it cannot be sent in a header' }],
    ['200 not JSON', 200, '<html>welcome</html>', paths, { kind: 'unavailable', why: 'login endpoint answered HTTP 200 with a body that is not JSON' }],
    ['400', 400, '{"error":"bad"}', paths, { kind: 'refused', reason: 'login refused (HTTP 400): check its username and password' }],
    ['401', 401, '', paths, { kind: 'refused', reason: 'login refused (HTTP 401): check its username and password' }],
    ['403', 403, '', paths, { kind: 'refused', reason: 'login refused (HTTP 403): check its username and password' }],
    ['422', 422, '{}', paths, { kind: 'refused', reason: 'login refused (HTTP 422): check its username and password' }],
    ['404', 404, 'Not Found', paths, { kind: 'refused', reason: 'login refused (HTTP 404): check auth.loginUrl' }],
    ['302 to a login page', 302, '', paths, { kind: 'refused', reason: 'login answered a redirect (HTTP 302): check auth.loginUrl (redirects are not followed)' }],
    ['405', 405, '', paths, { kind: 'refused', reason: 'login refused (HTTP 405)' }],
    ['408', 408, '', paths, { kind: 'unavailable', why: 'login endpoint answered HTTP 408' }],
    ['429', 429, '{"token":"t1"}', paths, { kind: 'unavailable', why: 'login endpoint answered HTTP 429' }],
    ['500', 500, '', paths, { kind: 'unavailable', why: 'login endpoint answered HTTP 500' }],
    ['503', 503, '<html>', paths, { kind: 'unavailable', why: 'login endpoint answered HTTP 503' }],
  ])('%s', (_, status, body, p, expected) => {
    expect(classifyLoginAnswer(status, body, p)).toEqual(expected);
  });

  it('no verdict repeats the body (a token or an echoed password)', () => {
    for (const [status, body] of [[200, '{"tok":"SECRET-1"}'], [401, '{"password":"SECRET-1"}'], [500, 'SECRET-1'], [200, 'SECRET-1']] as const) {
      expect(JSON.stringify(classifyLoginAnswer(status, body, { tokenPath: 'token' }))).not.toContain('SECRET-1');
    }
  });
});

describe('config of auth type login', () => {
  const request = { url: 'https://api.example.com/items/{id}' };
  const accounts = [{ username: 'ann', password: '${PW}', name: 'acct-a' }];
  const parse = (auth: Record<string, unknown>) => parseConfig({ request, auth: { type: 'login', loginUrl: 'https://api.example.com/login', accounts, ...auth } }, { env: { vars: { PW: 'pw-1' } } });

  it('defaults, and each account a credential of kind login (the password is what names it)', () => {
    const c = parse({});
    expect(c.auth).toMatchObject({ body: { username: '{username}', password: '{password}' }, form: false, tokenPath: 'token', header: 'Authorization', scheme: 'Bearer' });
    expect(c.credentials).toEqual([{ kind: 'login', user: 'ann', secret: 'pw-1', name: 'acct-a', budget: undefined, source: 'config' }]);
  });

  it.each<[Record<string, unknown>, string]>([
    [{ loginUrl: 'ftp://x/login' }, 'auth.loginUrl: must be an http(s) URL'],
    [{ tokenPath: 'a..b' }, 'auth.tokenPath: must be a dot path'],
    [{ expiresInPath: '' }, 'auth.expiresInPath: must be a dot path'],
    [{ accounts: [] }, 'auth.accounts: must list at least one account'],
    [{ accounts: [{ username: 'ann' }] }, 'auth.accounts.0.password: required'],
    [{ accounts: [{ username: 'ann', password: 'x', token: 'y' }] }, 'auth.accounts.0.token: unknown key'],
    [{ scheme: 'Bearer token' }, 'auth.scheme: must be one word'],
    [{ form: true, body: ['{username}'] }, 'auth.body: must be an object of form fields with form: true'],
    [{ form: true, body: '{username}:{password}' }, 'auth.body: must be an object of form fields with form: true'],
  ])('%j → %s', (auth, message) => {
    expect(() => parse(auth)).toThrow(ConfigError);
    expect(() => parse(auth)).toThrow(message);
  });
});
