import { startWorker } from '../../workers/start-worker.js';
import { openContext, type GlobalFlags } from '../command-context.js';
import { onShutdownSignals } from '../shutdown-signals.js';

/** `pullq worker [--concurrency N]`: one replica, until SIGTERM/SIGINT. */
export async function workerCommand(flags: GlobalFlags & { concurrency?: number }): Promise<number> {
  const ctx = await openContext(flags, { longLived: true, defaultLogLevel: 'info', logFormat: 'json' });
  const handle = await startWorker({ config: ctx.config, connection: ctx.redis, logger: ctx.logger, concurrency: flags.concurrency });
  ctx.logger.info({ queue: ctx.config.queue, concurrency: flags.concurrency ?? ctx.config.worker.concurrency, credentials: ctx.config.credentials.length }, 'worker started');
  await new Promise<void>((resolve) => {
    onShutdownSignals(() => {
      void handle.close().finally(resolve);
    }, (msg) => ctx.logger.info(msg));
  });
  ctx.logger.info({ ...handle.stats }, 'worker stopped');
  await ctx.close();
  return 0;
}
