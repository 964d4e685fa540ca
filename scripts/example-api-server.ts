import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * The bundled example API: a small token-protected JSON API with fault modes,
 * used by `npm run demo`, the tests and the benchmarks. It serves
 * GET /items/<id> and GET /items?id=<id> with { id, name, n } and counts every
 * request per ID and per credential, so callers can check exactly-once work.
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
 */
export interface ExampleApiOptions {
  /** header: `<header>: <scheme> <token>`; query: ?<param>=<token>; basic: user/password pairs; none. */
  auth?:
    | { type: 'none' }
    | { type: 'header'; header?: string; scheme?: string; tokens: string[] }
    | { type: 'query'; param: string; tokens: string[] }
    | { type: 'basic'; users: Record<string, string> };
  /** Tokens that answer 401 (revoked). */
  revoked?: string[];
  slowMs?: number;
  bigBytes?: number;
  /** Fixed latency added to every answer (ms). */
  latencyMs?: number;
  port?: number;
  host?: string;
}

export interface ExampleApi {
  url: string;
  server: Server;
  /** Requests seen per decoded ID. */
  requestsById: Map<string, number>;
  /** Requests per credential (the token, or user for basic; "-" for none). */
  requestsByCredential: Map<string, number>;
  /** 2xx answers per decoded ID. */
  servedById: Map<string, number>;
  totalRequests(): number;
  close(): Promise<void>;
}

/** Starts the example API on 127.0.0.1 (port 0 = a free one). */
export async function startExampleApi(options: ExampleApiOptions = {}): Promise<ExampleApi> {
  const auth = options.auth ?? { type: 'none' };
  const requestsById = new Map<string, number>();
  const requestsByCredential = new Map<string, number>();
  const servedById = new Map<string, number>();
  let total = 0;

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
    }
  };

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    total++;
    const url = new URL(req.url ?? '/', 'http://localhost');
    let id: string | null = null;
    const m = /^\/items\/([^/]+)$/.exec(url.pathname);
    if (m) id = decodeURIComponent(m[1]!);
    else if (url.pathname === '/items') id = url.searchParams.get('id');
    if (id === null) return send(res, 404, { error: 'no such route' });

    const seen = (requestsById.get(id) ?? 0) + 1;
    requestsById.set(id, seen);
    const cred = credentialOf(req, url);
    if (cred === null) return send(res, 401, { error: 'missing or bad credential' });
    if (auth.type !== 'none' && auth.type !== 'basic' && !auth.tokens.includes(cred)) return send(res, 401, { error: 'unknown token' });
    requestsByCredential.set(cred, (requestsByCredential.get(cred) ?? 0) + 1);
    if (options.revoked?.includes(cred)) return send(res, 401, { error: 'token revoked' });

    const ok = () => {
      servedById.set(id!, (servedById.get(id!) ?? 0) + 1);
      send(res, 200, { id, name: `item ${id}`, n: seen });
    };
    if (id.startsWith('missing-')) return send(res, 404, { error: 'not found' });
    if (id.startsWith('gone-')) return send(res, 410, { error: 'gone' });
    if (id.startsWith('forbidden-')) return send(res, 403, { error: 'forbidden' });
    if (id.startsWith('flaky-') && seen <= 2) return send(res, 503, { error: 'try again' });
    if (id.startsWith('limited-') && seen <= 1) return send(res, 429, { error: 'slow down' }, { 'retry-after': '1' });
    if (id.startsWith('reset-') && seen <= 1) return void req.socket.destroy();
    if (id.startsWith('text-')) {
      servedById.set(id, (servedById.get(id) ?? 0) + 1);
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
      return void res.end(`plain text for ${id}`);
    }
    if (id.startsWith('badjson-')) {
      res.writeHead(200, { 'content-type': 'application/json' });
      return void res.end('{"id": "broken",');
    }
    if (id.startsWith('big-')) {
      res.writeHead(200, { 'content-type': 'application/json' });
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
    totalRequests: () => total,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}
