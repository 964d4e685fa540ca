import { randomUUID } from 'node:crypto';
import { PullqError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { FinalizeFence, Sink, Summary } from '../sinks/sink.js';
import type { RunStore } from './run-store.js';
import { seriesOf } from './series.js';

/** How long a finalizer holds the run without renewing before another may take over (ms). */
export const FINALIZE_LOCK_MS = 60_000;

/** A finalizer's lock expired (it stalled longer than the lock) and another took over: it stops, publishing nothing. */
export class FinalizeLostError extends PullqError {
  constructor(run: string) {
    super('finalize_lost', `another process took over writing the output of run ${run}; this one stopped`);
  }
}

/**
 * Writes a done run's final output once. Any process may call it (the worker
 * that committed the last batch, `pull`, a worker starting up); one wins the
 * lock, the others return false and try again later. Safe to repeat after a crash.
 * True once the output is published; `onCleanupPending` is called when the run's parts are kept still
 * (no replica acknowledged the finalized mark in time): call again later to drop them.
 * The lock is renewed while writing (every third of `lockMs`), and checked
 * before anything becomes visible: a finalizer that stalled past its lock
 * (a paused container, a long GC) stops instead of overwriting the other's output.
 */
export async function finalizeRun(store: RunStore, sink: Sink, run: string, logger: Logger, options: { lockMs?: number; replicaWaitMs?: number; onCleanupPending?: () => void } = {}): Promise<boolean> {
  const lockMs = options.lockMs ?? FINALIZE_LOCK_MS;
  if (await store.isFinalized(run)) {
    if (!(await cleanupOnceReplicated(store, sink, run, logger, options.replicaWaitMs))) options.onCleanupPending?.();
    return true;
  }
  const status = await store.status(run);
  if (!status?.done) return false;
  const owner = randomUUID();
  if (!(await store.lockFinalize(run, owner, lockMs))) return false;
  let lost = false;
  const renew = setInterval(() => {
    store.extendFinalize(run, owner, lockMs).then(
      (held) => {
        if (!held) lost = true;
      },
      () => undefined,
    );
  }, Math.max(10, Math.floor(lockMs / 3)));
  const fence: FinalizeFence = {
    async check() {
      if (lost || !(await store.holdsFinalize(run, owner))) {
        lost = true;
        throw new FinalizeLostError(run);
      }
    },
  };
  try {
    if (await store.isFinalized(run)) return true;
    // The output rests on the run's commits (counts, parts): publish only once a replica holds them, so a
    // failover to it can never leave output Redis knows nothing of. Not acknowledged: try again later.
    const ack = await store.replicasHold(options.replicaWaitMs);
    if (!ack.durable) {
      logger.warn({ run, replicas: ack.replicas }, `run ${run}: output not published yet: ${heldBecause(ack.replicas)}; finalize tries again`);
      return false;
    }
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
    await sink.finalize(run, parts, summary, () => store.invalidLines(run), fence);
    // Conditional re-pulls: this run's validators become its series' (the sink skips a run that wrote none).
    const series = seriesOf(run, store.queue);
    if (series !== null) await sink.publishValidators?.(run, series, parts, fence);
    if (!(await store.markFinalized(run, finishedAt, owner))) throw new FinalizeLostError(run);
    if (!(await cleanupOnceReplicated(store, sink, run, logger, options.replicaWaitMs))) options.onCleanupPending?.();
    logger.info({ run, total: summary.total, succeeded: summary.succeeded, failed: summary.failed, output: sink.location(run) }, 'run complete');
    return true;
  } catch (err) {
    if (!(err instanceof FinalizeLostError)) throw err;
    logger.info({ run }, err.message);
    return false;
  } finally {
    clearInterval(renew);
    await store.unlockFinalize(run, owner);
  }
}

/**
 * Completes a run whose output the sink published already, from that output's summary, when Redis
 * lost the run's later state (a rewind: its finalized mark, maybe commits too, so batches were
 * redone and refused with RunFinalizedError naming this run's own summary). The run's counts
 * become the summary's, then it is marked finalized and its parts dropped. False when another
 * process holds the finalize lock: try again later.
 */
export async function adoptPublishedRun(store: RunStore, sink: Sink, run: string, published: Summary, logger: Logger, options: { lockMs?: number; replicaWaitMs?: number; onCleanupPending?: () => void } = {}): Promise<boolean> {
  if (await store.isFinalized(run)) return true;
  const owner = randomUUID();
  if (!(await store.lockFinalize(run, owner, options.lockMs ?? FINALIZE_LOCK_MS))) return false;
  try {
    if (await store.isFinalized(run)) return true;
    if (!(await store.adoptCounts(run, published, owner))) return false;
    if (!(await store.markFinalized(run, Date.parse(published.finishedAt), owner))) return false;
    if (!(await cleanupOnceReplicated(store, sink, run, logger, options.replicaWaitMs))) options.onCleanupPending?.();
    logger.info({ run, total: published.total, succeeded: published.succeeded, failed: published.failed, output: sink.location(run) }, 'run complete: its output was published already');
    return true;
  } finally {
    await store.unlockFinalize(run, owner);
  }
}

/**
 * Drops the run's parts once a replica holds the finalized mark: a failover to a replica without it would
 * redo batches, and an ID's page parts (output.mode "id") must still be there then. Not acknowledged in
 * time: the parts stay (never output again), dropped by the next finalize call that sees the run complete
 * (a worker's retry every few seconds). False when they were kept.
 */
async function cleanupOnceReplicated(store: RunStore, sink: Sink, run: string, logger: Logger, timeoutMs?: number): Promise<boolean> {
  const ack = await store.replicasHold(timeoutMs);
  if (!ack.durable) {
    logger.warn({ run, replicas: ack.replicas }, `run ${run}: parts kept for now: ${heldBecause(ack.replicas)} (the run is complete); a running worker tries again every few seconds`);
    return false;
  }
  await sink.cleanup(run);
  return true;
}

/** Why a step is held back, for its log line. */
function heldBecause(replicas: number): string {
  return replicas === 0
    ? 'no Redis replica attached (one was seen less than a minute ago: it may come back, or be promoted): none holds the run state yet'
    : "no Redis replica acknowledged the run's last writes in time (replica stopped or lagging)";
}
