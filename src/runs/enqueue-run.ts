import type { Queue } from 'bullmq';
import { EnqueueLostError, InputError } from '../errors.js';
import { encodeRowKey, headerOf, idsFormatOf, parseJsonRow, rowOfFields, splitCsvLine, splitTsvLine, type IdsFormat, type Row } from '../ids/id-key.js';
import type { IdUrl } from '../ids/id-url.js';
import type { RequestTemplate } from '../ids/request-template.js';
import { isRedisConnectionError, retryRedis } from '../redis/redis-retry.js';
import { readIds, type IdChunk } from '../ids/read-ids.js';
import { expectedIdsOf, idChunks, idsSourceLabel, type IdsInput } from '../ids/ids-input.js';
import type { FailedLine } from '../sinks/sink.js';
import { batchJobId, type BatchJobData } from './batch-job-data.js';
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
    jobId: batchJobId(run, batch),
    removeOnComplete: true,
    removeOnFail: { age: 7 * 24 * 3600 },
    // Attempts cover a batch's own failures and blips whose reschedule failed too (Redis gone); a blip rescheduled
    // by the worker (policy/blip-delay.ts) spends none. Per-ID retries live in the batch.
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
 * a batch handed back when its run was aborted, or a closed batch that holds
 * IDs again without a job (Redis lost a commit it had acknowledged, after the
 * job completed). Safe at any time and from any process; returns how many
 * batches it added a job for (adding one that exists is a no-op).
 */
export async function repairJobs(queue: Queue<BatchJobData>, store: RunStore, run: string): Promise<number> {
  const pending = await store.pendingJobBatches(run);
  await addBatchJobs(queue, store, run, pending);
  const stranded = (await store.batchesWithoutJob(run)).filter((b) => !pending.includes(b));
  await addBatchJobs(queue, store, run, stranded);
  return pending.length + stranded.length;
}

type EnqueueOptions = Parameters<typeof enqueueRun>[0];

/** A source enqueueRun can read again from the start: a file (not stdin) or an array. */
export function canReadAgain(source: IdsInput): boolean {
  return (typeof source === 'string' && source !== '-') || Array.isArray(source);
}

/**
 * Streams an IDs file (or stdin, "-", or an iterable) into a run. Re-running it on a run whose
 * enqueue was cut short resumes it: IDs already in are skipped, nothing is lost. When Redis loses
 * IDs it had acknowledged (EnqueueLostError), a source that can be read again is enqueued again
 * once, which adds what was lost; otherwise the error is thrown, and enqueuing again resumes.
 */
export async function enqueueRun(options: {
  store: RunStore;
  queue: Queue<BatchJobData>;
  run: string;
  source: IdsInput;
  batchSize: number;
  /** The run's URL template: IDs it cannot place are recorded as invalid_id here, naming their line. */
  urlFor: (id: string) => IdUrl;
  /**
   * The run's request template (requestTemplateOf(config)): needed for IDs files with columns
   * (.csv, .tsv, .jsonl), whose rows it checks; for a one-ID-per-line file it checks that the
   * templates name no column but {id}.
   */
  template?: RequestTemplate;
  onProgress?: (read: number, added: number) => void;
}): Promise<EnqueueResult> {
  try {
    return await enqueueOnce(options);
  } catch (err) {
    if (!(err instanceof EnqueueLostError) || !canReadAgain(options.source)) throw err;
    const again = await enqueueOnce(options);
    return { ...again, resumed: true };
  }
}

