import { describe, expect, it } from 'vitest';
import { compileRequestTemplate } from '../src/ids/request-template.js';

const plain = (id: string) => ({ id, columns: null });
const row = (columns: Record<string, string>) => ({ id: columns['id']!, columns });

describe('compileRequestTemplate', () => {
  it('url: {id} and {column} percent-encoded in the path and the query', () => {
    const t = compileRequestTemplate({ url: 'https://api.example.com/orgs/{org}/items/{id}?date={date}&x=1', headers: {} });
    expect([...t.names].sort()).toEqual(['date', 'id', 'org']);
    expect(t.render(row({ id: 'a/b', org: 'x y', date: '2024-01-01&z=1' }))).toEqual({
      ok: true,
      request: { url: 'https://api.example.com/orgs/x%20y/items/a%2Fb?date=2024-01-01%26z%3D1&x=1', headers: {} },
    });
  });

  it('headers: a placeholder is inserted as text; names are lower-cased; fixed headers are left to the client', () => {
    const t = compileRequestTemplate({ url: 'https://x/items', headers: { 'X-Item': 'item {id} of {org}', Accept: 'application/json' } });
    expect(t.render(row({ id: '42', org: 'acme' }))).toEqual({ ok: true, request: { url: 'https://x/items', headers: { 'x-item': 'item 42 of acme' } } });
  });

  it.each([
    ['a\r\nX-Evil: 1', 'contains a control character'],
    ['a\nb', 'contains a control character'],
    ['a\u0000b', 'contains a control character'],
    ['\ud800', 'not well-formed'],
    ['x'.repeat(3000), 'longer than'],
    ['😀', 'past U+00FF'],
  ])('headers: %j is invalid_id (%s)', (id, why) => {
    const t = compileRequestTemplate({ url: 'https://x/items', headers: { 'x-item': '{id}' } });
    const r = t.render(plain(id));
    expect(r.ok).toBe(false);
    expect(!r.ok && r.reason).toContain(why);
  });

  it('body: a whole-string placeholder becomes that JSON string; inside a longer string it is inserted into it', () => {
    const t = compileRequestTemplate({
      url: 'https://x/search',
      headers: {},
      body: { query: { id: '{id}', text: 'id:{id} org:{org}', n: 5, keep: [true, null, '{org}'], '{id}': 'keys are not templates' } },
    });
    const r = t.render(row({ id: '42', org: 'acme' }));
    expect(r.ok && JSON.parse(r.request.body!)).toEqual({ query: { id: '42', text: 'id:42 org:acme', n: 5, keep: [true, null, 'acme'], '{id}': 'keys are not templates' } });
  });

  it.each(['a"b', '"}], "evil": {"x": "', 'back\\slash', '😀', '12345'])('body: %j stays one JSON string (never spliced as text)', (id) => {
    const t = compileRequestTemplate({ url: 'https://x/search', headers: {}, body: { query: { id: '{id}' }, text: 'pre {id} post' } });
    const r = t.render(plain(id));
    expect(r.ok).toBe(true);
    const body = JSON.parse((r as { request: { body: string } }).request.body) as Record<string, unknown>;
    expect(body).toEqual({ query: { id }, text: `pre ${id} post` });
  });

  it('a column the row lacks names the column', () => {
    const t = compileRequestTemplate({ url: 'https://x/{org}/{id}', headers: {} });
    expect(t.render(row({ id: '1' }))).toEqual({ ok: false, reason: 'has no "org" column' });
    expect(t.render(plain('1'))).toEqual({ ok: false, reason: 'has no "org" column' });
  });

  it('a dot-segment in the path is invalid, in the query fine, in a header or body fine', () => {
    expect(compileRequestTemplate({ url: 'https://x/items/{id}', headers: {} }).render(plain('..')).ok).toBe(false);
    expect(compileRequestTemplate({ url: 'https://x/{org}/{id}', headers: {} }).render(row({ id: '1', org: '.' }))).toEqual({ ok: false, reason: 'column "org" is a dot-segment (. or ..) and would change the path' });
    expect(compileRequestTemplate({ url: 'https://x/items?id={id}', headers: {} }).render(plain('..')).ok).toBe(true);
    expect(compileRequestTemplate({ url: 'https://x/s', headers: {}, body: { id: '{id}' } }).render(plain('..')).ok).toBe(true);
  });

  it('braces that are no placeholder are literal', () => {
    const t = compileRequestTemplate({ url: 'https://x/items/{id}', headers: { 'x-json': '{"a": 1}' }, body: { q: '{ not one }' } });
    expect([...t.names]).toEqual(['id']);
    const r = t.render(plain('1'));
    expect(r.ok && r.request.headers).toEqual({});
    expect(r.ok && r.request.body).toBe('{"q":"{ not one }"}');
  });
});
