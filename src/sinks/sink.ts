import { PullqError } from '../errors.js';
import type { ValidatorEntry } from './validators.js';

/** One line of results.jsonl (SPEC); the optional fields appear only with multi-column IDs files or pagination (issue #13). */
export interface ResultLine {
  id: string;
  /** Multi-column IDs files: the whole row (every column, `id` included): the key the ID was deduplicated on. */
  key?: Record<string, string>;
  /** output.mode "page": the page's number, from 1. */
  page?: number;
  /** output.mode "id" with pagination: how many pages `data` holds. */
  pages?: number;
  /** Pagination stopped at request.pagination.maxPages while the API had more. */
  truncated?: true;
  status: number;
  fetchedAt: string;
  /** Absent on an unchanged line (a 304, request.conditional) unless output.carryUnchanged. */
  data?: unknown;
  /** A 304 to a conditional request: `{"id", "status": 304, "unchanged": true, "fetchedAt"}`. */
  unchanged?: true;
}

/** One line of failed.jsonl (SPEC). */
export interface FailedLine {
  id: string;
  /** Multi-column IDs files: the whole row, as in ResultLine. */
  key?: Record<string, string>;
  status: number | null;
  error: string;
  message: string;
  attempts: number;
}

/** summary.json (SPEC), plus the per-code failure counts. */
export interface Summary {
  run: string;
  total: number;
  succeeded: number;
  failed: number;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  errors: Record<string, number>;
}

/**
 * Lets a finalizer check, between steps of writing, that it still holds the
 * run's finalize lock (a Redis lock renewed while finalizing; see
 * src/runs/finalize-run.ts). A finalizer that stalled past its lock (a paused
 * container, a long GC) must publish nothing: another one has taken over.
 */
export interface FinalizeFence {
  /** Throws (FinalizeLostError) when another finalizer took over: stop writing, touch nothing of theirs. */
  check(): Promise<void>;
}

/**
 * A part written for a run whose output is already final (a stalled worker
 * woke late): refused. A sink throws exactly this class (the worker tests
 * `instanceof`) so the worker drops the late batch quietly instead of retrying
 * it into an abort.
 *
 * `published` (optional, give it when the sink can read it back) is the
 * summary stored with the output the sink holds. Its `startedAt` is the
 * creation time of the run that published it, which tells run instances of
 * one name apart: when it is the run's own, Redis lost the mark that the run
 * was finalized (a rewind: a crash under `appendfsync everysec`, a failover
 * to an async replica) and the worker marks the run complete from it; when
 * it is another's, the name was used before and the run stops with the reason.
 */
export class RunFinalizedError extends PullqError {
  readonly published: Summary | undefined;

  constructor(run: string, published?: Summary) {
    super('run_finalized', `run ${run} is already complete; a late write to it was refused`);
    this.published = published;
  }
}

/**
 * Where outcomes go: the file sink, the PostgreSQL sink, or your own
 * (docs/sinks.md; check it with `sinkConformanceCases`).
 *
 * The exactly-once protocol, as pullq drives it:
 * 1. A worker finishes some IDs of a batch (a "step") and calls `writePart`
 *    with a part name that is new for this attempt. The part must be durable
 *    when `writePart` returns.
 * 2. Then the worker commits the step in Redis, naming the part. Only a
 *    committed part counts. If the commit is refused (another attempt owns
 *    the batch) the worker calls `discardPart`; if the worker dies before or
 *    during either call, the part simply stays behind, never committed.
 * 3. When every ID of the run has an outcome, one process (holding a lock)
 *    calls `finalize` with the committed part names, then marks the run
 *    finalized in Redis, then calls `cleanup`. A crash anywhere in between
 *    means `finalize` runs again, by this or another process.
 *
 * So a sink never decides what counts: it keeps parts apart by name until
 * `finalize` is told which ones make the output. Every ID of a complete run
 * is then in exactly one output line, whatever crashed along the way.
 *
 * Names: `run` is a validated label (1-100 of `[A-Za-z0-9._-]`, starting
 * with a letter or digit);
 * `part` is `[A-Za-z0-9-]` (e.g. `b12-s0-9f3a1c2e`), safe in a file name or
 * a SQL value. IDs are any string (in parts, the SPEC's valid IDs: no
 * control characters; `extraFailed` holds the invalid ones): keep them as
 * data, never in a path or in SQL text.
 *
 * Methods may be called concurrently from many processes and machines for the
 * same run (workers write parts while one finalizer runs), and every method
 * may be retried after a crash, so each must be safe to repeat.
 */
