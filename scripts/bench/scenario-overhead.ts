import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Queue } from 'bullmq';
import type { BenchContext } from './bench-context.js';
import { fmt } from './format.js';
import type { PlainWorkerOptions } from './plain-worker.js';
import { quantile } from './quantile.js';
import type { ScenarioResult } from './scenario-result.js';
import { spawnChild, type ChildResult } from './spawn-child.js';
import { startApiProcess, type ApiStats } from './start-api-process.js';

const CONCURRENCY = 32;
type Key = 'got-loop' | 'bullmq' | 'pullq';
const NAMES: Record<Key, string> = {
  'got-loop': 'plain p-limit + got loop (no queue)',
  bullmq: 'plain BullMQ worker + got (one job per ID)',
  pullq: 'pullq pull, 1 in-process worker',
};

interface Measurement {
  key: Key;
  round: number;
  /** IDs per second between the first and the last request the API saw. */
  apiRate: number;
  /** IDs per second from the process's spawn to its exit (start-up and output included). */
  wallRate: number;
  wallMs: number;
  requests: number;
  code: number | null;
}

function apiRate(stats: ApiStats, n: number): number {
  let first = Infinity;
  let last = -Infinity;
  for (const t of stats.log.t) {
    if (t < first) first = t;
    if (t > last) last = t;
  }
  return last > first ? ((n - 1) * 1000) / (last - first) : Number.NaN;
}

