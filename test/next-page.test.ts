import { describe, expect, it } from 'vitest';
import type { Pagination } from '../src/config.js';
import { nextPage, pageUrl, valueAt, withQueryParam, withoutQueryParam } from '../src/policy/next-page.js';

const link: Pagination = { type: 'link', maxPages: 100 };
const cursor: Pagination = { type: 'cursor', cursorPath: 'meta.next_cursor', param: 'cursor', maxPages: 100 };
const page: Pagination = { type: 'page', param: 'page', start: 1, itemsPath: 'items', maxPages: 100 };
const base = 'https://api.example.com/users/a%20b/events?per_page=50';
const at = (n: number, next: string | number) => ({ n, next });

describe('pageUrl', () => {
  it.each([
    [link, undefined, base],
    [link, at(2, 'https://api.example.com/x?page=2'), 'https://api.example.com/x?page=2'],
    [cursor, undefined, base],
    [cursor, at(2, 'c 2&x'), `${base}&cursor=c%202%26x`],
    [page, undefined, `${base}&page=1`],
    [page, at(3, 3), `${base}&page=3`],
    [{ ...page, start: 0 }, undefined, `${base}&page=0`],
  ] as const)('%j at %j → %s', (p, a, url) => {
    expect(pageUrl(p, base, a)).toBe(url);
  });

  it('replaces a parameter the template already has, keeping the rest byte for byte', () => {
    expect(withQueryParam('https://x/a?page=1&q=a%20b&page=9#f', 'page', '2')).toBe('https://x/a?q=a%20b&page=2');
    expect(withQueryParam('https://x/a', 'page', '2')).toBe('https://x/a?page=2');
    expect(withQueryParam('https://x/a?', 'page', '2')).toBe('https://x/a?page=2');
    expect(withoutQueryParam('https://x/a?api_key=s&b=1&api%5Fkey=t', 'api_key')).toBe('https://x/a?b=1');
    expect(withoutQueryParam('https://x/a?api_key=s', 'api_key')).toBe('https://x/a');
  });
});

