import type { BenchContext } from './bench-context.js';
import { windowFigures } from './fleet-figures.js';
import { runFigures, type RunFigures } from './run-figures.js';
import { FLEET } from './fleet-setup.js';
import { fmt } from './format.js';
import type { PlainMode } from './plain-worker.js';
import { runFleet, type Contender, type FleetRun } from './run-fleet.js';
import type { ScenarioResult } from './scenario-result.js';

const { tokens: TOKENS, sum: SUM, replicas: REPLICAS, concurrency: CONCURRENCY, latencyMs: LATENCY_MS } = FLEET;

const pullqContender: Contender = { kind: 'pullq', config: (url) => FLEET.pullqConfig(url, true) };

const plain = (mode: PlainMode, split?: number): Contender => ({
  kind: 'plain',
  options: (url) => ({ url: `${url}/items/{id}`, tokens: TOKENS, mode, split, concurrency: CONCURRENCY, bottleneckPrefix: undefined }),
});

interface ContenderSpec {
  key: string;
  name: string;
  contender: Contender;
  latencyMs?: number;
  fullOnly?: boolean;
}

const CONTENDERS: ContenderSpec[] = [
  { key: 'pullq', name: 'pullq (budgets in config)', contender: pullqContender },
  { key: 'global-limiter', name: '(a) BullMQ global limiter 200/s, tokens round-robin', contender: plain('global-limiter') },
  { key: 'local-full', name: '(b) in-memory limiter per token at its full budget, per process', contender: plain('local-full') },
  { key: 'local-split', name: '(c) static split: in-memory limiter per token at budget ÷ 4', contender: plain('local-split', REPLICAS) },
  { key: 'bottleneck-reservoir', name: '(d) Bottleneck clustered (Redis), reservoir = budget, refreshed every 1 s', contender: plain('bottleneck-reservoir') },
  { key: 'bottleneck-mintime', name: "(d') Bottleneck clustered (Redis), minTime = 1000/budget ms", contender: plain('bottleneck-mintime'), fullOnly: true },
  { key: 'pullq-50ms', name: 'pullq, API latency 50 ms instead of 5 ms', contender: pullqContender, latencyMs: 50, fullOnly: true },
];

function phaseFigures(run: FleetRun, settleMs: number) {
  return run.phases.map((p) => {
    const start = Math.max(p.start, run.firstRequestAt);
    const util = windowFigures(run.stats, start + settleMs, p.end, SUM);
    const all = windowFigures(run.stats, p.start, p.end, SUM, false);
    return { replicas: p.replicas, utilization: util.utilization, requests: all.requests, rejected: all.rejected, rejectedShare: all.rejectedShare };
  });
}

const problems = (run: FleetRun) => run.workers.filter((w) => w.code !== 0 && w.signal !== 'SIGTERM' && !(w.code === null && w.signal === null));