/** Scenario 3: what pullq costs when nothing limits, against a plain loop and a plain BullMQ worker. */
export async function scenarioOverhead(ctx: BenchContext): Promise<ScenarioResult> {
  const started = Date.now();
  const n = ctx.quick ? 3000 : 20_000;
  const rounds = 3;
  const order: Key[] = ['got-loop', 'bullmq', 'pullq'];
  const measurements: Measurement[] = [];

  const measure = async (key: Key, round: number): Promise<Measurement> => {
    const api = await startApiProcess({ api: { auth: { type: 'none' } } });
    const tmp = ctx.tempDir(`s3-${key}`);
    const queue = ctx.newQueue(`s3-${key}`);
    const prefix = `r${round}-`;
    try {
      let result: ChildResult;
      if (key === 'got-loop') {
        const o = { url: `${api.url}/items/{id}`, n, concurrency: CONCURRENCY, output: path.join(tmp.dir, 'out.jsonl'), prefix };
        result = await spawnChild(process.execPath, [path.join(ctx.benchDist, 'plain-got-loop.js'), JSON.stringify(o)], { label: key, timeoutMs: 180_000 }).done;
      } else if (key === 'bullmq') {
        const q = new Queue(queue, { connection: ctx.redis });
        for (let i = 0; i < n; i += 1000) {
          await q.addBulk(Array.from({ length: Math.min(1000, n - i) }, (_, j) => ({ name: 'id', data: { id: `${prefix}${i + j}` }, opts: { removeOnComplete: true, removeOnFail: true } })));
        }
        await q.close();
        const o: PlainWorkerOptions = { redisUrl: ctx.redisUrl, queue, url: `${api.url}/items/{id}`, tokens: [], mode: 'none', concurrency: CONCURRENCY, exitAfter: n, output: path.join(tmp.dir, 'out.jsonl') };
        result = await spawnChild(process.execPath, [path.join(ctx.benchDist, 'plain-worker.js'), JSON.stringify(o)], { label: key, timeoutMs: 180_000 }).done;
      } else {
        const cfg = { redis: { url: ctx.redisUrl }, queue, request: { url: `${api.url}/items/{id}` }, worker: { concurrency: CONCURRENCY }, sink: { type: 'file', dir: './out' } };
        writeFileSync(path.join(tmp.dir, 'pullq.config.json'), JSON.stringify(cfg));
        writeFileSync(path.join(tmp.dir, 'ids.txt'), `${Array.from({ length: n }, (_, i) => `${prefix}${i}`).join('\n')}\n`);
        const env = { REDIS_URL: ctx.redisUrl, PULLQ_LOG_LEVEL: 'warn' };
        const enq = await spawnChild(process.execPath, [ctx.cli, 'enqueue', 'ids.txt', '--run', 'bench', '--config', 'pullq.config.json'], { label: 'enqueue', cwd: tmp.dir, env, timeoutMs: 120_000 }).done;
        if (enq.code !== 0) throw new Error(`pullq enqueue failed: ${enq.stderrTail.join(' | ')}`);
        result = await spawnChild(process.execPath, [ctx.cli, 'pull', 'ids.txt', '--run', 'bench', '--config', 'pullq.config.json'], { label: key, cwd: tmp.dir, env, timeoutMs: 180_000 }).done;
      }
      if (result.code !== 0) throw new Error(`${key} exited ${result.code ?? result.signal}: ${result.stderrTail.join(' | ')}`);
      const stats = await api.stats();
      return { key, round, apiRate: apiRate(stats, n), wallRate: (n * 1000) / result.wallMs, wallMs: result.wallMs, requests: stats.log.t.length, code: result.code };
    } finally {
      await api.close();
      await ctx.cleanQueue(queue);
      tmp.remove();
    }
  };

  for (let round = 0; round < rounds; round++) {
    // Rotate the order each round so no contender always runs first (or after the same one).
    for (let i = 0; i < order.length; i++) {
      const key = order[(i + round) % order.length]!;
      const m = await measure(key, round);
      ctx.log(`  round ${round + 1}, ${key}: ${fmt.num(m.apiRate)} IDs/s between first and last request, ${fmt.num(m.wallRate)} IDs/s spawn to exit`);
      measurements.push(m);
    }
  }

  const med = (key: Key, f: (m: Measurement) => number) => quantile(measurements.filter((m) => m.key === key).map(f), 0.5);
  const loop = med('got-loop', (m) => m.apiRate);
  const bull = med('bullmq', (m) => m.apiRate);
  const pullq = med('pullq', (m) => m.apiRate);
  const ratio = pullq / loop;
  const wallRatio = med('pullq', (m) => m.wallRate) / med('got-loop', (m) => m.wallRate);
  const perRound = Array.from({ length: rounds }, (_, r) => {
    const get = (k: Key) => measurements.find((m) => m.key === k && m.round === r)!;
    return get('pullq').apiRate / get('got-loop').apiRate;
  });
  const notes: string[] = [];
  if (ratio < 0.9) notes.push(`pullq reaches ${fmt.pct(ratio)} of the plain loop, ${fmt.points(0.9 - ratio)} short of the 90% target.`);
  const extra = measurements.filter((m) => m.requests !== n);
  if (extra.length) notes.push(`Request counts other than ${n}: ${extra.map((m) => `${m.key} round ${m.round + 1}: ${m.requests}`).join(', ')}.`);
  notes.push('IDs/s is measured at the API, from the first to the last request of the run (start-up, enqueue and writing the final output excluded); the spawn-to-exit figures include Node start-up, and for pullq the final commit and output files (its IDs were enqueued before, untimed).');

  return {
    id: 'overhead',
    title: `3. Overhead when nothing limits (${fmt.num(n)} IDs, concurrency ${CONCURRENCY})`,
    setup:
      `The example API in its own process, no auth, no latency, no budget. pullq: \`pullq enqueue\` (untimed) then \`pullq pull\` with its one in-process worker, worker.concurrency ${CONCURRENCY}, no credentials (auth none), default batch size. ` +
      `Plain loop: p-limit(${CONCURRENCY}) over got requests, each body parsed and written as a JSON line. Plain BullMQ: one job per ID (added beforehand, untimed), Worker concurrency ${CONCURRENCY}, same got call and output. ` +
      `Each contender is a fresh Node process against a fresh API process; ${rounds} rounds, order rotated each round; medians.`,
    targets: [
      { figure: 'IDs/s (median), share of the plain loop', measured: `${fmt.num(pullq)} IDs/s = ${fmt.pct(ratio)}`, comparison: `plain loop ${fmt.num(loop)} IDs/s; plain BullMQ ${fmt.num(bull)} IDs/s (${fmt.pct(bull / loop)})`, target: '≥ 90% of the plain loop', met: ratio >= 0.9 },
      { figure: 'spawn-to-exit IDs/s, share of the plain loop', measured: `${fmt.num(med('pullq', (m) => m.wallRate))} IDs/s = ${fmt.pct(wallRatio)}`, comparison: `plain loop ${fmt.num(med('got-loop', (m) => m.wallRate))}; plain BullMQ ${fmt.num(med('bullmq', (m) => m.wallRate))}`, target: '–', met: null },
    ],
    tables: [
      {
        caption: 'Every measurement (IDs/s at the API / spawn to exit)',
        columns: ['contender', ...Array.from({ length: rounds }, (_, r) => `round ${r + 1}`), 'median'],
        rows: (Object.keys(NAMES) as Key[]).map((k) => [
          NAMES[k],
          ...Array.from({ length: rounds }, (_, r) => {
            const m = measurements.find((x) => x.key === k && x.round === r)!;
            return `${fmt.num(m.apiRate)} / ${fmt.num(m.wallRate)}`;
          }),
          `${fmt.num(med(k, (m) => m.apiRate))} / ${fmt.num(med(k, (m) => m.wallRate))}`,
        ]),
      },
      { caption: 'pullq ÷ plain loop per round', columns: Array.from({ length: rounds }, (_, r) => `round ${r + 1}`), rows: [perRound.map((x) => fmt.pct(x))] },
    ],
    notes,
    raw: { n, concurrency: CONCURRENCY, rounds, measurements, medians: { gotLoop: loop, bullmq: bull, pullq }, ratio, wallRatio },
    durationMs: Date.now() - started,
  };
}
