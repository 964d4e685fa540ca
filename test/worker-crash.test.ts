import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startExampleApi, type ExampleApi } from '../scripts/example-api-server.js';
import { RunStore, type RunStatus } from '../src/runs/run-store.js';
import { runCli, spawnCli } from './helpers/cli.js';
import { readOutput } from './helpers/pull-in-process.js';
import { cleanQueue, newRedis, onCluster, redisUrl, tearDown, tempDir, uniqueQueue } from './helpers/test-env.js';

// Real worker processes against a real API and Redis: kill -9 and SIGTERM mid-run.

const tmp = tempDir('crash');
const redis = newRedis();
const queue = uniqueQueue('crash');
const store = new RunStore(redis, queue);
let api: ExampleApi;
const N = 600;
const ids = Array.from({ length: N }, (_, i) => (i % 3 === 0 ? `${i}` : i % 3 === 1 ? `id:${i}` : `x ${i}`));

beforeAll(async () => {
  api = await startExampleApi({ latencyMs: 15, auth: { type: 'header', tokens: ['crash-token'] } });
  writeFileSync(path.join(tmp.dir, 'pullq.config.json'), JSON.stringify({
    queue,
    request: { url: `${api.url}/items/{id}`, timeoutMs: 5000 },
    auth: { type: 'header', tokens: ['crash-token'] },
    worker: { concurrency: 4, lockDurationMs: 1500, shutdownTimeoutMs: 10000 },
    enqueue: { batchSize: 20 },
    sink: { type: 'file', dir: './out' },
  }));
  writeFileSync(path.join(tmp.dir, 'ids.txt'), `${ids.join('\n')}\n`);
});
afterAll(async () => {
  for (const q of ownQueues) await cleanQueue(redis, q);
  await tearDown({ api, queue, redis, tmp });
});

const env = () => ({ REDIS_URL: redisUrl(), PULLQ_LOG_LEVEL: 'warn' });

/** The pull-level tests, which run side by side: a queue and a config file of their own (same API, same IDs). */
const ownQueues: string[] = [];
function ownQueue(run: string): { config: string; store: RunStore } {
  const q = uniqueQueue(`crash-${run}`);
  ownQueues.push(q);
  const config = `pullq.${run}.json`;
  writeFileSync(path.join(tmp.dir, config), JSON.stringify({ ...JSON.parse(readFileSync(path.join(tmp.dir, 'pullq.config.json'), 'utf8')), queue: q }));
  return { config, store: new RunStore(redis, q) };
}

async function waitFor(run: string, pred: (s: RunStatus) => boolean, timeoutMs = 45_000, on: RunStore = store): Promise<RunStatus> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await on.status(run);
    if (s && pred(s)) return s;
    if (Date.now() > deadline) throw new Error(`timed out waiting; status ${JSON.stringify(s)}`);
    await sleep(25);
  }
}

function expectExactlyOnce(run: string) {
  const out = readOutput(path.join(tmp.dir, 'out'), run);
  const seen = [...out.results.map((r) => r.id), ...out.failed.map((f) => f.id)];
  expect(seen.length).toBe(N);
  expect(new Set(seen).size).toBe(N);
  expect([...seen].sort()).toEqual([...ids].sort());
  for (const r of out.results) expect((r.data as { id: string }).id).toBe(r.id);
  expect(out.summary).toMatchObject({ run, total: N, succeeded: N, failed: 0 });
}

