import { setTimeout as sleep } from 'node:timers/promises';
import { CredentialPool, type CredentialUsage } from '../auth/credential-pool.js';
import { compileIdUrl } from '../ids/id-url.js';
import { requestTemplateOf } from '../ids/request-template.js';
import type { IdsInput } from '../ids/ids-input.js';
import { createHttpClient } from '../jobs/http-client.js';
import type { Transform } from '../jobs/shape-result.js';
import { EnqueueLostError } from '../errors.js';
import { canReadAgain, enqueueRun, repairJobs } from '../runs/enqueue-run.js';
import { finalizeRun } from '../runs/finalize-run.js';

/** How often pull tries a held-back finalize again (ms): each try may block on a WAIT for up to 2 s. */
const FINALIZE_RETRY_MS = 2_000;
import type { RunStatus } from '../runs/run-store.js';
import { startWorker, type WorkerHandle } from '../workers/start-worker.js';
import { settlesWithin } from '../redis/settles-within.js';
import type { PullqContext } from './pullq-context.js';

export interface PullOptions {
  /** The run's name (resumes it if it exists); default: the source's name and a UTC timestamp. */
  run?: string;
  /** Worker replicas in this process (default 1); 0 only waits for other replicas to do the work. */
  workers?: number;
  /** In-flight requests per replica (default worker.concurrency). */
  concurrency?: number;
  /** Aborting stops the pull: in-flight requests finish, the rest stays queued; the result says `interrupted`. */
  signal?: AbortSignal;
  /** Things a person would want to hear as they happen (a run resumed, already enqueued). */
  onNotice?: (message: string) => void;
  /** Shapes each answer's stored data (replaces output.select). */
  transform?: Transform;
  /**
   * With no ID finished for this long (ms, default REPAIR_AFTER_MS), the run's batches are checked for one
   * left without its job (Redis lost an acknowledged write) and given it back.
   */
  repairAfterMs?: number;
}

/** How long an interrupted pull waits for the credentials' counters (its result's `credentials.after`). */
const USAGE_READ_MS = 1_000;

/** Default of PullOptions.repairAfterMs: a run that made no progress this long is checked for batches without a job. */
export const REPAIR_AFTER_MS = 20_000;

export interface PullResult {
  run: string;
  /** Every ID has an outcome and the output is written. */
  complete: boolean;
  /** Why the run is not complete: `interrupted`, or what stopped it (e.g. every credential quarantined). */
  reason?: string;
  /** The run's counts at the end (null if it could not be read). */
  status: RunStatus | null;
  /** Where the output is (the sink's words). */
  location: string;
  /** Wall time from the first worker's start to the end, ms. */
  durationMs: number;
  /** Each credential's fleet-wide counters before and after (every replica's work in that time). */
  credentials: { before: CredentialUsage[]; after: CredentialUsage[] };
}

/**
 * Enqueues IDs (or resumes the run), works on them in this process until
 * the run is complete, and writes the output. Nothing is lost when it stops
 * early: pulling the same run again resumes it.
 */
