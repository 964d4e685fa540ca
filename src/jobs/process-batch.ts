import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Got } from 'got';
import type { LimitFunction } from 'p-limit';
import { formatMs, type Acquired, type CredentialPool, type CredentialVerdict } from '../auth/credential-pool.js';
import { capWait } from '../http/rate-limit-headers.js';
import type { Credential } from '../auth/credential.js';
import { OAuth2RefusedError } from '../auth/oauth2-token-source.js';
import type { Config } from '../config.js';
import { CommitUnknownError } from '../errors.js';
import type { IdUrl } from '../ids/id-url.js';
import type { Logger } from '../logger.js';
import { newRetryState, type RetryState, type RunStore } from '../runs/run-store.js';
import type { FailedLine, ResultLine, Sink } from '../sinks/sink.js';
import { backoffDelay } from './backoff-delay.js';
import { classifyResponse } from './classify-response.js';
import type { ErrorCode } from './error-codes.js';
import { fetchId, type FetchResult } from './fetch-id.js';
import { scrubSecrets } from './scrub-secrets.js';

/** A batch running longer than this commits what it has finished so far. */
export const CHECKPOINT_MS = 5000;
/** Waits up to this long inside the job; longer waits hand the ID back to the queue (a delayed job). */
export const IN_JOB_WAIT_MS = 5000;
/** Rate-limited retries of one ID before it fails: rate limits do not spend attempts, this keeps it finite. */
export const MAX_RATE_LIMITED = 50;
/** A credential's start is reserved only this far ahead; a later one makes the ID wait (or the batch defer) instead. */
export const RESERVE_HORIZON_MS = 1000;
/** A reserved start missed by more than this is not used (the budget margin is 20 ms or more). */
export const LATE_START_MS = 10;
/** A start reserved this far ahead asks Redis, before use, whether its credential began resting meanwhile. */
export const RECHECK_AFTER_WAIT_MS = 50;
/** Starts of one ID dropped as late in a row before it is sent anyway (a machine too busy to be punctual). */
export const MAX_LATE_DROPS = 3;

/** What a worker process shares between all the batches it runs. */
export interface BatchContext {
  config: Config;
  store: RunStore;
  sink: Sink;
  pool: CredentialPool;
  http: Got;
  /** Caps in-flight requests of the whole process at worker.concurrency. */
  limit: LimitFunction;
  urlFor: (id: string) => IdUrl;
  /** True once shutdown began: stop starting requests, commit, hand the rest back. */
  stopping: () => boolean;
  /** The run cannot go on (e.g. every credential quarantined): stop this replica with exit 2. */
  fatal: (reason: string) => void;
  logger: Logger;
}

export interface BatchJobRef {
  run: string;
  batch: number;
  /** The BullMQ lock key and token of this attempt: the commit is valid only while both match. */
  lockKey: string;
  token: string;
}

export interface BatchOutcome {
  /** False when another attempt owns the batch now; nothing of this attempt counts. */
  committed: boolean;
  /** The whole run now has an outcome for every ID. */
  runDone: boolean;
  /** When IDs remain: the earliest time one of them may be tried (epoch ms). */
  nextDueAt?: number;
  succeeded: number;
  failed: number;
}

type IdOutcome =
  | { kind: 'result'; line: ResultLine }
  | { kind: 'failed'; line: FailedLine }
  | { kind: 'later'; state: RetryState };

/**
 * Runs a batch job until every ID still to do is fetched or not yet due.
 * Outcomes commit atomically in Redis, one part per step: at the end, and
 * every CHECKPOINT_MS while the batch runs (so progress shows and a crash
 * redoes little); IDs in flight at a checkpoint stay in the batch's list
 * until a later step commits them.
 */