describe('nextPage', () => {
  const x = (o: { headers?: Record<string, string>; data?: unknown; page?: number; current?: string | number; url?: string; credentialParam?: string }) => ({
    url: o.url ?? 'https://api.example.com/feed/1?page=1',
    headers: o.headers ?? {},
    data: o.data,
    page: o.page ?? 1,
    current: o.current,
    credentialParam: o.credentialParam,
  });

  it.each([
    ['absolute same origin', { headers: { link: '<https://api.example.com/feed/1?page=2>; rel="next"' } }, { kind: 'next', next: 'https://api.example.com/feed/1?page=2' }],
    ['relative, resolved against the request URL', { headers: { link: '</feed/1?page=2>; rel="next"' } }, { kind: 'next', next: 'https://api.example.com/feed/1?page=2' }],
    ['relative path', { headers: { link: '<?page=2>; rel="next"' } }, { kind: 'next', next: 'https://api.example.com/feed/1?page=2' }],
    ['fragment dropped', { headers: { link: '<?page=2#top>; rel="next"' } }, { kind: 'next', next: 'https://api.example.com/feed/1?page=2' }],
    ['no next link: last', { headers: { link: '<?page=1>; rel="prev"' } }, { kind: 'last', truncated: false }],
    ['no header: last', {}, { kind: 'last', truncated: false }],
    ['another host', { headers: { link: '<https://evil.example.com/feed/1?page=2>; rel="next"' } }, { kind: 'cross_origin', url: 'https://evil.example.com' }],
    ['another port', { headers: { link: '<https://api.example.com:8443/feed?page=2>; rel="next"' } }, { kind: 'cross_origin', url: 'https://api.example.com:8443' }],
    ['https → http', { headers: { link: '<http://api.example.com/feed?page=2>; rel="next"' } }, { kind: 'cross_origin', url: 'http://api.example.com' }],
    ['another scheme', { headers: { link: '<file:///etc/passwd>; rel="next"' } }, { kind: 'cross_origin', url: 'file:' }],
    ['cap reached', { page: 100, headers: { link: '<?page=101>; rel="next"' } }, { kind: 'last', truncated: true }],
    ['the credential param is taken off', { credentialParam: 'api_key', headers: { link: '<?page=2&api_key=secret>; rel="next"' } }, { kind: 'next', next: 'https://api.example.com/feed/1?page=2' }],
  ] as const)('link: %s', (_, o, want) => {
    expect(nextPage(link, x(o))).toEqual(want);
  });

  it.each([
    ['a cursor', { meta: { next_cursor: 'abc' } }, { kind: 'next', next: 'abc' }],
    ['a number', { meta: { next_cursor: 7 } }, { kind: 'next', next: '7' }],
    ['null', { meta: { next_cursor: null } }, { kind: 'last', truncated: false }],
    ['""', { meta: { next_cursor: '' } }, { kind: 'last', truncated: false }],
    ['missing', { meta: {} }, { kind: 'last', truncated: false }],
    ['not JSON (text)', 'plain text', { kind: 'last', truncated: false }],
    ['an object', { meta: { next_cursor: { a: 1 } } }, { kind: 'last', truncated: false }],
  ] as const)('cursor: %s', (_, data, want) => {
    expect(nextPage(cursor, x({ data }))).toEqual(want);
  });

  // A cursor is sent as a query parameter: it must be well-formed Unicode (encodeURIComponent throws on a lone surrogate).
  it.each([
    ['a lone high surrogate', '\ud800', 'unusable'],
    ['a lone low surrogate', '\udc00', 'unusable'],
    ['a lone surrogate inside text', 'ab\udbffcd', 'unusable'],
    ['a low before a high (reversed pair)', '\ude00\ud83d', 'unusable'],
    ['a valid surrogate pair', 'a\ud83d\ude00b', 'next'],
    ['non-ASCII, no surrogates', 'é/ü ?&', 'next'],
  ] as const)('cursor: %s', (_, c, kind) => {
    const got = nextPage(cursor, x({ data: { meta: { next_cursor: c } }, page: 3 }));
    if (kind === 'next') {
      expect(got).toEqual({ kind: 'next', next: c });
      expect(pageUrl(cursor, base, at(4, c))).toBe(`${base}&cursor=${encodeURIComponent(c)}`);
    } else {
      expect(got).toEqual({ kind: 'unusable', message: "page 3's cursor (meta.next_cursor) is not well-formed Unicode (it has a lone surrogate): it cannot be put in a URL" });
    }
  });

  it('cursor: a lone surrogate past the cap does not matter (no next request)', () => {
    expect(nextPage({ ...cursor, maxPages: 2 }, x({ data: { meta: { next_cursor: '\ud800' } }, page: 2 }))).toEqual({ kind: 'last', truncated: true });
  });

  it('cursor: the cap', () => {
    expect(nextPage({ ...cursor, maxPages: 2 }, x({ data: { meta: { next_cursor: 'c' } }, page: 2 }))).toEqual({ kind: 'last', truncated: true });
    expect(nextPage({ ...cursor, maxPages: 2 }, x({ data: { meta: { next_cursor: null } }, page: 2 }))).toEqual({ kind: 'last', truncated: false });
  });

  it.each([
    ['items: next number', { items: [1] }, 1, { kind: 'next', next: 2 }],
    ['from a later page', { items: [1, 2] }, 7, { kind: 'next', next: 8 }],
    ['empty: last', { items: [] }, 3, { kind: 'last', truncated: false }],
    ['missing: last', {}, 3, { kind: 'last', truncated: false }],
    ['not an array: last', { items: 'x' }, 3, { kind: 'last', truncated: false }],
  ] as const)('page: %s', (_, data, current, want) => {
    expect(nextPage(page, x({ data, current }))).toEqual(want);
  });

  it('page: the first page counts from start', () => {
    expect(nextPage({ ...page, start: 0 }, x({ data: { items: [1] } }))).toEqual({ kind: 'next', next: 1 });
  });
});

describe('valueAt', () => {
  it.each([
    [{ a: { b: 1 } }, 'a.b', 1],
    [{ a: [{ id: 'x' }, { id: 'y' }] }, 'a.-1.id', 'y'],
    [{ a: [{ id: 'x' }] }, 'a.0.id', 'x'],
    [{ a: [] }, 'a.-1.id', undefined],
    [{ a: null }, 'a.b', undefined],
    [{}, 'constructor', undefined],
    ['text', 'a', undefined],
  ])('%j at %s → %j', (data, path, want) => {
    expect(valueAt(data, path)).toEqual(want);
  });
});
