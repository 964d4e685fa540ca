import type { Worker } from 'bullmq';

/** What closeBullWorker reaches for inside a BullMQ 6.7 Worker (private there: looked up, never assumed). */
interface BlockingInternals {
  backend?: { blockingConnection?: { disableBlockingClusterReconnect?: () => void } };
}

/**
 * Closes a BullMQ Worker, on a Redis Cluster too.
 *
 * BullMQ 6.7's Worker.close() ends its blocking BZPOPMIN by disconnecting the blocking connection and waits
 * for that connection's 'end'. On an ioredis Cluster the BZPOPMIN then fails with no nodes left, and BullMQ's
 * cluster recovery (RedisConnection.runWithClusterRecovery) reconnects the client before 'end' comes: close()
 * never resolves, and close(true) returns the same promise. Here a worker closed mid-batch hung in most runs
 * of a dozen closes (test/worker-close.test.ts, cluster project). BullMQ turns that recovery off itself
 * (disableBlockingClusterReconnect), but only later in close(), when it closes the connection; turning it off
 * first is the fix. Feature-detected: a BullMQ without the method has nothing to turn off.
 */
export async function closeBullWorker(worker: Worker, force = false): Promise<void> {
  (worker as unknown as BlockingInternals).backend?.blockingConnection?.disableBlockingClusterReconnect?.();
  await worker.close(force);
}
