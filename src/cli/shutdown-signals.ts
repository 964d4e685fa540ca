/** How long past worker.shutdownTimeoutMs a command may take to stop after the first signal before it exits regardless. */
export const LAST_RESORT_AFTER_MS = 9_000;

export interface LastResort {
  /** worker.shutdownTimeoutMs: the graceful path gets this plus LAST_RESORT_AFTER_MS. */
  shutdownTimeoutMs: number;
  /** The exit code a graceful stop would have given (read when the timer fires). */
  exitCode: () => number;
  /** Says, once, that the process stops without finishing its shutdown. */
  log: (msg: string) => void;
}

/**
 * First SIGTERM/SIGINT: run `graceful` (stop taking work, finish or hand back).
 * A second signal forces the process out at once; BullMQ hands its jobs to
 * another worker when their locks expire, so nothing is lost either way.
 *
 * With `lastResort`, the first signal also arms an unref'd timer: if the graceful path has not let the process
 * end within shutdownTimeoutMs + LAST_RESORT_AFTER_MS (something waits on a Redis that is gone: hung, it never
 * answers nor drops the connection), it logs one line and exits with the code a graceful stop would give. So
 * SIGTERM ends the process within worker.shutdownTimeoutMs + 10 s, Redis up or not.
 */
export function onShutdownSignals(graceful: (signal: NodeJS.Signals) => void, log: (msg: string) => void, lastResort?: LastResort): () => void {
  let received = false;
  const handler = (signal: NodeJS.Signals) => {
    if (received) {
      log(`${signal} again: forcing exit; unfinished batches return to the queue when their locks expire`);
      process.exit(130);
    }
    received = true;
    log(`${signal}: finishing in-flight requests and handing back the rest (send it again to force)`);
    if (lastResort) {
      const afterMs = lastResort.shutdownTimeoutMs + LAST_RESORT_AFTER_MS;
      setTimeout(() => {
        lastResort.log(`shutdown did not finish within ${afterMs} ms of ${signal} (Redis not answering?); exiting now: what was not committed returns to the queue when its lock expires`);
        process.exit(lastResort.exitCode());
      }, afterMs).unref();
    }
    graceful(signal);
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
  return () => {
    process.off('SIGTERM', handler);
    process.off('SIGINT', handler);
  };
}
