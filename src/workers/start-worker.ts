import { DelayedError, Queue, Worker, type Job } from 'bullmq';
import type { RedisClient } from '../redis/connect-redis.js';
import pLimit from 'p-limit';
import { CredentialPool, type CredentialEvents } from '../auth/credential-pool.js';
import type { Config } from '../config.js';
import { compileIdUrl } from '../ids/id-url.js';
import { requestTemplateOf } from '../ids/request-template.js';
import { createHttpClient } from '../jobs/http-client.js';
import { isTransientFailure } from '../jobs/batch-failure.js';
import { BLIP_DELAY_MAX_MS, blipDelayMs } from '../policy/blip-delay.js';
import { batchFailureVerdict } from '../policy/batch-failure-verdict.js';
import { processBatch, type BatchContext } from '../jobs/process-batch.js';
import { scrubSecrets } from '../policy/scrub-secrets.js';
import type { Logger } from '../logger.js';
import { isRedisConnectionError } from '../redis/redis-retry.js';
import { repairJobs } from '../runs/enqueue-run.js';
import { adoptPublishedRun, finalizeRun } from '../runs/finalize-run.js';
import type { BatchJobData } from '../runs/batch-job-data.js';
import { RunStore } from '../runs/run-store.js';
import { ThroughputRecorder } from '../auth/throughput-recorder.js';
import { NO_EVENTS, type BatchEvents } from '../jobs/batch-events.js';
import { selectFields, type Transform } from '../jobs/shape-result.js';
import { runScheduledPull, SCHEDULED_PULL, tickTime, type ScheduledPullData } from '../runs/scheduled-pull.js';
import { createSink } from '../sinks/create-sink.js';
import { keepsValidators, RunFinalizedError, type Sink } from '../sinks/sink.js';
import { ConfigError } from '../errors.js';
import { bullPrefix } from '../redis/keys.js';
import { settlesWithin } from '../redis/settles-within.js';
import { closeBullWorker } from './close-bull-worker.js';


/** A stalled batch job (its worker died) is retried this many times before BullMQ fails it. */
export const MAX_STALLED = 20;
/** How soon a batch refused by this run's own published output tries again to complete the run, when another process holds its finalize lock. */
const ADOPT_RETRY_MS = 5_000;
/** How long a forced close of the BullMQ worker may take before the replica stops without it. */
const FORCED_CLOSE_MS = 3_000;
/** How soon a finalize this worker could not do (held back until a Redis replica acknowledges, or locked by another process) is tried again. */
const FINALIZE_RETRY_MS = 5_000;
/** How long the last steps of a close (the queue handle, the throughput counts, the sink) may take. */
const CLOSE_REST_MS = 1_500;
/** WorkerHandle.close(deadlineMs) returns within deadlineMs + this, Redis up or not. */
export const CLOSE_AFTER_DEADLINE_MS = FORCED_CLOSE_MS + CLOSE_REST_MS;

export interface WorkerHandle {
  worker: Worker<BatchJobData>;
  /**
   * Graceful stop: no new batches, in-flight requests finish, leftovers go back to the queue. Returns within
   * `deadlineMs` (default worker.shutdownTimeoutMs) + CLOSE_AFTER_DEADLINE_MS even when Redis is gone: what did not
   * commit goes back to the queue when its lock expires, as after a kill.
   */
  close(deadlineMs?: number): Promise<void>;
  /** Counters of this process, for progress displays. */
  stats: { succeeded: number; failed: number; batches: number };
  pool: CredentialPool;
  /** Why this replica had to stop, if it had to. */
  fatalReason(): string | undefined;
}

