import { randomUUID } from 'node:crypto';
import type { Logger } from '../logger.js';
import type { Sink, Summary } from '../sinks/sink.js';
import type { RunStore } from './run-store.js';

/** How long a finalizer may hold the run before another may take over (ms). */
const FINALIZE_LOCK_MS = 10 * 60_000;

/**
 * Writes a done run's final output once. Any process may call it (the worker
 * that committed the last batch, `pull`, a worker starting up); one wins the
 * lock, the others return false and try again later. Safe to repeat after a crash.
 */
export async function finalizeRun(store: RunStore, sink: Sink, run: string, logger: Logger): Promise<boolean> {
  if (await store.isFinalized(run)) {
    await sink.cleanup(run);
    return true;
  }
  const status = await store.status(run);
  if (!status?.done) return false;
  const owner = randomUUID();
  if (!(await store.lockFinalize(run, owner, FINALIZE_LOCK_MS))) return false;
  try {
    if (await store.isFinalized(run)) return true;
    const parts = await store.parts(run);
    const finishedAt = Date.now();
    const summary: Summary = {
      run,
      total: status.total,
      succeeded: status.succeeded,
      failed: status.failed,
      startedAt: status.createdAt ?? new Date(finishedAt).toISOString(),
      finishedAt: new Date(finishedAt).toISOString(),
      durationMs: finishedAt - Date.parse(status.createdAt ?? new Date(finishedAt).toISOString()),
      errors: status.errors,
    };
    await sink.finalize(run, parts, summary, () => store.invalidLines(run));
    await store.markFinalized(run, finishedAt);
    await sink.cleanup(run);
    logger.info({ run, total: summary.total, succeeded: summary.succeeded, failed: summary.failed, output: sink.location(run) }, 'run complete');
    return true;
  } finally {
    await store.unlockFinalize(run, owner);
  }
}
