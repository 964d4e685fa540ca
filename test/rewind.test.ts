import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startExampleApi, type ExampleApi } from '../scripts/example-api-server.js';
import { scriptSha, startRedisProxy, type ProxiedCommand, type RedisProxy } from '../scripts/redis-fault-proxy.js';
import { createPullq } from '../src/api/create-pullq.js';
import { parseConfig } from '../src/config.js';
import { compileIdUrl } from '../src/ids/id-url.js';
import type { BatchJobData } from '../src/runs/batch-job-data.js';
import { enqueueRun, repairJobs } from '../src/runs/enqueue-run.js';
import { RunStore } from '../src/runs/run-store.js';
import { bullPrefix, runKeys } from '../src/redis/keys.js';
import { luaSource } from '../src/redis/scripts.js';
import { startWorker } from '../src/workers/start-worker.js';
import pg from 'pg';
import { readOutput } from './helpers/pull-in-process.js';
import { PG_URL, postgresAnswers } from './helpers/postgres.js';
import { cleanQueue, newRedis, quietLogger, redisUrl, tempDir, testConfig, uniqueQueue } from './helpers/test-env.js';

// Redis loses acknowledged writes: a crash under `appendfsync everysec`, a
// failover to a replica that had not received them yet. The proxy's rewind runs
// a script, delivers its reply, then puts the keys it declared back as they were:
// whatever Redis rewinds, every ID must end up exactly once and the run complete.

const SHA = {
  commit: scriptSha(luaSource('commitBatch-6.lua')),
  enqueue: scriptSha(luaSource('enqueueIds-n.lua')),
  seal: scriptSha(luaSource('sealRun-3.lua')),
};
/** commitBatch-6.lua's keys but the job lock (KEYS[1]): what its commit changed. */
const COMMIT_KEYS = [1, 2, 3, 4, 5];

/** commitBatch-6.lua's call: EVALSHA sha 6 <6 keys> opId token step part succeeded failed E <2E> <leftover pairs>. */
function commitHasLeftovers(cmd: ProxiedCommand): boolean {
  const e = Number(cmd.args[2 + 6 + 6]!.toString());
  return cmd.args.length > 2 + 6 + 7 + 2 * e;
}

/** enqueueIds-n.lua's p0 (ARGV[3]): the position of the chunk's first ID. */
function enqueueP0(cmd: ProxiedCommand): number {
  const n = Number(cmd.args[1]!.toString());
  return Number(cmd.args[2 + n + 2]!.toString());
}

const tmp = tempDir('rewind');
const direct = newRedis();
let proxy: RedisProxy;
let api: ExampleApi;
const cleanup: (() => Promise<void>)[] = [];

beforeAll(async () => {
  const u = new URL(redisUrl());
  proxy = await startRedisProxy({ host: u.hostname, port: Number(u.port || 6379) });
  api = await startExampleApi({ slowMs: 5600 });
});
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});
afterAll(async () => {
  await proxy.close();
  await api.close();
  direct.disconnect();
  tmp.remove();
});

function proxied(): Redis {
  const r = new Redis(proxy.url, { maxRetriesPerRequest: null, retryStrategy: () => 50 });
  r.on('error', () => undefined);
  cleanup.push(async () => r.disconnect());
  return r;
}

const pgAvailable = await postgresAnswers();
if (!pgAvailable) console.warn(`the PostgreSQL rewind case is skipped: no PostgreSQL at ${PG_URL} (set PULLQ_TEST_POSTGRES_URL)`);

function setUp(label: string, batchSize = 50, sink?: Record<string, unknown>) {
  const queueName = uniqueQueue(label);
  cleanup.push(() => cleanQueue(direct, queueName));
  const json = {
    queue: queueName,
    request: { url: `${api.url}/items/{id}`, timeoutMs: 10_000 },
    worker: { concurrency: 16, lockDurationMs: 5000 },
    enqueue: { batchSize },
    sink: sink ?? { type: 'file', dir: path.join(tmp.dir, label) },
  };
  const config = testConfig(json);
  // The same config with every connection through the proxy (pull opens its own).
  const viaProxy = parseConfig(json, { env: { redisUrl: proxy.url, vars: {} } });
  const file = path.join(tmp.dir, `${label}.ids.txt`);
  return { queueName, config, viaProxy, file, dir: path.join(tmp.dir, label), store: new RunStore(direct, queueName) };
}

async function untilComplete(store: RunStore, run: string, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await store.status(run);
    if (s?.complete || Date.now() > deadline) return s;
    await sleep(50);
  }
}

function expectExactlyOnce(dir: string, run: string, ids: string[]) {
  const out = readOutput(dir, run);
  const seen = [...out.results.map((r) => r.id), ...out.failed.map((f) => f.id)];
  const doubled = seen.length - new Set(seen).size;
  const missing = ids.filter((id) => !new Set(seen).has(id)).length;
  expect({ missing, doubled }).toEqual({ missing: 0, doubled: 0 });
  expect(out.summary).toMatchObject({ total: ids.length, succeeded: ids.length, failed: 0 });
}

