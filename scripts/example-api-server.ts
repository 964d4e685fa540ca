import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * The bundled example API: a small token-protected JSON API with fault modes,
 * per-credential budgets and an OAuth2 token endpoint, used by `npm run demo`,
 * the tests and the benchmarks. It serves GET /items/<id> and GET /items?id=<id>
 * with { id, name, n } and counts every request per ID and per credential, so
 * callers can check exactly-once work and budget overshoot.
 *
 * Fault modes by ID prefix (the demo's IDs file uses them):
 *   missing-*   404                      gone-*      410
 *   flaky-*     503 on the first 2 tries, then 200
 *   limited-*   429 with Retry-After: 1 on the first try, then 200
 *   slow-*      answers after `slowMs` (default 3000)
 *   big-*       a body of `bigBytes` (default 20 MB)
 *   text-*      a text/plain body        badjson-*   invalid JSON said to be JSON
 *   reset-*     the connection is destroyed on the first try
 *   forbidden-* 403 for every credential
 *   slowbody-*  headers at once, then the body stalls for `slowMs`
 *   truncated-* the connection closes mid-body
 *   redirect-same-*   302 to /items/landed-<id> on this server
 *   redirect-other-*  302 to `redirectTo`/items/landed-<id> (another origin), query string kept
 *   redirect-loop-*   302 to itself, forever
 *
 * Request templates and pagination (issue #13), with the same auth, budgets and fault modes:
 *   POST /search  {"query": {"id": "<id>"}}          the item <id>, and the body it received
 *   GET  /by-header  (x-item: <id>)                   the item named by the header
 *   GET  /orgs/<org>/items/<id>?date=<date>           { id, org, date }
 *   GET  /users/<id>/events?page=N                    page numbers: { items } (2 a page), [] after the last
 *   GET  /feed/<id>[?page=N]                          Link: <…>; rel="next" (page 2's link is relative)
 *   GET  /stream/<id>[?cursor=cN]                     { data, next_cursor }; next_cursor null on the last
 * An ID has `pages` pages (default 3), or N for an ID starting with `p<N>-`; a fail2-* ID's
 * page 2 of /users/<id>/events always answers 500. For a cross-* ID,
 * /feed's page 1 links page 2 on `redirectTo` (another origin).
 *
 * With `etags`, every item has a version (1 until `change` bumps it), sent as
 * an ETag and a Last-Modified; a matching If-None-Match (or, without one, an
 * If-Modified-Since not before Last-Modified) answers 304 with no body. With
 * `free304` too, a 304 does not count against `budgets` (as GitHub's primary
 * limit): it is answered even over budget, its headers show the remaining
 * unchanged.
 */
export interface ExampleApiOptions {
  /** header: `<header>: <scheme> <token>`; query: ?<param>=<token>; basic: user/password pairs; oauth: tokens from POST /oauth/token. */
  auth?:
    | { type: 'none' }
    | { type: 'header'; header?: string; scheme?: string; tokens: string[] }
    | { type: 'query'; param: string; tokens: string[] }
    | { type: 'basic'; users: Record<string, string> }
    | { type: 'oauth'; clients: Record<string, string>; tokenTtlS: number; jwt?: boolean };
  /** Tokens that answer 401 (revoked). */
  revoked?: string[];
  /** Per-credential budget enforced in a sliding window (key: token, basic user or OAuth2 client id; "*" for all). */
  budgets?: Record<string, { requests: number; perSeconds: number }>;
  /**
   * Per-credential token bucket (key as for budgets): `capacity` requests back to back, refilled at
   * `refillPerSecond`; an empty bucket answers 429 with Retry-After (whole seconds, at least 1). Like
   * APIs that punish bursts, it announces nothing else. Checked after `budgets`.
   */
  tokenBuckets?: Record<string, { capacity: number; refillPerSecond: number }>;
  /** How the API announces budgets on every answer. */
  rateLimitHeaders?: 'none' | 'github' | 'ietf' | 'draft';
  /** Status of a request over budget: 429 (default) or 403 (GitHub-style, with remaining 0). */
  overBudgetStatus?: 429 | 403;
  /** Send Retry-After on over-budget answers (default true). */
  retryAfter?: boolean;
  slowMs?: number;
  bigBytes?: number;
  /** Fixed latency added to every answer (ms). */
  latencyMs?: number;
  /** Origin that redirect-other-* IDs are sent to (and cross-* IDs' next page links). */
  redirectTo?: string;
  /** Pages of every paginated route per ID (default 3; an ID `p<N>-…` has N). */
  pages?: number;
  /** Items carry ETag / Last-Modified and honour If-None-Match / If-Modified-Since with 304 (conditional re-pulls). */
  etags?: boolean;
  /** With etags: a 304 is free (not counted against `budgets`, answered even over budget), like GitHub's. */
  free304?: boolean;
  /** With etags: answer 304 to every item request, validators or not (a broken cache before the API). */
  always304?: boolean;
  port?: number;
  host?: string;
}

export interface ExampleApi {
  url: string;
  server: Server;
  /** Requests seen per decoded ID. */
  requestsById: Map<string, number>;
  /** Requests per credential (the token, basic user or OAuth2 client id; "-" for none). */
  requestsByCredential: Map<string, number>;
  /** Requests per path and query as received (e.g. "/users/u1/events?page=2"). */
  requestsByUrl: Map<string, number>;
  /** 2xx answers per decoded ID. */
  servedById: Map<string, number>;
  /** Over-budget rejections per credential. */
  rejectedByCredential: Map<string, number>;
  /** Accepted request times (ms) per credential, for utilization figures. */
  acceptedAt: Map<string, number[]>;
  /** Token-endpoint calls per OAuth2 client id. */
  tokenRequests: Map<string, number>;
  /** Each token-endpoint call's form, without its secrets (client_secret, client_assertion, assertion), and how the client authenticated. */
  tokenForms: { params: Record<string, string>; basic: boolean }[];
  totalRequests(): number;
  /** 401 answers sent to item requests. */
  unauthorizedAnswers(): number;
  /** The last 1,000 requests as received: method, URL, headers and body (to check what a redirect carried). */
  /** Requests as they arrived (`at`: epoch ms), the last 1,000. */
  log: { method: string; url: string; headers: IncomingHttpHeaders; body?: string; at: number }[];
  /** Revokes a token (or an OAuth2 client) from now on: it gets 401. */
  revoke(credential: string): void;
  /** With etags: bumps the version of these items (a new ETag and Last-Modified, a new body). */
  change(ids: Iterable<string>): void;
  /** 304 answers sent, per decoded ID. */
  notModifiedById: Map<string, number>;
  close(): Promise<void>;
}

/** Starts the example API on 127.0.0.1 (port 0 = a free one). */
export async function startExampleApi(options: ExampleApiOptions = {}): Promise<ExampleApi> {
  const auth = options.auth ?? { type: 'none' };
  const requestsById = new Map<string, number>();
  const requestsByCredential = new Map<string, number>();
  const servedById = new Map<string, number>();
  const requestsByUrl = new Map<string, number>();
  const notModifiedById = new Map<string, number>();
  /** Item versions (etags): 1 until changed. */
  const versions = new Map<string, number>();
  const rejectedByCredential = new Map<string, number>();
  const acceptedAt = new Map<string, number[]>();
  const tokenRequests = new Map<string, number>();
  const tokenForms: ExampleApi['tokenForms'] = [];
  const revoked = new Set(options.revoked ?? []);
  /** OAuth2: issued token → client id and expiry. */
  const issued = new Map<string, { client: string; expiresAt: number }>();
  /** Sliding windows of accepted request times per credential. */
  const windows = new Map<string, number[]>();
  /** Token buckets per credential: tokens left and when they were counted. */
  const buckets = new Map<string, { tokens: number; at: number }>();
  let total = 0;
  let unauthorized = 0;
  const log: ExampleApi['log'] = [];

  const credentialOf = (req: IncomingMessage, url: URL): string | null => {
    switch (auth.type) {
      case 'none':
        return '-';
      case 'header': {
        const raw = req.headers[(auth.header ?? 'authorization').toLowerCase()];
        const value = Array.isArray(raw) ? raw[0] : raw;
        if (!value) return null;
        const scheme = auth.scheme ?? 'Bearer';
        if (scheme === '') return value;
        return value.startsWith(`${scheme} `) ? value.slice(scheme.length + 1) : null;
      }
      case 'query':
        return url.searchParams.get(auth.param);
      case 'basic': {
        const value = req.headers.authorization;
        if (!value?.startsWith('Basic ')) return null;
        const [user, ...pw] = Buffer.from(value.slice(6), 'base64').toString('utf8').split(':');
        return auth.users[user!] !== undefined && auth.users[user!] === pw.join(':') ? user! : null;
      }
      case 'oauth': {
        const token = req.headers.authorization?.replace(/^Bearer /, '');
        const t = token ? issued.get(token) : undefined;
        return t && t.expiresAt > Date.now() ? t.client : null;
      }
    }
  };

  /** An empty token bucket? Takes a token when there is one. */
  const bucketEmpty = (cred: string): { over: boolean; headers: Record<string, string> } => {
    const spec = options.tokenBuckets?.[cred] ?? options.tokenBuckets?.['*'];
    if (!spec) return { over: false, headers: {} };
    const now = Date.now();
    const b = buckets.get(cred) ?? { tokens: spec.capacity, at: now };
    b.tokens = Math.min(spec.capacity, b.tokens + ((now - b.at) * spec.refillPerSecond) / 1000);
    b.at = now;
    buckets.set(cred, b);
    if (b.tokens < 1) return { over: true, headers: { 'retry-after': String(Math.max(1, Math.ceil((1 - b.tokens) / spec.refillPerSecond))) } };
    b.tokens -= 1;
    return { over: false, headers: {} };
  };

  /** Over budget (or out of tokens)? Records the request in the window when it is accepted; `charge` false: only the headers (a free 304). */
  const overBudget = (cred: string, charge = true): { over: boolean; headers: Record<string, string> } => {
    const budget = options.budgets?.[cred] ?? options.budgets?.['*'];
    if (!charge && !budget) return { over: false, headers: {} };
    if (!budget) {
      const bucket = bucketEmpty(cred);
      if (!bucket.over && options.tokenBuckets) {
        const all = acceptedAt.get(cred) ?? [];
        all.push(Date.now());
        acceptedAt.set(cred, all);
      }
      return bucket;
    }
    const now = Date.now();
    const w = budget.perSeconds * 1000;
    const log = windows.get(cred) ?? [];
    while (log.length > 0 && log[0]! <= now - w) log.shift();
    const over = charge && log.length >= budget.requests;
    if (charge && !over && bucketEmpty(cred).over) {
      windows.set(cred, log);
      return { over: true, headers: { 'retry-after': '1' } };
    }
    if (charge && !over) {
      log.push(now);
      const all = acceptedAt.get(cred) ?? [];
      all.push(now);
      acceptedAt.set(cred, all);
    }
    windows.set(cred, log);
    const remaining = Math.max(0, budget.requests - log.length);
    // When the oldest start in the window leaves it: as delta seconds (IETF) or epoch seconds (GitHub), rounded up once.
    const resetAt = log.length > 0 ? log[0]! + w : now + w;
    const resetS = Math.max(1, Math.ceil((resetAt - now) / 1000));
    const headers: Record<string, string> = {};
    switch (options.rateLimitHeaders ?? 'none') {
      case 'github':
        Object.assign(headers, { 'x-ratelimit-limit': String(budget.requests), 'x-ratelimit-remaining': String(remaining), 'x-ratelimit-reset': String(Math.ceil(resetAt / 1000)) });
        break;
      case 'ietf':
        Object.assign(headers, { 'ratelimit-policy': `"default";q=${budget.requests};w=${budget.perSeconds}`, ratelimit: `"default";r=${remaining};t=${resetS}` });
        break;
      case 'draft':
        Object.assign(headers, { 'ratelimit-limit': String(budget.requests), 'ratelimit-remaining': String(remaining), 'ratelimit-reset': String(resetS) });
        break;
      case 'none':
        break;
    }
    if (over && (options.retryAfter ?? true)) headers['retry-after'] = String(resetS);
    return { over, headers };
  };

  const tokenEndpoint = (req: IncomingMessage, res: ServerResponse) => {
    if (auth.type !== 'oauth') return send(res, 404, { error: 'no oauth here' });
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      const form = new URLSearchParams(body);
      let client = form.get('client_id');
      let secret = form.get('client_secret');
      const basic = req.headers.authorization;
      if (basic?.startsWith('Basic ')) {
        const [id, ...rest] = Buffer.from(basic.slice(6), 'base64').toString('utf8').split(':');
        client = decodeURIComponent(id!.replace(/\+/g, ' '));
        secret = decodeURIComponent(rest.join(':').replace(/\+/g, ' '));
      }
      if (client) tokenRequests.set(client, (tokenRequests.get(client) ?? 0) + 1);
      const params = Object.fromEntries([...form].filter(([k]) => !['client_secret', 'client_assertion', 'assertion'].includes(k)));
      tokenForms.push({ params, basic: basic?.startsWith('Basic ') ?? false });
      if (tokenForms.length > 1000) tokenForms.shift();
      if (form.get('grant_type') !== 'client_credentials') return send(res, 400, { error: 'unsupported_grant_type' });
      if (!client || auth.clients[client] === undefined || auth.clients[client] !== secret || revoked.has(client)) return send(res, 401, { error: 'invalid_client' });
      const expiresAt = Date.now() + auth.tokenTtlS * 1000;
      let token = `at-${randomBytes(12).toString('hex')}`;
      if (auth.jwt) {
        const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
        token = `${b64({ alg: 'none' })}.${b64({ sub: client, exp: expiresAt / 1000 })}.${randomBytes(8).toString('hex')}`;
      }
      issued.set(token, { client, expiresAt });
      send(res, 200, auth.jwt ? { access_token: token, token_type: 'Bearer' } : { access_token: token, token_type: 'Bearer', expires_in: auth.tokenTtlS });
    });
  };

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (req.method === 'POST' && url.pathname === '/oauth/token') {
      total++;
      log.push({ method: 'POST', url: req.url ?? '/', headers: req.headers, at: Date.now() });
      if (log.length > 1000) log.shift();
      return tokenEndpoint(req, res);
    }
    if (req.method !== 'POST') return serve(req, res, url, undefined);
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => serve(req, res, url, body));
  };

  const pagesOf = (id: string) => Number(/^p(\d+)-/.exec(id)?.[1] ?? options.pages ?? 3);

  const serve = (req: IncomingMessage, res: ServerResponse, url: URL, body: string | undefined) => {
    total++;
    log.push({ method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers, body, at: Date.now() });
    if (log.length > 1000) log.shift();
    requestsByUrl.set(req.url ?? '/', (requestsByUrl.get(req.url ?? '/') ?? 0) + 1);
    let id: string | null = null;
    let route: 'item' | 'search' | 'org' | 'events' | 'feed' | 'stream' = 'item';
    let org: string | undefined;
    const m = /^\/items\/([^/]+)$/.exec(url.pathname);
    const paged = /^\/(users|feed|stream)\/([^/]+)(\/events)?$/.exec(url.pathname);
    const byOrg = /^\/orgs\/([^/]+)\/items\/([^/]+)$/.exec(url.pathname);
    if (m) id = decodeURIComponent(m[1]!);
    else if (url.pathname === '/items') id = url.searchParams.get('id');
    else if (url.pathname === '/by-header') id = typeof req.headers['x-item'] === 'string' ? req.headers['x-item'] : null;
    else if (req.method === 'POST' && url.pathname === '/search') {
      route = 'search';
      try {
        const q = (JSON.parse(body ?? '') as { query?: { id?: unknown } }).query?.id;
        if (typeof q !== 'string') return send(res, 400, { error: 'body must be {"query": {"id": "<string>"}}' });
        id = q;
      } catch {
        return send(res, 400, { error: 'body is not JSON' });
      }
    } else if (byOrg) {
      route = 'org';
      org = decodeURIComponent(byOrg[1]!);
      id = decodeURIComponent(byOrg[2]!);
    } else if (paged && (paged[1] === 'users') === (paged[3] !== undefined)) {
      route = paged[1] === 'users' ? 'events' : (paged[1] as 'feed' | 'stream');
      id = decodeURIComponent(paged[2]!);
    }
    if (id === null) return send(res, 404, { error: 'no such route' });

    const seen = (requestsById.get(id) ?? 0) + 1;
    requestsById.set(id, seen);
    const cred = credentialOf(req, url);
    const refuse = (why: string) => {
      unauthorized++;
      send(res, 401, { error: why });
    };
    if (cred === null) return refuse('missing, bad or expired credential');
    if ((auth.type === 'header' || auth.type === 'query') && !auth.tokens.includes(cred)) return refuse('unknown token');
    requestsByCredential.set(cred, (requestsByCredential.get(cred) ?? 0) + 1);
    if (revoked.has(cred)) return refuse('token revoked');
    const version = versions.get(id) ?? 1;
    const validators = { etag: `"${createHash('sha1').update(`${id}\n${version}`).digest('hex').slice(0, 16)}"`, 'last-modified': new Date(ITEMS_EPOCH + version * 3_600_000).toUTCString() };
    const unchanged = options.etags === true && (options.always304 === true || notModified(req, validators.etag, ITEMS_EPOCH + version * 3_600_000));
    const budget = overBudget(cred, !(unchanged && options.free304));
    if (budget.over) {
      rejectedByCredential.set(cred, (rejectedByCredential.get(cred) ?? 0) + 1);
      return send(res, options.overBudgetStatus ?? 429, { error: 'rate limit exceeded' }, budget.headers);
    }
    const h = options.etags ? { ...budget.headers, ...validators } : budget.headers;
    if (unchanged) {
      notModifiedById.set(id, (notModifiedById.get(id) ?? 0) + 1);
      res.writeHead(304, h);
      return void res.end();
    }

    const ok = () => {
      servedById.set(id!, (servedById.get(id!) ?? 0) + 1);
      // With etags the body is the item's version: the same ETag always names the same body.
      send(res, 200, options.etags ? { id, name: `item ${id}`, version } : { id, name: `item ${id}`, n: seen }, h);
    };
    if (route !== 'item') return servePaged(req, res, url, route, id, org, body, h);
    if (id.startsWith('missing-')) return send(res, 404, { error: 'not found' }, h);
    if (id.startsWith('gone-')) return send(res, 410, { error: 'gone' }, h);
    if (id.startsWith('forbidden-')) return send(res, 403, { error: 'forbidden' }, h);
    if (id.startsWith('flaky-') && seen <= 2) return send(res, 503, { error: 'try again' }, h);
    if (id.startsWith('limited-') && seen <= 1) return send(res, 429, { error: 'slow down' }, { ...h, 'retry-after': '1' });
    if (id.startsWith('reset-') && seen <= 1) return void req.socket.destroy();
    if (id.startsWith('redirect-same-')) return send(res, 302, {}, { ...h, location: `/items/${encodeURIComponent(`landed-${id}`)}` });
    if (id.startsWith('redirect-other-')) return send(res, 302, {}, { ...h, location: `${options.redirectTo ?? ''}/items/${encodeURIComponent(`landed-${id}`)}${url.search}` });
    if (id.startsWith('redirect-loop-')) return send(res, 302, {}, { ...h, location: req.url ?? '/' });
    if (id.startsWith('slowbody-')) {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '40', ...h });
      res.write('{"id": "slow body"');
      const t = setTimeout(() => res.end(',"pad":"xxxxxxxxxxx"}'), options.slowMs ?? 3000);
      res.on('close', () => clearTimeout(t));
      return;
    }
    if (id.startsWith('truncated-')) {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100', ...h });
      res.write('{"id": "trunc');
      return void setTimeout(() => req.socket.destroy(), 20);
    }
    if (id.startsWith('text-')) {
      servedById.set(id, (servedById.get(id) ?? 0) + 1);
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', ...h });
      return void res.end(`plain text for ${id}`);
    }
    if (id.startsWith('badjson-')) {
      res.writeHead(200, { 'content-type': 'application/json', ...h });
      return void res.end('{"id": "broken",');
    }
    if (id.startsWith('big-')) {
      res.writeHead(200, { 'content-type': 'application/json', ...h });
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      let left = options.bigBytes ?? 20 * 1024 * 1024;
      const pump = () => {
        while (left > 0) {
          left -= chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      res.on('error', () => undefined);
      return pump();
    }
    if (id.startsWith('slow-')) return void setTimeout(ok, options.slowMs ?? 3000);
    ok();
  };

  /** The routes of issue #13: templates (search, by org) and the three kinds of pagination. */
  const servePaged = (req: IncomingMessage, res: ServerResponse, url: URL, route: string, id: string, org: string | undefined, body: string | undefined, h: Record<string, string>) => {
    const served = () => servedById.set(id, (servedById.get(id) ?? 0) + 1);
    if (id.startsWith('missing-')) return send(res, 404, { error: 'not found' }, h);
    if (id.startsWith('flaky-') && (requestsByUrl.get(req.url ?? '/') ?? 0) <= 1) return send(res, 503, { error: 'try again' }, h);
    const count = pagesOf(id);
    const itemsOf = (page: number) => (page >= 1 && page <= count ? [0, 1].map((i) => ({ user: id, page, i })) : []);
    switch (route) {
      case 'search':
        served();
        return send(res, 200, { id, name: `item ${id}`, received: JSON.parse(body ?? 'null') as unknown }, h);
      case 'org':
        served();
        return send(res, 200, { id, org, date: url.searchParams.get('date') }, h);
      case 'events': {
        const page = Number(url.searchParams.get('page') ?? '1');
        if (id.startsWith('fail2-') && page === 2) return send(res, 500, { error: 'page 2 is broken' }, h);
        served();
        return send(res, 200, { page, items: itemsOf(page) }, h);
      }
      case 'feed': {
        const page = Number(url.searchParams.get('page') ?? '1');
        const headers = { ...h };
        const self = `/feed/${encodeURIComponent(id)}`;
        if (page < count) {
          // Page 1 links absolutely (another origin for cross-*), later pages relatively; a "last" link and a quoted param around it.
          const host = `http://${req.headers.host ?? 'localhost'}`;
          const next = page === 1 ? `${id.startsWith('cross-') ? (options.redirectTo ?? host) : host}${self}?page=2` : `${self}?page=${page + 1}`;
          headers['link'] = `<${self}?page=${count}>; rel="last"; title="last, page", <${next}>; rel="next"`;
        }
        served();
        return send(res, 200, { id, page, items: itemsOf(page) }, headers);
      }
      case 'stream': {
        const cursor = url.searchParams.get('cursor');
        const page = cursor === null ? 1 : Number(cursor.replace(/^c/, ''));
        served();
        return send(res, 200, { data: itemsOf(page), next_cursor: page < count ? `c${page + 1}` : null }, h);
      }
    }
  };

  const server = createServer((req, res) => {
    if (options.latencyMs) setTimeout(() => handle(req, res), options.latencyMs);
    else handle(req, res);
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, options.host ?? '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${options.host ?? '127.0.0.1'}:${port}`,
    server,
    requestsById,
    requestsByCredential,
    servedById,
    requestsByUrl,
    rejectedByCredential,
    acceptedAt,
    tokenRequests,
    tokenForms,
    totalRequests: () => total,
    unauthorizedAnswers: () => unauthorized,
    log,
    revoke: (credential) => void revoked.add(credential),
    change(ids) {
      for (const id of ids) versions.set(id, (versions.get(id) ?? 1) + 1);
    },
    notModifiedById,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Last-Modified of version 0 of every item (version n is n hours later). */
const ITEMS_EPOCH = Date.parse('2026-01-01T00:00:00Z');

/** RFC 9110 §13.1.2-3: If-None-Match (weak comparison, lists, `*`) wins; without it, If-Modified-Since. */
function notModified(req: IncomingMessage, etag: string, lastModifiedMs: number): boolean {
  const inm = req.headers['if-none-match'];
  if (inm !== undefined) {
    const strip = (t: string) => t.trim().replace(/^W\//, '');
    return inm.split(',').some((t) => t.trim() === '*' || strip(t) === strip(etag));
  }
  const ims = req.headers['if-modified-since'];
  if (ims === undefined) return false;
  const since = Date.parse(ims);
  return Number.isFinite(since) && lastModifiedMs <= since;
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}
