import { setTimeout as sleep } from 'node:timers/promises';
import { CredentialRefusedError } from '../auth/credential-errors.js';
import { CustomSignerError } from '../auth/kinds/custom-credential.js';
import { decodeKey, type IdKey } from '../ids/id-key.js';
import { requestTemplateOf, type RenderedRequest } from '../ids/request-template.js';
import { tokenFailureStep } from '../policy/token-failure.js';
import type { ErrorCode } from '../policy/error-codes.js';
import { nextPage, pageUrl } from '../policy/next-page.js';
import type { RetryState } from '../runs/run-store.js';
import type { FailedLine, ResultLine } from '../sinks/sink.js';
import type { BatchContext, IdOutcome } from './batch-context.js';
import { unchangedOutcome, validatorsToSend, withValidators, type Conditional } from './conditional.js';
import { decodeBody } from './decode-body.js';
import { conditionalHeaders } from '../sinks/validators.js';
import type { FetchResult } from './fetch-id.js';
import { scrubSecrets } from '../policy/scrub-secrets.js';
import { takeStart } from './take-start.js';

/** Waits up to this long inside the job; longer waits hand the ID back to the queue (a delayed job). */
export const IN_JOB_WAIT_MS = 5000;

/**
 * Tries one ID until it has an outcome, or is not due within IN_JOB_WAIT_MS
 * ('later': the batch hands it back with its state). What each answer means
 * is decided by src/policy/decide.ts (and, page after page, by
 * src/policy/next-page.ts); this loop only carries it out.
 *
 * `stored` is the ID as the batch holds it (a multi-column row in its stored
 * form). With request.pagination every page's line is pushed onto `pages` in
 * the same tick as `state.page` moves past it: a checkpoint of the batch that
 * takes the lines also commits the state after them, never one without the other.
 */
