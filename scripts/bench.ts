import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { runtimeEnv } from '../src/config.js';
import { createBenchContext, type BenchContext } from './bench/bench-context.js';
import { fmt } from './bench/format.js';
import { machineInfo } from './bench/machine-info.js';
import { renderReport } from './bench/render-report.js';
import { renderScenario } from './bench/render-scenario.js';
import { spliceReport } from './bench/splice-report.js';
import { scenarioEnqueueScale } from './bench/scenario-enqueue-scale.js';
import { scenarioFleetBudgets } from './bench/scenario-fleet-budgets.js';
import { scenarioLearnedBudgets } from './bench/scenario-learned-budgets.js';
import { scenarioOverhead } from './bench/scenario-overhead.js';
import type { ScenarioResult } from './bench/scenario-result.js';
import { scenarioRetryAfter } from './bench/scenario-retry-after.js';
import { scenarioSoak } from './bench/scenario-soak.js';
import { scenarioThirdParty } from './bench/scenario-third-party.js';
import { scenarioTokenBucket } from './bench/scenario-token-bucket.js';
import { scenarioCluster } from './bench/scenario-cluster.js';
import { scenarioMetricsCost } from './bench/scenario-metrics-cost.js';
import { scenarioConditional } from './bench/scenario-conditional.js';
import { scenarioSigningCost } from './bench/scenario-signing-cost.js';
import { scenarioReplicaWait } from './bench/scenario-replica-wait.js';
import { ensureRedis } from './local-redis.js';

// `npm run bench [-- --quick] [-- --no-write] [-- --only fleet-budgets,overhead]`:
// the benchmarks of issue #5. Writes BENCHMARKS.md and bench/results.json
// (unless --no-write) and prints the tables.

