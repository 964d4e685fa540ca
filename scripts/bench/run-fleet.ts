import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue } from 'bullmq';
import type { BenchContext } from './bench-context.js';
import type { PlainWorkerOptions } from './plain-worker.js';
import { spawnChild, type Child, type ChildResult } from './spawn-child.js';
import { startApiProcess, type ApiProcessOptions, type ApiStats } from './start-api-process.js';
import { queueKeys } from '../../src/redis/keys.js';
import { freePort } from '../local-redis.js';

/** Who does the work: pullq worker processes, or plain BullMQ workers (one job per ID). */
export type Contender =
  | {
      kind: 'pullq';
      config: (apiUrl: string) => Record<string, unknown>;
      /** Each worker serves /metrics (--metrics-port) and is scraped every `scrapeEveryMs` during the run. */
      metrics?: { scrapeEveryMs: number };
    }
  | { kind: 'plain'; options: (apiUrl: string) => Omit<PlainWorkerOptions, 'redisUrl' | 'queue' | 'output'> };

export interface FleetPlan {
  label: string;
  api: ApiProcessOptions;
  contender: Contender;
  /** IDs enqueued before the workers start (more than the run can do: runs are fixed-time). */
  ids: number;
  /** Replica counts in turn; workers are started or stopped (SIGTERM, newest first) at each boundary. */
  phases: { replicas: number; ms: number }[];
}

export interface FleetRun {
  stats: ApiStats;
  /** First item request the API saw (epoch ms). */
  firstRequestAt: number;
  phases: { replicas: number; start: number; end: number }[];
  workers: { label: string; code: number | null; signal: string | null; stderrLines: number; stderrTail: string[] }[];
  /** pullq only: rests the fleet's credentials began (the API told one to wait), from Redis. */
  pullqRests?: number;
  prepareMs: number;
  /** pullq only: requests the fleet counted in Redis (starts sent); more than the API saw = requests lost on the way. */
  pullqTakes?: number;
  /** pullq with metrics: /metrics scrapes answered 200. */
  scrapes?: number;
}

/** A counter summed over the queue's credential hashes (requests sent, rests begun). */
async function credentialCounter(ctx: BenchContext, queue: string, field: 'requests' | 'rests'): Promise<number> {
  let total = 0;
  let cursor = '0';
  do {
    const [next, keys] = await ctx.redis.scan(cursor, 'MATCH', `${queueKeys(queue).credPrefix}*`, 'COUNT', 1000);
    cursor = next;
    for (const k of keys) if ((await ctx.redis.type(k)) === 'hash') total += Number((await ctx.redis.hget(k, field)) ?? 0);
  } while (cursor !== '0');
  return total;
}

/**
 * One fixed-time fleet run against a fresh API process: enqueue, start the
 * replicas, change their number at each phase boundary, stop them all, and
 * collect what the API saw. Deletes the queue's keys and files afterwards.
 */
