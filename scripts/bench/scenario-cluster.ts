import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Cluster, Redis } from 'ioredis';
import { CredentialPool } from '../../src/auth/credential-pool.js';
import { parseConfig } from '../../src/config.js';
import { createHttpClient } from '../../src/jobs/http-client.js';
import { createLogger } from '../../src/logger.js';
import { connectRedis, type RedisClient } from '../../src/redis/connect-redis.js';
import { queuePatterns } from '../../src/redis/keys.js';
import { deleteClusterKeys, startLocalCluster } from '../local-redis-cluster.js';
import type { BenchContext } from './bench-context.js';
import { writeIds } from './write-ids.js';
import { FLEET } from './fleet-setup.js';
import { fmt } from './format.js';
import { quantile } from './quantile.js';
import { runFigures } from './run-figures.js';
import { runFleet } from './run-fleet.js';
import type { ScenarioResult } from './scenario-result.js';
import { spawnChild } from './spawn-child.js';
import { startThrowawayRedis } from './throwaway-redis.js';

interface Side {
  key: 'single' | 'cluster';
  name: string;
  enqueueIdsPerSec: number;
  bytesPerId: number;
  takeP50Us: number;
  takeP99Us: number;
  fleetUtilization: number;
  fleet429: number;
}

const usedMemory = (info: string) => Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0);

async function memoryOf(url: string, cluster: boolean): Promise<number> {
  if (!cluster) {
    const r = new Redis(url);
    const m = usedMemory(await r.info('memory'));
    r.disconnect();
    return m;
  }
  const c = (await connectRedis(url, { longLived: false })) as Cluster;
  let sum = 0;
  for (const node of c.nodes('master')) sum += usedMemory(await node.info('memory'));
  c.disconnect();
  return sum;
}

/** p50/p99 of one credential take (takeCredential-n.lua through the pool), 4 credentials, µs. */
async function takeLatency(redis: RedisClient, queue: string, n: number): Promise<{ p50: number; p99: number }> {
  const config = parseConfig({ queue, request: { url: 'http://127.0.0.1:9/{id}' }, auth: { type: 'header', tokens: ['lat-1', 'lat-2', 'lat-3', 'lat-4'] }, budget: { requests: 1_000_000, perSeconds: 1, burst: 1_000_000 } }, { file: null, env: { vars: {} } });
  const pool = await CredentialPool.open({ redis, config, logger: createLogger('silent'), http: createHttpClient(config) });
  const none = new Set<string>();
  for (let i = 0; i < 200; i++) await pool.acquire(none, 1000);
  const us: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = process.hrtime.bigint();
    await pool.acquire(none, 1000);
    us.push(Number(process.hrtime.bigint() - t) / 1000);
  }
  return { p50: quantile(us, 0.5), p99: quantile(us, 0.99) };
}

