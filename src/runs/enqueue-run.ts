import type { Queue } from 'bullmq';
import type { IdUrl } from '../ids/id-url.js';
import { isRedisConnectionError, retryRedis } from '../redis/redis-retry.js';
import type { IdChunk } from '../ids/read-ids.js';
import { expectedIdsOf, idChunks, idsSourceLabel, type IdsInput } from '../ids/ids-input.js';
import type { FailedLine } from '../sinks/sink.js';
import type { BatchJobData } from './batch-job-data.js';
import type { RunStore } from './run-store.js';

/** IDs per call of enqueueIds-n.lua. */
const CHUNK = 1000;
/** Script calls in flight at once: hides the round trip without reordering (one connection is FIFO). */
const WINDOW = 4;
/** Dedupe buckets assumed for stdin or a stream, whose length is unknown: 2^16 buckets, ~4M IDs at 64 per bucket. */
const STDIN_EXPECTED_IDS = 64 * 2 ** 16;

export interface EnqueueResult {
  run: string;
  resumed: boolean;
  /** Non-blank, non-comment lines read this time. */
  read: number;
  /** Distinct IDs new to the run this time. */
  added: number;
  /** Distinct IDs of the run in all. */
  total: number;
  /** Every ID already has an outcome (e.g. an empty file). */
  done: boolean;
}

/** BullMQ options of every batch job. */
export function batchJobOptions(run: string, batch: number) {
  return {
    jobId: `${run}.b${batch}`,
    removeOnComplete: true,
    removeOnFail: { age: 7 * 24 * 3600 },
    // Attempts cover failures of pullq itself (e.g. Redis gone mid-commit); per-ID retries live in the batch.
    attempts: 20,
    backoff: { type: 'exponential', delay: 2000 },
  };
}

/** Adds the BullMQ jobs of closed batches, then forgets them as pending. Idempotent (job ids are fixed). */
export async function addBatchJobs(queue: Queue<BatchJobData>, store: RunStore, run: string, batches: number[]): Promise<void> {
  for (let i = 0; i < batches.length; i += 1000) {
    const slice = batches.slice(i, i + 1000);
    await addJobs(queue, run, slice);
    await store.markJobsAdded(run, slice);
  }
}

/**
 * One addBulk pipeline. A dropped connection rejects the pipeline's unanswered
 * commands; adding a job again is harmless (fixed job ids), so the slice is sent
 * again, halved each time it is cut, down to a few jobs retried as they are:
 * a long pipeline on a flaky link would otherwise be cut every time.
 */
async function addJobs(queue: Queue<BatchJobData>, run: string, batches: number[]): Promise<void> {
  const add = () => queue.addBulk(batches.map((batch) => ({ name: 'batch', data: { run, batch }, opts: batchJobOptions(run, batch) })));
  if (batches.length <= 8) {
    await retryRedis(add);
    return;
  }
  try {
    await add();
  } catch (err) {
    if (!isRedisConnectionError(err)) throw err;
    const half = Math.ceil(batches.length / 2);
    await addJobs(queue, run, batches.slice(0, half));
    await addJobs(queue, run, batches.slice(half));
  }
}

/**
 * Gives every closed batch of a run that may lack its BullMQ job one back: a
 * producer killed between closing batches (or sealing) and adding their jobs,
 * or a batch handed back when its run was aborted. Safe at any time and from
 * any process; returns how many batches it looked at.
 */
export async function repairJobs(queue: Queue<BatchJobData>, store: RunStore, run: string): Promise<number> {
  const pending = await store.pendingJobBatches(run);
  await addBatchJobs(queue, store, run, pending);
  return pending.length;
}

/**
 * Streams an IDs file (or stdin, "-", or an iterable) into a run. Re-running it on a run whose
 * enqueue was cut short resumes it: IDs already in are skipped, nothing is lost.
 */
export async function enqueueRun(options: {
  store: RunStore;
  queue: Queue<BatchJobData>;
  run: string;
  source: IdsInput;
  batchSize: number;
  /** The run's URL template: IDs it cannot place are recorded as invalid_id here, naming their line. */
  urlFor: (id: string) => IdUrl;
  onProgress?: (read: number, added: number) => void;
}): Promise<EnqueueResult> {
  const { store, queue, run, source } = options;
  const expectedIds = (await expectedIdsOf(source)) ?? STDIN_EXPECTED_IDS;
  const { resumed } = await store.open(run, { source: idsSourceLabel(source), expectedIds, batchSize: options.batchSize });
  const batchSize = (await store.runSetting(run, 'batchSize')) || options.batchSize;
  const seenBits = await store.runSetting(run, 'seenBits');
  if (resumed) await addBatchJobs(queue, store, run, await store.pendingJobBatches(run));

  let read = 0;
  let added = 0;
  const inFlight: Promise<void>[] = [];
  for await (const chunk of idChunks(source, CHUNK)) {
    read += chunk.ids.length;
    const { valid, invalid } = splitInvalid(chunk, options.urlFor);
    const step = store.addIds(run, valid, batchSize, seenBits, invalid).then(async (r) => {
      added += r.added;
      if (r.closed.length > 0) await addBatchJobs(queue, store, run, r.closed);
      options.onProgress?.(read, added);
    });
    step.catch(() => undefined); // awaited below, in order; this only keeps Node from calling it unhandled meanwhile
    inFlight.push(step);
    if (inFlight.length >= WINDOW) await inFlight.shift();
  }
  await Promise.all(inFlight);
  const sealed = await store.seal(run);
  await addBatchJobs(queue, store, run, sealed.closed);
  const status = await store.status(run);
  return { run, resumed, read, added, total: status?.total ?? added, done: sealed.done };
}

/** Separates the IDs that cannot be requested, each with its failed.jsonl line naming its line number. */
function splitInvalid(chunk: IdChunk, urlFor: (id: string) => IdUrl): { valid: string[]; invalid: { id: string; line: FailedLine }[] } {
  const valid: string[] = [];
  const invalid: { id: string; line: FailedLine }[] = [];
  chunk.ids.forEach((id, i) => {
    const placed = urlFor(id);
    const problem = chunk.problems.get(i) ?? (placed.ok ? undefined : placed.reason);
    if (problem === undefined) valid.push(id);
    else invalid.push({ id, line: { id, status: null, error: 'invalid_id', message: `line ${chunk.lines[i]}: ID ${problem}`, attempts: 0 } });
  });
  return { valid, invalid };
}
