import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Redis } from 'ioredis';
import { expect } from 'vitest';
import { spawnCli } from './cli.js';
import { readOutput } from './pull-in-process.js';
import { cleanQueue, newRedis, redisUrl, tempDir, uniqueQueue } from './test-env.js';

/** A working folder for the built CLI: its own queue, pullq.config.json and ids.txt; `workers(n)` spawns worker replicas. */
export interface FleetFixture {
  dir: string;
  env: Record<string, string>;
  queue: string;
  redis: Redis;
  workers(n: number): ReturnType<typeof spawnCli>[];
}

/**
 * Writes `config` (with its own queue and a file sink in ./out) and the IDs, and pushes onto `cleanups` what
 * undoes it: the queue's keys, the folder, and SIGTERM to workers still running (run them in afterEach).
 */
export function fleetFixture(o: { label: string; config: Record<string, unknown>; ids: readonly string[]; env?: Record<string, string>; cleanups: (() => Promise<void> | void)[] }): FleetFixture {
  const tmp = tempDir(o.label);
  const queue = uniqueQueue(o.label);
  const redis = newRedis();
  o.cleanups.push(async () => {
    await cleanQueue(redis, queue);
    redis.disconnect();
    tmp.remove();
  });
  writeFileSync(path.join(tmp.dir, 'pullq.config.json'), JSON.stringify({ queue, sink: { type: 'file', dir: './out' }, ...o.config }));
  writeFileSync(path.join(tmp.dir, 'ids.txt'), `${o.ids.join('\n')}\n`);
  const env = { REDIS_URL: redisUrl(), PULLQ_LOG_LEVEL: 'warn', ...o.env };
  return {
    dir: tmp.dir,
    env,
    queue,
    redis,
    workers: (n) => {
      const ws = Array.from({ length: n }, () => spawnCli(['worker'], { cwd: tmp.dir, env }));
      o.cleanups.unshift(async () => {
        for (const w of ws) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGTERM');
        await Promise.all(ws.map((w) => w.done));
      });
      return ws;
    },
  };
}

/** Every ID of `ids` is in exactly one line of the run's results.jsonl or failed.jsonl (under dir/out). */
export function expectEveryIdOnce(dir: string, run: string, ids: readonly string[]) {
  const out = readOutput(path.join(dir, 'out'), run);
  const seen = [...out.results.map((r) => r.id), ...out.failed.map((f) => f.id)];
  expect(seen).toHaveLength(ids.length);
  expect([...seen].sort()).toEqual([...ids].sort());
  return out;
}
