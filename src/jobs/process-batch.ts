import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Got } from 'got';
import type { LimitFunction } from 'p-limit';
import type { CredentialPool } from '../auth/credential-pool.js';
import type { Config } from '../config.js';
import type { IdUrl } from '../ids/id-url.js';
import type { Logger } from '../logger.js';
import { newRetryState, type RetryState, type RunStore } from '../runs/run-store.js';
import type { FailedLine, ResultLine, Sink } from '../sinks/sink.js';
import { backoffDelay } from './backoff-delay.js';
import { classifyResponse } from './classify-response.js';
import type { ErrorCode } from './error-codes.js';
import { fetchId, type FetchResult } from './fetch-id.js';
import { scrubSecrets } from './scrub-secrets.js';

/** Waits up to this long inside the job; longer waits hand the ID back to the queue (a delayed job). */
export const IN_JOB_WAIT_MS = 5000;
/** Rate-limited retries of one ID before it fails: rate limits do not spend attempts, this keeps it finite. */
export const MAX_RATE_LIMITED = 50;

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
 * Runs one step of a batch job: every ID still to do is fetched (or found not
 * due yet), outcomes go to one part, and the step commits atomically in Redis.
 */
export async function processBatch(ctx: BatchContext, job: BatchJobRef): Promise<BatchOutcome> {
  const contents = await ctx.store.readBatch(job.run, job.batch);
  if (contents.ids.length === 0) return { committed: true, runDone: false, succeeded: 0, failed: 0 };

  const outcomes = await Promise.all(
    contents.ids.map((id) => processId(ctx, id, contents.states.get(id) ?? newRetryState())),
  );

  const results: ResultLine[] = [];
  const failures: FailedLine[] = [];
  const leftovers = new Map<string, RetryState>();
  const errors = new Map<string, number>();
  let nextDueAt: number | undefined;
  contents.ids.forEach((id, i) => {
    const o = outcomes[i]!;
    if (o.kind === 'result') results.push(o.line);
    else if (o.kind === 'failed') {
      failures.push(o.line);
      errors.set(o.line.error, (errors.get(o.line.error) ?? 0) + 1);
    } else {
      leftovers.set(id, o.state);
      nextDueAt = Math.min(nextDueAt ?? Infinity, o.state.dueAt);
    }
  });

  const part = results.length + failures.length > 0 ? `b${job.batch}-s${contents.step}-${randomBytes(4).toString('hex')}` : '';
  if (part) await ctx.sink.writePart(job.run, part, results, failures);
  const commit = await ctx.store.commit({
    lockKey: job.lockKey,
    token: job.token,
    run: job.run,
    batch: job.batch,
    step: contents.step,
    part,
    succeeded: results.length,
    failed: failures.length,
    errors,
    leftovers,
  });
  if (!commit.ok) {
    if (part) await ctx.sink.discardPart(job.run, part);
    ctx.logger.warn({ reason: commit.reason }, 'batch step not committed: another attempt owns this batch now; its outcomes are discarded');
    return { committed: false, runDone: false, succeeded: 0, failed: 0 };
  }
  return { committed: true, runDone: commit.done, nextDueAt, succeeded: results.length, failed: failures.length };
}

async function processId(ctx: BatchContext, id: string, state: RetryState): Promise<IdOutcome> {
  const placed = ctx.urlFor(id);
  if (!placed.ok) {
    return { kind: 'failed', line: { id, status: null, error: 'invalid_id', message: `ID ${placed.reason}`, attempts: 0 } };
  }
  const { retry } = ctx.config;
  for (;;) {
    if (ctx.stopping()) return { kind: 'later', state };
    const wait = state.dueAt - Date.now();
    if (wait > IN_JOB_WAIT_MS) return { kind: 'later', state };
    if (wait > 0) {
      await sleep(wait);
      if (ctx.stopping()) return { kind: 'later', state };
    }

    const credential = ctx.pool.size > 0 ? ctx.pool.next(new Set(state.refusedBy)) : undefined;
    const request = credential ? credential.apply({ url: placed.url, headers: {} }) : { url: placed.url, headers: {} };
    const res = await ctx.limit(() => fetchId(ctx.http, { ...request, maxBodyBytes: ctx.config.request.maxBodyBytes, credential }));
    const now = Date.now();
    const verdict = classifyResponse(res, now);

    if (verdict.action === 'success') return successOutcome(id, res, state.attempts + 1);
    if (verdict.action === 'fail') return failedOutcome(ctx, id, res.status, verdict.error, verdict.message, state.attempts + 1);

    state.lastStatus = res.status;
    state.lastError = verdict.error;
    if (verdict.countsAttempt) state.attempts++;
    else state.limited++;
    if (verdict.countsAttempt && state.attempts >= retry.attempts) {
      return failedOutcome(ctx, id, res.status, verdict.error, `${verdict.message} (gave up after ${state.attempts} attempts)`, state.attempts);
    }
    if (state.limited > MAX_RATE_LIMITED) {
      return failedOutcome(ctx, id, res.status, verdict.error, `${verdict.message} (rate limited ${state.limited} times)`, state.attempts);
    }
    if (verdict.switchCredential && (res.status === 401 || res.status === 403)) {
      if (credential) state.refusedBy.push(credential.id);
      if (state.refusedBy.length >= ctx.pool.size) {
        const by = ctx.pool.size > 1 ? ` (refused by all ${ctx.pool.size} credentials)` : '';
        return failedOutcome(ctx, id, res.status, verdict.error, verdict.message + by, state.attempts);
      }
      state.dueAt = now;
      continue;
    }
    state.dueAt = now + (verdict.waitMs ?? backoffDelay(state.attempts + state.limited, retry.baseDelayMs, retry.maxDelayMs));
  }
}

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
