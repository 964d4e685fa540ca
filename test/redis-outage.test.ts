import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startExampleApi, type ExampleApi } from '../scripts/example-api-server.js';
import { freePort } from '../scripts/local-redis.js';
import { RunStore } from '../src/runs/run-store.js';
import { runCli, spawnCli } from './helpers/cli.js';
import { readOutput } from './helpers/pull-in-process.js';
import { redisAnswersOn, tempDir } from './helpers/test-env.js';

// A Redis of this test's own, so it can be cut off and restarted mid-run.

const tmp = tempDir('outage');
let port = 0;
let server: ChildProcess | undefined;
let api: ExampleApi;
const N = 400;
const ids = Array.from({ length: N }, (_, i) => `o-${i}`);

async function startRedis(extra: string[] = []): Promise<void> {
  server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', tmp.dir, '--appendonly', 'yes', '--appendfsync', 'always', '--save', '', ...extra], { stdio: 'ignore' });
  await redisAnswersOn(port);
}

async function stopRedis(): Promise<void> {
  if (!server) return;
  const s = server;
  server = undefined;
  await new Promise<void>((resolve) => {
    s.once('exit', () => resolve());
    s.kill('SIGKILL');
  });
}

beforeAll(async () => {
  port = await freePort();
  await startRedis();
  api = await startExampleApi({ latencyMs: 10 });
  writeFileSync(path.join(tmp.dir, 'pullq.config.json'), JSON.stringify({
    queue: 'outage',
    request: { url: `${api.url}/items/{id}` },
    worker: { concurrency: 4, lockDurationMs: 2000 },
    enqueue: { batchSize: 20 },
    sink: { type: 'file', dir: './out' },
  }));
  writeFileSync(path.join(tmp.dir, 'ids.txt'), `${ids.join('\n')}\n`);
});
afterAll(async () => {
  await stopRedis();
  await api.close();
  tmp.remove();
});

describe('Redis trouble mid-run', () => {
  it('connections killed, then Redis down for 2 s and restarted: the run completes, every ID exactly once', async () => {
    const env = { REDIS_URL: `redis://127.0.0.1:${port}`, PULLQ_LOG_LEVEL: 'error' };
    expect((await runCli(['enqueue', 'ids.txt', '--run', 'outage'], { cwd: tmp.dir, env })).code).toBe(0);
    const w1 = spawnCli(['worker'], { cwd: tmp.dir, env });
    const w2 = spawnCli(['worker'], { cwd: tmp.dir, env });
    const watcher = new Redis(port, '127.0.0.1', { maxRetriesPerRequest: null, retryStrategy: () => 100 });
    watcher.on('error', () => undefined);
    const store = new RunStore(watcher, 'outage');
    const progress = async () => (await store.status('outage'))?.succeeded ?? 0;
    while ((await progress()) < N / 4) await sleep(20);
    await watcher.client('KILL', 'TYPE', 'NORMAL');
    while ((await progress()) < N / 2) await sleep(20);
    await stopRedis();
    await sleep(2000);
    await startRedis();
    const deadline = Date.now() + 60_000;
    while (!(await store.status('outage'))?.complete) {
      if (Date.now() > deadline) throw new Error(`not complete: ${JSON.stringify(await store.status('outage'))}`);
      await sleep(100);
    }
    watcher.disconnect();
    w1.child.kill('SIGTERM');
    w2.child.kill('SIGTERM');
    expect((await w1.done).code).toBe(0);
    expect((await w2.done).code).toBe(0);
    const out = readOutput(path.join(tmp.dir, 'out'), 'outage');
    const seen = [...out.results.map((r) => r.id), ...out.failed.map((f) => f.id)];
    expect(seen).toHaveLength(N);
    expect(new Set(seen).size).toBe(N);
    expect(out.failed).toEqual([]);
  });

  it('warns once at start when Redis may evict queue data', async () => {
    await stopRedis();
    await startRedis(['--maxmemory', '100mb', '--maxmemory-policy', 'allkeys-lru']);
    const env = { REDIS_URL: `redis://127.0.0.1:${port}` };
    const r = await runCli(['pull', 'ids.txt', '--run', 'evict', '--workers', '1'], { cwd: tmp.dir, env });
    expect(r.code).toBe(0);
    expect(r.stderr.match(/maxmemory-policy is allkeys-lru; BullMQ needs noeviction/g)).toHaveLength(1);
  });
});
