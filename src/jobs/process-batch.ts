import { randomBytes } from 'node:crypto';
import { CommitUnknownError } from '../errors.js';
import { newRetryState, type RetryState } from '../runs/run-store.js';
import type { FailedLine, ResultLine } from '../sinks/sink.js';
import type { BatchContext, IdOutcome } from './batch-context.js';
import { mergePages } from './merge-pages.js';
import { processId } from './process-id.js';
import { conditionalsFor } from './conditional.js';
import { unwritableLine } from './unwritable-line.js';
import type { ValidatorEntry } from '../sinks/validators.js';

export type { BatchContext } from './batch-context.js';

/** A batch running longer than this commits what it has finished so far. */
export const CHECKPOINT_MS = 5000;

export interface BatchJobRef {
  run: string;
  batch: number;
  /** The BullMQ lock key and token of this attempt: the commit is valid only while both match. */
  lockKey: string;
  token: string;
}

export interface BatchOutcome {
  /** False when another attempt owns the batch now, or `rerun`; nothing of this attempt's uncommitted steps counts. */
  committed: boolean;
  /**
   * The batch in Redis is not what this attempt committed, though it still holds the job lock: Redis lost a
   * step it had acknowledged. The job must not complete: run it again, from the batch as Redis has it.
   */
  rerun?: boolean;
  /** The whole run now has an outcome for every ID. */
  runDone: boolean;
  /** When IDs remain: the earliest time one of them may be tried (epoch ms). */
  nextDueAt?: number;
  succeeded: number;
  failed: number;
}

/**
 * Runs a batch job until every ID still to do is fetched or not yet due.
 * Outcomes commit atomically in Redis, one part per step: at the end, and
 * every CHECKPOINT_MS while the batch runs (so progress shows and a crash
 * redoes little); IDs in flight at a checkpoint stay in the batch's list
 * until a later step commits them.
 *
 * Paginated IDs (issue #13) commit page by page: a step takes the pages an ID
 * fetched so far and commits its state past them (RetryState.page) in the same
 * Lua call, so after a crash the ID resumes at the page it reached and every
 * page is output once. output.mode "page": the pages are lines of the step's
 * part. output.mode "id": an unfinished ID's pages go to a part of their own
 * that is never listed for output, named in its committed state
 * (RetryState.pageParts); the step that finishes the ID reads them back
 * (Sink.readPart) and writes its one merged line like any other result. So
 * finalize and the commit protocol stay as they are, and a crash at any point
 * leaves either the old state (the new page parts are never read) or the new
 * one (they are durable: written before the commit).
 */
export async function processBatch(ctx: BatchContext, job: BatchJobRef): Promise<BatchOutcome> {
  const contents = await ctx.store.readBatch(job.run, job.batch);
  if (contents.ids.length === 0) return { committed: true, runDone: false, succeeded: 0, failed: 0 };

  let abandoned = false;
  const local: BatchContext = { ...ctx, stopping: () => abandoned || ctx.stopping() };
  const states = new Map(contents.ids.map((id) => [id, contents.states.get(id) ?? newRetryState()]));
  /** Outcomes not yet committed, by ID. */
  const settled = new Map<string, IdOutcome>();
  /** Paginated IDs: page lines fetched and not yet taken by a step, by ID (processId pushes onto them). */
  const pages = new Map(contents.ids.map((id) => [id, [] as ResultLine[]]));
  const conditional = await conditionalsFor(ctx, job.run, contents.ids);
  /** IDs failed by the batch itself (a line of theirs cannot be written): their processId stops, its outcome is ignored. */
  const failedHere = new Set<string>();
  const each = contents.ids.map((id) => {
    const own: BatchContext = { ...local, stopping: () => local.stopping() || failedHere.has(id) };
    return processId(own, id, states.get(id)!, pages.get(id)!, conditional?.(id)).then((o) => void settled.set(id, o));
  });
  const all = Promise.all(each);
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
      if (!final && finishedNow.length === 0 && !remaining.some((id) => pages.get(id)!.length > 0)) continue;
      // Taken in one synchronous pass: each ID's page lines and its state after them go into the same step.
      const out = takeStep(ctx, job, step, remaining, settled, states, pages);
      let r = await commitStep(ctx, job, step, out);
      if (!r.ok && r.unwritable) {
        // A line the sink cannot write (JSON.stringify threw RangeError) fails its ID; the step is written again without it.
        for (const id of r.unwritable.keys()) failedHere.add(id);
        failUnwritable(out, r.unwritable, states);
        r = await commitStep(ctx, job, step, out, true);
      }
      if (!r.ok) {
        abandoned = true;
        await all;
        return { committed: false, rerun: 'reason' in r && r.reason === 'step_moved', runDone: false, succeeded: 0, failed: 0 };
      }
      total.succeeded += r.succeeded;
      total.failed += r.failed;
      step++;
      remaining = [...out.leftovers.keys()];
      if (!final && remaining.length === 0) {
        // Only IDs failed here are still running (they stop at their next request): this commit ended the batch.
        await Promise.allSettled(each);
        return { committed: true, runDone: r.done, ...total };
      }
      if (final) {
        let nextDueAt: number | undefined;
        for (const st of out.leftovers.values()) nextDueAt = Math.min(nextDueAt ?? Infinity, st.dueAt);
        return { committed: true, runDone: r.done, nextDueAt, ...total };
      }
    }
  } catch (err) {
    // A step that cannot commit (the sink refused it, Redis stayed away): stop this attempt's requests
    // before BullMQ tries the batch again, so two attempts never run side by side in one process.
    // Every ID's, not only until the first rejection (Promise.all's): one ID that threw leaves the others running.
    abandoned = true;
    await Promise.allSettled(each);
    throw err;
  }
}