/** Scenario 9: one Redis against a 3-master Redis Cluster on the same machine. */
export async function scenarioCluster(ctx: BenchContext): Promise<ScenarioResult> {
  const started = Date.now();
  const n = ctx.quick ? 100_000 : 1_000_000;
  const takes = ctx.quick ? 2000 : 10_000;
  // Quick: 10 s, not less. Six worker processes take up to 4 s to start on a 2-core machine, and utilization is counted
  // from the first request + 2 s: a 6 s phase left a window of 0–2 s (0% or over 100%, on either Redis and before this change alike).
  const fleetMs = ctx.quick ? 10_000 : 15_000;
  const cluster = await startLocalCluster(3);
  if (!cluster) throw new Error('needs redis-server and redis-cli');
  const single = await startThrowawayRedis();
  const sides: Side[] = [];
  try {
    for (const side of [
      { key: 'single' as const, name: 'one Redis', url: single.url, isCluster: false },
      { key: 'cluster' as const, name: 'Redis Cluster, 3 masters', url: cluster.url, isCluster: true },
    ]) {
      ctx.log(`  ${side.name}: enqueue ${fmt.num(n)} IDs, ${fmt.num(takes)} takes, a fleet of 6 worker processes`);
      const tmp = ctx.tempDir('s9');
      const queue = ctx.newQueue(`s9-${side.key}`);
      try {
        await writeIds(path.join(tmp.dir, 'ids.txt'), n);
        writeFileSync(path.join(tmp.dir, 'pullq.config.json'), JSON.stringify({ queue, request: { url: 'http://127.0.0.1:9/items/{id}' }, sink: { type: 'file', dir: './out' } }));
        const before = await memoryOf(side.url, side.isCluster);
        const t0 = Date.now();
        const enq = await spawnChild(process.execPath, [ctx.cli, 'enqueue', 'ids.txt', '--run', 'scale', '--config', 'pullq.config.json'], { label: 'enqueue', cwd: tmp.dir, env: { REDIS_URL: side.url, PULLQ_LOG_LEVEL: 'warn' }, timeoutMs: 600_000 }).done;
        if (enq.code !== 0) throw new Error(`enqueue failed on ${side.name}: ${enq.stderrTail.join(' | ')}`);
        const wallMs = Date.now() - t0;
        const after = await memoryOf(side.url, side.isCluster);
        const redis = await connectRedis(side.url, { longLived: false });
        const lat = await takeLatency(redis, `${queue}-lat`, takes);
        redis.disconnect();
        // The fleet of scenario 1 (4 tokens, 80/60/40/20 req/s), 6 worker processes, on this Redis.
        const fleetCtx: BenchContext = { ...ctx, redisUrl: side.url };
        const run = await runFleet(fleetCtx, { label: `s9-${side.key}`, api: FLEET.api({}), contender: { kind: 'pullq', config: (url) => FLEET.pullqConfig(url, true) }, ids: Math.ceil((FLEET.sum * fleetMs) / 1000 * 1.5) + 500, phases: [{ replicas: 6, ms: fleetMs }] });
        const f = runFigures(run, 2000, FLEET.sum);
        const s: Side = { key: side.key, name: side.name, enqueueIdsPerSec: n / (wallMs / 1000), bytesPerId: (after - before) / n, takeP50Us: lat.p50, takeP99Us: lat.p99, fleetUtilization: f.utilization, fleet429: f.totalRejected };
        ctx.log(`    ${fmt.num(s.enqueueIdsPerSec)} IDs/s, ${fmt.num(s.bytesPerId, 1)} bytes per pending ID, take p50 ${fmt.num(s.takeP50Us)} µs / p99 ${fmt.num(s.takeP99Us)} µs, fleet ${fmt.pct(s.fleetUtilization)} with ${s.fleet429} 429s`);
        sides.push(s);
      } finally {
        tmp.remove();
        if (side.isCluster) {
          const c = cluster.client();
          await deleteClusterKeys(c, [...queuePatterns(queue), ...queuePatterns(`${queue}-lat`), 'bench-s9-*', '*{bench-s9-*']);
          c.disconnect();
        }
      }
    }
  } finally {
    await single.stop();
    await cluster.stop();
  }
  const [one, many] = sides as [Side, Side];
  return {
    id: 'cluster',
    title: `9. One Redis and a 3-master Redis Cluster (${fmt.num(n)} IDs)`,
    setup:
      `Both on this machine: a fresh redis-server, and 3 redis-server processes joined by \`redis-cli --cluster create\` (no replicas). Enqueue: \`pullq enqueue\` of ${fmt.num(n)} IDs; memory: used_memory after minus before, summed over the masters. ` +
      `Take: ${fmt.num(takes)} credential takes in a row through the pool (4 credentials with budgets), one client. Fleet: scenario 1's API and tokens, 6 \`pullq worker\` processes for ${fmt.s(fleetMs)}.`,
    targets: [
      { figure: 'enqueue rate, cluster', measured: `${fmt.num(many.enqueueIdsPerSec)} IDs/s`, comparison: `one Redis: ${fmt.num(one.enqueueIdsPerSec)} IDs/s`, target: 'reported', met: null },
      { figure: 'Redis per pending ID, cluster (summed over masters)', measured: `${fmt.num(many.bytesPerId, 1)} bytes`, comparison: `one Redis: ${fmt.num(one.bytesPerId, 1)} bytes`, target: 'reported', met: null },
      { figure: 'credential take p50 / p99, cluster', measured: `${fmt.num(many.takeP50Us)} / ${fmt.num(many.takeP99Us)} µs`, comparison: `one Redis: ${fmt.num(one.takeP50Us)} / ${fmt.num(one.takeP99Us)} µs`, target: 'reported', met: null },
      { figure: 'fleet of 6 worker processes, cluster: utilization, 429s', measured: `${fmt.pct(many.fleetUtilization)}, ${many.fleet429}`, comparison: `one Redis: ${fmt.pct(one.fleetUtilization)}, ${one.fleet429}`, target: '0 429s', met: many.fleet429 === 0 },
    ],
    tables: [
      {
        caption: 'Side by side',
        columns: ['Redis', 'enqueue IDs/s', 'bytes per pending ID', 'take p50 (µs)', 'take p99 (µs)', 'fleet utilization', 'fleet 429s'],
        rows: sides.map((s) => [s.name, fmt.num(s.enqueueIdsPerSec), fmt.num(s.bytesPerId, 1), fmt.num(s.takeP50Us), fmt.num(s.takeP99Us), fmt.pct(s.fleetUtilization), String(s.fleet429)]),
      },
    ],
    notes: ['One queue lives in one hash slot, so on the cluster one master serves all of this run: the cluster adds capacity for more queues, not for one run; its figures here show the cost of the cluster client (redirections, per-node connections).'],
    raw: { n, takes, fleetMs, sides },
    durationMs: Date.now() - started,
  };
}
