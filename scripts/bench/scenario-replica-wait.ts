import { Redis } from 'ioredis';
import pino from 'pino';
import { startExampleApi } from '../example-api-server.js';
import { createPullq } from '../../src/api/create-pullq.js';
import { parseConfig } from '../../src/config.js';
import { RunStore } from '../../src/runs/run-store.js';
import type { BenchContext } from './bench-context.js';
import { quantile } from './quantile.js';
import { startReplicaPair, type ReplicaPair } from './replica-pair.js';
import type { ScenarioResult } from './scenario-result.js';

type Mode = 'replica' | 'none';

/**
 * Scenario: what waiting for a replica (Redis WAIT) costs. Finalize waits twice (before publishing, before
 * dropping parts); the commit path waits never (a lost commit is redone from what survives). A/B in one run:
 * a primary with its replica attached, then detached (REPLICAOF NO ONE), alternating rounds.
 */
export async function scenarioReplicaWait(ctx: BenchContext): Promise<ScenarioResult> {
  const started = Date.now();
  const title = 'replica waits (Redis WAIT) on finalize and the commit path';
  let pair: ReplicaPair;
  try {
    pair = await startReplicaPair();
  } catch (err) {
    return { id: 'replica-wait', title, setup: 'skipped: no primary+replica pair could be started', targets: [], tables: [], notes: [`skipped: ${(err as Error).message}`], raw: null, durationMs: Date.now() - started };
  }
  const api = await startExampleApi({ latencyMs: 0 });
  const redis = new Redis(pair.primaryUrl, { maxRetriesPerRequest: null });
  const tmp = ctx.tempDir('replica-wait');
  const rounds = ctx.quick ? 2 : 6;
  const ids = Array.from({ length: ctx.quick ? 1000 : 4000 }, (_, i) => String(i + 1));
  const waits: Record<Mode, number[]> = { replica: [], none: [] };
  const pulls: Record<Mode, number[]> = { replica: [], none: [] };
  try {
    let attached = true;
    for (let r = 0; r < rounds; r++) {
      for (const mode of (r % 2 === 0 ? ['replica', 'none'] : ['none', 'replica']) as Mode[]) {
        if ((mode === 'replica') !== attached) {
          if (mode === 'replica') await pair.attachReplica();
          else await pair.detachReplica();
          attached = mode === 'replica';
        }
        const queue = ctx.newQueue('rw');
        // The WAIT itself, as finalize sends it (a fresh client each round: the replica count is read afresh).
        const probe = new Redis(pair.primaryUrl, { maxRetriesPerRequest: null });
        const probeStore = new RunStore(probe, queue);
        await probeStore.replicasHold();
        for (let i = 0; i < 200; i++) {
          const t0 = performance.now();
          const ack = await probeStore.replicasHold();
          waits[mode].push((performance.now() - t0) * 1000);
          if (!ack.durable) throw new Error('a replica did not acknowledge');
        }
        probe.disconnect();
        // A whole pull: commits, then finalize.
        const logger = pino({ level: 'warn' }, { write: () => undefined });
        const config = parseConfig({ queue, request: { url: `${api.url}/items/{id}` }, worker: { concurrency: 32 }, enqueue: { batchSize: 100 }, sink: { type: 'file', dir: `${tmp.dir}/${queue}` } }, { env: { redisUrl: pair.primaryUrl, vars: {} } });
        const pullq = createPullq(config, { logger });
        const t0 = performance.now();
        const res = await pullq.pull(ids, { run: 'r1' });
        pulls[mode].push(performance.now() - t0);
        await pullq.close();
        if (!res.complete) throw new Error(`pull did not complete (${mode})`);
        await redis.eval("for _,k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('UNLINK', k) end", 0, `*{${queue}}*`);
      }
    }
  } finally {
    redis.disconnect();
    await api.close();
    await pair.stop();
    tmp.remove();
  }
  const med = (xs: number[]) => quantile(xs, 0.5);
  const p99 = (xs: number[]) => quantile(xs, 0.99);
  const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : 'n/a');
  return {
    id: 'replica-wait',
    title,
    setup: `A redis-server primary with one replica (asynchronous replication, no persistence) on this machine; rounds alternate the replica attached and detached (${rounds} rounds, order swapped each round). Per round: 200 waits as finalize sends them (marker SET + WAIT 1, pipelined), then a pull of ${ids.length} IDs (batches of 100, 32 in flight, loopback API, file sink).`,
    targets: [
      { figure: 'one replica wait (median / p99)', measured: `${f1(med(waits.replica))} / ${f1(p99(waits.replica))} µs`, comparison: `no replica: ${f1(med(waits.none))} / ${f1(p99(waits.none))} µs (nothing sent)`, target: 'none', met: null },
      { figure: `pull of ${ids.length} IDs (median)`, measured: `${f1(med(pulls.replica))} ms with a replica`, comparison: `${f1(med(pulls.none))} ms without`, target: 'none', met: null },
    ],
    tables: [{ caption: 'pull duration per round (ms; rounds alternate which mode goes first)', columns: ['round', 'replica attached', 'no replica'], rows: pulls.replica.map((ms, i) => [String(i + 1), ms.toFixed(0), (pulls.none[i] ?? Number.NaN).toFixed(0)]) }],
    notes: ['The commit path sends no WAIT; a pull with a replica differs from one without by replication itself and finalize\'s two waits.'],
    raw: { waits, pulls },
    durationMs: Date.now() - started,
  };
}
