import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startExampleApi, type ExampleApi } from '../scripts/example-api-server.js';
import { freePort } from '../scripts/local-redis.js';
import { createPullq } from '../src/index.js';
import { RunStore } from '../src/runs/run-store.js';
import { runCli, spawnCli, type CliResult } from './helpers/cli.js';
import { expectEveryIdOnce } from './helpers/fleet-fixture.js';
import { quietLogger, redisAnswersOn, tempDir } from './helpers/test-env.js';

// Issue #21, part 3: SIGTERM ends a worker (and `pull`, and the library's close()) within worker.shutdownTimeoutMs
// + 10 s whether Redis answers or not. Before, a worker told to stop while Redis was gone never exited. What it had
// not committed goes back to the queue by lock expiry, as after a kill: another worker finishes the run.
// A Redis of this file's own (the shared one must never be stopped): hung with SIGSTOP, or killed (refused connections).

const SHUTDOWN_MS = 1000;
const BOUND_MS = SHUTDOWN_MS + 10_000;
const tmp = tempDir('shutdown-bound');
let port = 0;
let server: ChildProcess | undefined;
let api: ExampleApi;
const ids = Array.from({ length: 24 }, (_, i) => `s-${i}`);
const env = () => ({ REDIS_URL: `redis://127.0.0.1:${port}`, PULLQ_LOG_LEVEL: 'warn' });

/**
 * A Redis of this test's own: a port and a data directory no earlier test used, so nothing one test left (its
 * data, or another file's server that took the port while ours was down) can reach the next.
 */
async function startRedis(): Promise<void> {
  port = await freePort();
  const dir = mkdtempSync(path.join(tmp.dir, 'redis-'));
  server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'always', '--save', ''], { stdio: 'ignore' });
  await redisAnswersOn(port);
}

async function killRedis(): Promise<void> {
  const s = server;
  server = undefined;
  if (!s || s.exitCode !== null || s.signalCode !== null) return;
  s.kill('SIGCONT');
  await new Promise<void>((resolve) => {
    s.once('exit', () => resolve());
    s.kill('SIGKILL');
  });
}

/** A client of this file's Redis that waits through its outages. */
function watcher(): { store: RunStore; close(): void } {
  const r = new Redis(port, '127.0.0.1', { maxRetriesPerRequest: null, retryStrategy: () => 100 });
  r.on('error', () => undefined);
  return { store: new RunStore(r, 'bound'), close: () => r.disconnect() };
}

/** Requests the slow API has received so far. */
const received = () => api.totalRequests();

/** Waits for `done` at most `ms`; then SIGKILLs the child so a hung process fails the test instead of leaking. */
async function exitWithin(p: { child: ChildProcess; done: Promise<CliResult> }, ms: number): Promise<{ result: CliResult; tookMs: number; hung: boolean }> {
  const started = Date.now();
  const timer = setTimeout(() => p.child.kill('SIGKILL'), ms);
  const result = await p.done;
  clearTimeout(timer);
  return { result, tookMs: Date.now() - started, hung: result.signal === 'SIGKILL' };
}

async function waitComplete(run: string, ms: number): Promise<void> {
  const w = watcher();
  try {
    const deadline = Date.now() + ms;
    while (!(await w.store.status(run))?.complete) {
      if (Date.now() > deadline) throw new Error(`run ${run} not complete: ${JSON.stringify(await w.store.status(run))}`);
      await sleep(100);
    }
  } finally {
    w.close();
  }
}

beforeAll(async () => {
  // Slow answers: when Redis stops, requests are in flight and their steps uncommitted.
  api = await startExampleApi({ latencyMs: 1500 });
  writeFileSync(path.join(tmp.dir, 'pullq.config.json'), JSON.stringify({
    queue: 'bound',
    request: { url: `${api.url}/items/{id}` },
    worker: { concurrency: 8, lockDurationMs: 2000, shutdownTimeoutMs: SHUTDOWN_MS },
    enqueue: { batchSize: 5 },
    sink: { type: 'file', dir: './out' },
  }));
  writeFileSync(path.join(tmp.dir, 'ids.txt'), `${ids.join('\n')}\n`);
});
afterEach(async () => {
  await killRedis();
});
afterAll(async () => {
  await killRedis();
  await api.close();
  tmp.remove();
});

