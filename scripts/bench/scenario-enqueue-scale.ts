import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { BenchContext } from './bench-context.js';
import { writeIds } from './write-ids.js';
import { fmt } from './format.js';
import type { ScenarioResult } from './scenario-result.js';
import { spawnChild } from './spawn-child.js';
import { startThrowawayRedis } from './throwaway-redis.js';

interface EnqueueFigures {
  ids: number;
  wallMs: number;
  idsPerSecond: number;
  peakRssBytes: number;
  rssSource: string;
  usedMemoryBefore: number;
  usedMemoryAfter: number;
  bytesPerId: number;
  keys: number;
  output: string;
}

const usedMemory = (info: string) => Number(/used_memory:(\d+)/.exec(info)?.[1] ?? Number.NaN);

/** Scenario 4: `pullq enqueue` of 1M IDs (100k with --quick): rate, producer peak RSS, Redis bytes per pending ID. */
export async function scenarioEnqueueScale(ctx: BenchContext): Promise<ScenarioResult> {
  const started = Date.now();
  const sizes = ctx.quick ? [100_000] : [100_000, 1_000_000];
  const useTime = existsSync('/usr/bin/time');
  const results: EnqueueFigures[] = [];
  for (const n of sizes) {
    const tmp = ctx.tempDir('s4');
    const redis = await startThrowawayRedis();
    try {
      const ids = path.join(tmp.dir, 'ids.txt');
      await writeIds(ids, n);
      writeFileSync(path.join(tmp.dir, 'pullq.config.json'), JSON.stringify({ redis: { url: redis.url }, queue: 'bench-scale', request: { url: 'http://127.0.0.1:9/items/{id}' }, sink: { type: 'file', dir: './out' } }));
      const before = usedMemory(await redis.redis.info('memory'));
      const args = [ctx.cli, 'enqueue', 'ids.txt', '--run', 'scale', '--config', 'pullq.config.json'];
      const env = { REDIS_URL: redis.url, PULLQ_LOG_LEVEL: 'warn' };
      const child = useTime
        ? spawnChild('/usr/bin/time', ['-v', process.execPath, ...args], { label: 'enqueue', cwd: tmp.dir, env, keepStdout: true, timeoutMs: 300_000 })
        : spawnChild(process.execPath, args, { label: 'enqueue', cwd: tmp.dir, env, keepStdout: true, timeoutMs: 300_000 });
      let hwmKb = 0;
      const poll = useTime
        ? undefined
        : setInterval(() => {
            try {
              const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.child.pid}/status`, 'utf8'));
              if (m) hwmKb = Math.max(hwmKb, Number(m[1]));
            } catch {
              // gone
            }
          }, 20);
      const r = await child.done;
      if (poll) clearInterval(poll);
      if (r.code !== 0) throw new Error(`pullq enqueue exited ${r.code ?? r.signal}: ${r.stderrTail.join(' | ')}`);
      if (useTime) hwmKb = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderrTail.join('\n'))?.[1] ?? Number.NaN);
      const after = usedMemory(await redis.redis.info('memory'));
      const keys = await redis.redis.dbsize();
      const f: EnqueueFigures = {
        ids: n,
        wallMs: r.wallMs,
        idsPerSecond: (n * 1000) / r.wallMs,
        peakRssBytes: hwmKb * 1024,
        rssSource: useTime ? '/usr/bin/time -v (max RSS)' : '/proc/<pid>/status VmHWM, polled every 20 ms',
        usedMemoryBefore: before,
        usedMemoryAfter: after,
        bytesPerId: (after - before) / n,
        keys,
        output: r.stdout.trim().split('\n')[0] ?? '',
      };
      ctx.log(`  ${fmt.num(n)} IDs: ${fmt.num(f.idsPerSecond)} IDs/s (${fmt.s(f.wallMs)}), peak RSS ${fmt.mb(f.peakRssBytes)}, ${fmt.num(f.bytesPerId, 1)} bytes of Redis per pending ID`);
      results.push(f);
    } finally {
      await redis.stop();
      tmp.remove();
    }
  }
  const big = results[results.length - 1]!;
  const notes: string[] = [];
  if (big.idsPerSecond < 50_000) notes.push(`Enqueue rate ${fmt.num(big.idsPerSecond)} IDs/s is ${fmt.pct(1 - big.idsPerSecond / 50_000)} below the 50k target.`);
  if (big.peakRssBytes > 150 * 1024 * 1024) notes.push(`Peak RSS ${fmt.mb(big.peakRssBytes)} is over the 150 MB target by ${fmt.mb(big.peakRssBytes - 150 * 1024 * 1024)}.`);
  if (big.bytesPerId > 100) notes.push(`${fmt.num(big.bytesPerId, 1)} bytes per ID is over the 100-byte target.`);
  notes.push(
    `10M projection from the ${fmt.num(big.ids)} run (linear): Redis ≈ ${fmt.mb(big.bytesPerId * 10_000_000)} for 10M pending IDs, enqueue ≈ ${fmt.s((10_000_000 * 1000) / big.idsPerSecond)}. ` +
      (results.length > 1 ? `Producer RSS does not grow with the list (streamed): ${fmt.mb(results[0]!.peakRssBytes)} at ${fmt.num(results[0]!.ids)} IDs, ${fmt.mb(big.peakRssBytes)} at ${fmt.num(big.ids)}; not measured at 10M.` : 'Producer RSS: not measured at 10M.'),
  );
  return {
    id: 'enqueue-scale',
    title: `4. Enqueue at scale (${fmt.num(big.ids)} IDs)`,
    setup:
      `\`pullq enqueue ids.txt\` (8-digit numeric IDs, one per line, default batch size) into a throw-away redis-server (no persistence) started for each size, so used_memory starts clean. ` +
      `Rate = IDs ÷ the command's wall time from spawn to exit (Node start-up included). Peak RSS from ${big.rssSource}. Bytes per ID = (used_memory after − before) ÷ IDs, everything pending (no worker ran).`,
    targets: [
      { figure: 'enqueue rate', measured: `${fmt.num(big.idsPerSecond)} IDs/s`, comparison: 'FACTS.md: BullMQ addBulk, one job per ID ≈ 20k jobs/s', target: '≥ 50k IDs/s', met: big.idsPerSecond >= 50_000 },
      { figure: 'producer peak RSS', measured: fmt.mb(big.peakRssBytes), comparison: results.length > 1 ? `${fmt.mb(results[0]!.peakRssBytes)} at ${fmt.num(results[0]!.ids)} IDs` : '–', target: '≤ 150 MB', met: big.peakRssBytes <= 150 * 1024 * 1024 },
      { figure: 'Redis per pending ID', measured: `${fmt.num(big.bytesPerId, 1)} bytes`, comparison: 'FACTS.md: one BullMQ job per ID ≈ 770 bytes', target: '≤ 100 bytes', met: big.bytesPerId <= 100 },
      { figure: '10M IDs projected (memory × 10)', measured: `${fmt.mb(big.bytesPerId * 10_000_000)} of Redis`, comparison: `one job per ID: ≈ ${fmt.mb(770 * 10_000_000)}`, target: '–', met: null },
    ],
    tables: [
      {
        caption: 'Runs',
        columns: ['IDs', 'wall time', 'IDs/s', 'peak RSS', 'used_memory before → after', 'bytes per ID', 'Redis keys'],
        rows: results.map((f) => [fmt.num(f.ids), fmt.s(f.wallMs), fmt.num(f.idsPerSecond), fmt.mb(f.peakRssBytes), `${fmt.mb(f.usedMemoryBefore)} → ${fmt.mb(f.usedMemoryAfter)}`, fmt.num(f.bytesPerId, 1), fmt.num(f.keys)]),
      },
    ],
    notes,
    raw: { runs: results },
    durationMs: Date.now() - started,
  };
}
