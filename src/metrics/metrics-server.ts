import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { PullqMetrics } from './pullq-metrics.js';

export interface Probes {
  metrics: PullqMetrics;
  /** Ready: Redis answers and the process is not draining; else why not. */
  ready: () => Promise<{ ok: true } | { ok: false; reason: string }>;
}

/**
 * Answers GET /metrics (Prometheus text), /healthz (the process is up) and
 * /readyz (Redis reachable, not draining; 503 naming why not). Returns false
 * for any other path, so a bigger app (the dashboard) can mount it first.
 */
export function serveProbes(probes: Probes, req: IncomingMessage, res: ServerResponse): boolean {
  const path = (req.url ?? '/').split('?')[0];
  if (req.method !== 'GET' && req.method !== 'HEAD') return false;
  if (path === '/metrics') {
    probes.metrics.text().then(
      (text) => send(res, 200, probes.metrics.contentType, text),
      () => send(res, 500, 'text/plain', 'metrics unavailable\n'),
    );
    return true;
  }
  if (path === '/healthz') {
    send(res, 200, 'text/plain', 'ok\n');
    return true;
  }
  if (path === '/readyz') {
    probes.ready().then(
      (r) => send(res, r.ok ? 200 : 503, 'text/plain', r.ok ? 'ready\n' : `not ready: ${r.reason}\n`),
      () => send(res, 503, 'text/plain', 'not ready\n'),
    );
    return true;
  }
  return false;
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}

/** A server of the probes alone (a worker's --metrics-port); rejects with the listen error (e.g. EADDRINUSE). */
export async function startProbeServer(probes: Probes, port: number, host = '0.0.0.0'): Promise<{ server: Server; port: number; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    if (!serveProbes(probes, req, res)) send(res, 404, 'text/plain', 'not found: try /metrics, /healthz or /readyz\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    server,
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
