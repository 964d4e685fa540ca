import type { RequestHandler } from 'express';
import { CredentialPool } from '../auth/credential-pool.js';
import type { Config } from '../config.js';
import { checkDashboardPassword, isLoopback, startDashboard } from '../dashboard/start-dashboard.js';
import { createHttpClient } from '../jobs/http-client.js';
import type { Logger } from '../logger.js';
import { serveProbes } from '../metrics/metrics-server.js';
import { fleetProbes } from './fleet-probes.js';
import type { Connected } from './pullq-context.js';

/** Defaults of the dashboard: this machine only. */
export const DASHBOARD_DEFAULTS = { host: '127.0.0.1', port: 3000 } as const;

export interface DashboardOptions {
  /** Default 127.0.0.1 (this machine only). */
  host?: string;
  /** Default 3000; 0 picks a free port (the result names it). */
  port?: number;
  /** Basic auth (any user name) on every route but /healthz and /readyz; not empty (a ConfigError). */
  password?: string;
}

export interface DashboardHandle {
  url: string;
  port: number;
  /** True when it listens beyond this machine without a password: anyone who can reach it sees the fleet. */
  exposed: boolean;
  close(): Promise<void>;
}

/**
 * The fleet's web page (runs, credentials, throughput) and Bull Board under
 * /queues, read from Redis, with /metrics, /healthz and /readyz.
 */
export async function serveDashboard(c: Connected, config: Config, logger: Logger, o: DashboardOptions): Promise<DashboardHandle> {
  checkDashboardPassword(o.password);
  const host = o.host ?? DASHBOARD_DEFAULTS.host;
  const port = o.port ?? DASHBOARD_DEFAULTS.port;
  // The fleet's gauges for Prometheus (credential state and budget, BullMQ's job counts), read from Redis at each scrape.
  // Watched like a worker's: the page shows the set in force.
  const pool = await CredentialPool.open({ redis: c.redis, config, logger, http: createHttpClient(config), watch: true });
  let draining = false;
  const probes = fleetProbes(c, () => pool, () => draining);
  const only = (paths: string[]): RequestHandler => (req, res, next) => {
    if (!paths.includes(req.path) || !serveProbes(probes, req, res)) next();
  };
  // Probes answer without the password (orchestrators call them); /metrics asks for it like the page.
  const dashboard = await startDashboard({ config, logger, redis: c.redis, store: c.store, queue: c.queue, pool, host, port, password: o.password, open: [only(['/healthz', '/readyz'])], routers: [only(['/metrics'])] });
  return {
    url: dashboard.url,
    port: dashboard.port,
    exposed: !isLoopback(host) && o.password === undefined,
    async close() {
      draining = true;
      pool.close();
      await dashboard.close();
    },
  };
}
