import type { BenchContext } from './bench-context.js';
import { fmt } from './format.js';
import { quantile } from './quantile.js';
import { runFleet, type Contender } from './run-fleet.js';
import type { ScenarioResult } from './scenario-result.js';
import type { ApiStats } from './start-api-process.js';

const TOKENS = ['ra-1', 'ra-2', 'ra-3', 'ra-4'];
const PER_SECOND = 50;
const REPLICAS = 2;

interface RetryAfterFigures {
  key: string;
  name: string;
  forced: number;
  early: number;
  /** Early requests per forced 429. */
  earlyPer429: number;
  gaps: number[];
  /** ms from the forced 429 to each early request. */
  earlyDelays: number[];
  p50: number;
  p99: number;
  max: number;
  requests: number;
}

function figures(key: string, name: string, stats: ApiStats, retryAfterS: number): RetryAfterFigures {
  const f = stats.force429!;
  const earlyDelays = f.early.map((e) => e.at - (e.until - retryAfterS * 1000));
  const gaps = f.gaps.map((g) => g.ms);
  return {
    key,
    name,
    forced: f.forced.length,
    early: f.early.length,
    earlyPer429: f.early.length / Math.max(1, f.forced.length),
    gaps,
    earlyDelays,
    p50: quantile(gaps, 0.5),
    p99: quantile(gaps, 0.99),
    max: gaps.length ? Math.max(...gaps) : Number.NaN,
    requests: stats.log.t.length,
  };
}

