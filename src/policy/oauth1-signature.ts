import { createHmac } from 'node:crypto';

// OAuth 1.0a request signing (RFC 5849 §3.4-3.6), as pure functions: what is signed, how it is encoded,
// what the Authorization header says. The credential (src/auth/kinds/oauth1-credential.ts) only adds a
// fresh nonce and timestamp to each request and calls signOAuth1.

export type OAuth1SignatureMethod = 'HMAC-SHA1' | 'HMAC-SHA256' | 'PLAINTEXT';

/** A request as it is signed: the URL as it will be sent, the lower-case headers (content-type), the body text. */
export interface SignableRequest {
  method: string;
  url: string;
  headers?: Readonly<Record<string, string>>;
  body?: string;
}

/** One credential's part of a signature. */
export interface OAuth1Keys {
  consumerKey: string;
  consumerSecret: string;
  token?: string;
  tokenSecret?: string;
}

/** What makes one signature unique: a nonce and a timestamp (seconds), fresh for each request. */
export interface OAuth1Fresh {
  nonce: string;
  timestamp: number;
}

const UNRESERVED = /^[A-Za-z0-9\-._~]*$/;
const HEX = '0123456789ABCDEF';

/** RFC 5849 §3.6 of bytes: unreserved (ALPHA DIGIT - . _ ~) kept, every other byte %XX in upper-case hex. */
export function percentEncodeBytes(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) {
    const unreserved = (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || (b >= 0x30 && b <= 0x39) || b === 0x2d || b === 0x2e || b === 0x5f || b === 0x7e;
    out += unreserved ? String.fromCharCode(b) : `%${HEX[b >> 4]}${HEX[b & 15]}`;
  }
  return out;
}

/**
 * RFC 5849 §3.6 percent-encoding of text's UTF-8 bytes: `*`, `'`, `(`, `)`, `!`, `+`, a space (never `+`), `%`
 * and non-ASCII are all encoded (encodeURIComponent keeps `!'()*`). A lone surrogate is U+FFFD's bytes.
 */
export function percentEncode(text: string): string {
  if (UNRESERVED.test(text)) return text;
  // encodeURIComponent (native, fast) keeps only !'()* beyond the unreserved set; a lone surrogate makes it throw.
  if (text.isWellFormed()) return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return percentEncodeBytes(Buffer.from(text, 'utf8'));
}

/** A form component decoded then encoded again for the base string: as text when it is UTF-8 (fast), else byte by byte. */
function reencode(component: string): string {
  if (!/[%+]/.test(component)) return percentEncode(component);
  try {
    return percentEncode(decodeURIComponent(component.replace(/\+/g, ' ')));
  } catch {
    // Not UTF-8 once decoded, or a "%" without two hex digits: the bytes as they are.
    return percentEncodeBytes(formDecodeBytes(component));
  }
}

/**
 * One application/x-www-form-urlencoded component decoded to its bytes (RFC 5849 §3.4.1.3.1 via HTML 4.01
 * §17.13.4): `+` is a space, `%XX` a byte; a `%` not followed by two hex digits stays as it is.
 */
export function formDecodeBytes(component: string): Buffer {
  if (!/[%+]/.test(component)) return Buffer.from(component, 'utf8');
  const text = component.replace(/\+/g, ' ');
  const parts: Buffer[] = [];
  let at = 0;
  for (let i = text.indexOf('%'); i !== -1; i = text.indexOf('%', i + 1)) {
    const hex = text.slice(i + 1, i + 3);
    if (!/^[0-9A-Fa-f]{2}$/.test(hex)) continue;
    parts.push(Buffer.from(text.slice(at, i), 'utf8'), Buffer.from([parseInt(hex, 16)]));
    at = i + 3;
    i += 2;
  }
  parts.push(Buffer.from(text.slice(at), 'utf8'));
  return Buffer.concat(parts);
}

/** Name/value pairs of a query or form body, each already encoded as the base string wants (§3.4.1.3.2). */
export function encodedPairsOf(form: string): [string, string][] {
  const pairs: [string, string][] = [];
  for (const part of form.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const name = eq === -1 ? part : part.slice(0, eq);
    const value = eq === -1 ? '' : part.slice(eq + 1);
    pairs.push([reencode(name), reencode(value)]);
  }
  return pairs;
}

