import { describe, expect, it } from 'vitest';
import { linkTarget, parseLinkHeader } from '../src/http/link-header.js';

describe('parseLinkHeader (RFC 8288)', () => {
  it('GitHub: several links, rel per link', () => {
    const v = '<https://api.github.com/repositories/1/issues?page=2>; rel="next", <https://api.github.com/repositories/1/issues?page=5>; rel="last"';
    expect(parseLinkHeader(v)).toEqual([
      { target: 'https://api.github.com/repositories/1/issues?page=2', rel: ['next'], params: { rel: 'next' } },
      { target: 'https://api.github.com/repositories/1/issues?page=5', rel: ['last'], params: { rel: 'last' } },
    ]);
  });

  it.each([
    ['<a>; rel=next', 'a'],
    ['<a>;rel="next"', 'a'],
    ['<a> ; REL = "NEXT"', 'a'],
    ['<a>; rel="prev next"', 'a'],
    ['<p>; rel="prev", <a>; rel="next"', 'a'],
    ['<l>; rel="last"; title="a, b; c", <a>; rel="next"', 'a'],
    ['<l>; title="say \\"next\\", then"; rel="last", <a>; rel=next', 'a'],
    ['<a>; rel="next"; rel="prev"', 'a'],
    ['<b>; rel="prev"; rel="next", <a>; rel="next"', 'a'],
    ['garbage, <a>; rel="next"', 'a'],
    ['<x> junk; rel="next", <a>; rel="next"', 'a'],
    [['<p>; rel="prev"', '<a>; rel="next"'], 'a'],
    ['</relative?page=2>; rel="next"', '/relative?page=2'],
  ])('%j → next is %j', (value, target) => {
    expect(linkTarget(value, 'next')).toBe(target);
  });

  it.each([[undefined], [''], ['<a>; rel="nextpage"'], ['<a>; title="rel=next"'], ['<a>; rel="prev"'], ['<unterminated; rel="next"']])('%j has no next link', (value) => {
    expect(linkTarget(value, 'next')).toBeUndefined();
  });
});
