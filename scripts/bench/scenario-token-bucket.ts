import type { BenchContext } from './bench-context.js';
import { windowFigures } from './fleet-figures.js';
import { fmt } from './format.js';
import { runFleet } from './run-fleet.js';
import type { ScenarioResult } from './scenario-result.js';

const TOKENS = ['tb-a', 'tb-b'];
const REFILL = 40;
const CAPACITY = 15;
const REPLICAS = 2;
const WARM_MS = 2000;

interface Run {
  key: string;
  name: string;
  utilization: number;
  requests: number;
  rejected: number;
  share: number;
  peak100ms: number;
}

/** Scenario 8: an API that punishes bursts (a token bucket per token); pullq paces its starts. */
export async function scenarioTokenBucket(ctx: BenchContext): Promise<ScenarioResult> {
  const started = Date.now();
  const runMs = ctx.quick ? 7000 : 20_000;
  const budgetPerSec = REFILL * TOKENS.length;
  const variants = [
    { key: 'paced', name: `pullq, budget ${REFILL}/s, default burst (250 ms worth: ${Math.floor(250 / (1000 / REFILL))})`, burst: undefined as number | undefined },
    { key: 'unpaced', name: `pullq, budget ${REFILL}/s, burst = ${REFILL} (a whole window back to back, as before pacing)`, burst: REFILL },
  ];
  const runs: Run[] = [];
  for (const v of variants) {
    ctx.log(`  ${v.key}: ${fmt.s(runMs)}`);
    const run = await runFleet(ctx, {
      label: `s8-${v.key}`,
      api: { api: { auth: { type: 'header', tokens: TOKENS }, tokenBuckets: { '*': { capacity: CAPACITY, refillPerSecond: REFILL } }, latencyMs: 5 } },
      contender: { kind: 'pullq', config: (url) => ({ request: { url: `${url}/items/{id}` }, auth: { type: 'header', tokens: TOKENS.map((t) => ({ token: t, name: t, budget: { requests: REFILL, perSeconds: 1, ...(v.burst ? { burst: v.burst } : {}) } })) } }) },
      ids: Math.ceil((budgetPerSec * runMs) / 1000 * 1.3) + 200,
      phases: [{ replicas: REPLICAS, ms: runMs }],
    });
    const end = run.phases[run.phases.length - 1]!.end;
    const w = windowFigures(run.stats, run.firstRequestAt + WARM_MS, end, budgetPerSec, false);
    const requests = run.stats.log.t.length;
    const rejected = run.stats.log.status.filter((s) => s === 429).length;
    const r = { key: v.key, name: v.name, utilization: w.utilization, requests, rejected, share: rejected / Math.max(1, requests), peak100ms: w.peak100ms };
    ctx.log(`    utilization ${fmt.pct(r.utilization)} of the refill rate, ${r.rejected} 429s of ${r.requests}`);
    runs.push(r);
  }
  const paced = runs.find((r) => r.key === 'paced')!;
  const unpaced = runs.find((r) => r.key === 'unpaced')!;
  const notes: string[] = [];
  if (paced.share > 0.01) notes.push(`Paced: ${fmt.pct(paced.share, 2)} of requests answered 429, over the 1% target.`);
  if (paced.utilization < 0.95) notes.push(`Paced: ${fmt.pct(paced.utilization)} of the refill rate used, ${fmt.points(0.95 - paced.utilization)} under the 95% target.`);
  return {
    id: 'token-bucket',
    title: `8. An API that punishes bursts: token bucket per token (capacity ${CAPACITY}, refill ${REFILL}/s, ${TOKENS.length} tokens)`,
    setup:
      `The example API with a token bucket per token (\`tokenBuckets\`): ${CAPACITY} requests back to back at most, refilled at ${REFILL}/s; an empty bucket answers 429 with Retry-After. ` +
      `pullq's config gives each token its documented rate (${REFILL} per second), as a user would. ${REPLICAS} \`pullq worker\` processes, ${fmt.s(runMs)} runs; utilization of the refill rate from the first request + ${fmt.s(WARM_MS)} to the stop.`,
    targets: [
      { figure: '429 share, paced', measured: `${fmt.pct(paced.share, 2)} (${paced.rejected} of ${paced.requests})`, comparison: `burst = ${REFILL}: ${fmt.pct(unpaced.share, 2)} (${unpaced.rejected} of ${unpaced.requests})`, target: '≤ 1%', met: paced.share <= 0.01 },
      { figure: 'refill rate used, paced', measured: fmt.pct(paced.utilization), comparison: `burst = ${REFILL}: ${fmt.pct(unpaced.utilization)}`, target: '≥ 95%', met: paced.utilization >= 0.95 },
    ],
    tables: [
      {
        caption: 'Runs',
        columns: ['approach', 'refill rate used', '429s', 'requests', '429 share', 'peak accepted in 100 ms (both tokens)'],
        rows: runs.map((r) => [r.name, fmt.pct(r.utilization), String(r.rejected), String(r.requests), fmt.pct(r.share, 2), String(r.peak100ms)]),
      },
    ],
    notes,
    raw: { tokens: TOKENS.length, refill: REFILL, capacity: CAPACITY, replicas: REPLICAS, runMs, runs },
    durationMs: Date.now() - started,
  };
}