export async function processBatch(ctx: BatchContext, job: BatchJobRef): Promise<BatchOutcome> {
  const contents = await ctx.store.readBatch(job.run, job.batch);
  if (contents.ids.length === 0) return { committed: true, runDone: false, succeeded: 0, failed: 0 };

  let abandoned = false;
  const local: BatchContext = { ...ctx, stopping: () => abandoned || ctx.stopping() };
  const states = new Map(contents.ids.map((id) => [id, contents.states.get(id) ?? newRetryState()]));
  /** Outcomes not yet committed, by ID. */
  const settled = new Map<string, IdOutcome>();
  const all = Promise.all(contents.ids.map((id) => processId(local, id, states.get(id)!).then((o) => void settled.set(id, o))));
  let allSettled = false;
  all.then(() => (allSettled = true), () => undefined);

  const total = { succeeded: 0, failed: 0 };
  let step = contents.step;
  let remaining = contents.ids;
  try {
    for (;;) {
      await waitForEither(all, CHECKPOINT_MS);
      const final = allSettled;
      const finishedNow = remaining.filter((id) => {
        const o = settled.get(id);
        return o !== undefined && o.kind !== 'later';
      });
      if (!final && finishedNow.length === 0) continue;
      const leftovers = new Map<string, RetryState>();
      for (const id of remaining) {
        const o = settled.get(id);
        if (o === undefined) leftovers.set(id, states.get(id)!);
        else if (o.kind === 'later') leftovers.set(id, o.state);
      }
      const r = await commitStep(ctx, job, step, finishedNow.map((id) => settled.get(id)!), leftovers);
      if (!r.ok) {
        abandoned = true;
        await all;
        return { committed: false, runDone: false, succeeded: 0, failed: 0 };
      }
      total.succeeded += r.succeeded;
      total.failed += r.failed;
      step++;
      remaining = [...leftovers.keys()];
      if (final) {
        let nextDueAt: number | undefined;
        for (const st of leftovers.values()) nextDueAt = Math.min(nextDueAt ?? Infinity, st.dueAt);
        return { committed: true, runDone: r.done, nextDueAt, ...total };
      }
    }
  } catch (err) {
    // A step that cannot commit (the sink refused it, Redis stayed away): stop this attempt's requests
    // before BullMQ tries the batch again, so two attempts never run side by side in one process.
    abandoned = true;
    await all.catch(() => undefined);
    throw err;
  }
}