/**
 * The base string URI (§3.4.1.2): scheme and host in lower case, the default port dropped, the path as it
 * is sent (WHATWG URL's serialization, which is what the HTTP client puts on the wire), no query or fragment.
 */
export function baseStringUri(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname || '/'}`;
}

/** Whether a content type is application/x-www-form-urlencoded (its parameters aside): its body is signed. */
export function isFormContentType(contentType: string | undefined): boolean {
  return contentType !== undefined && contentType.split(';')[0]!.trim().toLowerCase() === 'application/x-www-form-urlencoded';
}

/**
 * The normalized parameters (§3.4.1.3.2): the URL's query, a form body's fields and the oauth_* protocol
 * parameters (given without oauth_signature and realm), encoded, sorted by name then value (byte order),
 * duplicates kept, joined as name=value&….
 */
export function normalizedParameters(url: URL, request: SignableRequest, oauthParams: readonly (readonly [string, string])[]): string {
  const pairs: [string, string][] = encodedPairsOf(url.search.slice(1));
  if (request.body !== undefined && isFormContentType(request.headers?.['content-type'])) pairs.push(...encodedPairsOf(request.body));
  for (const [k, v] of oauthParams) pairs.push([percentEncode(k), percentEncode(v)]);
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join('&');
}

/** The signature base string (§3.4.1.1): METHOD&encoded base URI&encoded normalized parameters. */
export function signatureBaseString(request: SignableRequest, oauthParams: readonly (readonly [string, string])[]): string {
  const url = new URL(request.url);
  return `${request.method.toUpperCase()}&${percentEncode(baseStringUri(url))}&${percentEncode(normalizedParameters(url, request, oauthParams))}`;
}

/** The signing key (§3.4.2): encoded consumer secret & encoded token secret (empty without a token). */
export function signingKey(keys: Pick<OAuth1Keys, 'consumerSecret' | 'tokenSecret'>): string {
  return `${percentEncode(keys.consumerSecret)}&${percentEncode(keys.tokenSecret ?? '')}`;
}

/** oauth_signature for a base string: base64 of the HMAC (§3.4.2), or the key itself for PLAINTEXT (§3.4.4). */
export function signatureOf(method: OAuth1SignatureMethod, baseString: string, key: string): string {
  switch (method) {
    case 'HMAC-SHA1':
      return createHmac('sha1', key).update(baseString).digest('base64');
    case 'HMAC-SHA256':
      return createHmac('sha256', key).update(baseString).digest('base64');
    case 'PLAINTEXT':
      return key;
  }
}

/** The protocol parameters of one request, without the signature (§3.1), in the order the header lists them. */
export function protocolParameters(keys: OAuth1Keys, method: OAuth1SignatureMethod, fresh: OAuth1Fresh): [string, string][] {
  const params: [string, string][] = [['oauth_consumer_key', keys.consumerKey]];
  params.push(['oauth_nonce', fresh.nonce], ['oauth_signature_method', method], ['oauth_timestamp', String(fresh.timestamp)]);
  if (keys.token !== undefined) params.push(['oauth_token', keys.token]);
  params.push(['oauth_version', '1.0']);
  return params;
}

/** A quoted-string (RFC 9110 §5.6.4) for the realm: `"` and `\` escaped. */
function quoted(text: string): string {
  return `"${text.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

/** The Authorization header (§3.5.1): `OAuth realm="…", oauth_…="…", …`, each oauth value percent-encoded. */
export function authorizationHeader(params: readonly (readonly [string, string])[], realm?: string): string {
  const fields = params.map(([k, v]) => `${percentEncode(k)}="${percentEncode(v)}"`);
  return `OAuth ${[...(realm !== undefined ? [`realm=${quoted(realm)}`] : []), ...fields].join(', ')}`;
}

/** Signs one request: its Authorization header value and the signature in it. */
export function signOAuth1(request: SignableRequest, keys: OAuth1Keys, options: OAuth1Fresh & { method: OAuth1SignatureMethod; realm?: string }): { authorization: string; signature: string } {
  const params = protocolParameters(keys, options.method, options);
  const key = signingKey(keys);
  // PLAINTEXT signs no base string (§3.4.4): do not build one.
  const signature = options.method === 'PLAINTEXT' ? key : signatureOf(options.method, signatureBaseString(request, params), key);
  params.push(['oauth_signature', signature]);
  return { authorization: authorizationHeader(params, options.realm), signature };
}
