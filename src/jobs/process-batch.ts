import { randomBytes } from 'node:crypto';
import { CommitUnknownError } from '../errors.js';
import { newRetryState, type RetryState } from '../runs/run-store.js';
import type { FailedLine, ResultLine } from '../sinks/sink.js';
import type { BatchContext, IdOutcome } from './batch-context.js';
import { processId } from './process-id.js';
import { conditionalsFor } from './conditional.js';
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
  /** False when another attempt owns the batch now; nothing of this attempt counts. */
  committed: boolean;
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
 */
export async function processBatch(ctx: BatchContext, job: BatchJobRef): Promise<BatchOutcome> {
  const contents = await ctx.store.readBatch(job.run, job.batch);
  if (contents.ids.length === 0) return { committed: true, runDone: false, succeeded: 0, failed: 0 };

  let abandoned = false;
  const local: BatchContext = { ...ctx, stopping: () => abandoned || ctx.stopping() };
  const states = new Map(contents.ids.map((id) => [id, contents.states.get(id) ?? newRetryState()]));
  const conditional = await conditionalsFor(ctx, job.run, contents.ids);
  /** Outcomes not yet committed, by ID. */
  const settled = new Map<string, IdOutcome>();
  const all = Promise.all(contents.ids.map((id) => processId(local, id, states.get(id)!, conditional?.(id)).then((o) => void settled.set(id, o))));
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
  const validators: ValidatorEntry[] = [];
  for (const o of outcomes) {
    if (o.kind === 'result') {
      results.push(o.line);
      if (o.validators) validators.push(o.validators);
    }
    else if (o.kind === 'failed') {
      failures.push(o.line);
      errors.set(o.line.error, (errors.get(o.line.error) ?? 0) + 1);
    }
  }
  const part = results.length + failures.length > 0 ? `b${job.batch}-s${step}-${randomBytes(4).toString('hex')}` : '';
  // Validators first: they count only with their part, which counts only once committed.
  if (part && validators.length > 0) await ctx.sink.writeValidators?.(job.run, part, validators);
  if (part) await ctx.sink.writePart(job.run, part, results, failures);
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
    // Routine after a stall or a crash: the other attempt's outcomes count, nothing to do.
    ctx.logger.info({ reason: commit.reason }, commit.reason === 'finalized' ? 'batch step not committed: the run is already complete' : 'batch step not committed: another attempt owns this batch now; its outcomes are discarded');
    return { ok: false };
  }
  ctx.events.committed({ run: job.run, succeeded: results.length, failed: failures.length, errors, seconds: (performance.now() - commitStart) / 1000 });
  return { ok: true, done: commit.done, succeeded: results.length, failed: failures.length };
}

