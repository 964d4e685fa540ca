import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { BenchContext } from './bench-context.js';
import { FLEET } from './fleet-setup.js';
import { fmt } from './format.js';
import { quantile } from './quantile.js';
import { runFigures } from './run-figures.js';
import { runFleet } from './run-fleet.js';
import type { ScenarioResult } from './scenario-result.js';
import { spawnChild } from './spawn-child.js';
import { startApiProcess, type ApiStats } from './start-api-process.js';
import { freePort } from '../local-redis.js';
import { RunStore } from '../../src/runs/run-store.js';

const SCRAPE_MS = 1000;
const CONCURRENCY = 32;

function apiRate(stats: ApiStats): number {
  const t = stats.log.t;
  let first = Infinity;
  let last = -Infinity;
  for (const x of t) {
    first = Math.min(first, x);
    last = Math.max(last, x);
  }
  return last > first ? ((t.length - 1) * 1000) / (last - first) : Number.NaN;
}

/** One `pullq worker` (metrics on or off) through n IDs with nothing limiting: IDs/s at the API. */
async function workerRate(ctx: BenchContext, n: number, metrics: boolean, round: number): Promise<{ rate: number; scrapes: number }> {
  const api = await startApiProcess({ api: { auth: { type: 'none' } } });
  const tmp = ctx.tempDir('s10-overhead');
  const queue = ctx.newQueue('s10-overhead');
  try {
    writeFileSync(path.join(tmp.dir, 'pullq.config.json'), JSON.stringify({ redis: { url: ctx.redisUrl }, queue, request: { url: `${api.url}/items/{id}` }, worker: { concurrency: CONCURRENCY }, sink: { type: 'file', dir: './out' } }));
    writeFileSync(path.join(tmp.dir, 'ids.txt'), `${Array.from({ length: n }, (_, i) => `m${round}-${i}`).join('\n')}\n`);
    const env = { REDIS_URL: ctx.redisUrl, PULLQ_LOG_LEVEL: 'warn' };
    const enq = await spawnChild(process.execPath, [ctx.cli, 'enqueue', 'ids.txt', '--run', 'bench', '--config', 'pullq.config.json'], { label: 'enqueue', cwd: tmp.dir, env, timeoutMs: 120_000 }).done;
    if (enq.code !== 0) throw new Error(`pullq enqueue failed: ${enq.stderrTail.join(' | ')}`);
    const port = metrics ? await freePort() : undefined;
    const worker = spawnChild(process.execPath, [ctx.cli, 'worker', '--config', 'pullq.config.json', ...(port ? ['--metrics-port', String(port)] : [])], { label: 'worker', cwd: tmp.dir, env, timeoutMs: 180_000 });
    let scrapes = 0;
    const scraper = port
      ? setInterval(() => void fetch(`http://127.0.0.1:${port}/metrics`).then(async (r) => { await r.text(); if (r.ok) scrapes++; }, () => undefined), SCRAPE_MS)
      : undefined;
    try {
      for (;;) {
        const s = await new RunStore(ctx.redis, queue).status('bench');
        if (s?.complete) break;
        await sleep(250);
      }
    } finally {
      clearInterval(scraper);
      await worker.stop(5000);
    }
    const stats = await api.stats();
    return { rate: apiRate(stats), scrapes };
  } finally {
    await api.close();
    await ctx.cleanQueue(queue);
    tmp.remove();
  }
}