/** What one step takes from the batch, before anything is written. */
interface StepTake {
  /** Base of the step's part names. */
  base: string;
  /** `id`: the ID as the batch holds it. */
  finished: { id: string; o: Exclude<IdOutcome, { kind: 'later' }>; pages: ResultLine[]; pageParts: string[] }[];
  /** output.mode "page": the page lines of IDs still going, output with this step. */
  pageLines: { id: string; line: ResultLine }[];
  /** output.mode "id": parts of their own holding the pages of IDs still going (never output; see RetryState.pageParts). */
  pageParts: { id: string; part: string; lines: ResultLine[] }[];
  /** The IDs still to do, each with a snapshot of its state as of the lines taken. */
  leftovers: Map<string, RetryState>;
}

/**
 * Takes a step's outcomes, page lines and leftover states, synchronously: a
 * processId still running pushes its next page line and moves its state in
 * one tick, so what is taken here and the state snapshot always agree. (The
 * state is copied, not referenced: it moves on while the step is written.)
 */
function takeStep(ctx: BatchContext, job: BatchJobRef, step: number, remaining: string[], settled: Map<string, IdOutcome>, states: Map<string, RetryState>, pages: Map<string, ResultLine[]>): StepTake {
  const take: StepTake = { base: `b${job.batch}-s${step}-${randomBytes(4).toString('hex')}`, finished: [], pageLines: [], pageParts: [], leftovers: new Map() };
  for (const id of remaining) {
    const o = settled.get(id);
    const lines = pages.get(id)!.splice(0);
    const state = o?.kind === 'later' ? o.state : states.get(id)!;
    if (o !== undefined && o.kind !== 'later') {
      take.finished.push({ id, o, pages: lines, pageParts: state.pageParts ?? [] });
      continue;
    }
    if (lines.length > 0) {
      if (ctx.config.output.mode === 'page') take.pageLines.push(...lines.map((line) => ({ id, line })));
      else {
        const part = `${take.base}-p${take.pageParts.length}`;
        take.pageParts.push({ id, part, lines });
        state.pageParts = [...(state.pageParts ?? []), part];
      }
    }
    take.leftovers.set(id, structuredClone(state));
  }
  return take;
}

/**
 * Fails, in a step taken already, the IDs whose lines cannot be written: a finished ID's outcome becomes
 * body_too_large, an ID still going is finished so (its lines of the step dropped, its state left out
 * of the leftovers), and the step's part gets a new name.
 */
function failUnwritable(take: StepTake, unwritable: Map<string, string>, states: Map<string, RetryState>): void {
  const failedLine = (id: string, line: ResultLine | undefined, message: string): FailedLine => {
    const state = states.get(id)!;
    return { id: line?.id ?? id, ...(line?.key ? { key: { ...line.key } } : {}), status: line?.status ?? state.lastStatus, error: 'body_too_large', message, attempts: state.attempts + 1 };
  };
  for (const f of take.finished) {
    const message = unwritable.get(f.id);
    if (message === undefined) continue;
    // One that failed already keeps its failure and loses only the pages before it (mode "page").
    if (f.o.kind !== 'failed') f.o = { kind: 'failed', line: failedLine(f.id, f.o.kind === 'result' ? f.o.line : f.pages[0], message) };
    f.pages = [];
  }
  for (const [id, message] of unwritable) {
    if (!take.leftovers.has(id)) continue;
    const line = take.pageLines.find((p) => p.id === id)?.line ?? take.pageParts.find((p) => p.id === id)?.lines[0];
    take.leftovers.delete(id);
    take.finished.push({ id, o: { kind: 'failed', line: failedLine(id, line, message) }, pages: [], pageParts: [] });
  }
  take.pageLines = take.pageLines.filter((p) => !unwritable.has(p.id));
  take.pageParts = take.pageParts.filter((p) => !unwritable.has(p.id));
  take.base = `${take.base}-r`;
}

