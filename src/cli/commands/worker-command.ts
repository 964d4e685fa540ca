import { startWorker } from '../../workers/start-worker.js';
import { openContext, type GlobalFlags } from '../command-context.js';
import { onShutdownSignals } from '../shutdown-signals.js';

/** `pullq worker [--concurrency N]`: one replica, until SIGTERM/SIGINT (exit 0) or until it cannot go on (exit 2). */
export async function workerCommand(flags: GlobalFlags & { concurrency?: number }): Promise<number> {
  const ctx = await openContext(flags, { longLived: true, defaultLogLevel: 'info', logFormat: 'json' });
  let stop!: () => void;
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  const handle = await startWorker({ config: ctx.config, connection: ctx.redis, logger: ctx.logger, concurrency: flags.concurrency, onFatal: () => stop() });
  ctx.logger.info({ queue: ctx.config.queue, concurrency: flags.concurrency ?? ctx.config.worker.concurrency, credentials: handle.pool.size }, 'worker started');
  const stopSignals = onShutdownSignals(() => stop(), (msg) => ctx.logger.info(msg));
  await stopped;
  await handle.close();
  stopSignals();
  ctx.logger.info({ ...handle.stats }, 'worker stopped');
  await ctx.close();
  const reason = handle.fatalReason();
  if (reason !== undefined) {
    process.stderr.write(`pullq: ${reason}\n`);
    return 2;
  }
  return 0;
}