/** Scenario 1: fleet budget utilization, pullq against the alternatives, then replicas 4 → 2 → 6. */
export async function scenarioFleetBudgets(ctx: BenchContext): Promise<ScenarioResult> {
  const started = Date.now();
  const runMs = ctx.quick ? 3500 : 20_000;
  const warmMs = ctx.quick ? 500 : 2000;
  const phaseMs = ctx.quick ? 2500 : 15_000;
  const settleMs = ctx.quick ? 800 : 1500;
  const idsFor = (ms: number) => Math.ceil((SUM * ms) / 1000 * 1.5) + 500;

  const results: { spec: ContenderSpec; figures: RunFigures; run: FleetRun }[] = [];
  for (const spec of CONTENDERS.filter((c) => !ctx.quick || !c.fullOnly)) {
    ctx.log(`  ${spec.key}: ${REPLICAS} processes for ${fmt.s(runMs)}`);
    const run = await runFleet(ctx, { label: `s1-${spec.key}`, api: FLEET.api({ latencyMs: spec.latencyMs }), contender: spec.contender, ids: idsFor(runMs), phases: [{ replicas: REPLICAS, ms: runMs }] });
    const figures = runFigures(run, warmMs, SUM);
    ctx.log(`    utilization ${fmt.pct(figures.utilization)}, ${figures.totalRejected} rejected of ${figures.totalRequests}`);
    for (const w of problems(run)) ctx.log(`    ! ${w.label} exited ${w.code ?? w.signal}: ${w.stderrTail.join(' | ')}`);
    results.push({ spec, figures, run });
  }

  const phasePlan = [
    { replicas: 4, ms: phaseMs },
    { replicas: 2, ms: phaseMs },
    { replicas: 6, ms: phaseMs },
  ];
  const phaseRuns: { name: string; key: string; phases: ReturnType<typeof phaseFigures>; run: FleetRun }[] = [];
  const phaseContenders: [string, string, Contender][] = [['pullq', 'pullq', pullqContender]];
  if (!ctx.quick) phaseContenders.push(['local-split', 'static split (budget ÷ 4 per process)', plain('local-split', REPLICAS)]);
  for (const [key, name, contender] of phaseContenders) {
    ctx.log(`  phases 4 → 2 → 6 replicas, ${fmt.s(phaseMs)} each: ${key}`);
    const run = await runFleet(ctx, { label: `s1-phases-${key}`, api: FLEET.api(), contender, ids: idsFor(3 * phaseMs), phases: phasePlan });
    const phases = phaseFigures(run, settleMs);
    ctx.log(`    ${phases.map((p) => `${p.replicas}: ${fmt.pct(p.utilization)} / ${p.rejected} rejected`).join(', ')}`);
    for (const w of problems(run)) ctx.log(`    ! ${w.label} exited ${w.code ?? w.signal}: ${w.stderrTail.join(' | ')}`);
    phaseRuns.push({ name, key, phases, run });
  }

  const pullq = results.find((r) => r.spec.key === 'pullq')!.figures;
  const others = results.filter((r) => r.spec.key !== 'pullq' && r.spec.key !== 'pullq-50ms');
  const comparison = others.map((r) => `${r.spec.name.split(' ')[0]} ${fmt.pct(r.figures.utilization)}`).join(', ');
  const comparison429 = others.map((r) => `${r.spec.name.split(' ')[0]} ${r.figures.totalRejected}`).join(', ');
  const pullqPhases = phaseRuns.find((p) => p.key === 'pullq')!.phases;
  const splitPhases = phaseRuns.find((p) => p.key === 'local-split')?.phases;

  const notes: string[] = [];
  const givenUp = (run: FleetRun) => (run.pullqTakes === undefined ? undefined : run.pullqTakes - run.stats.log.t.length);
  if (pullq.utilization < 0.98) notes.push(`pullq's utilization is ${fmt.pct(pullq.utilization)}, ${fmt.points(0.98 - pullq.utilization)} short of the 98% target.`);
  const given = [...results.filter((x) => x.spec.contender.kind === 'pullq').map((x) => ({ name: x.spec.name, run: x.run })), ...phaseRuns.filter((p) => p.key === 'pullq').map((p) => ({ name: 'pullq, phases 4 → 2 → 6', run: p.run }))]
    .map((r) => ({ ...r, g: givenUp(r.run) ?? 0 }))
    .filter((r) => r.g > 0);
  if (given.length) {
    notes.push(
      'pullq counted more requests sent than the API saw: ' +
        given.map((r) => `${r.name}: ${r.g} of ${r.run.pullqTakes} (${fmt.pct(r.g / Math.max(1, r.run.pullqTakes ?? 1))})`).join('; ') +
        '. A credential counts a request when its start is taken and uncounts it when the start is given back unsent (late, resting, no token); ' +
        'requests still in flight when a replica is stopped (SIGTERM at the end of the run) are counted but may not reach the API.',
    );
  }
  if (pullq.peak100ms > 2 * (SUM / 10)) {
    notes.push(
      `pullq had up to ${pullq.peak100ms} requests accepted within 100 ms (a smooth 200/s would be 20; see the "peak" column). ` +
        'Starts are paced one interval apart, but a token that was held back (by its sliding window, or a late start given back) may catch up with up to budget.burst starts back to back (default: 250 ms worth, 20/15/10/5 for these tokens).',
    );
  }
  const slow = results.find((r) => r.spec.key === 'pullq-50ms');
  if (slow) notes.push(`With 50 ms API latency pullq reached ${fmt.pct(slow.figures.utilization)} with ${slow.figures.totalRejected} rejected (5 ms latency: ${fmt.pct(pullq.utilization)}).`);
  for (const r of results) {
    const bad = problems(r.run);
    if (bad.length) notes.push(`${r.spec.name}: ${bad.length} process(es) exited abnormally: ${bad.map((w) => `${w.label} ${w.code ?? w.signal}`).join(', ')}.`);
  }

  return {
    id: 'fleet-budgets',
    title: '1. Fleet budget utilization (4 processes, 4 tokens at 80/60/40/20 req/s)',
    setup:
      `Example API in its own process, each token's budget enforced in a 1 s sliding window (over budget: 429 with Retry-After), ${LATENCY_MS} ms latency. ` +
      `${REPLICAS} worker processes per contender, concurrency ${CONCURRENCY} each, fixed ${fmt.s(runMs)} runs with more IDs than can be done. ` +
      `Utilization = requests the API accepted within budget per second ÷ 200, from the first request + ${fmt.s(warmMs)} to the stop; 429s counted over the whole run. ` +
      'Alternatives are plain BullMQ + got workers, one job per ID, that wait Retry-After on a 429 and try again; the in-memory limiters pick the token that can start soonest, Bottleneck picks tokens by smooth weighted round-robin (by budget). ' +
      `Phases: ${fmt.s(phaseMs)} each; utilization from ${fmt.s(settleMs)} after the change to the end of the phase, 429s over the whole phase; the static split keeps budget ÷ 4 per process (its config was written for 4 replicas).`,
    targets: [
      { figure: 'utilization, 4 replicas', measured: fmt.pct(pullq.utilization), comparison, target: '≥ 98%', met: pullq.utilization >= 0.98 },
      { figure: 'rejected (429) requests', measured: `${pullq.totalRejected} of ${pullq.totalRequests}`, comparison: comparison429, target: '0', met: pullq.totalRejected === 0 },
      ...pullqPhases.map((p, i) => ({
        figure: `phase ${i + 1}: ${p.replicas} replicas`,
        measured: `${fmt.pct(p.utilization)}, ${p.rejected} rejected`,
        comparison: splitPhases ? `static split ${fmt.pct(splitPhases[i]!.utilization)}, ${splitPhases[i]!.rejected} rejected` : 'static split: full run only',
        target: '≥ 98%, 0 rejected',
        met: p.utilization >= 0.98 && p.rejected === 0,
      })),
    ],
    tables: [
      {
        caption: 'Contenders (same API, same number of processes)',
        columns: ['approach', 'utilization', 'accepted/s', '429s (whole run)', 'requests (whole run)', 'rejected share', 'peak accepted in 100 ms', 'pullq: requests counted − seen by the API'],
        rows: results.map((r) => [r.spec.name, fmt.pct(r.figures.utilization), fmt.num(r.figures.accepted / r.figures.seconds, 1), String(r.figures.totalRejected), String(r.figures.totalRequests), fmt.pct(r.figures.totalRejected / Math.max(1, r.figures.totalRequests), 2), String(r.figures.peak100ms), String(givenUp(r.run) ?? '–')]),
      },
      {
        caption: 'Replicas changed mid-run (4 → 2 → 6)',
        columns: ['approach', ...phasePlan.map((p, i) => `phase ${i + 1} (${p.replicas}): utilization / 429s`)],
        rows: phaseRuns.map((pr) => [pr.name, ...pr.phases.map((p) => `${fmt.pct(p.utilization)} / ${p.rejected}`)]),
      },
    ],
    notes,
    raw: {
      tokens: TOKENS,
      latencyMs: LATENCY_MS,
      runMs,
      warmMs,
      contenders: results.map((r) => ({ key: r.spec.key, name: r.spec.name, ...r.figures, requestsByCredential: r.run.stats.requestsByCredential, pullqTakes: r.run.pullqTakes, rejectedByCredential: r.run.stats.rejectedByCredential, workers: r.run.workers.map((w) => ({ label: w.label, code: w.code, signal: w.signal, stderrLines: w.stderrLines })) })),
      phases: phaseRuns.map((p) => ({ key: p.key, phaseMs, settleMs, phases: p.phases, pullqTakes: p.run.pullqTakes, requests: p.run.stats.log.t.length })),
    },
    durationMs: Date.now() - started,
  };
}
