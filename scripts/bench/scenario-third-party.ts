import { THIRD_PARTY_MODES, type ThirdPartyMode, type ThirdPartyPolicy } from '../third-party-api.js';
import type { BenchContext } from './bench-context.js';
import { windowFigures } from './fleet-figures.js';
import { fmt } from './format.js';
import { runFleet } from './run-fleet.js';
import type { ScenarioResult } from './scenario-result.js';

const TOKENS = ['tp-a', 'tp-b'];
const REPLICAS = 2;
/** Each token's limit is 30 requests per second, in windows of these lengths. */
const PER_SECOND = 30;
const WARM_MS = 2000;
/** Runs side by side (60 s windows) start 2 × 7 processes at once on this 2-core machine: skip their start. */
const WARM_SIDE_BY_SIDE_MS = 15_000;

const MODE_NAMES: Record<ThirdPartyMode, string> = {
  'erl-draft6': 'express-rate-limit draft-6: RateLimit-Policy + RateLimit-Limit/-Remaining/-Reset',
  'erl-draft7': 'express-rate-limit draft-7: RateLimit: limit=, remaining=, reset= + RateLimit-Policy',
  'erl-draft8': 'express-rate-limit draft-8: named RateLimit / RateLimit-Policy lists with pk',
  'erl-legacy': 'express-rate-limit legacy: X-RateLimit-* (reset: epoch seconds)',
  'fastify-x': '@fastify/rate-limit: x-ratelimit-* (reset: delta seconds)',
  'fastify-draft': '@fastify/rate-limit enableDraftSpec: ratelimit-* (reset: delta seconds)',
};

interface Row {
  mode: ThirdPartyMode | 'two-policies';
  windowS: number;
  utilization: number;
  requests: number;
  rejected: number;
  share: number;
  budgetPerSec: number;
}

async function runOne(ctx: BenchContext, mode: ThirdPartyMode, policies: ThirdPartyPolicy[], runMs: number, warmMs: number): Promise<Omit<Row, 'mode' | 'windowS'>> {
  // The binding policy: the fewest requests per second.
  const perSec = Math.min(...policies.map((p) => (p.limit * 1000) / p.windowMs));
  const budgetPerSec = perSec * TOKENS.length;
  const ids = Math.ceil((budgetPerSec * runMs) / 1000 * 1.3) + 200;
  const run = await runFleet(ctx, {
    label: `s7-${mode}`,
    api: { api: { auth: { type: 'header', tokens: TOKENS } }, thirdParty: { mode, policies, latencyMs: 5 } },
    contender: { kind: 'pullq', config: (url) => ({ request: { url: `${url}/items/{id}` }, auth: { type: 'header', tokens: TOKENS.map((t) => ({ token: t, name: t })) } }) },
    ids,
    phases: [{ replicas: REPLICAS, ms: runMs }],
  });
  const end = run.phases[run.phases.length - 1]!.end;
  const w = windowFigures(run.stats, run.firstRequestAt + warmMs, end, budgetPerSec, false);
  const requests = run.stats.log.t.length;
  const rejected = run.stats.log.status.filter((s) => s === 429).length;
  return { utilization: w.utilization, requests, rejected, share: rejected / Math.max(1, requests), budgetPerSec };
}

