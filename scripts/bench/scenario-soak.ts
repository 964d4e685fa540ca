import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { RunStore } from '../../src/runs/run-store.js';
import { startRedisProxy } from '../redis-fault-proxy.js';
import type { BenchContext } from './bench-context.js';
import { fmt } from './format.js';
import type { ScenarioResult } from './scenario-result.js';
import { spawnChild, type Child } from './spawn-child.js';
import { startApiProcess } from './start-api-process.js';
import { startThrowawayRedis } from './throwaway-redis.js';

const WORKERS = 3;
const LOSS = 1 / 50;

interface SoakRun {
  faults: boolean;
  wallMs: number;
  enqueueMs: number;
  lost: number;
  doubled: number;
  lines: number;
  kills: number;
  redisRestarts: number;
  lostReplies: number;
  commands: number;
  requests: number;
}

/**
 * Scenario 6 (issue #8): exactly-once when the network lies. N IDs, 3 worker
 * processes talking to Redis through a fault proxy that loses 1 reply in 50
 * (after Redis ran the command) for a fixed time, while a worker is SIGKILLed
 * and restarted every few seconds; then the same run without faults.
 */
export async function scenarioSoak(ctx: BenchContext): Promise<ScenarioResult> {
  const started = Date.now();
  const n = ctx.quick ? 3000 : 20_000;
  const faultMs = ctx.quick ? 6000 : 20_000;
  const killEveryMs = ctx.quick ? 2000 : 3000;

  const once = async (faults: boolean): Promise<SoakRun> => {
    const tmp = ctx.tempDir(`s6-${faults ? 'faults' : 'clean'}`);
    mkdirSync(path.join(tmp.dir, 'redis'));
    // A Redis of its own, with an append-only file fsynced on every write, so it can be SIGKILLed and restarted.
    const redis = await startThrowawayRedis({ aofDir: path.join(tmp.dir, 'redis') });
    const api = await startApiProcess({ api: { auth: { type: 'none' }, latencyMs: 5 } });
    const target = new URL(redis.url);
    const proxy = await startRedisProxy({ host: target.hostname, port: Number(target.port) });
    const queue = ctx.newQueue(`s6-${faults ? 'f' : 'c'}`);
    const workers: Child[] = [];
    try {
      writeFileSync(path.join(tmp.dir, 'pullq.config.json'), JSON.stringify({
        queue,
        request: { url: `${api.url}/items/{id}` },
        worker: { concurrency: 16, lockDurationMs: 2000, shutdownTimeoutMs: 5000 },
        enqueue: { batchSize: 50 },
        sink: { type: 'file', dir: './out' },
      }));
      const ids = Array.from({ length: n }, (_, i) => `soak-${i}`);
      writeFileSync(path.join(tmp.dir, 'ids.txt'), `${ids.join('\n')}\n`);
      const env = { REDIS_URL: faults ? proxy.url : redis.url, PULLQ_LOG_LEVEL: 'warn' };
      if (faults) proxy.randomLoss({ probability: LOSS });
      const t0 = Date.now();
      const enq = await spawnChild(process.execPath, [ctx.cli, 'enqueue', 'ids.txt', '--run', 'soak'], { label: 'enqueue', cwd: tmp.dir, env, timeoutMs: 120_000 }).done;
      if (enq.code !== 0) throw new Error(`pullq enqueue exited ${enq.code}: ${enq.stderrTail.join(' | ')}`);
      const spawnWorker = () => spawnChild(process.execPath, [ctx.cli, 'worker'], { label: 'worker', cwd: tmp.dir, env, timeoutMs: 300_000 });
      const enqueueMs = Date.now() - t0;
      for (let i = 0; i < WORKERS; i++) workers.push(spawnWorker());
      const faultStart = Date.now();
      const store = new RunStore(redis.redis, queue);
      let kills = 0;
      let redisRestarts = 0;
      let nextKill = Date.now() + killEveryMs;
      const deadline = Date.now() + 240_000;
      for (;;) {
        const s = await store.status('soak');
        if (s?.complete) break;
        if (Date.now() > deadline) throw new Error(`soak run not complete after 240 s: ${JSON.stringify(s)}`);
        if (faults && Date.now() - faultStart < faultMs && Date.now() >= nextKill) {
          const i = kills % WORKERS;
          workers[i]!.child.kill('SIGKILL');
          await workers[i]!.done;
          workers[i] = spawnWorker();
          kills++;
          nextKill = Date.now() + killEveryMs;
        }
        if (faults && redisRestarts === 0 && Date.now() - faultStart >= faultMs / 2) {
          await redis.crashAndRestart(1000);
          redisRestarts++;
        }
        if (faults && Date.now() - faultStart >= faultMs) proxy.stopRandomLoss();
        await sleep(50);
      }
      const wallMs = Date.now() - t0;
      proxy.stopRandomLoss();
      const lines = ['results', 'failed'].flatMap((k) => readFileSync(path.join(tmp.dir, 'out/soak', `${k}.jsonl`), 'utf8').split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { id: string }).id));
      const distinct = new Set(lines);
      const stats = await api.stats();
      return { faults, wallMs, enqueueMs, lost: ids.filter((id) => !distinct.has(id)).length, doubled: lines.length - distinct.size, lines: lines.length, kills, redisRestarts, lostReplies: proxy.stats.lostReplies, commands: proxy.stats.commands, requests: stats.total };
    } finally {
      await Promise.all(workers.map((w) => w.stop(5000)));
      await proxy.close();
      await api.close();
      await redis.stop();
      tmp.remove();
    }
  };

  const clean = await once(false);
  ctx.log(`  without faults: ${fmt.s(clean.wallMs)}, lost ${clean.lost}, doubled ${clean.doubled}`);
  const faulted = await once(true);
  ctx.log(`  with faults: ${fmt.s(faulted.wallMs)}, lost ${faulted.lost}, doubled ${faulted.doubled}; ${faulted.lostReplies} replies lost of ${faulted.commands} commands, ${faulted.kills} workers SIGKILLed, Redis SIGKILLed and restarted ${faulted.redisRestarts}×`);
  const row = (r: SoakRun) => [r.faults ? `1 reply in 50 lost from the enqueue on, until ${fmt.s(faultMs)} after the workers started; a worker SIGKILLed every ${fmt.s(killEveryMs)} meanwhile; Redis SIGKILLed once, down 1 s` : 'no faults', fmt.s(r.wallMs), fmt.s(r.enqueueMs), String(r.lost), String(r.doubled), fmt.num(r.requests), r.faults ? `${fmt.num(r.lostReplies)} of ${fmt.num(r.commands)}` : '–', String(r.kills), String(r.redisRestarts)];
  const notes: string[] = [];
  if (faulted.requests > n) notes.push(`The API saw ${fmt.num(faulted.requests - n)} requests more than IDs with faults: a killed worker's batch is fetched again by the next (requests may repeat, output may not).`);
  return {
    id: 'soak',
    title: `6. Soak: lost replies, killed workers, a Redis crash (${fmt.num(n)} IDs, ${WORKERS} worker processes)`,
    setup:
      `The example API in its own process (5 ms latency, no auth); a redis-server of the scenario's own with appendonly yes, appendfsync always. \`pullq enqueue\` then ${WORKERS} \`pullq worker\` processes (concurrency 16, batch size 50, lockDurationMs 2000), all talking to Redis through a RESP-aware TCP proxy (scripts/redis-fault-proxy.ts). ` +
      `With faults, the proxy loses the reply to 1 command in 50 (any command: pullq's scripts and BullMQ's) after Redis ran it and cuts that connection, from the enqueue on until ${fmt.s(faultMs)} after the workers started, and a worker is SIGKILLed and restarted every ${fmt.s(killEveryMs)} in those ${fmt.s(faultMs)}; halfway through them Redis itself is SIGKILLed and started again 1 s later on the same append-only file. ` +
      'Wall time from the enqueue to `complete` (output written). Lost and doubled are counted in results.jsonl + failed.jsonl.',
    targets: [
      { figure: 'IDs lost, with faults', measured: String(faulted.lost), comparison: `without faults ${clean.lost}`, target: '0', met: faulted.lost === 0 },
      { figure: 'IDs doubled, with faults', measured: String(faulted.doubled), comparison: `without faults ${clean.doubled}`, target: '0', met: faulted.doubled === 0 },
      { figure: 'wall time, with faults', measured: fmt.s(faulted.wallMs), comparison: `without faults ${fmt.s(clean.wallMs)} (×${(faulted.wallMs / clean.wallMs).toFixed(2)})`, target: '–', met: null },
    ],
    tables: [{ caption: 'Both runs', columns: ['run', 'wall time', 'of it enqueue', 'lost', 'doubled', 'API requests', 'replies lost', 'workers killed', 'Redis crashes'], rows: [row(clean), row(faulted)] }],
    notes,
    raw: { n, faultMs, killEveryMs, loss: LOSS, clean, faulted },
    durationMs: Date.now() - started,
  };
}