describe('worker replicas', () => {
  // In the cluster project only the two worker-level tests run again: the pull-level ones below go through the same
  // scripts and commits; they run on single Redis, side by side, each on a queue of its own.
  it('SIGKILL of a worker mid-run: after the lock expires another finishes; every ID exactly once', async () => {
    const run = 'kill9';
    api.requestsById.clear();
    expect((await runCli(['enqueue', 'ids.txt', '--run', run], { cwd: tmp.dir, env: env() })).code).toBe(0);
    const a = spawnCli(['worker'], { cwd: tmp.dir, env: env() });
    const b = spawnCli(['worker'], { cwd: tmp.dir, env: env() });
    await waitFor(run, (s) => s.succeeded >= N / 4);
    a.child.kill('SIGKILL');
    expect((await a.done).signal).toBe('SIGKILL');
    const c = spawnCli(['worker'], { cwd: tmp.dir, env: env() });
    await waitFor(run, (s) => s.complete);
    b.child.kill('SIGTERM');
    c.child.kill('SIGTERM');
    expect((await b.done).code).toBe(0);
    expect((await c.done).code).toBe(0);
    expectExactlyOnce(run);
    // The killed worker's in-flight batch was fetched again by another: the API saw some IDs twice,
    // the output holds them once.
    const refetched = [...api.requestsById.values()].filter((n) => n > 1).length;
    expect(refetched).toBeGreaterThan(0);
  });

  it('SIGTERM mid-run: the worker finishes in-flight requests, hands back the rest, exits 0; nothing is fetched twice', async () => {
    const run = 'sigterm';
    api.requestsById.clear();
    expect((await runCli(['enqueue', 'ids.txt', '--run', run], { cwd: tmp.dir, env: env() })).code).toBe(0);
    const a = spawnCli(['worker'], { cwd: tmp.dir, env: env() });
    await waitFor(run, (s) => s.succeeded >= N / 4);
    const stopAt = Date.now();
    a.child.kill('SIGTERM');
    const ra = await a.done;
    expect(ra.code).toBe(0);
    expect(Date.now() - stopAt).toBeLessThan(5000);
    const mid = await store.status(run);
    expect(mid!.succeeded).toBeLessThan(N);
    const b = spawnCli(['worker'], { cwd: tmp.dir, env: env() });
    await waitFor(run, (s) => s.complete);
    b.child.kill('SIGTERM');
    expect((await b.done).code).toBe(0);
    expectExactlyOnce(run);
    expect(Math.max(...api.requestsById.values())).toBe(1);
  });

  it.skipIf(onCluster()).concurrent('pull --workers 0 only waits while separate workers do the work', async () => {
    const run = 'wait-only';
    const { config, store: own } = ownQueue(run);
    const pull = spawnCli(['pull', 'ids.txt', '--run', run, '--workers', '0', '--config', config], { cwd: tmp.dir, env: env() });
    await waitFor(run, (s) => s.sealed, undefined, own);
    await sleep(300);
    expect((await own.status(run))!.succeeded).toBe(0);
    const w = spawnCli(['worker', '--config', config], { cwd: tmp.dir, env: env() });
    const r = await pull.done;
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`run ${run} complete`);
    w.child.kill('SIGTERM');
    expect((await w.done).code).toBe(0);
    expectExactlyOnce(run);
  });

  it.skipIf(onCluster()).concurrent('pull interrupted (SIGINT) exits 2 and says how to resume; re-running it completes the run', async () => {
    const run = 'interrupted';
    const { config, store: own } = ownQueue(run);
    const first = spawnCli(['pull', 'ids.txt', '--run', run, '--config', config], { cwd: tmp.dir, env: env() });
    await waitFor(run, (s) => s.succeeded >= N / 4, undefined, own);
    first.child.kill('SIGINT');
    const r1 = await first.done;
    expect(r1.code).toBe(2);
    expect(r1.stderr).toContain(`run ${run} is not complete; run \`pullq pull ids.txt --run ${run}\``);
    const r2 = await runCli(['pull', 'ids.txt', '--run', run, '--config', config], { cwd: tmp.dir, env: env() });
    expect(r2.code).toBe(0);
    expectExactlyOnce(run);
  });

  it.skipIf(onCluster()).concurrent('SIGKILL of pull mid-run: re-running pull finishes the run; every ID exactly once', async () => {
    const run = 'pull-kill9';
    const { config, store: own } = ownQueue(run);
    const first = spawnCli(['pull', 'ids.txt', '--run', run, '--config', config], { cwd: tmp.dir, env: env() });
    await waitFor(run, (s) => s.succeeded >= N / 4, undefined, own);
    first.child.kill('SIGKILL');
    expect((await first.done).signal).toBe('SIGKILL');
    const second = await runCli(['pull', 'ids.txt', '--run', run, '--config', config], { cwd: tmp.dir, env: env() });
    expect(second.code).toBe(0);
    expect(second.stderr).toContain(`run ${run} is already enqueued`);
    expectExactlyOnce(run);
  });
});
