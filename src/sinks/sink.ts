import { PullqError } from '../errors.js';

/** One line of results.jsonl (SPEC). */
export interface ResultLine {
  id: string;
  status: number;
  fetchedAt: string;
  data: unknown;
}

/** One line of failed.jsonl (SPEC). */
export interface FailedLine {
  id: string;
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