export interface Sink {
  /**
   * Stores one part of a run: `results` (results.jsonl lines) and `failures`
   * (failed.jsonl lines) of one step.
   *
   * - Durable before it returns: the step commits right after, and a
   *   committed part must survive a crash of this process or machine (fsync,
   *   a committed transaction).
   * - Idempotent by name: writing the same `run`/`part` again with the same
   *   lines (a retry after a crash mid-write, or a timeout) leaves each line
   *   in the output once, and a half-written earlier try leaves no trace.
   * - Never visible in the output by itself: until `finalize` names it, a part
   *   is not output (an attempt that loses its batch wrote one too).
   * - Refused with {@link RunFinalizedError} once the run is finalized (a
   *   worker that stalled and woke late), leaving nothing behind; give the
   *   error the published summary when it can be read (`published`). A write
   *   racing the finalize itself may still land: it is harmless as long as
   *   it never reaches the output (it is not among `finalize`'s parts) and
   *   `cleanup` removes it.
   * - `results` and `failures` may be large (a step of 5000 IDs with bodies up
   *   to `request.maxBodyBytes`, hundreds of MB): write in bounded chunks, do
   *   not build one string.
   */
  writePart(run: string, part: string, results: ResultLine[], failures: FailedLine[]): Promise<void>;
  /**
   * Removes a part that did not commit (its step was refused because another
   * attempt owns the batch). Removing a part that does not exist, or was
   * removed already, is not an error. Never called for committed parts.
   */
  discardPart(run: string, part: string): Promise<void>;
  /**
   * Optional (issue #13): the result lines of a part, as written. Pagination with
   * output.mode "id" needs it: an ID's pages committed in earlier steps are kept
   * in parts of their own (written, never listed for output) and read back to
   * make the ID's one line when its last page is in. Both built-in sinks have it.
   */
  readPart?(run: string, part: string): Promise<ResultLine[]>;
  /**
   * Builds the run's final output and makes it visible to the user.
   *
   * - The output is exactly the lines of `parts`, in the given order (results
   *   to results, failures to failures), then the failed.jsonl lines
   *   `extraFailed` yields (ready JSON text, one array per chunk: e.g. the
   *   run's invalid IDs). Parts not listed (never committed, or discarded) are
   *   not output, even if they still exist.
   * - `summary` is stored with the output (summary.json for files).
   * - Repeatable: a finalizer can crash midway, or lose its lock, and another
   *   calls `finalize` again with the same arguments (before `cleanup`): the
   *   result is the same output, never two copies of it. `extraFailed` can be
   *   called again each time.
   * - Repeatable after `cleanup` too: Redis can lose the mark that the run was
   *   finalized after the parts were dropped, and `finalize` is called again
   *   naming parts that are gone. So when the sink already holds published
   *   output whose summary has this `summary.startedAt` (the run's creation
   *   time: this very run published it), leave that output as it is and
   *   return (after `fence.check()`). Output under the same name with another
   *   `startedAt` is an earlier run's.
   * - All or nothing to a reader as far as the store allows (write aside,
   *   then rename; one transaction): a reader never sees half an output.
   * - Calls `fence.check()` after writing everything and before anything
   *   becomes visible (the rename, the COMMIT): when it throws, nothing of
   *   this call is published, earlier output stays as it was, and the error
   *   propagates.
   * - After it returns, `writePart` for this run throws {@link RunFinalizedError}.
   * - Durable before it returns: the run is marked finalized in Redis right
   *   after, and parts are dropped.
   */
  finalize(run: string, parts: string[], summary: Summary, extraFailed: () => AsyncIterable<string[]>, fence?: FinalizeFence): Promise<void>;
  /**
   * Drops the run's parts once the run is marked finalized in Redis (called
   * after every finalize that completed, and again when a finalized run is
   * seen later). Leaves the output alone. Safe to repeat, and a no-op for a
   * run with no parts.
   */
  cleanup(run: string): Promise<void>;
  /** Where a user finds the run's output, for messages (`pullq pull`'s summary, the log). Never a secret (no password in a URL). */
  location(run: string): string;
  /** Releases connections, if the sink holds any. Called once, when the process is done with the sink. */
  close?(): Promise<void>;

  // Conditional re-pulls (request.conditional). Optional: a worker refuses
  // request.conditional at start with a sink that lacks any of the three.

  /**
   * Writes (durably) the validators of a part's results, before the part itself: they count only
   * if the part commits. `discardPart` drops them too; `cleanup` drops them once published.
   */
  writeValidators?(run: string, part: string, entries: ValidatorEntry[]): Promise<void>;
  /**
   * At finalize, after `finalize` and before the run is marked complete: makes the validators of
   * the run's committed parts the ones of its series, unless a later run of the series published
   * already; does nothing when the run wrote none. Safe to repeat. Checks `fence` before publishing.
   */
  publishValidators?(run: string, series: string, parts: string[], fence?: FinalizeFence): Promise<void>;
  /** The validators (and data, when kept) of `ids` from the latest complete run of `series`; IDs without any are absent. */
  lookupValidators?(series: string, ids: string[]): Promise<Map<string, ValidatorEntry>>;
}

/** Whether a sink can keep validators (request.conditional). */
export function keepsValidators(sink: Sink): boolean {
  return typeof sink.writeValidators === 'function' && typeof sink.publishValidators === 'function' && typeof sink.lookupValidators === 'function';
}
