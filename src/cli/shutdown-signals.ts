/**
 * First SIGTERM/SIGINT: run `graceful` (stop taking work, finish or hand back).
 * A second signal forces the process out at once; BullMQ hands its jobs to
 * another worker when their locks expire, so nothing is lost either way.
 */
export function onShutdownSignals(graceful: (signal: NodeJS.Signals) => void, log: (msg: string) => void): () => void {
  let received = false;
  const handler = (signal: NodeJS.Signals) => {
    if (received) {
      log(`${signal} again: forcing exit; unfinished batches return to the queue when their locks expire`);
      process.exit(130);
    }
    received = true;
    log(`${signal}: finishing in-flight requests and handing back the rest (send it again to force)`);
    graceful(signal);
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
  return () => {
    process.off('SIGTERM', handler);
    process.off('SIGINT', handler);
  };
}
