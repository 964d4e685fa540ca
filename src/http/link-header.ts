// The Link header (RFC 8288, section 3): `<uri-reference>; param=value; param="quoted"`,
// links separated by commas, headers that occur several times joined by commas
// (RFC 9110, section 5.3). GitHub's pagination uses it:
// https://docs.github.com/en/rest/using-the-rest-api/using-pagination-in-the-rest-api

/** One link: its target as written (a URI reference, maybe relative) and its parameters. */
export interface Link {
  target: string;
  /** Relation types, lower case (`rel="next last"` gives both). */
  rel: string[];
  /** Every parameter by lower-case name; the first occurrence wins (RFC 8288, 3: later ones are ignored). */
  params: Record<string, string>;
}

/**
 * Parses every link of one or more Link header values. Lenient where RFC 8288
 * allows it to be (whitespace, token or quoted values, unknown parameters) and
 * skips a malformed link rather than failing the others.
 */
export function parseLinkHeader(value: string | string[] | undefined): Link[] {
  if (value === undefined) return [];
  const text = Array.isArray(value) ? value.join(', ') : value;
  const links: Link[] = [];
  let i = 0;
  const n = text.length;
  const skipWs = () => {
    while (i < n && (text[i] === ' ' || text[i] === '\t')) i++;
  };
  /** Moves past the current link to the next top-level comma (quoted strings may hold commas). */
  const skipToComma = () => {
    while (i < n && text[i] !== ',') {
      if (text[i] === '"') {
        i++;
        while (i < n && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
      }
      i++;
    }
  };
  while (i < n) {
    skipWs();
    if (text[i] === ',') {
      i++;
      continue;
    }
    if (text[i] !== '<') {
      skipToComma();
      continue;
    }
    const close = text.indexOf('>', i + 1);
    if (close === -1) break;
    const target = text.slice(i + 1, close).trim();
    i = close + 1;
    const params: Record<string, string> = {};
    let bad = false;
    for (;;) {
      skipWs();
      if (i >= n || text[i] === ',') break;
      if (text[i] !== ';') {
        bad = true;
        skipToComma();
        break;
      }
      i++;
      skipWs();
      const nameStart = i;
      while (i < n && /[!#$%&'*+.^_`|~0-9A-Za-z-]/.test(text[i]!)) i++;
      const name = text.slice(nameStart, i).toLowerCase();
      skipWs();
      let val = '';
      if (text[i] === '=') {
        i++;
        skipWs();
        if (text[i] === '"') {
          i++;
          while (i < n && text[i] !== '"') {
            if (text[i] === '\\' && i + 1 < n) i++;
            val += text[i];
            i++;
          }
          i++; // closing quote
        } else {
          const s = i;
          while (i < n && text[i] !== ';' && text[i] !== ',') i++;
          val = text.slice(s, i).trim();
        }
      }
      if (name !== '' && !(name in params)) params[name] = val;
    }
    if (bad) continue;
    const rel = (params['rel'] ?? '').toLowerCase().split(/[ \t]+/).filter(Boolean);
    links.push({ target, rel, params });
  }
  return links;
}

/** The target of the first link whose relation types include `rel` (case-insensitive), or undefined. */
export function linkTarget(value: string | string[] | undefined, rel: string): string | undefined {
  const want = rel.toLowerCase();
  return parseLinkHeader(value).find((l) => l.rel.includes(want))?.target;
}
