import { PLACEHOLDER_RE, placeholdersOf, type Config } from '../config.js';
import type { IdKey } from './id-key.js';
import { MAX_ID_LENGTH } from './id-url.js';

// Request templates (issue #13): `{id}` and `{column}` in the URL (percent-encoded
// into one path segment or query value), in header values (as text) and in a
// JSON body (as, or inside, a JSON string value: never spliced into JSON text).

/** One request for one ID, before a credential is put on it. */
export interface RenderedRequest {
  url: string;
  /** Header names in lower case; only the templated ones (the fixed ones are on the HTTP client). */
  headers: Record<string, string>;
  /** JSON text of the body, when the config has one. */
  body?: string;
}

export type Rendered = { ok: true; request: RenderedRequest } | { ok: false; reason: string };

export interface RequestTemplate {
  /** Every placeholder name the templates use (`id` included when used). */
  readonly names: ReadonlySet<string>;
  /** Those used in header values (stricter: Latin-1 only). */
  readonly inHeaders: ReadonlySet<string>;
  /** The request of one ID, or why it cannot be made (SPEC: invalid_id). */
  render(key: IdKey): Rendered;
}

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;
/** What a header value cannot carry: RFC 9110 field values are bytes (Node sends Latin-1), nothing past U+00FF. */
const NOT_LATIN1 = /[^\u0000-\u00ff]/;

/** Text split at its placeholders: literal pieces around the names (pieces.length = names.length + 1). */
interface Split {
  pieces: string[];
  names: string[];
}

function split(text: string): Split {
  const pieces: string[] = [];
  const names: string[] = [];
  let at = 0;
  for (const m of text.matchAll(PLACEHOLDER_RE)) {
    pieces.push(text.slice(at, m.index));
    names.push(m[1]!);
    at = m.index + m[0].length;
  }
  pieces.push(text.slice(at));
  return { pieces, names };
}

function join(s: Split, value: (name: string, i: number) => string): string {
  let out = s.pieces[0]!;
  for (let i = 0; i < s.names.length; i++) out += value(s.names[i]!, i) + s.pieces[i + 1]!;
  return out;
}

/** A JSON template with its strings split at their placeholders. */
type BodyNode = { kind: 'text'; split: Split } | { kind: 'array'; items: BodyNode[] } | { kind: 'object'; entries: [string, BodyNode][] } | { kind: 'fixed'; value: unknown };

function compileBody(value: unknown): BodyNode {
  if (typeof value === 'string') return value.match(PLACEHOLDER_RE) ? { kind: 'text', split: split(value) } : { kind: 'fixed', value };
  if (Array.isArray(value)) return { kind: 'array', items: value.map(compileBody) };
  if (value !== null && typeof value === 'object') return { kind: 'object', entries: Object.entries(value).map(([k, v]) => [k, compileBody(v)]) };
  return { kind: 'fixed', value };
}

function renderBody(node: BodyNode, value: (name: string) => string): unknown {
  switch (node.kind) {
    case 'fixed':
      return node.value;
    case 'text':
      return join(node.split, value);
    case 'array':
      return node.items.map((n) => renderBody(n, value));
    case 'object':
      return Object.fromEntries(node.entries.map(([k, n]) => [k, renderBody(n, value)]));
  }
}

/** Why a column value cannot stand in a request, or undefined. */
function valueProblem(name: string, value: string): string | undefined {
  const what = name === 'id' ? 'ID' : `column "${name}"`;
  if (value.length > MAX_ID_LENGTH) return `${what} is longer than ${MAX_ID_LENGTH} characters`;
  if (CONTROL.test(value)) return `${what} contains a control character`;
  if (!value.isWellFormed()) return `${what} is not well-formed Unicode`;
  return undefined;
}

/** Compiles `request.url`, `request.headers` and `request.body` once; `render` is pure. */
export function compileRequestTemplate(request: Pick<Config['request'], 'url' | 'headers' | 'body'>): RequestTemplate {
  const url = split(request.url);
  const queryStart = request.url.indexOf('?');
  // For every placeholder of the URL, whether it stands in the path (a dot-segment would move it).
  const inPath: boolean[] = [];
  let pos = 0;
  for (let i = 0; i < url.names.length; i++) {
    pos += url.pieces[i]!.length;
    inPath.push(queryStart === -1 || pos < queryStart);
    pos += url.names[i]!.length + 2;
  }
  const headers = Object.entries(request.headers)
    .filter(([, v]) => v.match(PLACEHOLDER_RE))
    .map(([k, v]) => [k.toLowerCase(), split(v)] as const);
  const body = request.body === undefined ? undefined : compileBody(request.body);
  const names = placeholdersOf([request.url, request.headers, request.body ?? null]);
  const inHeaders = placeholdersOf(request.headers);

  return {
    names,
    inHeaders,
    render(key: IdKey): Rendered {
      const values: Record<string, string> = {};
      for (const name of names) {
        const v = name === 'id' ? key.id : key.columns?.[name];
        if (v === undefined) return { ok: false, reason: `has no "${name}" column` };
        const problem = valueProblem(name, v) ?? (inHeaders.has(name) && NOT_LATIN1.test(v) ? `${name === 'id' ? 'ID' : `column "${name}"`} has a character an HTTP header cannot carry (past U+00FF)` : undefined);
        if (problem) return { ok: false, reason: problem.replace(/^ID /, '') };
        values[name] = v;
      }
      for (let i = 0; i < url.names.length; i++) {
        const v = values[url.names[i]!]!;
        // "." and ".." are dot-segments: new URL() would remove them and change the path.
        if (inPath[i] && (v === '.' || v === '..')) return { ok: false, reason: `${url.names[i] === 'id' ? '' : `column "${url.names[i]}" `}is a dot-segment (. or ..) and would change the path` };
      }
      const get = (name: string) => values[name]!;
      const rendered: RenderedRequest = {
        url: join(url, (name) => encodeURIComponent(get(name))),
        headers: Object.fromEntries(headers.map(([k, s]) => [k, join(s, get)])),
      };
      if (body) rendered.body = JSON.stringify(renderBody(body, get));
      return { ok: true, request: rendered };
    },
  };
}

const compiled = new WeakMap<object, RequestTemplate>();

/** The compiled template of a config's request, made once per config. */
export function requestTemplateOf(config: Pick<Config, 'request'>): RequestTemplate {
  let t = compiled.get(config.request);
  if (!t) {
    t = compileRequestTemplate(config.request);
    compiled.set(config.request, t);
  }
  return t;
}