/** The lines of one step: finished IDs' lines (a paginated ID's pages, or their merge) and the page lines of IDs still going. */
async function stepLines(ctx: BatchContext, job: BatchJobRef, take: StepTake) {
  const results: ResultLine[] = take.pageLines.map((p) => p.line);
  /** Which ID (as the batch holds it) each result line is of. */
  const owners: string[] = take.pageLines.map((p) => p.id);
  const failures: FailedLine[] = [];
  const errors = new Map<string, number>();
  const validators: ValidatorEntry[] = [];
  let succeeded = 0;
  const byPage = ctx.config.output.mode === 'page';
  for (const { id, o, pages, pageParts } of take.finished) {
    const before = results.length;
    if (o.kind === 'result') {
      succeeded++;
      results.push(o.line);
      if (o.validators) validators.push(o.validators);
    } else if (o.kind === 'failed') {
      failures.push(o.line);
      errors.set(o.line.error, (errors.get(o.line.error) ?? 0) + 1);
      // The pages before the failure: output in mode "page" (as earlier steps' pages already are), dropped in mode "id".
      if (byPage) results.push(...pages);
    } else {
      succeeded++;
      if (byPage) results.push(...pages);
      else results.push(mergePages([...(await readPageParts(ctx, job.run, pageParts)), ...pages], o, ctx.config.request.pagination?.itemsPath));
    }
    for (let i = before; i < results.length; i++) owners.push(id);
  }
  return { results, owners, failures, errors, validators, succeeded, failed: failures.length };
}

/** The page lines an ID's earlier steps committed (output.mode "id"). */
async function readPageParts(ctx: BatchContext, run: string, parts: string[]): Promise<ResultLine[]> {
  if (parts.length === 0) return [];
  if (!ctx.sink.readPart) throw new Error('output.mode "id" with request.pagination needs a sink that can read its parts back (Sink.readPart); use output.mode "page"');
  const lines: ResultLine[] = [];
  for (const part of parts) lines.push(...(await ctx.sink.readPart(run, part)));
  return lines;
}

/** Waits for `p` or `ms`, whichever comes first. */
async function waitForEither(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

/** Writes one step's parts and commits it; on a lost lock the parts are discarded. */
async function commitStep(
  ctx: BatchContext,
  job: BatchJobRef,
  step: number,
  take: StepTake,
  again = false,
): Promise<{ ok: true; done: boolean; succeeded: number; failed: number } | { ok: false; unwritable: Map<string, string> } | { ok: false; unwritable?: undefined; reason: 'lock_lost' | 'step_moved' | 'finalized' }> {
  const { results, owners, failures, errors, validators, succeeded, failed } = await stepLines(ctx, job, take);
  const leftovers = take.leftovers;
  const part = results.length + failures.length > 0 ? take.base : '';
  try {
    // Validators (request.conditional) first: they count only with their part, which counts only once committed.
    if (part && validators.length > 0) await ctx.sink.writeValidators?.(job.run, part, validators);
    for (const p of take.pageParts) await ctx.sink.writePart(job.run, p.part, p.lines, []);
    if (part) await ctx.sink.writePart(job.run, part, results, failures);
  } catch (err) {
    if (again || !(err instanceof RangeError)) throw err;
    // Which lines cannot be written (probed one by one only now, so a step that writes costs nothing more).
    const unwritable = new Map<string, string>();
    results.forEach((line, i) => {
      const why = unwritableLine(line);
      if (why !== undefined && !unwritable.has(owners[i]!)) unwritable.set(owners[i]!, why);
    });
    for (const p of take.pageParts) {
      const why = p.lines.map(unwritableLine).find((w) => w !== undefined);
      if (why !== undefined && !unwritable.has(p.id)) unwritable.set(p.id, why);
    }
    if (unwritable.size === 0) throw err;
    // The half-written part is never committed; the step is written again under a new name.
    if (part) await ctx.sink.discardPart(job.run, part);
    return { ok: false, unwritable };
  }
  let commit;
  const commitStart = performance.now();
  try {
    commit = await ctx.store.commit({
      lockKey: job.lockKey,
      token: job.token,
      run: job.run,
      batch: job.batch,
      step,
      part,
      succeeded,
      failed,
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
    if (commit.reason !== 'finalized') {
      for (const p of [part, ...take.pageParts.map((x) => x.part)]) if (p) await ctx.sink.discardPart(job.run, p);
    }
    // Routine after a stall or a crash: the other attempt's outcomes count, nothing to do.
    // 'step_moved' while this attempt holds the job lock (checked first): no other attempt can have moved the step,
    // so Redis lost a step it had acknowledged; the lost step's part was never listed, so it is never output.
    const message = {
      finalized: 'batch step not committed: the run is already complete',
      lock_lost: 'batch step not committed: another attempt owns this batch now; its outcomes are discarded',
      step_moved: 'batch step not committed: Redis no longer holds the step this attempt committed before (it lost an acknowledged write); the batch runs again from what Redis holds',
    }[commit.reason];
    if (commit.reason === 'step_moved') ctx.logger.warn({ reason: commit.reason }, message);
    else ctx.logger.info({ reason: commit.reason }, message);
    return { ok: false, reason: commit.reason };
  }
  ctx.events.committed({ run: job.run, succeeded, failed, errors, seconds: (performance.now() - commitStart) / 1000 });
  return { ok: true, done: commit.done, succeeded, failed };
}