const SCENARIOS: { id: string; title: string; run: (ctx: BenchContext) => Promise<ScenarioResult> }[] = [
  { id: 'fleet-budgets', title: '1. fleet budget utilization', run: scenarioFleetBudgets },
  { id: 'learned-budgets', title: '2. budgets learned from headers', run: scenarioLearnedBudgets },
  { id: 'overhead', title: '3. overhead when nothing limits', run: scenarioOverhead },
  { id: 'enqueue-scale', title: '4. enqueue at scale', run: scenarioEnqueueScale },
  { id: 'retry-after', title: '5. 429 + Retry-After precision', run: scenarioRetryAfter },
  { id: 'soak', title: '6. soak: lost replies, killed workers, a Redis crash', run: scenarioSoak },
  { id: 'third-party', title: '7. third-party rate limiters, every header form', run: scenarioThirdParty },
  { id: 'token-bucket', title: '8. an API that punishes bursts (token bucket)', run: scenarioTokenBucket },
  { id: 'cluster', title: '9. one Redis and a 3-master Redis Cluster', run: scenarioCluster },
  { id: 'metrics-cost', title: '10. what metrics cost', run: scenarioMetricsCost },
  { id: 'conditional', title: '11. conditional re-pulls (304s free)', run: scenarioConditional },
  { id: 'signing-cost', title: '12. request-path cost of signing (OAuth 1.0a vs a bearer token)', run: scenarioSigningCost },
  { id: 'replica-wait', title: '13. replica waits (Redis WAIT) on finalize and the commit path', run: scenarioReplicaWait },
];

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { quick: { type: 'boolean' }, 'no-write': { type: 'boolean' }, only: { type: 'string' } }, strict: true });
  const quick = values.quick ?? false;
  const only = values.only?.split(',').map((s) => s.trim());
  const unknown = only?.filter((id) => !SCENARIOS.some((s) => s.id === id)) ?? [];
  if (unknown.length) {
    process.stderr.write(`bench: unknown scenario ${unknown.join(', ')}; known: ${SCENARIOS.map((s) => s.id).join(', ')}\n`);
    return 1;
  }
  const env = runtimeEnv();
  const redis = await ensureRedis(env.redisUrl ?? 'redis://127.0.0.1:6379');
  if (!redis) {
    process.stderr.write('bench: Redis is not reachable at 127.0.0.1:6379 (or $REDIS_URL) and no redis-server is installed; start one (`docker compose up -d redis`) or `apt-get install redis-server`\n');
    return 1;
  }
  const started = Date.now();
  const log = (m: string) => process.stderr.write(`[${fmt.s(Date.now() - started).padStart(7)}] ${m}\n`);
  if (redis.started) log(`no Redis at $REDIS_URL / 127.0.0.1:6379: started a throw-away redis-server at ${redis.url}`);
  const ctx = createBenchContext({ quick, redisUrl: redis.url, log });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      // Child processes are killed on exit (spawn-child.ts); their queues' keys stay (bench-* names).
      redis.stop();
      process.exit(130);
    });
  }
  const results: ScenarioResult[] = [];
  let failed = 0;
  try {
    const machine = machineInfo(ctx.root, await ctx.redis.info('server'));
    log(`pullq benchmarks${quick ? ' (--quick)' : ''}: ${machine.cpuModel}, ${machine.nproc} cores, Node ${machine.node}, Redis ${machine.redis} at ${redis.url}`);
    for (const s of SCENARIOS.filter((x) => !only || only.includes(x.id))) {
      log(`${s.title}`);
      const t0 = Date.now();
      try {
        results.push(await s.run(ctx));
      } catch (err) {
        failed++;
        log(`  FAILED: ${(err as Error).stack ?? String(err)}`);
        results.push({ id: s.id, title: s.title, setup: '', targets: [], tables: [], notes: [`the scenario failed: ${(err as Error).message}`], raw: { error: String(err) }, durationMs: Date.now() - t0 });
      }
      log(`  done in ${fmt.s(Date.now() - t0)}`);
    }
    const totalMs = Date.now() - started;
    process.stdout.write(`\n${results.map((r) => renderScenario(r, { heading: r.title, setup: false })).join('\n')}`);
    process.stdout.write(`\nbench: ${results.length} scenario(s) in ${fmt.s(totalMs)}${failed ? `, ${failed} failed` : ''}${quick ? ' (--quick: short runs, the verdicts are only indicative)' : ''}\n`);
    if (!values['no-write']) {
      const reportPath = path.join(ctx.root, 'BENCHMARKS.md');
      const resultsPath = path.join(ctx.root, 'bench/results.json');
      const roundNotes = existsSync(path.join(ctx.root, 'bench/round-notes.md')) ? readFileSync(path.join(ctx.root, 'bench/round-notes.md'), 'utf8') : undefined;
      // --only: the scenarios run now replace theirs in the report and the raw figures; the others stay as last written.
      const partial = only !== undefined && existsSync(reportPath);
      writeFileSync(reportPath, partial ? spliceReport(readFileSync(reportPath, 'utf8'), machine, results, { quick, totalMs, roundNotes }) : renderReport(machine, results, { quick, totalMs, roundNotes }));
      mkdirSync(path.join(ctx.root, 'bench'), { recursive: true });
      const raw = (r: ScenarioResult) => ({ id: r.id, title: r.title, durationMs: r.durationMs, targets: r.targets, notes: r.notes, raw: r.raw, ...(partial ? { machine, quick } : {}) });
      const kept = partial && existsSync(resultsPath) ? ((JSON.parse(readFileSync(resultsPath, 'utf8')) as { scenarios?: { id: string }[] }).scenarios ?? []).filter((s) => !results.some((r) => r.id === s.id)) : [];
      const previous = partial && existsSync(resultsPath) ? (JSON.parse(readFileSync(resultsPath, 'utf8')) as Record<string, unknown>) : {};
      const scenarios = [...kept, ...results.map(raw)].sort((a, b) => SCENARIOS.findIndex((x) => x.id === a.id) - SCENARIOS.findIndex((x) => x.id === b.id));
      writeFileSync(resultsPath, `${JSON.stringify(partial ? { ...previous, scenarios } : { machine, quick, totalMs, scenarios }, null, 2)}\n`);
      process.stdout.write('bench: wrote BENCHMARKS.md and bench/results.json\n');
    }
    return failed ? 1 : 0;
  } finally {
    try {
      rmdirSync(path.join(ctx.root, 'bench/tmp'));
    } catch {
      // not empty (a scenario left something to look at) or never made
    }
    ctx.redis.disconnect();
    redis.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