/** Enqueues `file` (or `ids`) into run "r" through `redis` (queue and store on it). */
async function enqueueThrough(redis: Redis, s: ReturnType<typeof setUp>, ids?: Iterable<string>) {
  const queue = new Queue<BatchJobData>(s.queueName, { connection: redis, prefix: bullPrefix(s.queueName) });
  queue.on('error', () => undefined);
  cleanup.push(() => queue.close());
  return enqueueRun({ store: new RunStore(redis, s.queueName), queue, run: 'r', source: ids ?? s.file, batchSize: s.config.enqueue.batchSize, urlFor: compileIdUrl(s.config.request.url) });
}

/** The IDs as a source that can be read only once. */
function* once(ids: string[]): Generator<string> {
  yield* ids;
}

describe('acknowledged writes that Redis lost', () => {
  it('a lost commit of a middle step: the batch is run again from what Redis holds, the run completes', async () => {
    const s = setUp('mid');
    // 4 batches; in each a slow ID outlives the 5 s checkpoint, so every batch commits a middle step first.
    const ids = Array.from({ length: 200 }, (_, i) => (i % 50 === 7 ? `slow-${i}` : `m-${i}`));
    writeFileSync(s.file, `${ids.join('\n')}\n`);
    await enqueueThrough(direct, s);
    const lost = proxy.rewind((c) => c.script === SHA.commit && commitHasLeftovers(c), { keys: COMMIT_KEYS });
    const worker = await startWorker({ config: s.config, connection: proxied(), logger: quietLogger() });
    cleanup.push(() => worker.close(5000));
    const st = await untilComplete(s.store, 'r', 50_000);
    expect(lost.fired()).toBe(1);
    expect(st).toMatchObject({ complete: true, total: 200, succeeded: 200, failed: 0 });
    expectExactlyOnce(s.dir, 'r', ids);
  });

  it.skipIf(!pgAvailable)('a lost commit of a middle step, PostgreSQL sink: the lost step\'s rows are never published, one row per ID', async () => {
    const table = `pullq_rewind_${Math.random().toString(36).slice(2, 10)}`;
    const db = new pg.Client({ connectionString: PG_URL });
    await db.connect();
    cleanup.push(async () => {
      await db.query(`DROP TABLE IF EXISTS "${table}"; DROP TABLE IF EXISTS "${table}_runs"`);
      await db.end();
    });
    const s = setUp('pgmid', 50, { type: 'postgres', url: PG_URL, table });
    const ids = Array.from({ length: 100 }, (_, i) => (i % 50 === 7 ? `slow-${i}` : `p-${i}`));
    writeFileSync(s.file, `${ids.join('\n')}\n`);
    await enqueueThrough(direct, s);
    const lost = proxy.rewind((c) => c.script === SHA.commit && commitHasLeftovers(c), { keys: COMMIT_KEYS });
    const worker = await startWorker({ config: s.config, connection: proxied(), logger: quietLogger() });
    cleanup.push(() => worker.close(5000));
    const st = await untilComplete(s.store, 'r', 50_000);
    expect(lost.fired()).toBe(1);
    expect(st).toMatchObject({ complete: true, total: 100, succeeded: 100 });
    const rows = await db.query<{ id: string; n: string }>(`SELECT id, count(*) AS n FROM "${table}" WHERE run = 'r' GROUP BY id`);
    expect({ ids: rows.rows.length, doubled: rows.rows.filter((r) => Number(r.n) > 1).length }).toEqual({ ids: 100, doubled: 0 });
  });

  it('a lost commit of a last step (its job completed): pull gives the batch its job back, the run completes', async () => {
    const s = setUp('last');
    const ids = Array.from({ length: 300 }, (_, i) => `l-${i}`);
    writeFileSync(s.file, `${ids.join('\n')}\n`);
    const lost = proxy.rewind((c) => c.script === SHA.commit && !commitHasLeftovers(c), { keys: COMMIT_KEYS });
    const pq = createPullq(s.viaProxy, { logger: quietLogger() });
    cleanup.push(() => pq.close());
    const r = await pq.pull(s.file, { run: 'r', repairAfterMs: 1000, signal: AbortSignal.timeout(40_000) });
    expect(lost.fired()).toBe(1);
    expect(r.complete).toBe(true);
    expectExactlyOnce(s.dir, 'r', ids);
  });

  // Chunks of 1,000 IDs: 20 whole batches each (batch size 50), or batches of 300 that a chunk's edges cut.
  it.each([
    { kind: 'of full batches', label: 'full', batchSize: undefined, prefix: 'f', then: 'enqueuing again adds what was lost' },
    { kind: 'that straddles batches', label: 'straddle', batchSize: 300, prefix: 't', then: 'enqueuing again completes the run' },
  ])('a lost enqueue chunk $kind: enqueue fails loudly, $then', async ({ label, batchSize, prefix }) => {
    const s = setUp(label, batchSize);
    // A generator (it cannot be read again).
    const ids = Array.from({ length: 3000 }, (_, i) => `${prefix}-${i}`);
    const lost = proxy.rewind((c) => c.script === SHA.enqueue && enqueueP0(c) === 1000);
    const producer = proxied();
    const err = await enqueueThrough(producer, s, once(ids)).then(() => null, (e: unknown) => e);
    expect(lost.fired()).toBe(1);
    expect(err).toMatchObject({ code: 'enqueue_lost' });
    const again = await enqueueThrough(producer, s, once(ids));
    expect(again.total).toBe(3000);
    const worker = await startWorker({ config: s.config, connection: direct, logger: quietLogger() });
    cleanup.push(() => worker.close(5000));
    const st = await untilComplete(s.store, 'r', 30_000);
    expect(st).toMatchObject({ complete: true, total: 3000, succeeded: 3000 });
    expectExactlyOnce(s.dir, 'r', ids);
  });

  it('a lost last enqueue chunk of a file: sealing notices, the producer reads the file again and the run completes', async () => {
    const s = setUp('tail');
    const ids = Array.from({ length: 2500 }, (_, i) => `e-${i}`);
    writeFileSync(s.file, `${ids.join('\n')}\n`);
    // The file is read in one chunk: the only chunk is the last.
    const lost = proxy.rewind((c) => c.script === SHA.enqueue && enqueueP0(c) === 0);
    const r = await enqueueThrough(proxied(), s);
    expect(lost.fired()).toBe(1);
    expect(r.total).toBe(2500);
    const worker = await startWorker({ config: s.config, connection: direct, logger: quietLogger() });
    cleanup.push(() => worker.close(5000));
    const st = await untilComplete(s.store, 'r', 30_000);
    expect(st).toMatchObject({ complete: true, total: 2500, succeeded: 2500 });
    expectExactlyOnce(s.dir, 'r', ids);
  });

  it('a lost seal: pull enqueues again and completes', async () => {
    const s = setUp('seal');
    const ids = Array.from({ length: 120 }, (_, i) => `z-${i}`);
    writeFileSync(s.file, `${ids.join('\n')}\n`);
    const lost = proxy.rewind((c) => c.script === SHA.seal);
    const pq = createPullq(s.viaProxy, { logger: quietLogger() });
    cleanup.push(() => pq.close());
    const r = await pq.pull(s.file, { run: 'r', repairAfterMs: 1000, signal: AbortSignal.timeout(30_000) });
    expect(lost.fired()).toBe(1);
    expect(r.complete).toBe(true);
    expectExactlyOnce(s.dir, 'r', ids);
  });
});