export async function processId(ctx: BatchContext, stored: string, state: RetryState, pages: ResultLine[] = [], conditional?: Conditional): Promise<IdOutcome> {
  const key = decodeKey(stored);
  const placed = requestTemplateOf(ctx.config).render(key);
  if (!placed.ok) return { kind: 'failed', line: failedLine(ctx, key, null, 'invalid_id', `ID ${placed.reason}`, 0) };
  const paging = ctx.config.request.pagination;
  if (!paging) {
    // request.conditional (never with pagination: the schema refuses it): the last complete run's validators.
    const sent = validatorsToSend(conditional);
    const request = sent ? { ...placed.request, headers: { ...placed.request.headers, ...conditionalHeaders(sent) } } : placed.request;
    const got = await answerOf(ctx, key, request, state);
    if (got.kind === 'outcome') return got.outcome;
    if (got.unchanged) return withKey(key, unchangedOutcome(stored, key.id, got.res, sent ?? { id: stored }, conditional ?? { carry: false }));
    const o = await shaped(ctx, key, got.res, withKey(key, decodeBody(key.id, got.res, got.attempts)), got.attempts);
    return withValidators(o, stored, got.res, conditional);
  }
  const credentialParam = ctx.config.auth.type === 'query' ? ctx.config.auth.param : undefined;
  for (;;) {
    // Resumed after its last page was in (a crash between the checkpoint that took it and the final commit).
    if (state.page?.end) return endOf(ctx, key, state);
    const at = state.page;
    let url;
    try {
      url = pageUrl(paging, placed.request.url, at);
    } catch (err) {
      // nextPage refuses a cursor encodeURIComponent cannot take; a state resumed from elsewhere may still hold one.
      if (!(err instanceof URIError)) throw err;
      return { kind: 'failed', line: failedLine(ctx, key, state.lastStatus, 'client_error', `page ${at?.n ?? 1}: the API's cursor cannot be put in a URL (it is not well-formed Unicode)`, state.attempts) };
    }
    const request = { ...placed.request, url };
    const got = await answerOf(ctx, key, request, state);
    if (got.kind === 'outcome') return got.outcome;
    const decoded = decodeBody(key.id, got.res, got.attempts);
    if (decoded.kind === 'failed') return withKey(key, decoded);
    const n = at?.n ?? 1;
    const next = nextPage(paging, { url: request.url, headers: got.res.headers ?? {}, data: decoded.line.data, page: n, current: at?.next, credentialParam });
    // The next page is read from the body as fetched; the hook shapes what is stored of it.
    const shapedPage = await shaped(ctx, key, got.res, decoded, got.attempts);
    if (shapedPage.kind === 'failed') return shapedPage;
    // The merged line (mode "id") holds every page: bounded as the pages arrive, not once they are all in memory.
    // Counted in the same tick as the page is pushed and the state moves past it, so a checkpoint commits both or neither.
    const pageBytes = (state.pageBytes ?? 0) + (got.res.body?.length ?? 0);
    if (ctx.config.output.mode === 'id' && pageBytes > ctx.config.output.maxMergedBytes) {
      const message = `the pages of this ID add up to more than output.maxMergedBytes (${ctx.config.output.maxMergedBytes} bytes) at page ${n}: raise output.maxMergedBytes, or use output.mode "page" (one line per page)`;
      return { kind: 'failed', line: failedLine(ctx, key, got.res.status, 'body_too_large', message, got.attempts) };
    }
    if (ctx.config.output.mode === 'id') state.pageBytes = pageBytes;
    const { id: _id, ...rest } = shapedPage.line;
    const line: ResultLine = { id: key.id, ...keyField(key), page: n, ...(next.kind === 'last' && next.truncated ? { truncated: true as const } : {}), ...rest };
    pages.push(line);
    if (next.kind === 'next') {
      // Every page is a request of its own under the retry policy: its attempts start afresh.
      state.page = { n: n + 1, next: next.next };
      state.attempts = 0;
      state.limited = 0;
      state.lastStatus = null;
      state.lastError = null;
      continue;
    }
    state.page = {
      n: n + 1,
      next: at?.next ?? '',
      end:
        next.kind === 'last'
          ? { kind: 'last', truncated: next.truncated }
          : next.kind === 'unusable'
            ? { kind: 'unusable', status: got.res.status!, attempts: got.attempts, message: next.message }
            : { kind: 'cross_origin', status: got.res.status!, attempts: got.attempts, message: `page ${n} links its next page to another origin (${next.url}); not followed, the credential is never sent there` },
    };
    return endOf(ctx, key, state);
  }
}

/** The outcome of a paginated ID whose last page is in (state.page.end is set). */
function endOf(ctx: BatchContext, key: IdKey, state: RetryState): IdOutcome {
  const end = state.page!.end!;
  if (end.kind !== 'last') return { kind: 'failed', line: failedLine(ctx, key, end.status, end.kind === 'cross_origin' ? 'cross_origin_next' : 'client_error', end.message, end.attempts) };
  return { kind: 'paged', id: key.id, key: key.columns, pages: state.page!.n - 1, truncated: end.truncated };
}

/** The ID's row as the `key` field of its lines (multi-column IDs files only). */
function keyField(key: IdKey): { key?: Record<string, string> } {
  return key.columns ? { key: { ...key.columns } } : {};
}

function withKey<T extends { kind: 'result'; line: ResultLine } | { kind: 'failed'; line: FailedLine }>(key: IdKey, o: T): T {
  if (!key.columns) return o;
  const { id, ...rest } = o.line;
  return { ...o, line: { id, ...keyField(key), ...rest } };
}

