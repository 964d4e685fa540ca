import { setTimeout as sleep } from 'node:timers/promises';
import { formatMs } from '../auth/credential-pool.js';
import { OAuth2RefusedError } from '../auth/oauth2-token-source.js';
import { backoffDelay } from '../policy/backoff-delay.js';
import { MAX_RATE_LIMITED } from '../policy/decide.js';
import type { ErrorCode } from '../policy/error-codes.js';
import type { RetryState } from '../runs/run-store.js';
import type { BatchContext, IdOutcome } from './batch-context.js';
import { requestHeaders, unchangedOutcome, validatorsToSend, withValidators, type Conditional } from './conditional.js';
import { decodeBody } from './decode-body.js';
import { scrubSecrets } from './scrub-secrets.js';
import { takeStart } from './take-start.js';

/** Waits up to this long inside the job; longer waits hand the ID back to the queue (a delayed job). */
export const IN_JOB_WAIT_MS = 5000;

/**
 * Tries one ID until it has an outcome, or is not due within IN_JOB_WAIT_MS
 * ('later': the batch hands it back with its state). What each answer means
 * is decided by src/policy/decide.ts; this loop only carries it out.
 */
export async function processId(ctx: BatchContext, id: string, state: RetryState, conditional?: Conditional): Promise<IdOutcome> {
  const placed = ctx.urlFor(id);
  const sent = validatorsToSend(conditional);
  const headers = requestHeaders(sent);
  if (!placed.ok) {
    return { kind: 'failed', line: { id, status: null, error: 'invalid_id', message: `ID ${placed.reason}`, attempts: 0 } };
  }
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

    const step = await takeStart(ctx, placed.url, state, lateDrops, headers);
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
      state.dueAt = Date.now() + backoffDelay(state.limited, ctx.config.retry.baseDelayMs, ctx.config.retry.maxDelayMs);
      continue;
    }

    const { res } = step;
    const d = step.decision.id;
    if (d.action === 'success') return withValidators(decodeBody(id, res, d.attempts), res, conditional);
    if (d.action === 'unchanged') return unchangedOutcome(id, res, sent ?? { id }, conditional ?? { carry: false });
    if (d.action === 'fail') return failedOutcome(ctx, id, res.status, d.error, d.message, d.attempts);
    state.lastStatus = res.status;
    state.lastError = d.error;
    state.attempts = d.next.attempts;
    state.limited = d.next.limited;
    state.refusedBy = [...d.next.refusedBy];
    state.blipped = [...d.next.blipped];
    if (d.askedMs !== undefined) logCappedWait(ctx, d.askedMs);
    state.dueAt = Date.now() + d.delayMs;
  }
}

/** A wait the server asked for on an ID (Retry-After on a 5xx or 408) was capped by retry.maxWaitMs: said once per process. */
function logCappedWait(ctx: BatchContext, askedMs: number): void {
  if (cappedWaitLogged.has(ctx.config.queue)) return;
  cappedWaitLogged.add(ctx.config.queue);
  const maxWaitMs = ctx.config.retry.maxWaitMs;
  ctx.logger.warn({ askedMs, maxWaitMs }, `the API asked to retry an ID after ${formatMs(askedMs)}; retrying after retry.maxWaitMs (${formatMs(maxWaitMs)}) instead`);
}
const cappedWaitLogged = new Set<string>();

function failedOutcome(ctx: BatchContext, id: string, status: number | null, error: ErrorCode, message: string, attempts: number): IdOutcome {
  return { kind: 'failed', line: { id, status, error, message: scrubSecrets(message, ctx.pool.secrets()), attempts } };
}