describe('pull while another process finalizes', () => {
  it('waits between reads instead of spinning', async () => {
    const s = setUp('spin');
    writeFileSync(s.file, 'a\n');
    const store = new RunStore(direct, s.queueName);
    await store.open('r', { source: 'x', expectedIds: 1, batchSize: 50 });
    const k = runKeys(s.queueName, 'r');
    // A done run whose finalize lock another process holds.
    await direct.hset(k.meta, 'sealed', '1', 'total', '1', 'succeeded', '1');
    await direct.set(k.finalizeLock, 'someone-else', 'PX', 60_000);
    const pq = createPullq(s.viaProxy, { logger: quietLogger() });
    cleanup.push(() => pq.close());
    const before = proxy.stats.commands;
    const r = await pq.pull(s.file, { run: 'r', workers: 0, signal: AbortSignal.timeout(1500) });
    const commands = proxy.stats.commands - before;
    expect(r.complete).toBe(false);
    // Each loop reads the status and tries the lock (a few commands); 250 ms apart that is well under 200 in 1.5 s.
    expect(commands).toBeLessThan(200);
  });
});

describe('a worker that read "aborted" just before a resume', () => {
  it('does not strand its batch: it sees the resume and runs the batch', async () => {
    const s = setUp('abort');
    const ids = Array.from({ length: 50 }, (_, i) => `a-${i}`);
    writeFileSync(s.file, `${ids.join('\n')}\n`);
    await enqueueThrough(direct, s);
    await s.store.abort('r', 'a test abort');
    const queue = new Queue<BatchJobData>(s.queueName, { connection: direct, prefix: bullPrefix(s.queueName) });
    cleanup.push(() => queue.close());
    // The resume (clear the abort, repair the run's jobs) runs between the worker's read of the abort and its hand-back.
    const pj = runKeys(s.queueName, 'r').pendingJobs;
    const resumed = proxy.before((c) => c.name === 'sadd' && c.args[0]?.toString() === pj, async () => {
      await s.store.clearAbort('r');
      await repairJobs(queue, s.store, 'r');
    });
    const worker = await startWorker({ config: s.config, connection: proxied(), logger: quietLogger() });
    cleanup.push(() => worker.close(5000));
    const st = await untilComplete(s.store, 'r', 15_000);
    expect(resumed.fired()).toBe(1);
    expect(st).toMatchObject({ complete: true, total: 50, succeeded: 50 });
    expectExactlyOnce(s.dir, 'r', ids);
  });
});
