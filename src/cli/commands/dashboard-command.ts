import { runtimeEnv } from '../../config.js';
import { openPullq, type GlobalFlags } from '../command-context.js';

/**
 * `pullq dashboard [--port 3000] [--host 127.0.0.1]`: the fleet's web page
 * (runs, credentials, throughput) and Bull Board under /queues, read from
 * Redis, until SIGINT/SIGTERM (exit 0). With $PULLQ_DASHBOARD_PASSWORD set,
 * every route asks for it (basic auth, any user).
 */
export async function dashboardCommand(flags: GlobalFlags & { host?: string; port?: number }): Promise<number> {
  const password = runtimeEnv().dashboardPassword;
  // Listening for the signals from the start: one that arrives while starting up stops the dashboard calmly too.
  let stop!: () => void;
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  process.once('SIGINT', () => stop());
  process.once('SIGTERM', () => stop());
  // Not long-lived in Redis's sense: a read that cannot get through should fail (the page says so and retries), not hang.
  const { pullq, config } = openPullq(flags, { connection: 'brief', defaultLogLevel: 'warn', logFormat: 'human' });
  try {
    const dashboard = await pullq.dashboard({ host: flags.host, port: flags.port, password });
    if (dashboard.exposed) {
      process.stderr.write(`pullq: warning: the dashboard listens on ${flags.host} without a password: anyone who can reach port ${dashboard.port} sees the fleet's runs and credentials (set PULLQ_DASHBOARD_PASSWORD)\n`);
    }
    process.stdout.write(`dashboard on ${dashboard.url} (queue ${config.queue})\n`);
    await stopped;
    await dashboard.close();
    return 0;
  } finally {
    await pullq.close();
  }
}
