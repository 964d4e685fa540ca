import { openPullq, type GlobalFlags } from '../command-context.js';
import { onShutdownSignals } from '../shutdown-signals.js';

/**
 * `pullq worker [--concurrency N] [--metrics-port N]`: one replica, until
 * SIGTERM/SIGINT (exit 0, within worker.shutdownTimeoutMs + 10 s even with Redis gone) or until it cannot go on (exit 2). With a metrics
 * port (or worker.metricsPort) it serves /metrics, /healthz and /readyz.
 */
export async function workerCommand(flags: GlobalFlags & { concurrency?: number; metricsPort?: number }): Promise<number> {
  const { pullq, config, logger } = openPullq(flags, { connection: 'patient', defaultLogLevel: 'info', logFormat: 'json' });
  let stop!: () => void;
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  try {
    const worker = await pullq.worker({ concurrency: flags.concurrency, metricsPort: flags.metricsPort, onFatal: () => stop() });
    logger.info({ queue: config.queue, concurrency: flags.concurrency ?? config.worker.concurrency, credentials: worker.credentials, metricsPort: worker.metricsPort }, 'worker started');
    const lastResort = { shutdownTimeoutMs: config.worker.shutdownTimeoutMs, exitCode: () => (worker.fatalReason() !== undefined ? 2 : 0), log: (msg: string) => logger.warn(msg) };
    const stopSignals = onShutdownSignals(() => stop(), (msg) => logger.info(msg), lastResort);
    await stopped;
    await worker.close();
    stopSignals();
    logger.info({ ...worker.stats }, 'worker stopped');
    const reason = worker.fatalReason();
    if (reason !== undefined) {
      process.stderr.write(`pullq: ${reason}\n`);
      return 2;
    }
    return 0;
  } finally {
    await pullq.close();
  }
}
