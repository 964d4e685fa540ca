import express, { type Express, type RequestHandler } from 'express';
import { basicAuth } from './basic-auth.js';
import { DASHBOARD_PAGE } from './dashboard-page.js';
import { QUEUES_PATH } from './queues-board.js';
import { scrubDeep } from './scrub-deep.js';

export interface DashboardAppOptions {
  /** The state the page polls (GET /api/state). */
  readState: () => Promise<unknown>;
  /** Every secret the pool knows: scrubbed out of /api/state as a last net. */
  secrets: () => readonly string[];
  /** Bull Board, mounted under /queues (queuesBoard()). */
  queues?: RequestHandler;
  /** When set, every route after `open` asks for it (basic auth, any user). */
  password?: string;
  /**
   * Host names the server answers to (the Host header), or null for any. A
   * dashboard on loopback without a password answers only to loopback names,
   * so a web page elsewhere cannot read it through DNS rebinding.
   */
  allowedHosts?: ReadonlySet<string> | null;
  /** Routes mounted before the password check: probes such as /healthz and /readyz. */
  open?: RequestHandler[];
  /** Routes mounted after the password check, beside the page: e.g. /metrics. */
  routers?: RequestHandler[];
  /** Told of a failed state read (the page gets a 503 and retries). */
  onError?: (err: unknown) => void;
}

/** The express app of `pullq dashboard`: the page at /, its JSON at /api/state, Bull Board at /queues, and the routers given. */
export function createDashboardApp(o: DashboardAppOptions): Express {
  const app = express();
  app.disable('x-powered-by');
  app.use((_req, res, next) => {
    res.set({
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'x-frame-options': 'DENY',
      'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
    });
    next();
  });
  if (o.allowedHosts) app.use(hostCheck(o.allowedHosts));
  for (const r of o.open ?? []) app.use(r);
  if (o.password !== undefined) app.use(basicAuth(o.password));
  for (const r of o.routers ?? []) app.use(r);

  app.get('/', (_req, res) => {
    res.set({ 'content-security-policy': DASHBOARD_PAGE.csp, 'cache-control': 'no-store' }).type('html').send(DASHBOARD_PAGE.html);
  });
  app.get('/api/state', async (_req, res) => {
    res.set('cache-control', 'no-store');
    try {
      res.json(scrubDeep(await o.readState(), o.secrets()));
    } catch (err) {
      o.onError?.(err);
      res.status(503).json({ error: 'cannot read the state from Redis' });
    }
  });
  if (o.queues) app.use(QUEUES_PATH, o.queues);
  app.use((_req, res) => {
    res.status(404).type('text/plain').send('not found\n');
  });
  return app;
}

/** Refuses requests whose Host header names another host (421 Misdirected Request). */
function hostCheck(allowed: ReadonlySet<string>): RequestHandler {
  return (req, res, next) => {
    const host = req.headers.host;
    let name: string | undefined;
    try {
      name = host === undefined ? undefined : new URL(`http://${host}`).hostname.toLowerCase();
    } catch {
      name = '';
    }
    if (name === undefined || allowed.has(name)) return next();
    res
      .status(421)
      .type('text/plain')
      .send('this dashboard answers only to localhost names: it is bound to loopback without a password (set PULLQ_DASHBOARD_PASSWORD to serve it under another name)\n');
  };
}