export async function runFleet(ctx: BenchContext, plan: FleetPlan): Promise<FleetRun> {
  const api = await startApiProcess(plan.api);
  const queue = ctx.newQueue(plan.label);
  const tmp = ctx.tempDir(plan.label);
  const running: Child[] = [];
  const stopping: Promise<ChildResult & { label: string }>[] = [];
  const metricsPorts: number[] = [];
  const portOf = new Map<Child, number>();
  let scraper: NodeJS.Timeout | undefined;
  let scrapes = 0;
  try {
    const prepStart = Date.now();
    const ids = Array.from({ length: plan.ids }, (_, i) => `${plan.label}-${i}`);
    let spawnWorker: (n: number) => Child;
    if (plan.contender.kind === 'pullq') {
      const cfg = { redis: { url: ctx.redisUrl }, queue, sink: { type: 'file', dir: './out' }, ...plan.contender.config(api.url) };
      writeFileSync(path.join(tmp.dir, 'pullq.config.json'), JSON.stringify(cfg, null, 2));
      writeFileSync(path.join(tmp.dir, 'ids.txt'), `${ids.join('\n')}\n`);
      const env = { REDIS_URL: ctx.redisUrl, PULLQ_LOG_LEVEL: 'warn' };
      const enq = await spawnChild(process.execPath, [ctx.cli, 'enqueue', 'ids.txt', '--run', 'bench', '--config', 'pullq.config.json'], { label: 'enqueue', cwd: tmp.dir, env, timeoutMs: 120_000 }).done;
      if (enq.code !== 0) throw new Error(`pullq enqueue failed (${enq.code}): ${enq.stderrTail.join(' | ')}`);
      const metrics = plan.contender.metrics;
      if (metrics) {
        const most = Math.max(...plan.phases.map((p) => p.replicas)) + plan.phases.length;
        for (let i = 0; i < most; i++) metricsPorts.push(await freePort());
        scraper = setInterval(() => {
          for (const w of running) {
            const port = portOf.get(w);
            if (port !== undefined) void fetch(`http://127.0.0.1:${port}/metrics`).then(async (r) => { await r.text(); if (r.ok) scrapes++; }, () => undefined);
          }
        }, metrics.scrapeEveryMs);
      }
      spawnWorker = (n) => {
        const port = metricsPorts[n];
        const child = spawnChild(process.execPath, [ctx.cli, 'worker', '--config', 'pullq.config.json', ...(port !== undefined ? ['--metrics-port', String(port)] : [])], { label: `pullq-worker-${n}`, cwd: tmp.dir, env });
        if (port !== undefined) portOf.set(child, port);
        return child;
      };
    } else {
      const q = new Queue(queue, { connection: ctx.redis });
      for (let i = 0; i < ids.length; i += 1000) {
        await q.addBulk(ids.slice(i, i + 1000).map((id) => ({ name: 'id', data: { id }, opts: { removeOnComplete: true, removeOnFail: true } })));
      }
      await q.close();
      const base = plan.contender.options(api.url);
      spawnWorker = (n) => {
        const o: PlainWorkerOptions = { ...base, redisUrl: ctx.redisUrl, queue, output: path.join(tmp.dir, `out-${n}.jsonl`) };
        return spawnChild(process.execPath, [path.join(ctx.benchDist, 'plain-worker.js'), JSON.stringify(o)], { label: `plain-worker-${n}`, env: {} });
      };
    }
    const prepareMs = Date.now() - prepStart;

    const phases: FleetRun['phases'] = [];
    let spawned = 0;
    for (const phase of plan.phases) {
      const start = Date.now();
      while (running.length < phase.replicas) running.push(spawnWorker(spawned++));
      while (running.length > phase.replicas) {
        const w = running.pop()!;
        stopping.push(w.stop(10_000).then((r) => ({ ...r, label: w.label })));
      }
      await sleep(Math.max(0, start + phase.ms - Date.now()));
      phases.push({ replicas: phase.replicas, start, end: Date.now() });
    }
    clearInterval(scraper);
    for (const w of running.splice(0)) stopping.push(w.stop(5000).then((r) => ({ ...r, label: w.label })));
    const results = await Promise.all(stopping);
    const stats = await api.stats();
    const firstRequestAt = stats.log.t.reduce((m, t) => Math.min(m, t), Infinity);
    return {
      stats,
      pullqTakes: plan.contender.kind === 'pullq' ? await credentialCounter(ctx, queue, 'requests') : undefined,
      pullqRests: plan.contender.kind === 'pullq' ? await credentialCounter(ctx, queue, 'rests') : undefined,
      scrapes: plan.contender.kind === 'pullq' && plan.contender.metrics ? scrapes : undefined,
      firstRequestAt,
      phases,
      prepareMs,
      workers: results.map((r) => ({ label: r.label, code: r.code, signal: r.signal, stderrLines: r.stderrLines, stderrTail: r.stderrTail.slice(-5) })),
    };
  } finally {
    clearInterval(scraper);
    for (const w of running) w.child.kill('SIGKILL');
    await api.close();
    await ctx.cleanQueue(queue);
    tmp.remove();
  }
}
