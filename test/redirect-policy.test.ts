import { describe, expect, it } from 'vitest';
import { methodAfterRedirect } from '../src/policy/method-after-redirect.js';
import { redirectRefusal, type RedirectRules } from '../src/policy/redirect-refusal.js';

const strict: RedirectRules = { allowPrivate: false, allowDowngrade: false };
const DOWNGRADE = 'redirect from https://api.example.com to http://api.example.com refused: it leaves HTTPS; set request.redirects.allowDowngrade: true to follow it';

describe('redirectRefusal', () => {
  it.each<[string, { request: string; from?: string; to: string; addresses?: string[] }, Partial<RedirectRules>, string | undefined]>([
    ['same origin, private address', { request: 'http://127.0.0.1:8080/a', to: 'http://127.0.0.1:8080/b', addresses: ['127.0.0.1'] }, {}, undefined],
    ['same origin by hostname', { request: 'http://api.internal/a', to: 'http://api.internal/b?x=1', addresses: ['10.0.0.5'] }, {}, undefined],
    ['another origin, public', { request: 'https://api.example.com/a', to: 'https://cdn.example.net/b', addresses: ['93.184.215.14'] }, {}, undefined],
    ['another port on loopback', { request: 'http://127.0.0.1:8080/a', to: 'http://127.0.0.1:9090/b', addresses: ['127.0.0.1'] }, {},
      'redirect to http://127.0.0.1:9090 refused: another origin at a non-public address (127.0.0.1); set request.redirects.allowPrivate: true to follow it'],
    ['cloud metadata; path, query and user info not named', { request: 'https://api.example.com/a', to: 'http://u:p@169.254.169.254/latest/meta-data/?token=s', addresses: ['169.254.169.254'] }, { allowDowngrade: true },
      'redirect to http://169.254.169.254 refused: another origin at a non-public address (169.254.169.254); set request.redirects.allowPrivate: true to follow it'],
    ['one private address among public ones', { request: 'https://api.example.com/a', to: 'https://mixed.example.net/', addresses: ['93.184.215.14', '::1'] }, {},
      'redirect to https://mixed.example.net refused: another origin at a non-public address (::1); set request.redirects.allowPrivate: true to follow it'],
    ['private allowed', { request: 'http://127.0.0.1:8080/a', to: 'http://127.0.0.1:9090/b', addresses: ['127.0.0.1'] }, { allowPrivate: true }, undefined],
    ['not resolved yet: only the URL is judged', { request: 'http://127.0.0.1:8080/a', to: 'http://127.0.0.1:9090/b' }, {}, undefined],
    ['https → http, same host', { request: 'https://api.example.com/a', to: 'http://api.example.com/b', addresses: ['93.184.215.14'] }, { allowPrivate: true }, DOWNGRADE],
    ['https → http before any address is known', { request: 'https://api.example.com/a', to: 'http://api.example.com/b' }, {}, DOWNGRADE],
    ['downgrade judged on the hop, not the request', { request: 'http://api.example.com/a', from: 'https://api.example.com/b', to: 'http://api.example.com/c' }, {}, DOWNGRADE],
    ['https → http allowed', { request: 'https://api.example.com/a', to: 'http://api.example.com/b', addresses: ['93.184.215.14'] }, { allowDowngrade: true }, undefined],
    ['http → https', { request: 'http://api.example.com/a', to: 'https://api.example.com/b', addresses: ['93.184.215.14'] }, {}, undefined],
  ])('%s', (_, hop, rules, expected) => {
    const request = new URL(hop.request);
    const from = new URL(hop.from ?? hop.request);
    expect(redirectRefusal({ request, from, to: new URL(hop.to), addresses: hop.addresses }, { ...strict, ...rules })).toBe(expected);
  });
});

describe('methodAfterRedirect', () => {
  it.each([
    ['POST', 301, 'GET'], ['POST', 302, 'GET'], ['POST', 303, 'GET'], ['POST', 307, 'POST'], ['POST', 308, 'POST'],
    ['GET', 301, 'GET'], ['GET', 303, 'GET'], ['GET', 307, 'GET'],
    ['HEAD', 301, 'HEAD'], ['HEAD', 302, 'HEAD'], ['HEAD', 303, 'HEAD'], ['HEAD', 308, 'HEAD'],
    ['post', 302, 'GET'],
  ])('%s, %i → %s', (method, status, expected) => {
    expect(methodAfterRedirect(method, status)).toBe(expected);
  });
});
