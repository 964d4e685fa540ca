import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

// An HTTP proxy in front of a token endpoint, to lose answers on purpose. What it does with each
// POST is decided per request by `plan` (0-based count of POSTs so far):
// - 'pass': forwarded, the answer passed back;
// - { hold: ms }: held ms BEFORE forwarding; forwarded only if the client is still there (a client
//   killed meanwhile: the server never sees the request);
// - 'cut': forwarded, the server answers (and rotates), then the client's connection is destroyed
//   before a byte of the answer reaches it.
// Everything else (GETs) passes.

export type ProxyAction = 'pass' | 'cut' | { hold: number };

/** What a plan sees of a POST: its count, headers, body and the client's port (to find its process). */
export interface ProxiedPost {
  n: number;
  headers: IncomingMessage['headers'];
  body: string;
  remotePort: number | undefined;
}

export interface TokenProxy {
  url: string;
  /** POSTs seen, forwarded to the server, and answers cut. */
  posts: number;
  forwarded: number;
  cut: number;
  /** POSTs whose client went away while held (never forwarded). */
  dropped: number;
  /** Resolves when the next held request starts being held. */
  held(): Promise<void>;
  plan: (post: ProxiedPost) => ProxyAction | Promise<ProxyAction>;
  close(): Promise<void>;
}

export async function startTokenProxy(upstream: string, plan: TokenProxy['plan'] = () => 'pass'): Promise<TokenProxy> {
  const target = new URL(upstream);
  const waiters: (() => void)[] = [];
  const proxy: TokenProxy = {
    url: '',
    posts: 0,
    forwarded: 0,
    cut: 0,
    dropped: 0,
    plan,
    held: () => new Promise<void>((resolve) => waiters.push(resolve)),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    let clientGone = false;
    res.on('close', () => {
      if (!res.writableFinished) clientGone = true;
    });
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const body = Buffer.concat(chunks);
        const action: ProxyAction = req.method === 'POST' ? await proxy.plan({ n: proxy.posts++, headers: req.headers, body: body.toString('utf8'), remotePort: req.socket.remotePort }) : 'pass';
        if (typeof action === 'object') {
          for (const w of waiters.splice(0)) w();
          await new Promise((r) => setTimeout(r, action.hold));
          if (clientGone || req.socket.destroyed) {
            proxy.dropped++;
            return;
          }
        }
        proxy.forwarded++;
        const headers = { ...req.headers, host: target.host };
        const up = httpRequest({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers }, (answer) => {
          if (action === 'cut') {
            answer.resume();
            answer.on('end', () => {
              proxy.cut++;
              req.socket.destroy();
            });
            return;
          }
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        });
        up.on('error', () => res.destroy());
        up.end(body);
      })();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return proxy;
}
