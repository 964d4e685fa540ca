import { describe, expect, it } from 'vitest';
import { compileIdUrl } from '../src/ids/id-url.js';

describe('compileIdUrl', () => {
  const inPath = compileIdUrl('https://api.example.com/v1/items/{id}?full=1');
  const inQuery = compileIdUrl('https://api.example.com/v1/items?id={id}&full=1');

  it.each([
    ['12345', 'https://api.example.com/v1/items/12345?full=1'],
    ['a:b', 'https://api.example.com/v1/items/a%3Ab?full=1'],
    ['x y', 'https://api.example.com/v1/items/x%20y?full=1'],
    ['ü', 'https://api.example.com/v1/items/%C3%BC?full=1'],
    ['a/b', 'https://api.example.com/v1/items/a%2Fb?full=1'],
    ['a/../b', 'https://api.example.com/v1/items/a%2F..%2Fb?full=1'],
    ['%2e%2e', 'https://api.example.com/v1/items/%252e%252e?full=1'],
    ['?x=1', 'https://api.example.com/v1/items/%3Fx%3D1?full=1'],
    ['#f', 'https://api.example.com/v1/items/%23f?full=1'],
  ])('path: %j stays one segment', (id, url) => {
    const r = inPath(id);
    expect(r).toEqual({ ok: true, url });
    // The URL parser must not move the ID out of its segment.
    expect(new URL(url).pathname.split('/')).toHaveLength(4);
    expect(decodeURIComponent(new URL(url).pathname.split('/')[3]!)).toBe(id);
  });

  it.each(['.', '..'])('path: dot-segment %j is invalid', (id) => {
    expect(inPath(id)).toMatchObject({ ok: false });
  });

  it('query: dots are fine, & and = are encoded', () => {
    expect(inQuery('..')).toEqual({ ok: true, url: 'https://api.example.com/v1/items?id=..&full=1' });
    const r = inQuery('a&full=0');
    expect(r.ok && new URL(r.url).searchParams.get('id')).toBe('a&full=0');
    expect(r.ok && new URL(r.url).searchParams.getAll('full')).toEqual(['1']);
  });

  it.each([
    ['a\u0000b', 'control character'],
    ['a\nb', 'control character'],
    ['x'.repeat(3000), 'longer than'],
    ['\ud800', 'well-formed'],
  ])('%j is invalid (%s)', (id, why) => {
    const r = inPath(id);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.reason).toContain(why);
  });
});
