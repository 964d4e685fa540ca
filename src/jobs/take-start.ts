import { setTimeout as sleep } from 'node:timers/promises';
import type { Acquired } from '../auth/credential-pool.js';
import type { Credential } from '../auth/credential.js';
import type { RenderedRequest } from '../ids/request-template.js';
import type { Decision, IdState } from '../policy/decide.js';
import type { BatchContext } from './batch-context.js';
import { fetchId, type FetchResult } from './fetch-id.js';
import { outgoingRequest } from './outgoing-request.js';

/** A credential's start is reserved only this far ahead; a later one makes the ID wait (or the batch defer) instead. */
export const RESERVE_HORIZON_MS = 1000;
/** A reserved start missed by more than this is not used (the budget margin is 10 ms or more). */
export const LATE_START_MS = 10;
/** A start reserved this far ahead asks Redis, before use, whether its credential began resting meanwhile. */
export const RECHECK_AFTER_WAIT_MS = 50;
/** Starts of one ID dropped as late in a row before it is sent anyway (a machine too busy to be punctual). */
export const MAX_LATE_DROPS = 3;

/** What one try of an ID came to. */
export type Step =
  | { kind: 'stop' }
  | { kind: 'late' }
  | { kind: 'resting' }
  | { kind: 'no-credential'; got: Exclude<Acquired, { kind: 'granted' }> }
  | { kind: 'credential-error'; credential: Credential; err: unknown }
  | { kind: 'response'; credential: Credential; res: FetchResult; decision: Decision };

/**
 * One try of an ID: takes a credential (not one that refused the ID) and its
 * start, waits for the start, sends the request, and has the pool decide
 * what the answer means. One slot of the process's concurrency covers it all.
 */
export async function takeStart(ctx: BatchContext, req: RenderedRequest, state: IdState, lateDrops: number): Promise<Step> {
  return ctx.limit(async (): Promise<Step> => {
    if (ctx.stopping()) return { kind: 'stop' };
    const got = await ctx.pool.acquire(new Set(state.refusedBy), RESERVE_HORIZON_MS);
    if (got.kind !== 'granted') return { kind: 'no-credential', got };
    try {
      return await useGrant(ctx, got, req, state, lateDrops);
    } finally {
      await ctx.pool.endRequest(got.credential, got.lease);
    }
  });
}

/** Waits for a granted start, then sends the request with its credential and decides what came back. */
async function useGrant(ctx: BatchContext, got: Extract<Acquired, { kind: 'granted' }>, req: RenderedRequest, state: IdState, lateDrops: number): Promise<Step> {
  const pool = ctx.pool;
  const startAt = Date.now() + got.waitMs;
  const credential = got.credential;
  if (startAt > Date.now()) await sleep(startAt - Date.now());
  // A rest that began while this start waited (Retry-After on another request, any replica) wins.
  if (await pool.isResting(credential, got.waitMs > RECHECK_AFTER_WAIT_MS)) {
    await pool.release(credential, got.start, got.paceUs);
    return { kind: 'resting' };
  }
  let request;
  try {
    // The whole request (method, fixed and templated headers, body): the credential's header always wins over a template's.
    request = await credential.apply(outgoingRequest(ctx.http, req));
  } catch (err) {
    await pool.release(credential, got.start, got.paceUs);
    return { kind: 'credential-error', credential, err };
  }
  // apply() may have waited seconds (a login or token fetch): a rotation that removed the credential meanwhile wins.
  if (await pool.isResting(credential, false)) {
    await pool.release(credential, got.start, got.paceUs);
    return { kind: 'resting' };
  }
  // A start much later than reserved (a busy event loop, a slow token, got's first call) could land
  // within the window of a later reservation: give the slot back unused and take a new one.
  // Only a budgeted start (one in a window log) can be late; after a few drops in a row, go anyway.
  const lateMs = got.start !== '' && lateDrops < MAX_LATE_DROPS ? LATE_START_MS : undefined;
  const sentAt = performance.now();
  const res = await fetchId(ctx.http, { ...request, maxBodyBytes: ctx.config.request.maxBodyBytes, credential, startAt, lateMs });
  if (res.late) {
    await pool.release(credential, got.start, got.paceUs);
    return { kind: 'late' };
  }
  const seconds = (performance.now() - sentAt) / 1000;
  // Validators sent (request.conditional): a 304 means unchanged, and with budget.free304 gives its start back.
  const exchange = 'if-none-match' in req.headers || 'if-modified-since' in req.headers ? { ...res, conditional: true } : res;
  const decision = await pool.answer(credential, request, exchange, state, got.start, got.paceUs);
  ctx.events.request({ credential, status: res.status, errorCode: res.errorCode, seconds, rejected: decision.credential.verdict === 'limited' });
  return { kind: 'response', credential, res, decision };
}
