import type { CredentialPool } from '../../auth/credential-pool.js';
import { startProbeServer, type Probes } from '../../metrics/metrics-server.js';
import { InputError } from '../../errors.js';
import { startWorker } from '../../workers/start-worker.js';
import { openContext, type GlobalFlags } from '../command-context.js';
import { fleetProbes } from '../fleet-probes.js';
import { onShutdownSignals } from '../shutdown-signals.js';

/**
 * `pullq worker [--concurrency N] [--metrics-port N]`: one replica, until
 * SIGTERM/SIGINT (exit 0) or until it cannot go on (exit 2). With a metrics
 * port (or worker.metricsPort) it serves /metrics, /healthz and /readyz.
 */
export async function workerCommand(flags: GlobalFlags & { concurrency?: number; metricsPort?: number }): Promise<number> {
  const ctx = await openContext(flags, { longLived: true, defaultLogLevel: 'info', logFormat: 'json' });
  let stop!: () => void;
  let draining = false;
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  const metricsPort = flags.metricsPort ?? ctx.config.worker.metricsPort;
  let pool: CredentialPool | undefined;
  const probes = metricsPort !== undefined ? fleetProbes(ctx, () => pool, () => draining) : undefined;
  // The port first: one taken fails the command before this replica takes any work.
  const server = probes ? await serveMetrics(probes, metricsPort!) : undefined;
  const handle = await startWorker({ config: ctx.config, connection: ctx.redis, logger: ctx.logger, concurrency: flags.concurrency, onFatal: () => stop(), events: probes?.metrics });
  pool = handle.pool;
  ctx.logger.info({ queue: ctx.config.queue, concurrency: flags.concurrency ?? ctx.config.worker.concurrency, credentials: handle.pool.size, metricsPort: server?.port }, 'worker started');
  const stopSignals = onShutdownSignals(() => stop(), (msg) => ctx.logger.info(msg));
  await stopped;
  draining = true;
  await handle.close();
  stopSignals();
  await server?.close();
  ctx.logger.info({ ...handle.stats }, 'worker stopped');
  await ctx.close();
  const reason = handle.fatalReason();
  if (reason !== undefined) {
    process.stderr.write(`pullq: ${reason}\n`);
    return 2;
  }
  return 0;
}

async function serveMetrics(probes: Probes, port: number) {
  try {
    return await startProbeServer(probes, port);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new InputError(code === 'EADDRINUSE' ? `metrics port ${port} is in use; pick another with --metrics-port or worker.metricsPort` : `cannot serve metrics on port ${port} (${code ?? (err as Error).message})`, { cause: err });
  }
}
