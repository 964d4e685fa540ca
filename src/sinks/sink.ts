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
   */
  finalize(run: string, parts: string[], summary: Summary, extraFailed: () => AsyncIterable<string[]>): Promise<void>;
  /** Drops the parts once the run is marked finalized. */
  cleanup(run: string): Promise<void>;
  /** Where a user finds the output, for messages. */
  location(run: string): string;
  /** Releases connections, if the sink holds any. */
  close?(): Promise<void>;
}
