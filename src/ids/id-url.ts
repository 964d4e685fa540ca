/**
 * Places an ID into the configured URL as one path segment or one query value,
 * percent-encoded, or says why it cannot be placed safely (SPEC: invalid_id).
 */
export type IdUrl = { ok: true; url: string } | { ok: false; reason: string };

/** Longest ID pullq requests; longer ones would make URLs servers reject. */
export const MAX_ID_LENGTH = 2048;

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/** Compiles a `request.url` template once; the returned function is pure and cheap. */
export function compileIdUrl(template: string): (id: string) => IdUrl {
  const pieces = template.split('{id}');
  const queryStart = template.indexOf('?');
  // For every {id}, whether it stands in the path (true) or the query (false).
  const inPath: boolean[] = [];
  let pos = 0;
  for (let i = 0; i < pieces.length - 1; i++) {
    pos += pieces[i]!.length;
    inPath.push(queryStart === -1 || pos < queryStart);
    pos += '{id}'.length;
  }
  const anyInPath = inPath.some(Boolean);

  return (id: string): IdUrl => {
    if (id.length > MAX_ID_LENGTH) return { ok: false, reason: `is longer than ${MAX_ID_LENGTH} characters` };
    if (CONTROL.test(id)) return { ok: false, reason: 'contains a control character' };
    if (!id.isWellFormed()) return { ok: false, reason: 'is not well-formed Unicode' };
    // "." and ".." are dot-segments: new URL() would remove them and change the path.
    if (anyInPath && (id === '.' || id === '..')) return { ok: false, reason: 'is a dot-segment (. or ..) and would change the path' };
    const encoded = encodeURIComponent(id);
    let url = pieces[0]!;
    for (let i = 1; i < pieces.length; i++) url += encoded + pieces[i]!;
    return { ok: true, url };
  };
}
