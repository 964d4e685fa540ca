import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import OAuth from 'oauth-1.0a';

// APIs that verify signed requests, for the oauth1 and custom-signer tests: the OAuth 1.0a one recomputes each
// signature with the third-party oauth-1.0a package (pullq's own signing code is not used here), the HMAC one
// checks the X-Signature scheme examples/hmac-signer.ts signs with. Both serve /items/<id>?page=N: `pages`
// pages with one item each, then an empty page.

export interface SigningApiStats {
  /** Answers 2xx per ID and page ("id#page"). */
  served: Map<string, number>;
  /** 401s by reason: bad_signature, nonce_used, stale_timestamp, unknown_consumer, unknown_token, bad_realm, no_header. */
  rejected: Map<string, number>;
  /** Requests per consumer key (or key id). */
  byKey: Map<string, number>;
  /** 503s given (each failOnce ID once). */
  unavailable: number;
  requests: number;
}

export interface SigningApi {
  url: string;
  stats: SigningApiStats;
  close(): Promise<void>;
}

export interface SigningApiOptions {
  pages?: number;
  /** IDs answered 503 once (their first request), to be retried. */
  failOnce?: string[];
  /** Accepted clock skew, seconds. */
  maxSkewS?: number;
}

const bump = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);

async function bodyOf(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function serve(handler: (req: IncomingMessage, body: string) => { status: number; reason?: string; key?: string }, options: SigningApiOptions): Promise<SigningApi> {
  const stats: SigningApiStats = { served: new Map(), rejected: new Map(), byKey: new Map(), unavailable: 0, requests: 0 };
  const failOnce = new Set(options.failOnce ?? []);
  const pages = options.pages ?? 1;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    void bodyOf(req).then((body) => {
      stats.requests++;
      const url = new URL(req.url!, 'http://x');
      const verdict = handler(req, body);
      if (verdict.key) bump(stats.byKey, verdict.key);
      const send = (status: number, data: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(data));
      };
      if (verdict.status === 401) {
        bump(stats.rejected, verdict.reason!);
        return send(401, { error: verdict.reason });
      }
      const m = /^\/items\/([^/]+)$/.exec(url.pathname);
      if (!m) return send(404, { error: 'not found' });
      const id = decodeURIComponent(m[1]!);
      if (failOnce.delete(id)) {
        stats.unavailable++;
        return send(503, { error: 'try again' });
      }
      const page = Number(url.searchParams.get('page') ?? '1');
      bump(stats.served, `${id}#${page}`);
      send(200, { items: page <= pages ? [{ id, page, q: url.searchParams.get('q'), body: body || null }] : [] });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    stats,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The Authorization header's fields: realm as a quoted-string, the oauth_* values percent-decoded. */
export function parseOAuthHeader(header: string): { realm?: string; params: Record<string, string> } | undefined {
  if (!header.startsWith('OAuth ')) return undefined;
  const rest = header.slice(6);
  const realm = /(?:^|,\s*)realm="((?:[^"\\]|\\.)*)"/.exec(rest)?.[1]?.replace(/\\(.)/g, '$1');
  const params: Record<string, string> = {};
  for (const m of rest.matchAll(/(oauth_[a-z_]+)="([^"]*)"/g)) params[m[1]!] = decodeURIComponent(m[2]!);
  return { realm, params };
}

export interface OAuth1ApiOptions extends SigningApiOptions {
  consumers: Record<string, string>;
  tokens: Record<string, string>;
  /** The realm every request must carry; undefined: none allowed. */
  realm?: string;
}

/**
 * An OAuth 1.0a API: recomputes each request's signature with the oauth-1.0a package from the method, the URL
 * it received (host as sent, path and query as on the wire), a form body's fields and the oauth_* parameters, with
 * the consumer and token secrets it knows; rejects with 401 a wrong signature, a nonce used before (per consumer),
 * a timestamp more than maxSkewS off, an unknown consumer or token, a realm other than the expected one.
 */
export function startOAuth1Api(options: OAuth1ApiOptions): Promise<SigningApi> {
  const nonces = new Set<string>();
  const maxSkew = options.maxSkewS ?? 300;
  return serve((req, body) => {
    const parsed = parseOAuthHeader(req.headers.authorization ?? '');
    if (!parsed) return { status: 401, reason: 'no_header' };
    const p = parsed.params;
    const key = p['oauth_consumer_key'] ?? '';
    const consumerSecret = options.consumers[key];
    if (consumerSecret === undefined) return { status: 401, reason: 'unknown_consumer' };
    const tokenSecret = p['oauth_token'] !== undefined ? options.tokens[p['oauth_token']] : '';
    if (tokenSecret === undefined) return { status: 401, reason: 'unknown_token', key };
    if (parsed.realm !== options.realm) return { status: 401, reason: 'bad_realm', key };
    if (Math.abs(Date.now() / 1000 - Number(p['oauth_timestamp'])) > maxSkew) return { status: 401, reason: 'stale_timestamp', key };
    const method = p['oauth_signature_method'] as 'HMAC-SHA1' | 'HMAC-SHA256' | 'PLAINTEXT';
    const alg = method === 'HMAC-SHA1' ? 'sha1' : 'sha256';
    const lib = new OAuth({
      consumer: { key, secret: consumerSecret },
      signature_method: method,
      ...(method === 'PLAINTEXT' ? {} : { hash_function: (base: string, k: string) => createHmac(alg, k).update(base).digest('base64') }),
    });
    const data: Record<string, string> = {};
    for (const [k, v] of Object.entries(p)) if (k !== 'oauth_signature') data[k] = v;
    const form = /^application\/x-www-form-urlencoded/i.test(req.headers['content-type'] ?? '') ? lib.deParam(body) : {};
    const expected = lib.getSignature({ url: `http://${req.headers.host}${req.url}`, method: req.method!, data: form }, tokenSecret, data as unknown as OAuth.Data);
    const got = Buffer.from(p['oauth_signature'] ?? '');
    if (got.length !== Buffer.byteLength(expected) || !timingSafeEqual(got, Buffer.from(expected))) return { status: 401, reason: 'bad_signature', key };
    const nonce = `${key}\n${p['oauth_nonce']}`;
    if (nonces.has(nonce)) return { status: 401, reason: 'nonce_used', key };
    nonces.add(nonce);
    return { status: 200, key };
  }, options);
}

export interface HmacApiOptions extends SigningApiOptions {
  /** Key id → secret. */
  keys: Record<string, string>;
}

/**
 * An API that wants X-Key-Id, X-Timestamp (ms) and X-Signature: hex HMAC-SHA256 of
 * "METHOD\npath?query\ntimestamp\nbody" (the path and query as received) under the key's secret.
 */
export function startHmacApi(options: HmacApiOptions): Promise<SigningApi> {
  const maxSkew = (options.maxSkewS ?? 300) * 1000;
  return serve((req, body) => {
    const key = String(req.headers['x-key-id'] ?? '');
    const secret = options.keys[key];
    if (secret === undefined) return { status: 401, reason: 'unknown_consumer' };
    const ts = String(req.headers['x-timestamp'] ?? '');
    if (!(Math.abs(Date.now() - Number(ts)) <= maxSkew)) return { status: 401, reason: 'stale_timestamp', key };
    const expected = createHmac('sha256', secret).update(`${req.method}\n${req.url}\n${ts}\n${body}`).digest('hex');
    if (req.headers['x-signature'] !== expected) return { status: 401, reason: 'bad_signature', key };
    return { status: 200, key };
  }, options);
}