export async function pullRun(ctx: PullqContext, ids: IdsInput, run: string, options: PullOptions = {}): Promise<PullResult> {
  const { store, queue, redis } = await ctx.connection('patient');
  const config = ctx.config;
  const sink = ctx.sink();
  const notice = options.onNotice ?? ((message: string) => ctx.logger.info(message));
  const workers: WorkerHandle[] = [];
  const stopped = () => options.signal?.aborted === true;
  let closePool = () => {};
  try {
    const existing = await store.status(run);
    if (existing?.aborted) {
      // Resuming is how a user says the cause is fixed: its batches get their jobs back below.
      notice(`run ${run} had stopped (${existing.aborted}); resuming it`);
      await store.clearAbort(run);
    }
    const enqueue = () => enqueueRun({ store, queue, run, source: ids, batchSize: config.enqueue.batchSize, urlFor: compileIdUrl(config.request.url), template: requestTemplateOf(config) });
    if (existing?.sealed) {
      notice(`run ${run} is already enqueued; working on it until complete`);
      await repairJobs(queue, store, run);
    } else {
      await enqueue();
    }
    // Reads the credentials' fleet-wide counters for the summary (before any request of ours), and
    // with workers: 0 (the other replicas do the work) notices when none of them can.
    // Watched: quarantine is judged by the set in force (a rotated credentials file's), not the one it started with.
    // With workers here, theirs already say what a reload did: this one keeps quiet.
    const poolLogger = (options.workers ?? 1) > 0 ? ctx.logger.child({}, { level: 'silent' }) : ctx.logger;
    const pool = await CredentialPool.open({ redis, config, logger: poolLogger, http: createHttpClient(config), watch: true });
    closePool = () => pool.close();
    const before = await pool.usage();
    const startedAt = Date.now();
    let fatal: string | undefined;
    for (let i = 0; i < (options.workers ?? 1); i++) {
      workers.push(
        await startWorker({ config, connection: redis, logger: ctx.logger, concurrency: options.concurrency, sink: ctx.workerSink(), transform: options.transform, onFatal: (reason) => (fatal ??= reason) }),
      );
    }

    // Set by the loop below (a closure: declared so that the narrowing of `= null` does not stick).
    let status = null as RunStatus | null;
    let checkedAt = 0;
    const repairAfterMs = options.repairAfterMs ?? REPAIR_AFTER_MS;
    let finished = -1;
    let progressAt = Date.now();
    let finalizeAt = 0;
    const watching = (async () => {
      while (!stopped() && fatal === undefined) {
        status = await store.status(run);
        if (status?.complete) break;
        if (status?.aborted) {
          fatal = `run ${run} cannot complete: ${status.aborted}`;
          break;
        }
        if (status && !status.sealed) {
          // Sealed before this loop, unsealed now: Redis lost the seal (or IDs) it had acknowledged.
          if (!canReadAgain(ids)) {
            fatal = new EnqueueLostError(`Redis lost IDs of run ${run} that it had already acknowledged; pull the same IDs with --run ${run} again`).message;
            break;
          }
          notice(`run ${run} lost its enqueued IDs in Redis (an acknowledged write was lost); enqueuing them again`);
          await enqueue();
          continue;
        }
        if (status && status.succeeded + status.failed !== finished) {
          finished = status.succeeded + status.failed;
          progressAt = Date.now();
        } else if (status && !status.done && Date.now() - progressAt > repairAfterMs) {
          progressAt = Date.now();
          const repaired = await repairJobs(queue, store, run);
          if (repaired > 0) ctx.logger.warn({ run, batches: repaired }, 'batches without their job were given one back');
        }
        // Another process may hold the finalize lock: wait for it as for work.
        // Held back (no replica acknowledged yet): try again every FINALIZE_RETRY_MS, not on every poll.
        if (!status?.done || Date.now() < finalizeAt || !(await finalizeRun(store, sink, run, ctx.logger))) {
          if (status?.done && Date.now() >= finalizeAt) finalizeAt = Date.now() + FINALIZE_RETRY_MS;
          await sleep(250);
        }
        if (Date.now() - checkedAt > 2000) {
          checkedAt = Date.now();
          if (await pool.allQuarantined()) fatal = `every credential is quarantined (${pool.size} of ${pool.size}); fix or replace them and resume the run`;
        }
      }
    })();
    // A stop does not wait for the loop's Redis call of the moment: with Redis hung it would never answer.
    let onAbort = () => {};
    const aborted = new Promise<'aborted'>((resolve) => {
      onAbort = () => resolve('aborted');
      if (stopped()) onAbort();
      options.signal?.addEventListener('abort', onAbort, { once: true });
    });
    const ended = await Promise.race([watching, aborted]).finally(() => options.signal?.removeEventListener('abort', onAbort));
    if (ended === 'aborted') watching.catch((err: unknown) => ctx.logger.debug({ err: { message: (err as Error)?.message } }, 'the stopped pull loop ended with an error'));
    await Promise.all(workers.splice(0).map((w) => w.close()));
    const complete = status?.complete === true;
    // The counters of the set in force now (a rotated credentials file's, read again); interrupted: read if Redis
    // answers soon, else those from the start stand.
    const usageNow = async () => (await CredentialPool.open({ redis, config, logger: ctx.logger, http: createHttpClient(config), reread: true })).usage();
    let after = before;
    if (complete) after = await usageNow();
    else await settlesWithin(usageNow().then((u) => (after = u)), USAGE_READ_MS);
    return {
      run,
      complete,
      reason: complete ? undefined : (fatal ?? 'interrupted'),
      status,
      location: sink.location(run),
      durationMs: Date.now() - startedAt,
      credentials: { before, after },
    };
  } finally {
    closePool();
    await Promise.all(workers.map((w) => w.close()));
  }
}
