import type { BenchContext } from './bench-context.js';
import { runFigures, type RunFigures } from './run-figures.js';
import { FLEET } from './fleet-setup.js';
import { fmt } from './format.js';
import { runFleet, type Contender } from './run-fleet.js';
import type { ScenarioResult } from './scenario-result.js';

/** Scenario 2: no budget in pullq's config; the API announces its budgets in rate-limit headers. */
export async function scenarioLearnedBudgets(ctx: BenchContext): Promise<ScenarioResult> {
  const started = Date.now();
  const runMs = ctx.quick ? 4000 : 20_000;
  const warmMs = ctx.quick ? 1000 : 2000;
  const ids = Math.ceil((FLEET.sum * runMs) / 1000 * 1.5) + 500;
  const pullq: Contender = { kind: 'pullq', config: (url) => FLEET.pullqConfig(url, false) };
  const plainRoundRobin: Contender = {
    kind: 'plain',
    options: (url) => ({ url: `${url}/items/{id}`, tokens: FLEET.tokens, mode: 'round-robin', concurrency: FLEET.concurrency }),
  };
  const specs = [
    { key: 'pullq-ietf', name: 'pullq, IETF RateLimit / RateLimit-Policy headers', style: 'ietf' as const, contender: pullq },
    { key: 'pullq-github', name: 'pullq, GitHub x-ratelimit-* headers', style: 'github' as const, contender: pullq },
    ...(ctx.quick ? [] : [{ key: 'plain-round-robin', name: 'plain BullMQ + got, tokens round-robin, no limiter, waits Retry-After on a 429', style: 'ietf' as const, contender: plainRoundRobin }]),
  ];
  const results: { key: string; name: string; figures: RunFigures; rests: number; givenUp?: number }[] = [];
  for (const spec of specs) {
    ctx.log(`  ${spec.key}: ${FLEET.replicas} processes for ${fmt.s(runMs)}`);
    const run = await runFleet(ctx, { label: `s2-${spec.key}`, api: FLEET.api({ rateLimitHeaders: spec.style }), contender: spec.contender, ids, phases: [{ replicas: FLEET.replicas, ms: runMs }] });
    const figures = runFigures(run, warmMs, FLEET.sum);
    ctx.log(`    utilization ${fmt.pct(figures.utilization)}, ${figures.totalRejected} rejected of ${figures.totalRequests}`);
    results.push({ key: spec.key, name: spec.name, figures, rests: run.pullqRests ?? 0, givenUp: run.pullqTakes === undefined ? undefined : run.pullqTakes - run.stats.log.t.length });
  }
  const share = (f: RunFigures) => f.totalRejected / Math.max(1, f.totalRequests);
  const plain = results.find((r) => r.key === 'plain-round-robin');
  const comparison = (what: (f: RunFigures) => string) => (plain ? `plain round-robin ${what(plain.figures)}` : 'plain round-robin: full run only');
  const notes: string[] = [];
  for (const r of results.filter((x) => x.key.startsWith('pullq'))) {
    if (r.figures.utilization < 0.9) notes.push(`${r.name}: utilization ${fmt.pct(r.figures.utilization)}, ${fmt.points(0.9 - r.figures.utilization)} below the 90% target.`);
    if (r.figures.utilization < 0.9 && r.rests > 0) {
      notes.push(
        `${r.name}: the credentials began ${r.rests} rests with ${r.figures.totalRejected} 429s in the run: ` +
          'pullq rests a credential until the announced reset whenever an answer says remaining 0, a 2xx included (restFor() in src/http/rate-limit-headers.ts), although the learned budget already paces it; ' +
          'this API announces the reset in whole seconds, 1–2 s ahead, so each such rest idles that token for up to 2 s.',
      );
    }
    if (share(r.figures) > 0.02) notes.push(`${r.name}: ${fmt.pct(share(r.figures), 2)} of requests rejected, ${fmt.points(share(r.figures) - 0.02)} over the 2% target.`);
  }
  return {
    id: 'learned-budgets',
    title: '2. Budgets not configured: learned from rate-limit headers (4 processes, 80/60/40/20 req/s)',
    setup:
      `The API of scenario 1, announcing each token's budget on every answer (IETF draft: \`RateLimit-Policy: "default";q=80;w=1\` and \`RateLimit: "default";r=…;t=…\`; GitHub: \`x-ratelimit-limit/-remaining/-reset\`); over budget it answers 429 with Retry-After. ` +
      `pullq's config lists the 4 tokens without any budget. ${FLEET.replicas} \`pullq worker\` processes, fixed ${fmt.s(runMs)} runs; utilization from the first request + ${fmt.s(warmMs)} (learning included after that) to the stop; rejected share over the whole run.`,
    targets: results
      .filter((r) => r.key.startsWith('pullq'))
      .flatMap((r) => [
        { figure: `${r.key.replace('pullq-', '')}: utilization`, measured: fmt.pct(r.figures.utilization), comparison: comparison((f) => fmt.pct(f.utilization)), target: '≥ 90%', met: r.figures.utilization >= 0.9 },
        { figure: `${r.key.replace('pullq-', '')}: rejected share`, measured: `${fmt.pct(share(r.figures), 2)} (${r.figures.totalRejected} of ${r.figures.totalRequests})`, comparison: comparison((f) => fmt.pct(share(f), 2)), target: '≤ 2%', met: share(r.figures) <= 0.02 },
      ]),
    tables: [
      {
        caption: 'Runs',
        columns: ['approach', 'utilization', 'accepted/s', '429s', 'requests', 'rejected share', 'pullq: rests', 'pullq: requests counted − seen by the API'],
        rows: results.map((r) => [r.name, fmt.pct(r.figures.utilization), fmt.num(r.figures.accepted / r.figures.seconds, 1), String(r.figures.totalRejected), String(r.figures.totalRequests), fmt.pct(share(r.figures), 2), r.givenUp === undefined ? '–' : String(r.rests), String(r.givenUp ?? '–')]),
      },
    ],
    notes,
    raw: { runMs, warmMs, runs: results },
    durationMs: Date.now() - started,
  };
}
