import type { Pagination } from '../config.js';
import { linkTarget } from '../http/link-header.js';

// Pagination per ID (issue #13): which URL a page is fetched from, and what a
// page's answer says about the next one. Pure: test/next-page.test.ts is the table.

/** Where an ID's pagination stands (part of its committed retry state: a resumed attempt starts here). */
export interface PageState {
  /** 1-based number of the page to fetch next. */
  n: number;
  /** What the next request needs: link, its URL; cursor, the cursor; page, the page number. */
  next: string | number;
  /** Set once the last page is in (the ID only waits to be committed): how it ended. */
  end?: PageEnd;
}

/** cross_origin: the next link went to another origin; unusable: what leads to the next page cannot be sent (the ID fails client_error). */
export type PageEnd = { kind: 'last'; truncated: boolean } | { kind: 'cross_origin' | 'unusable'; status: number; message: string; attempts: number };

/** What one page's answer says about the next page. */
export type NextPage =
  | { kind: 'next'; next: string | number }
  /** No next page; `truncated`: there was one, but maxPages was reached. */
  | { kind: 'last'; truncated: boolean }
  /** The next link points at another origin: never followed (the credential must not go there). */
  | { kind: 'cross_origin'; url: string }
  /** There is a next page, but what leads to it cannot be sent (a cursor that is not well-formed Unicode): the ID fails. */
  | { kind: 'unusable'; message: string };

/** The URL of the page `at` (undefined: the first page), from the ID's rendered URL. */
export function pageUrl(p: Pagination, baseUrl: string, at: PageState | undefined): string {
  switch (p.type) {
    case 'link':
      return at ? String(at.next) : baseUrl;
    case 'cursor':
      return at ? withQueryParam(baseUrl, p.param, String(at.next)) : baseUrl;
    case 'page':
      return withQueryParam(baseUrl, p.param, String(at ? at.next : p.start));
  }
}

/**
 * What follows page `page` (1-based), fetched from `url`, that answered with
 * `headers` and the decoded body `data`. `current` is the page's `next` value
 * (page: its number). `credentialParam`, when the credential rides in the
 * query, is taken off a next link (an API that echoes it must not put a secret in Redis).
 */
export function nextPage(
  p: Pagination,
  x: { url: string; headers: Record<string, string | string[] | undefined>; data: unknown; page: number; current: string | number | undefined; credentialParam?: string },
): NextPage {
  let next: string | number | undefined;
  let nextUrl: URL | undefined;
  switch (p.type) {
    case 'link': {
      const target = linkTarget(x.headers['link'], 'next');
      if (target === undefined || target === '') break;
      try {
        // RFC 8288, 3.2: a relative reference is resolved against the link context, the requested URL.
        nextUrl = new URL(target, x.url);
      } catch {
        break;
      }
      if (nextUrl.protocol !== 'http:' && nextUrl.protocol !== 'https:') {
        return { kind: 'cross_origin', url: nextUrl.protocol };
      }
      nextUrl.hash = '';
      next = x.credentialParam ? withoutQueryParam(nextUrl.href, x.credentialParam) : nextUrl.href;
      break;
    }
    case 'cursor': {
      const c = valueAt(x.data, p.cursorPath);
      if ((typeof c === 'string' && c !== '') || (typeof c === 'number' && Number.isFinite(c))) next = String(c);
      break;
    }
    case 'page': {
      const items = valueAt(x.data, p.itemsPath);
      if (Array.isArray(items) && items.length > 0) next = Number(x.current ?? p.start) + 1;
      break;
    }
  }
  if (next === undefined) return { kind: 'last', truncated: false };
  if (x.page >= p.maxPages) return { kind: 'last', truncated: true };
  // A lone surrogate (JSON's "\ud800" parses to one) has no UTF-8 form: encodeURIComponent throws on it.
  if (p.type === 'cursor' && typeof next === 'string' && !next.isWellFormed()) {
    return { kind: 'unusable', message: `page ${x.page}'s cursor (${p.cursorPath}) is not well-formed Unicode (it has a lone surrogate): it cannot be put in a URL` };
  }
  if (nextUrl && nextUrl.origin !== new URL(x.url).origin) return { kind: 'cross_origin', url: nextUrl.origin };
  return { kind: 'next', next };
}

/**
 * The value at a dot path (`meta.next_cursor`); a number indexes an array,
 * a negative one from its end (`data.-1.id`: the last item's id, Stripe's `starting_after`).
 */
export function valueAt(data: unknown, dotPath: string): unknown {
  let v = data;
  for (const step of dotPath.split('.')) {
    if (Array.isArray(v) && /^-?\d+$/.test(step)) {
      const i = Number(step);
      v = v[i < 0 ? v.length + i : i];
    } else if (v !== null && typeof v === 'object' && !Array.isArray(v) && Object.hasOwn(v, step)) {
      v = (v as Record<string, unknown>)[step];
    } else {
      return undefined;
    }
  }
  return v;
}

/** Sets one query parameter (every earlier value of it dropped), keeping every other byte of the URL. */
export function withQueryParam(url: string, name: string, value: string): string {
  const hash = url.indexOf('#');
  const head = withoutQueryParam(hash === -1 ? url : url.slice(0, hash), name);
  const sep = head.includes('?') ? (head.endsWith('?') || head.endsWith('&') ? '' : '&') : '?';
  return `${head}${sep}${encodeURIComponent(name)}=${encodeURIComponent(value)}`;
}

/** Drops every value of one query parameter, keeping every other byte of the URL. */
export function withoutQueryParam(url: string, name: string): string {
  const q = url.indexOf('?');
  if (q === -1) return url;
  const hash = url.indexOf('#', q);
  const query = url.slice(q + 1, hash === -1 ? undefined : hash);
  const kept = query.split('&').filter((pair) => {
    const key = pair.split('=')[0]!;
    let decoded = key;
    try {
      decoded = decodeURIComponent(key.replace(/\+/g, ' '));
    } catch {
      // a malformed escape is kept as it is
    }
    return pair !== '' && decoded !== name;
  });
  return url.slice(0, q) + (kept.length > 0 ? `?${kept.join('&')}` : '') + (hash === -1 ? '' : url.slice(hash));
}