/** One request of the ID tried until it is answered for good (success, or a non-retryable answer the caller decodes), fails, or must wait. */
async function answerOf(ctx: BatchContext, key: IdKey, request: RenderedRequest, state: RetryState): Promise<{ kind: 'outcome'; outcome: IdOutcome } | { kind: 'answer'; res: FetchResult; attempts: number; unchanged?: true }> {
  const pool = ctx.pool;
  const later = { kind: 'outcome', outcome: { kind: 'later', state } } as const;
  const fail = (status: number | null, error: ErrorCode, message: string, attempts: number) => ({ kind: 'outcome', outcome: { kind: 'failed', line: failedLine(ctx, key, status, error, message, attempts) } }) as const;
  let lateDrops = 0;
  for (;;) {
    if (ctx.stopping()) return later;
    const wait = state.dueAt - Date.now();
    if (wait > IN_JOB_WAIT_MS) return later;
    if (wait > 0) {
      await sleep(wait);
      if (ctx.stopping()) return later;
    }

    const step = await takeStart(ctx, request, state, lateDrops);
    if (step.kind === 'stop') return later;
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
        return later;
      }
      // Every usable credential refused this ID (403, or 401 twice).
      const error = (state.lastError as ErrorCode | null) ?? 'forbidden';
      const by = pool.size > 1 ? ` (refused by every credential)` : '';
      return fail(state.lastStatus, error, pageMessage(state, `HTTP ${state.lastStatus ?? ''}${by}`.trim()), state.attempts);
    }
    if (step.kind === 'credential-error') {
      if (step.err instanceof CredentialRefusedError) await pool.quarantine(step.credential, step.err.reason);
      else {
        const message = scrubSecrets((step.err as Error).message, pool.secrets());
        // A library signer's failure says itself what happened (the terminal shows a warning's message only).
        ctx.logger.warn({ credential: step.credential.label, err: { code: (step.err as { code?: string }).code, message } }, step.err instanceof CustomSignerError ? message : 'could not get a token');
      }
      const next = tokenFailureStep(state.limited, ctx.config.retry);
      state.limited = next.limited;
      if (next.action === 'fail') return fail(null, 'unauthorized', next.message, state.attempts);
      state.dueAt = Date.now() + next.delayMs;
      continue;
    }

    const { res } = step;
    const d = step.decision.id;
    if (d.action === 'success') return { kind: 'answer', res, attempts: d.attempts };
    // A 304 to the validators sent (request.conditional): the data did not change since the last complete run.
    if (d.action === 'unchanged') return { kind: 'answer', res, attempts: 1, unchanged: true };
    if (d.action === 'fail') return fail(res.status, d.error, pageMessage(state, d.message), d.attempts);
    state.lastStatus = res.status;
    state.lastError = d.error;
    state.attempts = d.next.attempts;
    state.limited = d.next.limited;
    state.refusedBy = [...d.next.refusedBy];
    state.blipped = [...d.next.blipped];
    if (d.askedMs !== undefined) pool.warnCappedWait(d.askedMs);
    state.dueAt = Date.now() + d.delayMs;
  }
}

/** A failure past the first page says which page. */
function pageMessage(state: RetryState, message: string): string {
  return state.page && state.page.n > 1 ? `page ${state.page.n}: ${message}` : message;
}

function failedLine(ctx: BatchContext, key: IdKey, status: number | null, error: ErrorCode, message: string, attempts: number): FailedLine {
  return { id: key.id, ...keyField(key), status, error, message: scrubSecrets(message, ctx.pool.secrets()), attempts };
}

/**
 * A decoded answer (one page's, with pagination) after the shaping hook (createPullq's `transform`,
 * or output.select); a hook that throws fails the ID with transform_failed.
 */
async function shaped<T extends { kind: 'result'; line: ResultLine } | { kind: 'failed'; line: FailedLine }>(ctx: BatchContext, key: IdKey, res: FetchResult, o: T, attempts: number): Promise<T | { kind: 'failed'; line: FailedLine }> {
  if (!ctx.shape || o.kind !== 'result') return o;
  const line = o.line as ResultLine;
  try {
    const data = await ctx.shape({ id: key.id, status: line.status, headers: res.headers ?? {}, data: line.data }, key.id);
    return { ...o, line: { ...line, data: data === undefined ? null : data } };
  } catch (err) {
    const message = `transform failed: ${err instanceof Error ? err.message : String(err)}`.slice(0, 500);
    return { kind: 'failed', line: failedLine(ctx, key, line.status, 'transform_failed', message, attempts) };
  }
}
