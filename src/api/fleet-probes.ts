import type { Queue } from 'bullmq';
import type { CredentialPool } from '../auth/credential-pool.js';
import type { Probes } from '../metrics/metrics-server.js';
import { PullqMetrics } from '../metrics/pullq-metrics.js';
import { redisAnswers } from '../redis/redis-answers.js';
import type { RedisClient } from '../redis/connect-redis.js';

/**
 * What a worker and the dashboard serve at /metrics and /readyz: a process's
 * metrics with the fleet's gauges read from Redis at each scrape (every
 * credential's state and budget, BullMQ's job counts), and readiness: not
 * draining, the pool there (a worker still starting has none yet), Redis answering.
 */
export function fleetProbes(ctx: { redis: RedisClient; queue: Queue }, pool: () => CredentialPool | undefined, draining: () => boolean): Probes & { metrics: PullqMetrics } {
  const metrics = new PullqMetrics().scrapeFrom({ credentials: async () => (await pool()?.health()) ?? [], queue: () => ctx.queue.exportPrometheusMetrics() });
  const ready: Probes['ready'] = async () => {
    if (draining()) return { ok: false, reason: 'draining (shutting down)' };
    if (!pool()) return { ok: false, reason: 'starting' };
    return (await redisAnswers(ctx.redis)) ? { ok: true } : { ok: false, reason: 'Redis does not answer' };
  };
  return { metrics, ready };
}
