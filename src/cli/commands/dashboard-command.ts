import type { RequestHandler } from 'express';
import { CredentialPool } from '../../auth/credential-pool.js';
import { runtimeEnv } from '../../config.js';
import { createHttpClient } from '../../jobs/http-client.js';
import { serveProbes } from '../../metrics/metrics-server.js';
import { openContext, type GlobalFlags } from '../command-context.js';
import { fleetProbes } from '../../api/fleet-probes.js';
import { isLoopback, startDashboard } from '../dashboard/start-dashboard.js';

/** Defaults of `pullq dashboard`: this machine only. */
export const DASHBOARD_DEFAULTS = { host: '127.0.0.1', port: 3000 } as const;

/**
 * `pullq dashboard [--port 3000] [--host 127.0.0.1]`: the fleet's web page
 * (runs, credentials, throughput) and Bull Board under /queues, read from
 * Redis, until SIGINT/SIGTERM (exit 0). With $PULLQ_DASHBOARD_PASSWORD set,
 * every route asks for it (basic auth, any user).
 */
export async function dashboardCommand(flags: GlobalFlags & { host?: string; port?: number }): Promise<number> {
  const host = flags.host ?? DASHBOARD_DEFAULTS.host;
  const port = flags.port ?? DASHBOARD_DEFAULTS.port;
  const password = runtimeEnv().dashboardPassword;
  // Listening for the signals from the start: one that arrives while starting up stops the dashboard calmly too.
  let stop!: () => void;
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  process.once('SIGINT', () => stop());
  process.once('SIGTERM', () => stop());
  // Not long-lived in Redis's sense: a read that cannot get through should fail (the page says so and retries), not hang.
  const ctx = await openContext(flags, { longLived: false, defaultLogLevel: 'warn', logFormat: 'human' });
  try {
    // The fleet's gauges for Prometheus (credential state and budget, BullMQ's job counts), read from Redis at each scrape.
    const pool = new CredentialPool({ redis: ctx.redis, config: ctx.config, logger: ctx.logger, http: createHttpClient(ctx.config) });
    let draining = false;
    const probes = fleetProbes(ctx, () => pool, () => draining);
    const only = (paths: string[]): RequestHandler => (req, res, next) => {
      if (!paths.includes(req.path) || !serveProbes(probes, req, res)) next();
    };
    // Probes answer without the password (orchestrators call them); /metrics asks for it like the page.
    const dashboard = await startDashboard({ ...ctx, pool, host, port, password, open: [only(['/healthz', '/readyz'])], routers: [only(['/metrics'])] });
    if (!isLoopback(host) && password === undefined) {
      process.stderr.write(`pullq: warning: the dashboard listens on ${host} without a password: anyone who can reach port ${dashboard.port} sees the fleet's runs and credentials (set PULLQ_DASHBOARD_PASSWORD)\n`);
    }
    process.stdout.write(`dashboard on ${dashboard.url} (queue ${ctx.config.queue})\n`);
    await stopped;
    draining = true;
    await dashboard.close();
    return 0;
  } finally {
    await ctx.close();
  }
}
