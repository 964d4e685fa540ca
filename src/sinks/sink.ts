import { PullqError } from '../errors.js';
import type { ValidatorEntry } from './validators.js';

/** One line of results.jsonl (SPEC). */
export interface ResultLine {
  id: string;
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
