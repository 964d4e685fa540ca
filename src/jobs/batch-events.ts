import type { Credential } from '../auth/credential.js';

/** What a worker's batches tell the process as they go (metrics, the throughput chart). Cheap and synchronous. */
export interface BatchEvents {
  /** One request sent with `credential` came back (or failed without an answer: status null). */
  request(e: { credential: Credential; status: number | null; errorCode?: string; seconds: number; rejected: boolean }): void;
  /** One step of a batch committed (its outcomes now count). */
  committed(e: { run: string; succeeded: number; failed: number; errors: ReadonlyMap<string, number>; seconds: number }): void;
}

/** Events nobody listens to. */
export const NO_EVENTS: BatchEvents = { request: () => undefined, committed: () => undefined };