export interface StartWorkerOptions {
  config: Config;
  /** A connection with maxRetriesPerRequest: null (BullMQ duplicates it for blocking calls). */
  connection: RedisClient;
  logger: Logger;
  /** Overrides worker.concurrency (in-flight requests of this process). */
  concurrency?: number;
  /** Called when a run this worker touched became complete (output written). */
  onRunComplete?: (run: string) => void;
  /** Called once when this replica cannot go on (e.g. every credential quarantined). */
  onFatal?: (reason: string) => void;
  /** Told of every answered request, committed step, rest and quarantine (e.g. the process's Prometheus metrics). */
  events?: BatchEvents & CredentialEvents;
  /** Where outcomes go instead of the config's sink; the caller keeps it (close() does not close it). */
  sink?: Sink;
  /** Shapes each answer's stored data (replaces output.select). */
  transform?: Transform;
}

/** Starts one worker replica on the config's queue. */
export async function startWorker(options: StartWorkerOptions): Promise<WorkerHandle> {
  const { config, connection, logger } = options;
  const concurrency = options.concurrency ?? config.worker.concurrency;
  const store = new RunStore(connection, config.queue);
  const sink: Sink = options.sink ?? createSink(config);
  const select = config.output.select?.map((p) => p.split('.'));
  if (config.request.pagination && config.output.mode === 'id' && typeof sink.readPart !== 'function') {
    if (!options.sink) await sink.close?.();
    throw new ConfigError('output.mode "id" with request.pagination: the sink given to the worker cannot read its parts back (it needs readPart); use output.mode "page", or add readPart to the sink');
  }
  if (config.request.conditional && !keepsValidators(sink)) {
    if (!options.sink) await sink.close?.();
    const which = options.sink ? 'the sink given to the worker' : `the ${config.sink.type} sink`;
    throw new ConfigError(`request.conditional: ${which} cannot keep validators (it needs writeValidators, publishValidators and lookupValidators)`);
  }
  let stopping = false;
  let fatalReason: string | undefined;
  /** The BullMQ worker, once made (the context's fatal() pauses it). */
  let bullWorker: Worker<BatchJobData> | undefined;
  const http = createHttpClient({ ...config, worker: { ...config.worker, concurrency } });
  // The fleet's throughput chart (pullq dashboard): answers per credential in 10 s buckets, flushed every 2 s.
  const throughput = new ThroughputRecorder(connection, config.queue);
  const listener = options.events ?? NO_EVENTS;
  const events: BatchEvents = {
    request: (e) => {
      if (e.status !== null) throughput.record(e.credential.id, e.rejected);
      listener.request(e);
    },
    committed: (e) => listener.committed(e),
  };
  const ctx: BatchContext = {
    config,
    store,
    sink,
    pool: await CredentialPool.open({ redis: connection, config, logger, http, events: options.events, watch: true }),
    http,
    limit: pLimit(concurrency),
    stopping: () => stopping || fatalReason !== undefined,
    fatal: (reason) => {
      if (fatalReason !== undefined) return;
      fatalReason = reason;
      logger.error({ reason }, reason);
      // Take no more batches: the ones in hand go back to the queue as their IDs return unfinished, where a replica
      // that can go on (or this queue's next resume) takes them. Without this, a replica left open took the same
      // batches again and again until close().
      void bullWorker?.pause(true).catch((err) => logger.debug({ err: errorSummary(err) }, 'pausing the queue worker failed'));
      options.onFatal?.(reason);
    },
    logger,
    events,
    shape: options.transform ?? (select ? (r) => selectFields(r.data, select) : undefined),
  };
  const stats = { succeeded: 0, failed: 0, batches: 0 };

  /** Runs this process saw complete: told to onRunComplete once each. */
  const completed = new Set<string>();
  const runComplete = (run: string) => {
    if (completed.has(run)) return;
    completed.add(run);
    options.onRunComplete?.(run);
  };
  const finalizeRetries = new Map<string, NodeJS.Timeout>();
  const finalize = async (run: string): Promise<void> => {
    try {
      let cleanupPending = false;
      if (await finalizeRun(store, sink, run, logger, { onCleanupPending: () => (cleanupPending = true) })) {
        runComplete(run);
        if (!cleanupPending) return;
      }
      // Held back (no Redis replica acknowledged the run's last writes, or its finalized mark, yet) or another process
      // holds the lock: look again in a while, so a fleet of workers alone, with no pull waiting, still publishes the
      // output and drops the parts.
      if (stopping || finalizeRetries.has(run)) return;
      const timer = setTimeout(() => {
        finalizeRetries.delete(run);
        void finalize(run);
      }, FINALIZE_RETRY_MS);
      timer.unref();
      finalizeRetries.set(run, timer);
    } catch (err) {
      logger.error({ run, err: errorSummary(err) }, 'writing the run output failed; it will be retried by the next pull, status or worker start');
    }
  };

  let tickQueue: Queue<BatchJobData> | undefined;
  /** The queue handle this worker adds jobs with (schedule ticks, repairs); made on first use. */
  const jobQueue = (): Queue<BatchJobData> => {
    if (!tickQueue) {
      tickQueue = new Queue<BatchJobData>(config.queue, { connection, prefix: bullPrefix(config.queue) });
      // A dropped connection is reported here; without a listener the EventEmitter would throw it.
      tickQueue.on('error', (err) => logger.debug({ err: errorSummary(err) }, 'queue connection error'));
    }
    return tickQueue;
  };
  // The longest wait after a blip (PULLQ_BLIP_DELAY_MAX_MS: for tests).
  const blipDelayMaxMs = /^[1-9]\d*$/.test(process.env['PULLQ_BLIP_DELAY_MAX_MS'] ?? '') ? Number(process.env['PULLQ_BLIP_DELAY_MAX_MS']) : BLIP_DELAY_MAX_MS;
  const processor = async (job: Job<BatchJobData>, token?: string) => {
    if (job.name === SCHEDULED_PULL) {
      // A schedule's tick (pullq schedule): enqueue its IDs file as a new run; the batches follow as usual.
      const data = job.data as unknown as ScheduledPullData;
      const r = await runScheduledPull({ store, queue: jobQueue(), data, tickMs: tickTime(job.id, job.timestamp), batchSize: config.enqueue.batchSize, urlFor: compileIdUrl(config.request.url), template: requestTemplateOf(config) });
      logger.info({ schedule: data.schedule, run: r?.run, ids: r?.total }, r ? 'scheduled run enqueued' : 'scheduled run was already enqueued');
      if (r?.done) await finalize(r.run);
      return;
    }
    const { run, batch } = job.data;
    const log = logger.child({ run, batch, job: job.id });
    if ((await store.abortReason(run)) !== null) {
      // The run cannot complete until its user resumes it: keep the batch for then, free the queue now.
      await store.markJobPending(run, batch);
      // A resume (clear the abort, then repair the pending batches) may have run since the read above: its repair
      // did not see this batch, and this job still exists, so none would be added. Read again: aborted still, the
      // next resume sees the batch; resumed, this job runs it.
      if ((await store.abortReason(run)) !== null) return;
    }
    let outcome;
    try {
      outcome = await processBatch({ ...ctx, logger: log }, { run, batch, lockKey: `${job.queueQualifiedName}:${job.id}:lock`, token: token ?? '' });
    } catch (err) {
      if (err instanceof RunFinalizedError) {
        // A stalled attempt woke after the run's output was written: nothing of it can count, nothing to retry.
        const status = await store.status(run);
        if (status?.done !== false) {
          log.info({ reason: err.code }, err.message);
          return;
        }
        // The output is this very run's (Redis rewound past its finalize, and the batch is being redone): complete the run from it.
        if (err.published !== undefined && err.published.startedAt === status.createdAt) {
          if (await adoptPublishedRun(store, sink, run, err.published, log)) {
            runComplete(run);
            return;
          }
          // Another process holds the finalize lock: keep the job and come back once it may have finished (or its lock
          // expired), without spending an attempt. Completing the job here would leave the run to the next repair.
          await job.moveToDelayed(Date.now() + ADOPT_RETRY_MS, token);
          throw new DelayedError();
        }
        // IDs still to do, yet the sink holds final output under this name: an earlier run's (Redis was reset,
        // or another queue writes to the same place). Every batch would be refused: stop with the reason instead.
        const reason = `the sink already holds the final output of an earlier run named ${run} (${sink.location(run)}): move it away or use another --run`;
        await store.abort(run, reason);
        await store.markJobPending(run, batch);
        log.error({ reason }, `run ${run} cannot complete: ${reason}`);
        return;
      }
      // Only the batch's own failures count (BullMQ's attemptsMade counts Redis blips too), kept in the job's data
      // for its next attempt: a replayed write sets the same count, and a resume's new job starts again at 0.
      const ownBefore = job.data.ownFailures ?? 0;
      const verdict = batchFailureVerdict(isTransientFailure(err), ownBefore);
      if (verdict.action === 'retry') {
        if (isTransientFailure(err)) {
          // A blip spends no BullMQ attempt (those would run out, with days of backoff): the job waits 1 s doubling
          // to 30 s, counted in its data. Redis gone for that too: the original error goes to BullMQ as before.
          const blips = job.data.blips ?? 0;
          const delayMs = blipDelayMs(blips, blipDelayMaxMs);
          try {
            await job.updateData({ ...job.data, blips: blips + 1 });
            await job.moveToDelayed(Date.now() + delayMs, token);
          } catch {
            throw err;
          }
          log.warn({ err: errorSummary(err), blips: blips + 1, delayMs }, 'batch attempt hit a blip; trying again later');
          throw new DelayedError();
        }
        if (verdict.ownFailures !== ownBefore) {
          // Not recorded (Redis away): the attempt is retried uncounted, as a blip would be.
          await job.updateData({ ...job.data, ownFailures: verdict.ownFailures }).catch((e: unknown) => log.warn({ err: errorSummary(e) }, 'could not count the batch failure'));
        }
        throw err;
      }
      // The same batch failed POISON_ATTEMPTS times for a reason that retrying does not fix: end the run
      // with that reason rather than loop. Its IDs stay in the batch for a resume after the fix.
      const reason = `batch ${batch} cannot be written: ${scrubSecrets(errorSummary(err).message, ctx.pool.secrets()).slice(0, 300)}`;
      await store.abort(run, reason);
      await store.markJobPending(run, batch);
      log.error({ reason }, `run ${run} cannot complete: ${reason}`);
      return;
    }
    stats.succeeded += outcome.succeeded;
    stats.failed += outcome.failed;
    if (!outcome.committed) {
      if (!outcome.rerun) return;
      // Redis lost a step this attempt committed: completing the job would leave the batch's IDs without one.
      await job.moveToDelayed(Date.now(), token);
      throw new DelayedError();
    }
    if (outcome.nextDueAt !== undefined) {
      // IDs remain: wake the job when the first is due, without spending a BullMQ attempt.
      await job.moveToDelayed(Math.max(Date.now(), outcome.nextDueAt), token);
      throw new DelayedError();
    }
    stats.batches++;
    if (outcome.runDone) await finalize(run);
  };

  // Batch jobs in flight: enough that batches' tails (IDs waiting for a reserved start) never idle the request slots.
  const batchSize = config.enqueue.batchSize;
  const jobConcurrency = Math.max(4, Math.ceil((4 * concurrency) / batchSize));
  const worker = new Worker<BatchJobData>(config.queue, processor, {
    connection,
    prefix: bullPrefix(config.queue),
    concurrency: jobConcurrency,
    lockDuration: config.worker.lockDurationMs,
    stalledInterval: config.worker.lockDurationMs,
    maxStalledCount: MAX_STALLED,
    autorun: true,
  });
  bullWorker = worker;
  worker.on('error', (err) => {
    // A dropped Redis connection is ridden out (ioredis reconnects and resends); only say so quietly.
    if (isRedisConnectionError(err)) logger.info({ err: errorSummary(err) }, 'Redis connection dropped; reconnecting');
    // BullMQ's move of a job it already moved: the command ran, its reply was lost, ioredis sent it again.
    else if (/^Missing (key|lock) for job /.test(err.message)) logger.info({ err: errorSummary(err) }, 'a job move was replayed after a dropped connection; it had already happened');
    else logger.error({ err: errorSummary(err) }, 'worker error');
  });
  worker.on('failed', (job, err) => {
    if (job) logger.error({ run: job.data.run, batch: job.data.batch, err: errorSummary(err) }, 'batch job failed');
  });
  await worker.waitUntilReady();

  // A run whose last batch committed but whose finalizer died is finished by the next worker to start;
  // a closed batch without its job (a producer killed before adding it) gets one;
  // a batch job BullMQ gave up on (pullq-level errors, too many stalls) is tried again: its IDs must not be lost.
  void (async () => {
    for (const run of await store.listRuns(20)) {
      const s = await store.status(run);
      if (s?.done && !s.complete) await finalize(run);
      else if (s && !s.done && s.aborted === null) await repairJobs(jobQueue(), store, run);
    }
    for (const job of await jobQueue().getFailed(0, 999)) {
      if (job.name !== 'batch') continue;
      await job.retry('failed');
      logger.info({ run: job.data.run, batch: job.data.batch, failedReason: job.failedReason }, 'retrying a batch job that had failed');
    }
  })().catch((err) => logger.warn({ err: errorSummary(err) }, 'could not check for unfinished runs'));

  return {
    worker,
    stats,
    pool: ctx.pool,
    fatalReason: () => fatalReason,
    async close(deadlineMs = config.worker.shutdownTimeoutMs) {
      stopping = true;
      for (const timer of finalizeRetries.values()) clearTimeout(timer);
      finalizeRetries.clear();
      ctx.pool.close();
      if (!(await closesWithin(worker, false, deadlineMs))) {
        logger.info({ deadlineMs }, 'in-flight work did not finish before the shutdown deadline; forcing (BullMQ hands it to another worker when its lock expires)');
        // In-flight commits stop retrying through a lost connection: their jobs return to the queue by lock expiry anyway.
        store.stopRetrying();
        // Bounded too: in BullMQ 6.7 close(true) returns a close already under way, and a close that cannot end (a
        // wait for a connection's end that never comes) must not keep the replica from stopping.
        if (!(await closesWithin(worker, true, FORCED_CLOSE_MS))) {
          logger.warn({ waitedMs: FORCED_CLOSE_MS }, 'the queue worker did not close; stopping without it (its jobs go back to the queue once this process has exited and their locks expire)');
        }
      }
      // The rest writes to Redis (or the sink's database) once more: bounded too, so a Redis that is gone (hung: no
      // answer, no error) cannot keep the replica past worker.shutdownTimeoutMs + CLOSE_AFTER_DEADLINE_MS.
      const rest = Promise.all([tickQueue?.close(), throughput.close(), options.sink ? undefined : sink.close?.()]);
      if (!(await settlesWithin(rest.catch((err: unknown) => logger.warn({ err: errorSummary(err) }, 'closing the queue handle or the sink failed')), CLOSE_REST_MS))) {
        logger.warn({ waitedMs: CLOSE_REST_MS }, 'Redis or the sink did not answer while closing; stopping without them (nothing uncommitted is lost: it goes back to the queue)');
      }
    },
  };
}

/** Closes the BullMQ worker (closeBullWorker); false when that has not ended within `ms` (it is left to end on its own). */
function closesWithin(worker: Worker<BatchJobData>, force: boolean, ms: number): Promise<boolean> {
  return settlesWithin(closeBullWorker(worker, force), ms);
}

/** An error as a log field: code and message only, never the got options or headers it may carry. */
export function errorSummary(err: unknown): { code?: string; message: string } {
  const e = err as { code?: unknown; message?: unknown };
  return { code: typeof e?.code === 'string' ? e.code : undefined, message: typeof e?.message === 'string' ? e.message : String(err) };
}