async function enqueueOnce(options: EnqueueOptions): Promise<EnqueueResult> {
  const { store, queue, run, source } = options;
  // Numbered from the run's `pos` as Redis has it now, not where an earlier pass of this process left off.
  store.forgetPositions(run);
  // Only a file can have columns (by its extension); an iterable's items are IDs.
  const format = typeof source === 'string' ? idsFormatOf(source) : 'lines';
  const rows = format === 'lines' ? undefined : await rowReader(source as string, format, options.template);
  if (!rows && options.template) {
    const others = [...options.template.names].filter((n) => n !== 'id');
    if (others.length > 0) {
      throw new InputError(`the request templates use ${others.map((n) => `{${n}}`).join(', ')}, but ${idsSourceLabel(source)} has one ID per line: use a .csv, .tsv or .jsonl IDs file with ${others.length > 1 ? 'those columns' : 'that column'}`);
    }
  }
  // An ID in a header must also fit a header: the whole template checks it (the URL check alone is the lean common case).
  const template = options.template;
  const urlFor = template && template.inHeaders.size > 0 ? (id: string): IdUrl => {
    const r = template.render({ id, columns: null });
    return r.ok ? { ok: true, url: r.request.url } : r;
  } : options.urlFor;
  const expectedIds = (await expectedIdsOf(source)) ?? STDIN_EXPECTED_IDS;
  const { resumed } = await store.open(run, { source: idsSourceLabel(source), expectedIds, batchSize: options.batchSize });
  const batchSize = (await store.runSetting(run, 'batchSize')) || options.batchSize;
  const seenBits = await store.runSetting(run, 'seenBits');
  if (resumed) await addBatchJobs(queue, store, run, await store.pendingJobBatches(run));

  let read = 0;
  let added = 0;
  const inFlight: Promise<void>[] = [];
  try {
    for await (const chunk of idChunks(source, CHUNK)) {
      const { valid, invalid } = rows ? rows(chunk) : splitInvalid(chunk, urlFor);
      read += valid.length + invalid.length;
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
  } catch (err) {
    // Nothing of this pass may still be running when the caller hears of the failure (and perhaps enqueues again).
    await Promise.allSettled(inFlight);
    throw err;
  }
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

/**
 * For an IDs file with columns: checks its header (CSV/TSV) against the
 * templates before anything is enqueued, and returns what turns a chunk of
 * lines into stored row keys (encodeRowKey) and invalid_id lines. The header
 * line itself is skipped (the first line read). Plain files never come here:
 * their path stays the lean one above.
 */
export async function rowReader(source: string, format: Exclude<IdsFormat, 'lines'>, template: RequestTemplate | undefined): Promise<(chunk: IdChunk) => { valid: string[]; invalid: { id: string; line: FailedLine }[] }> {
  if (!template) throw new Error(`enqueueRun: ${source} has columns; pass options.template`);
  const split = format === 'csv' ? splitCsvLine : splitTsvLine;
  let header: string[] | undefined;
  if (format !== 'jsonl') {
    let first: { text: string; line: number } | undefined;
    for await (const chunk of readIds(source, 1)) {
      first = { text: chunk.ids[0]!, line: chunk.lines[0]! };
      break;
    }
    if (!first) return () => ({ valid: [], invalid: [] });
    const h = headerOf(split(first.text));
    if (!h.ok) throw new InputError(`${source}: the header line (line ${first.line}) ${h.reason}`);
    const missing = [...template.names].filter((n) => !h.header.includes(n));
    if (missing.length > 0) throw new InputError(`${source}: the request templates use ${missing.map((n) => `{${n}}`).join(', ')}, but the header line has no such column (it has ${h.header.join(', ')})`);
    header = h.header;
  }
  let headerSkipped = format === 'jsonl';
  return (chunk) => {
    const valid: string[] = [];
    const invalid: { id: string; line: FailedLine }[] = [];
    chunk.ids.forEach((text, i) => {
      if (!headerSkipped) {
        headerSkipped = true;
        return;
      }
      const lineNo = chunk.lines[i];
      const row: Row = chunk.problems.has(i) ? { ok: false, reason: chunk.problems.get(i)! } : header ? rowOfFields(header, split(text)) : parseJsonRow(text);
      if (!row.ok) {
        invalid.push({ id: text, line: { id: row.id ?? text, status: null, error: 'invalid_id', message: `line ${lineNo}: row ${row.reason}`, attempts: 0 } });
        return;
      }
      const key = encodeRowKey(row.row);
      const placed = template.render({ id: row.row['id']!, columns: row.row });
      if (placed.ok) valid.push(key);
      else invalid.push({ id: key, line: { id: row.row['id']!, key: JSON.parse(key.slice(1)) as Record<string, string>, status: null, error: 'invalid_id', message: `line ${lineNo}: ID ${placed.reason}`, attempts: 0 } });
    });
    return { valid, invalid };
  };
}
