import type { RedisClient } from '../redis/connect-redis.js';
import { queueKeys } from '../redis/keys.js';

/** Width of a throughput bucket. */
export const THROUGHPUT_BUCKET_MS = 10_000;
/** How long a bucket is kept: the dashboard's chart shows the last hour. */
export const THROUGHPUT_KEEP_MS = 3_600_000 + 60_000;
/** How often a process adds what it counted to Redis. */
export const THROUGHPUT_FLUSH_MS = 2_000;

/**
 * Counts answered requests per credential in 10 s buckets, in memory, and
 * adds them to Redis every THROUGHPUT_FLUSH_MS (one round trip per flush, off
 * the request path): the fleet's throughput chart over the last hour.
 */
export class ThroughputRecorder {
  private readonly keys: ReturnType<typeof queueKeys>;
  /** bucket → field → count */
  private pending = new Map<number, Map<string, number>>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();

  constructor(private readonly redis: RedisClient, queue: string) {
    this.keys = queueKeys(queue);
  }

  /** One answer on `credentialId`: rejected when the API refused it for its rate limit. */
  record(credentialId: string, rejected: boolean, now = Date.now()): void {
    const bucket = Math.floor(now / THROUGHPUT_BUCKET_MS);
    let fields = this.pending.get(bucket);
    if (!fields) this.pending.set(bucket, (fields = new Map()));
    const field = `${credentialId}:${rejected ? 'r' : 'a'}`;
    fields.set(field, (fields.get(field) ?? 0) + 1);
    this.timer ??= setTimeout(() => void this.flush(), THROUGHPUT_FLUSH_MS).unref();
  }

  /** Adds what was counted to Redis (a failure keeps the counts for the next flush). */
  flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.flushing = this.flushing.then(async () => {
      if (this.pending.size === 0) return;
      const batch = this.pending;
      this.pending = new Map();
      try {
        const multi = this.redis.multi();
        for (const [bucket, fields] of batch) {
          const key = this.keys.throughput(bucket);
          for (const [field, n] of fields) multi.hincrby(key, field, n);
          multi.pexpireat(key, bucket * THROUGHPUT_BUCKET_MS + THROUGHPUT_KEEP_MS);
        }
        await multi.exec();
      } catch {
        // Redis away: merge back and try with the next flush (a chart, not a ledger).
        for (const [bucket, fields] of batch) {
          const now = this.pending.get(bucket) ?? new Map<string, number>();
          for (const [f, n] of fields) now.set(f, (now.get(f) ?? 0) + n);
          this.pending.set(bucket, now);
        }
      }
    }).catch(() => undefined);
    return this.flushing;
  }

  /** Flushes what is left; call once when the process stops. */
  async close(): Promise<void> {
    await this.flush();
  }
}