/** Waits for `p` or `ms`, whichever comes first. */
async function waitForEither(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

/** Writes one step's part and commits it; on a lost lock the part is discarded. */
async function commitStep(
  ctx: BatchContext,
  job: BatchJobRef,
  step: number,
  outcomes: IdOutcome[],
  leftovers: Map<string, RetryState>,
): Promise<{ ok: true; done: boolean; succeeded: number; failed: number } | { ok: false }> {
  const results: ResultLine[] = [];
  const failures: FailedLine[] = [];
  const errors = new Map<string, number>();
  for (const o of outcomes) {
    if (o.kind === 'result') results.push(o.line);
    else if (o.kind === 'failed') {
      failures.push(o.line);
      errors.set(o.line.error, (errors.get(o.line.error) ?? 0) + 1);
    }
  }
  const part = results.length + failures.length > 0 ? `b${job.batch}-s${step}-${randomBytes(4).toString('hex')}` : '';
  if (part) await ctx.sink.writePart(job.run, part, results, failures);
  let commit;
  try {
    commit = await ctx.store.commit({
      lockKey: job.lockKey,
      token: job.token,
      run: job.run,
      batch: job.batch,
      step,
      part,
      succeeded: results.length,
      failed: failures.length,
      errors,
      leftovers,
    });
  } catch (err) {
    // Redis stayed unreachable: the step may or may not have committed. Its part stays (an uncommitted
    // part is never output); the job's next attempt reads the batch as Redis has it.
    throw new CommitUnknownError(`could not commit batch ${job.batch} of run ${job.run}: Redis did not answer; the batch will be retried`, { cause: err });
  }
  if (!commit.ok) {
    // 'finalized': the run's output is written and its operation records are gone, so this answer may
    // come from a replay of a commit that did land: its part may be output (PostgreSQL rows), keep it.
    if (part && commit.reason !== 'finalized') await ctx.sink.discardPart(job.run, part);
    ctx.logger.warn({ reason: commit.reason }, commit.reason === 'finalized' ? 'batch step not committed: the run is already complete' : 'batch step not committed: another attempt owns this batch now; its outcomes are discarded');
    return { ok: false };
  }
  return { ok: true, done: commit.done, succeeded: results.length, failed: failures.length };
}

async function processId(ctx: BatchContext, id: string, state: RetryState): Promise<IdOutcome> {
  const placed = ctx.urlFor(id);
  if (!placed.ok) {
    return { kind: 'failed', line: { id, status: null, error: 'invalid_id', message: `ID ${placed.reason}`, attempts: 0 } };
  }
  const { retry } = ctx.config;
  const pool = ctx.pool;
  let lateDrops = 0;
  for (;;) {
    if (ctx.stopping()) return { kind: 'later', state };
    const wait = state.dueAt - Date.now();
    if (wait > IN_JOB_WAIT_MS) return { kind: 'later', state };
    if (wait > 0) {
      await sleep(wait);
      if (ctx.stopping()) return { kind: 'later', state };
    }

    // One slot of the process's concurrency covers taking a credential, waiting for its reserved start, and the request.
    const step = await ctx.limit(async (): Promise<Step> => {
      if (ctx.stopping()) return { kind: 'stop' };
      const got = await pool.acquire(new Set(state.refusedBy), RESERVE_HORIZON_MS);
      if (got.kind !== 'granted') return { kind: 'no-credential', got };
      try {
        return await useGrant(ctx, got, placed.url, lateDrops);
      } finally {
        await pool.endRequest(got.credential, got.lease);
      }
    });

    if (step.kind === 'stop') return { kind: 'later', state };
    if (step.kind === 'resting') continue;
    if (step.kind === 'late') {
      lateDrops++;
      continue;
    }
    lateDrops = 0;
    if (step.kind === 'no-credential') {
      const got = step.got;
      if (got.kind === 'wait') {
        state.dueAt = Date.now() + got.waitMs;
        continue;
      }
      if (got.kind === 'exhausted' && got.allQuarantined) {
        ctx.fatal(`every credential is quarantined (${pool.size} of ${pool.size}); fix or replace them and resume the run`);
        return { kind: 'later', state };
      }
      // Every usable credential refused this ID (403, or 401 twice).
      const error = (state.lastError as ErrorCode | null) ?? 'forbidden';
      const by = pool.size > 1 ? ` (refused by every credential)` : '';
      return failedOutcome(ctx, id, state.lastStatus, error, `HTTP ${state.lastStatus ?? ''}${by}`.trim(), state.attempts);
    }
    if (step.kind === 'credential-error') {
      if (step.err instanceof OAuth2RefusedError) await pool.quarantine(step.credential, 'token endpoint refused the client');
      else ctx.logger.warn({ credential: step.credential.label, err: { code: (step.err as { code?: string }).code, message: scrubSecrets((step.err as Error).message, pool.secrets()) } }, 'could not get a token');
      state.limited++;
      if (state.limited > MAX_RATE_LIMITED) return failedOutcome(ctx, id, null, 'unauthorized', 'no credential could get a token', state.attempts);
      state.dueAt = Date.now() + backoffDelay(state.limited, retry.baseDelayMs, retry.maxDelayMs);
      continue;
    }

    const { res, credential, said } = step;
    const now = Date.now();
    const verdict = classifyResponse(res, now);
    if (verdict.action === 'success') return successOutcome(id, res, state.attempts + 1);
    if (verdict.action === 'fail') return failedOutcome(ctx, id, res.status, verdict.error, verdict.message, state.attempts + 1);

    state.lastStatus = res.status;
    state.lastError = verdict.error;
    if (said === 'stale') {
      // An OAuth2 token that had already been replaced: just try again with the new one.
      state.limited++;
      if (state.limited > MAX_RATE_LIMITED) return failedOutcome(ctx, id, res.status, 'unauthorized', 'HTTP 401 (tokens kept expiring)', state.attempts);
      state.dueAt = now;
      continue;
    }
    if (said === 'limited' || said === 'unauthorized' || said === 'forbidden') {
      // The credential's fault, not the ID's: no attempt spent; the pool rests or quarantines the credential.
      state.limited++;
      if (state.limited > MAX_RATE_LIMITED) {
        return failedOutcome(ctx, id, res.status, verdict.error, `${verdict.message} (gave up after ${state.limited} credential refusals or rate limits)`, state.attempts);
      }
      if (said === 'forbidden') state.refusedBy.push(credential.id);
      if (said === 'unauthorized') {
        // Confirm before condemning: a credential refuses this ID for good on its second 401.
        if (state.blipped.includes(credential.id)) state.refusedBy.push(credential.id);
        else state.blipped.push(credential.id);
      }
      state.dueAt = now;
      continue;
    }
    state.attempts++;
    if (state.attempts >= retry.attempts) {
      return failedOutcome(ctx, id, res.status, verdict.error, `${verdict.message} (gave up after ${state.attempts} attempts)`, state.attempts);
    }
    state.dueAt = now + (verdict.waitMs === undefined ? backoffDelay(state.attempts, retry.baseDelayMs, retry.maxDelayMs) : boundedWait(ctx, verdict.waitMs));
  }
}

/** Waits for a granted start, then sends the request with its credential and reports what came back. */
async function useGrant(ctx: BatchContext, got: Extract<Acquired, { kind: 'granted' }>, url: string, lateDrops: number): Promise<Step> {
  const pool = ctx.pool;
  const startAt = Date.now() + got.waitMs;
  const credential = got.credential;
  if (startAt > Date.now()) await sleep(startAt - Date.now());
  // A rest that began while this start waited (Retry-After on another request, any replica) wins.
  if (await pool.isResting(credential, got.waitMs > RECHECK_AFTER_WAIT_MS)) {
    await pool.release(credential, got.seq, got.paceUs);
    return { kind: 'resting' };
  }
  let request;
  try {
    request = await credential.apply({ url, headers: {} });
  } catch (err) {
    return { kind: 'credential-error', credential, err };
  }
  // A start much later than reserved (a busy event loop, a slow token, got's first call) could land
  // within the window of a later reservation: give the slot back unused and take a new one.
  // Only a budgeted start (one in a window log) can be late; after a few drops in a row, go anyway.
  const lateMs = got.seq > 0 && lateDrops < MAX_LATE_DROPS ? LATE_START_MS : undefined;
  const res = await fetchId(ctx.http, { ...request, maxBodyBytes: ctx.config.request.maxBodyBytes, credential, startAt, lateMs });
  if (res.late) {
    await pool.release(credential, got.seq, got.paceUs);
    return { kind: 'late' };
  }
  const said = await pool.report(credential, request, res.status, res.headers, got.seq);
  return { kind: 'response', credential, res, said };
}

type Step =
  | { kind: 'stop' }
  | { kind: 'late' }
  | { kind: 'resting' }
  | { kind: 'no-credential'; got: Exclude<Acquired, { kind: 'granted' }> }
  | { kind: 'credential-error'; credential: Credential; err: unknown }
  | { kind: 'response'; credential: Credential; res: FetchResult; said: CredentialVerdict };

/** A wait the server asked for on this ID (Retry-After on a 5xx or 408), capped by retry.maxWaitMs; logged once per process. */
function boundedWait(ctx: BatchContext, askedMs: number): number {
  const w = capWait(askedMs, ctx.config.retry.maxWaitMs);
  if (w.capped && !cappedWaitLogged.has(ctx.config.queue)) {
    cappedWaitLogged.add(ctx.config.queue);
    ctx.logger.warn({ askedMs: w.askedMs, maxWaitMs: ctx.config.retry.maxWaitMs }, `the API asked to retry an ID after ${formatMs(w.askedMs)}; retrying after retry.maxWaitMs (${formatMs(w.waitMs)}) instead`);
  }
  return w.waitMs;
}
const cappedWaitLogged = new Set<string>();

function successOutcome(id: string, res: FetchResult, attempts: number): IdOutcome {
  const body = res.body ?? Buffer.alloc(0);
  const type = (res.contentType ?? '').toLowerCase();
  const saysJson = /^application\/(?:[\w.+-]+\+)?json\b/.test(type) || type.includes('/json');
  const fetchedAt = new Date().toISOString();
  if (body.length === 0) return { kind: 'result', line: { id, status: res.status!, fetchedAt, data: null } };
  const text = body.toString('utf8');
  if (saysJson || type === '') {
    try {
      return { kind: 'result', line: { id, status: res.status!, fetchedAt, data: JSON.parse(text) as unknown } };
    } catch {
      if (saysJson) {
        return { kind: 'failed', line: { id, status: res.status, error: 'invalid_json', message: 'response says JSON but its body does not parse', attempts } };
      }
    }
  }
  return { kind: 'result', line: { id, status: res.status!, fetchedAt, data: text } };
}

function failedOutcome(ctx: BatchContext, id: string, status: number | null, error: ErrorCode, message: string, attempts: number): IdOutcome {
  return { kind: 'failed', line: { id, status, error, message: scrubSecrets(message, ctx.pool.secrets()), attempts } };
}
