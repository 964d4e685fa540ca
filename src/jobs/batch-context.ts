import type { Got } from 'got';
import type { LimitFunction } from 'p-limit';
import type { CredentialPool } from '../auth/credential-pool.js';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import type { RetryState, RunStore } from '../runs/run-store.js';
import type { FailedLine, ResultLine, Sink } from '../sinks/sink.js';
import type { ValidatorEntry } from '../sinks/validators.js';
import type { BatchEvents } from './batch-events.js';
import type { Transform } from './shape-result.js';

/** What a worker process shares between all the batches it runs. */
export interface BatchContext {
  config: Config;
  store: RunStore;
  sink: Sink;
  pool: CredentialPool;
  http: Got;
  /** Caps in-flight requests of the whole process at worker.concurrency. */
  limit: LimitFunction;
  /** True once shutdown began: stop starting requests, commit, hand the rest back. */
  stopping: () => boolean;
  /** The run cannot go on (e.g. every credential quarantined): stop this replica with exit 2. */
  fatal: (reason: string) => void;
  logger: Logger;
  /** Told of every answered request and committed step. */
  events: BatchEvents;
  /** Shapes each successful answer's stored data (the API's `transform`, else `output.select`, else none). */
  shape?: Transform;
}

/** Where one ID of a batch ended up in this attempt. */
export type IdOutcome =
  /** `validators`: what the answer carried (request.conditional), kept for the next run of the series. */
  | { kind: 'result'; line: ResultLine; validators?: ValidatorEntry }
  | { kind: 'failed'; line: FailedLine }
  | { kind: 'later'; state: RetryState }
  /** A paginated ID's last page is in: its lines are the pages (output.mode "page") or their merge ("id"). */
  | { kind: 'paged'; id: string; key: Readonly<Record<string, string>> | null; pages: number; truncated: boolean };