/** Scenario 7: rate limiters from npm we did not write, every header mode, windows of 1 s to 60 s; no budget configured. */
export async function scenarioThirdParty(ctx: BenchContext): Promise<ScenarioResult> {
  const started = Date.now();
  const windows = ctx.quick ? [1, 2] : [1, 2, 10, 60];
  const rows: Row[] = [];
  const record = (r: Row) => {
    ctx.log(`    ${r.mode}, ${r.windowS} s: utilization ${fmt.pct(r.utilization)}, ${r.rejected} 429s of ${r.requests}`);
    rows.push(r);
  };
  for (const windowS of windows) {
    const policy = { limit: PER_SECOND * windowS, windowMs: windowS * 1000 };
    if (windowS < 60) {
      // One mode after the other: short runs, so the start of 3 processes must not be shared.
      const runMs = ctx.quick ? 7000 : Math.max(15_000, windowS * 2500);
      ctx.log(`  ${windowS} s windows (${policy.limit} per window per token): ${THIRD_PARTY_MODES.length} header modes in turn, ${fmt.s(runMs)} each`);
      for (const mode of THIRD_PARTY_MODES) record({ mode, windowS, ...(await runOne(ctx, mode, [policy], runMs, WARM_MS)) });
      continue;
    }
    // 60 s windows need minutes: the modes side by side (own API process, queue and workers each), with two policies at once.
    const runMs = 150_000;
    ctx.log(`  ${windowS} s windows (${policy.limit} per window per token): ${THIRD_PARTY_MODES.length} header modes side by side, and two policies at once, ${fmt.s(runMs)}`);
    const runs = THIRD_PARTY_MODES.map(async (mode) => ({ mode, windowS, ...(await runOne(ctx, mode, [policy], runMs, WARM_SIDE_BY_SIDE_MS)) }) as Row);
    // A per-second burst and a per-minute total: 10/s, and 300/min (5/s) binds.
    runs.push(runOne(ctx, 'erl-draft8', [{ limit: 10, windowMs: 1000 }, { limit: 300, windowMs: 60_000 }], runMs, WARM_SIDE_BY_SIDE_MS).then((r) => ({ mode: 'two-policies', windowS: 60, ...r }) as Row));
    for (const r of await Promise.all(runs)) record(r);
  }
  const single = rows.filter((r) => r.mode !== 'two-policies');
  const two = rows.find((r) => r.mode === 'two-policies');
  const targets = THIRD_PARTY_MODES.flatMap((mode) => {
    const mine = single.filter((r) => r.mode === mode);
    const worstUtil = Math.min(...mine.map((r) => r.utilization));
    const worstShare = Math.max(...mine.map((r) => r.share));
    return [
      { figure: `${mode}: utilization, worst window`, measured: `${fmt.pct(worstUtil)} (${mine.map((r) => `${r.windowS} s: ${fmt.pct(r.utilization)}`).join(', ')})`, comparison: '–', target: '≥ 90%', met: worstUtil >= 0.9 },
      { figure: `${mode}: 429 share, worst window`, measured: `${fmt.pct(worstShare, 2)}`, comparison: '–', target: '≤ 2%', met: worstShare <= 0.02 },
    ];
  });
  if (two) targets.push({ figure: 'two policies at once (10/s + 300/min): 429 share', measured: `${fmt.pct(two.share, 2)} (${two.rejected} of ${two.requests}); ${fmt.pct(two.utilization)} of the per-minute total`, comparison: '–', target: '≤ 3%', met: two.share <= 0.03 });
  const notes: string[] = [];
  for (const r of rows) {
    if (r.mode !== 'two-policies' && r.utilization < 0.9) notes.push(`${r.mode}, ${r.windowS} s windows: ${fmt.pct(r.utilization)} of the limit used, ${fmt.points(0.9 - r.utilization)} under the 90% target.`);
    if (r.share > (r.mode === 'two-policies' ? 0.03 : 0.02)) notes.push(`${r.mode}, ${r.windowS} s windows: ${fmt.pct(r.share, 2)} of requests answered 429.`);
  }
  if (ctx.quick) notes.push('--quick: only 1 s and 2 s windows, 7 s runs, no two-policy run.');
  return {
    id: 'third-party',
    title: `7. Third-party rate limiters (express-rate-limit, @fastify/rate-limit), budgets learned (${TOKENS.length} tokens, ${PER_SECOND}/s each)`,
    setup:
      'The API is express 5 with express-rate-limit 8, or fastify 5 with @fastify/rate-limit 11, keyed per token, in every header mode each offers; their memory stores are fixed windows. ' +
      `Each token may make ${PER_SECOND} requests per second, in windows of ${windows.join(', ')} s. pullq's config lists the tokens without any budget; ${REPLICAS} \`pullq worker\` processes per mode, the modes side by side. ` +
      `Utilization: requests the API accepted from the first request + ${fmt.s(WARM_MS)} (60 s windows, run side by side: + ${fmt.s(WARM_SIDE_BY_SIDE_MS)}; learning included after that) to the stop, over the limit; 429 share over the whole run. ` +
      'Two policies at once: express-rate-limit draft-8 with two limiters (10 per second and 300 per minute), listed in one RateLimit-Policy header; utilization over the per-minute total, which binds.',
    targets,
    tables: [
      {
        caption: 'Runs (header form × window)',
        columns: ['header form', 'window', 'utilization', '429s', 'requests', '429 share'],
        rows: rows.map((r) => [r.mode === 'two-policies' ? 'two policies at once (draft-8, 10/s + 300/min)' : MODE_NAMES[r.mode], r.mode === 'two-policies' ? '1 s + 60 s' : `${r.windowS} s`, fmt.pct(r.utilization), String(r.rejected), String(r.requests), fmt.pct(r.share, 2)]),
      },
    ],
    notes,
    raw: { tokens: TOKENS.length, perSecond: PER_SECOND, replicas: REPLICAS, warmMs: WARM_MS, rows },
    durationMs: Date.now() - started,
  };
}
