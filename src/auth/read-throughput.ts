import type { RedisClient } from '../redis/connect-redis.js';
import { queueKeys } from '../redis/keys.js';
import { THROUGHPUT_BUCKET_MS } from './throughput-recorder.js';

/** One 10 s bucket of the chart: per credential id, answers accepted and rejected. */
export interface ThroughputPoint {
  /** Start of the bucket, epoch ms. */
  at: number;
  byCredential: Record<string, { accepted: number; rejected: number }>;
}

/** The last `spanMs` of throughput buckets (oldest first; empty buckets included), read in one round trip. */
export async function readThroughput(redis: RedisClient, queue: string, spanMs = 3_600_000, now = Date.now()): Promise<ThroughputPoint[]> {
  const keys = queueKeys(queue);
  const last = Math.floor(now / THROUGHPUT_BUCKET_MS);
  const first = last - Math.ceil(spanMs / THROUGHPUT_BUCKET_MS) + 1;
  const multi = redis.multi();
  for (let b = first; b <= last; b++) multi.hgetall(keys.throughput(b));
  const replies = (await multi.exec()) ?? [];
  return replies.map(([, value], i) => {
    const byCredential: ThroughputPoint['byCredential'] = {};
    for (const [field, n] of Object.entries((value ?? {}) as Record<string, string>)) {
      const cut = field.lastIndexOf(':');
      const id = field.slice(0, cut);
      const entry = (byCredential[id] ??= { accepted: 0, rejected: 0 });
      if (field.slice(cut + 1) === 'r') entry.rejected += Number(n);
      else entry.accepted += Number(n);
    }
    return { at: (first + i) * THROUGHPUT_BUCKET_MS, byCredential };
  });
}
