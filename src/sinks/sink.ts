import { PullqError } from '../errors.js';

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
  data: unknown;
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

/** Lets a finalizer check, between steps of writing, that it still holds the run's finalize lock. */
export interface FinalizeFence {
  /** Throws (FinalizeLostError) when another finalizer took over: stop writing, touch nothing of theirs. */
  check(): Promise<void>;
}

/** A part written for a run whose output is already final (a stalled worker woke late): refused. */
export class RunFinalizedError extends PullqError {
  constructor(run: string) {
    super('run_finalized', `run ${run} is already complete; a late write to it was refused`);
  }
}

/**
 * Where outcomes go. Workers write a part per batch step, durable before the
 * step commits in Redis; only committed parts reach the final output, so a
 * part written by an attempt that lost its job is simply discarded.
 */
export interface Sink {
  /** Writes (and fsyncs) one part. Must be idempotent for the same name. */
  writePart(run: string, part: string, results: ResultLine[], failures: FailedLine[]): Promise<void>;
  /** Removes a part that did not commit. */
  discardPart(run: string, part: string): Promise<void>;
  /**
   * Optional (issue #13): the result lines of a part, as written. Pagination with
   * output.mode "id" needs it: an ID's pages committed in earlier steps are kept
   * in parts of their own (written, never listed for output) and read back to
   * make the ID's one line when its last page is in. Both built-in sinks have it.
   */
  readPart?(run: string, part: string): Promise<ResultLine[]>;
  /**
   * Builds the run's final output from its committed parts, in order, then
   * `extraFailed` (ready failed.jsonl lines, e.g. invalid IDs); safe to repeat.
   * Checks `fence` before anything becomes visible, so a finalizer that lost its lock publishes nothing.
   */
  finalize(run: string, parts: string[], summary: Summary, extraFailed: () => AsyncIterable<string[]>, fence?: FinalizeFence): Promise<void>;
  /** Drops the parts once the run is marked finalized. */
  cleanup(run: string): Promise<void>;
  /** Where a user finds the output, for messages. */
  location(run: string): string;
  /** Releases connections, if the sink holds any. */
  close?(): Promise<void>;
}