/** Scenario 5: a 429 with Retry-After on a credential: no request on it before that time, and back soon after. */
export async function scenarioRetryAfter(ctx: BenchContext): Promise<ScenarioResult> {
  const started = Date.now();
  const retryAfterS = ctx.quick ? 1 : 2;
  const cycles = ctx.quick ? 3 : 8;
  const okBetween = 25;
  // Each cycle: okBetween requests at ≤ 50/s, then the rest; plus start-up and slack.
  const runMs = Math.ceil(cycles * (retryAfterS * 1000 + (okBetween / PER_SECOND) * 1000 + 150) + 2500);
  const api = {
    api: {
      auth: { type: 'header' as const, tokens: TOKENS },
      budgets: Object.fromEntries(TOKENS.map((t) => [t, { requests: PER_SECOND, perSeconds: 1 }])),
      latencyMs: 5,
    },
    force429: { tokens: TOKENS, retryAfterS, cycles, okFirst: 20, okBetween, stagger: 7 },
  };
  const ids = Math.ceil(((TOKENS.length * PER_SECOND * runMs) / 1000) * 1.5) + 500;
  const specs: { key: string; name: string; contender: Contender }[] = [
    {
      key: 'pullq',
      name: `pullq, ${REPLICAS} worker processes`,
      contender: { kind: 'pullq', config: (url) => ({ request: { url: `${url}/items/{id}` }, auth: { type: 'header', tokens: TOKENS.map((t) => ({ token: t, name: t, budget: { requests: PER_SECOND, perSeconds: 1 } })) } }) },
    },
    ...(ctx.quick
      ? []
      : [
          {
            key: 'plain-split',
            name: `plain BullMQ + got, ${REPLICAS} processes, static split (budget ÷ ${REPLICAS}), waits Retry-After per request`,
            contender: { kind: 'plain' as const, options: (url: string) => ({ url: `${url}/items/{id}`, tokens: TOKENS.map((token) => ({ token, perSecond: PER_SECOND })), mode: 'local-split' as const, split: REPLICAS, concurrency: 16 }) },
          },
        ]),
  ];
  const results: RetryAfterFigures[] = [];
  for (const spec of specs) {
    ctx.log(`  ${spec.key}: ${cycles} forced 429s (Retry-After: ${retryAfterS}) on each of ${TOKENS.length} tokens, ${fmt.s(runMs)}`);
    const run = await runFleet(ctx, { label: `s5-${spec.key}`, api, contender: spec.contender, ids, phases: [{ replicas: REPLICAS, ms: runMs }] });
    const f = figures(spec.key, spec.name, run.stats, retryAfterS);
    ctx.log(`    ${f.forced} forced 429s, ${f.early} requests before Retry-After ended; back after p50 ${fmt.ms(f.p50)}, p99 ${fmt.ms(f.p99)} (${f.gaps.length} samples)`);
    results.push(f);
  }
  const p = results.find((r) => r.key === 'pullq')!;
  const alt = results.find((r) => r.key !== 'pullq');
  const notes: string[] = [];
  if (p.forced < cycles * TOKENS.length) notes.push(`Only ${p.forced} of the ${cycles * TOKENS.length} planned 429s were forced within the run.`);
  if (p.early > 0) {
    notes.push(
      `pullq sent ${p.early} request(s) on a credential before its Retry-After ended: ${fmt.num(p.earlyPer429, 2)} per 429, ` +
        `arriving ${fmt.ms(Math.min(...p.earlyDelays))} to ${fmt.ms(Math.max(...p.earlyDelays))} after the 429 (median ${fmt.ms(quantile(p.earlyDelays, 0.5))}). ` +
        `${p.earlyDelays.filter((d) => d > 50).length} of them more than 50 ms after it. ` +
        'Requests arriving within a few ms of the 429 were already on the wire before the 429 came back (starts are paced, and a rest ends with no burst credit, so at most about one is); later ones would mean a rest was not seen.',
    );
  }
  notes.push('An early request is answered 429 with the Retry-After still to run (rounded up to whole seconds), which can lengthen that credential\'s rest and the next gap.');
  return {
    id: 'retry-after',
    title: `5. 429 + Retry-After precision (${TOKENS.length} tokens, ${PER_SECOND} req/s each, Retry-After ${retryAfterS} s)`,
    setup:
      `The API process forces, on each of ${TOKENS.length} tokens, ${cycles} times: a 429 with \`Retry-After: ${retryAfterS}\` after ${okBetween} served requests; it counts requests on that token that arrive before the Retry-After time (sent time + ${retryAfterS} s), and times the first one at or after it. ` +
      `Budgets ${PER_SECOND}/s per token are enforced by the API and written in pullq's config; ${REPLICAS} \`pullq worker\` processes (concurrency 16), ${fmt.s(runMs)} run.`,
    targets: [
      { figure: 'requests on a credential before its Retry-After time, per forced 429', measured: `${fmt.num(p.earlyPer429, 2)} (${p.early} after ${p.forced} forced 429s)`, comparison: alt ? `plain worker: ${fmt.num(alt.earlyPer429, 2)} (${alt.early} after ${alt.forced})` : 'plain worker: full run only', target: '≤ 1 (7.2 before pacing)', met: p.earlyPer429 <= 1 },
      {
        figure: '… of which more than 50 ms after the 429 (sent after the 429 could be known)',
        measured: String(p.earlyDelays.filter((d) => d > 50).length),
        comparison: alt ? `plain worker: ${alt.earlyDelays.filter((d) => d > 50).length}` : '–',
        target: '0',
        met: p.earlyDelays.filter((d) => d > 50).length === 0,
      },
      { figure: 'first use after the Retry-After time, p50 / p99', measured: `${fmt.ms(p.p50)} / ${fmt.ms(p.p99)} (max ${fmt.ms(p.max)}, ${p.gaps.length} samples)`, comparison: alt ? `plain worker: ${fmt.ms(alt.p50)} / ${fmt.ms(alt.p99)}` : '–', target: 'soon after (no number set)', met: null },
    ],
    tables: [
      {
        caption: 'Runs',
        columns: ['approach', 'forced 429s', 'early requests', 'early per 429', 'early: ms after the 429 (median / max)', 'gap p50', 'gap p99', 'gap max', 'samples', 'requests'],
        rows: results.map((r) => [
          r.name, String(r.forced), String(r.early), fmt.num(r.earlyPer429, 2),
          r.earlyDelays.length ? `${fmt.ms(quantile(r.earlyDelays, 0.5))} / ${fmt.ms(Math.max(...r.earlyDelays))}` : '–',
          fmt.ms(r.p50), fmt.ms(r.p99), fmt.ms(r.max), String(r.gaps.length), String(r.requests),
        ]),
      },
    ],
    notes,
    raw: { retryAfterS, cycles, okBetween, perSecond: PER_SECOND, tokens: TOKENS.length, replicas: REPLICAS, runMs, runs: results },
    durationMs: Date.now() - started,
  };
}