describe('SIGTERM while Redis is gone', () => {
  it(`Redis hung (SIGSTOP), requests in flight: the worker exits within shutdownTimeoutMs + 10 s; once Redis is back, another worker finishes the run, every ID once`, async () => {
    await startRedis();
    expect((await runCli(['enqueue', 'ids.txt', '--run', 'hung'], { cwd: tmp.dir, env: env() })).code).toBe(0);
    const worker = spawnCli(['worker'], { cwd: tmp.dir, env: env() });
    const before = received();
    while (received() < before + 4) await sleep(20);
    server!.kill('SIGSTOP');
    worker.child.kill('SIGTERM');
    const { result, tookMs, hung } = await exitWithin(worker, BOUND_MS + 3000);
    console.log(`worker SIGTERM with Redis hung: exit ${result.code ?? result.signal} after ${tookMs} ms`);
    expect(hung, `still running ${BOUND_MS + 3000} ms after SIGTERM; stderr: ${result.stderr}`).toBe(false);
    expect(tookMs).toBeLessThan(BOUND_MS);
    expect(result.code).toBe(0);
    expect(result.stderr).not.toMatch(/\n\s+at /);

    server!.kill('SIGCONT');
    const second = spawnCli(['worker'], { cwd: tmp.dir, env: env() });
    await waitComplete('hung', 40_000);
    second.child.kill('SIGTERM');
    expect((await second.done).code).toBe(0);
    expectEveryIdOnce(tmp.dir, 'hung', ids);
  });

  it('Redis killed (connections refused): the worker exits within shutdownTimeoutMs + 10 s', async () => {
    await startRedis();
    expect((await runCli(['enqueue', 'ids.txt', '--run', 'refused'], { cwd: tmp.dir, env: env() })).code).toBe(0);
    const worker = spawnCli(['worker'], { cwd: tmp.dir, env: env() });
    const before = received();
    while (received() < before + 4) await sleep(20);
    await killRedis();
    worker.child.kill('SIGTERM');
    const { result, tookMs, hung } = await exitWithin(worker, BOUND_MS + 3000);
    console.log(`worker SIGTERM with Redis refusing: exit ${result.code ?? result.signal} after ${tookMs} ms`);
    expect(hung, `still running ${BOUND_MS + 3000} ms after SIGTERM; stderr: ${result.stderr}`).toBe(false);
    expect(tookMs).toBeLessThan(BOUND_MS);
    expect(result.code).toBe(0);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it('pullq pull with Redis hung: SIGTERM ends it within the bound (exit 2, the run not complete)', async () => {
    await startRedis();
    const pull = spawnCli(['pull', 'ids.txt', '--run', 'pulled'], { cwd: tmp.dir, env: env() });
    const before = received();
    while (received() < before + 4) await sleep(20);
    server!.kill('SIGSTOP');
    pull.child.kill('SIGTERM');
    const { result, tookMs, hung } = await exitWithin(pull, BOUND_MS + 3000);
    console.log(`pull SIGTERM with Redis hung: exit ${result.code ?? result.signal} after ${tookMs} ms`);
    expect(hung, `still running ${BOUND_MS + 3000} ms after SIGTERM; stderr: ${result.stderr}`).toBe(false);
    expect(tookMs).toBeLessThan(BOUND_MS);
    expect(result.code).toBe(2);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it("the library's close() with Redis hung resolves within the bound (and does not exit the process)", async () => {
    await startRedis();
    const pullq = createPullq({
      queue: 'bound',
      redis: { url: `redis://127.0.0.1:${port}` },
      request: { url: `${api.url}/items/{id}` },
      worker: { concurrency: 8, lockDurationMs: 2000, shutdownTimeoutMs: SHUTDOWN_MS },
      enqueue: { batchSize: 5 },
      sink: { type: 'file', dir: path.join(tmp.dir, 'out') },
    }, { logger: quietLogger() });
    await pullq.enqueue(ids, { run: 'library' });
    const before = received();
    await pullq.worker();
    while (received() < before + 4) await sleep(20);
    server!.kill('SIGSTOP');
    const started = Date.now();
    const closed = await Promise.race([pullq.close().then(() => 'closed' as const), sleep(BOUND_MS + 3000).then(() => 'still closing' as const)]);
    const tookMs = Date.now() - started;
    console.log(`library close() with Redis hung: ${closed} after ${tookMs} ms`);
    expect(closed).toBe('closed');
    expect(tookMs).toBeLessThan(BOUND_MS);
  });
});