/** Scenario 10: what /metrics costs (issue #11): fleet utilization and single-worker throughput, metrics off and on. */
export async function scenarioMetricsCost(ctx: BenchContext): Promise<ScenarioResult> {
  const started = Date.now();
  const rounds = ctx.quick ? 1 : 3;
  const runMs = ctx.quick ? 4000 : 20_000;
  const warmMs = ctx.quick ? 800 : 2000;
  const n = ctx.quick ? 3000 : 20_000;

  const fleet: { metrics: boolean; round: number; utilization: number; rejected: number; scrapes: number }[] = [];
  const overhead: { metrics: boolean; round: number; rate: number; scrapes: number }[] = [];
  for (let round = 0; round < rounds; round++) {
    // Alternate which goes first each round.
    for (const metrics of round % 2 === 0 ? [false, true] : [true, false]) {
      const run = await runFleet(ctx, {
        label: `s10-fleet-${metrics ? 'on' : 'off'}`,
        api: FLEET.api(),
        contender: { kind: 'pullq', config: (url) => FLEET.pullqConfig(url, true), metrics: metrics ? { scrapeEveryMs: SCRAPE_MS } : undefined },
        ids: Math.ceil((FLEET.sum * runMs) / 1000 * 1.5) + 500,
        phases: [{ replicas: FLEET.replicas, ms: runMs }],
      });
      const f = runFigures(run, warmMs, FLEET.sum);
      fleet.push({ metrics, round, utilization: f.utilization, rejected: f.totalRejected, scrapes: run.scrapes ?? 0 });
      ctx.log(`  round ${round + 1}, fleet, metrics ${metrics ? 'on' : 'off'}: utilization ${fmt.pct(f.utilization)}, ${f.totalRejected} rejected${metrics ? `, ${run.scrapes} scrapes` : ''}`);
    }
    for (const metrics of round % 2 === 0 ? [true, false] : [false, true]) {
      const m = await workerRate(ctx, n, metrics, round);
      overhead.push({ metrics, round, ...m });
      ctx.log(`  round ${round + 1}, one worker, metrics ${metrics ? 'on' : 'off'}: ${fmt.num(m.rate)} IDs/s${metrics ? `, ${m.scrapes} scrapes` : ''}`);
    }
  }
  const med = <T extends { metrics: boolean }>(xs: T[], on: boolean, f: (x: T) => number) => quantile(xs.filter((x) => x.metrics === on).map(f), 0.5);
  const utilOff = med(fleet, false, (x) => x.utilization);
  const utilOn = med(fleet, true, (x) => x.utilization);
  const rateOff = med(overhead, false, (x) => x.rate);
  const rateOn = med(overhead, true, (x) => x.rate);
  const utilDiff = utilOn - utilOff;
  const rateDiff = rateOn / rateOff - 1;
  const notes: string[] = [];
  if (Math.abs(utilDiff) > 0.02) notes.push(`Fleet utilization with metrics differs by ${fmt.points(Math.abs(utilDiff))} (target ≤ 2 points).`);
  if (rateDiff < -0.02) notes.push(`One worker with metrics is ${fmt.pct(-rateDiff)} slower (target ≤ 2%).`);
  notes.push(`Metrics on: every worker serves /metrics and is scraped every ${fmt.s(SCRAPE_MS)} (Prometheus' default is 15 s: this is 15 times harsher); each scrape also reads every credential's state and BullMQ's job counts from Redis. The 10 s throughput buckets are written in both cases (they are not optional).`);
  return {
    id: 'metrics-cost',
    title: '10. What metrics cost (issue #11)',
    setup:
      `Fleet: scenario 1's setup (4 worker processes, 4 tokens at 80/60/40/20 req/s, budgets configured), ${fmt.s(runMs)} runs, utilization after ${fmt.s(warmMs)} of warm-up. ` +
      `One worker: \`pullq worker\` (concurrency ${CONCURRENCY}, auth none, no latency, no budget) through ${fmt.num(n)} enqueued IDs; IDs/s at the API from the first to the last request. ` +
      `${rounds} round(s), metrics off and on alternating first; medians.`,
    targets: [
      { figure: 'fleet utilization, metrics on vs off', measured: `${fmt.pct(utilOn)} vs ${fmt.pct(utilOff)}`, comparison: `difference ${utilDiff >= 0 ? '+' : '−'}${fmt.points(Math.abs(utilDiff))}`, target: 'within 2 points', met: Math.abs(utilDiff) <= 0.02 },
      { figure: 'one worker IDs/s, metrics on vs off', measured: `${fmt.num(rateOn)} vs ${fmt.num(rateOff)} IDs/s`, comparison: `${rateDiff >= 0 ? '+' : '−'}${fmt.pct(Math.abs(rateDiff))}`, target: 'within 2%', met: rateDiff >= -0.02 },
    ],
    tables: [
      {
        caption: 'Every measurement',
        columns: ['measurement', ...Array.from({ length: rounds }, (_, r) => `round ${r + 1}`), 'median'],
        rows: [
          ['fleet utilization, metrics off', ...Array.from({ length: rounds }, (_, r) => fmt.pct(fleet.find((x) => !x.metrics && x.round === r)!.utilization)), fmt.pct(utilOff)],
          ['fleet utilization, metrics on', ...Array.from({ length: rounds }, (_, r) => fmt.pct(fleet.find((x) => x.metrics && x.round === r)!.utilization)), fmt.pct(utilOn)],
          ['one worker IDs/s, metrics off', ...Array.from({ length: rounds }, (_, r) => fmt.num(overhead.find((x) => !x.metrics && x.round === r)!.rate)), fmt.num(rateOff)],
          ['one worker IDs/s, metrics on', ...Array.from({ length: rounds }, (_, r) => fmt.num(overhead.find((x) => x.metrics && x.round === r)!.rate)), fmt.num(rateOn)],
        ],
      },
    ],
    notes,
    raw: { rounds, runMs, n, fleet, overhead, utilOff, utilOn, rateOff, rateOn },
    durationMs: Date.now() - started,
  };
}
