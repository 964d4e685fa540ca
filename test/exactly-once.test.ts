import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue, UnrecoverableError, Worker } from 'bullmq';
import pLimit from 'p-limit';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startExampleApi, type ExampleApi } from '../scripts/example-api-server.js';
import { CredentialPool } from '../src/auth/credential-pool.js';
import { compileIdUrl } from '../src/ids/id-url.js';
import { createHttpClient } from '../src/jobs/http-client.js';
import { processBatch, type BatchContext } from '../src/jobs/process-batch.js';
import { enqueueRun } from '../src/runs/enqueue-run.js';
import { finalizeRun } from '../src/runs/finalize-run.js';
import { RunStore } from '../src/runs/run-store.js';
import { FileSink } from '../src/sinks/file-sink.js';
import type { BatchJobData } from '../src/runs/batch-job-data.js';
import { startWorker } from '../src/workers/start-worker.js';
import { NO_EVENTS } from '../src/jobs/batch-events.js';
import { readOutput } from './helpers/pull-in-process.js';
import { cleanQueue, newRedis, quietLogger, tempDir, testConfig, uniqueQueue } from './helpers/test-env.js';
import { bullPrefix } from '../src/redis/keys.js';

const tmp = tempDir('once');
afterAll(() => tmp.remove());
const redis = newRedis();
let api: ExampleApi;
let queueName: string;
let queue: Queue<BatchJobData>;
beforeEach(async () => {
  api = await startExampleApi({});
  queueName = uniqueQueue('once');
  queue = new Queue<BatchJobData>(queueName, { connection: redis, prefix: bullPrefix(queueName) });
});
afterEach(async () => {
  await api.close();
  await queue.close();
  await cleanQueue(redis, queueName);
});
afterAll(() => redis.disconnect());

async function context(): Promise<BatchContext> {
  const config = testConfig({ queue: queueName, request: { url: `${api.url}/items/{id}` }, sink: { type: 'file', dir: tmp.dir } });
  return {
    config,
    store: new RunStore(redis, queueName),
    sink: new FileSink(tmp.dir),
    pool: await CredentialPool.open({ redis, config, logger: quietLogger(), http: createHttpClient(config) }),
    http: createHttpClient(config),
    limit: pLimit(8),
    stopping: () => false,
    fatal: (reason) => {
      throw new Error(reason);
    },
    logger: quietLogger(),
    events: NO_EVENTS,
  };
}

describe('the commit point', () => {
  it('two attempts of one batch: only the lock holder commits, the other part is discarded', async () => {
    const ctx = await context();
    const file = path.join(tmp.dir, 'ids-a.txt');
    writeFileSync(file, 'a\nb\nc\n');
    await enqueueRun({ store: ctx.store, queue, run: 'twice', source: file, batchSize: 10, urlFor: compileIdUrl(ctx.config.request.url) });
    const lockKey = `${bullPrefix(queueName)}:${queueName}:twice.b0:lock`;
    // A stale attempt (its lock expired and another worker took the job) runs the whole batch...
    await redis.set(lockKey, 'token-new');
    const stale = await processBatch(ctx, { run: 'twice', batch: 0, lockKey, token: 'token-old' });
    expect(stale).toMatchObject({ committed: false });
    expect(await ctx.store.status('twice')).toMatchObject({ succeeded: 0, failed: 0, done: false });
    // ...and the current holder commits it.
    const current = await processBatch(ctx, { run: 'twice', batch: 0, lockKey, token: 'token-new' });
    expect(current).toMatchObject({ committed: true, runDone: true, succeeded: 3 });
    // A third attempt after the commit finds nothing left to do.
    expect(await processBatch(ctx, { run: 'twice', batch: 0, lockKey, token: 'token-new' })).toMatchObject({ committed: true, succeeded: 0 });
    expect(await finalizeRun(ctx.store, ctx.sink, 'twice', ctx.logger)).toBe(true);
    const out = readOutput(tmp.dir, 'twice');
    // The API saw every ID twice, the output holds each once.
    expect(api.requestsById.get('a')).toBe(2);
    expect(out.results.map((r) => r.id).sort()).toEqual(['a', 'b', 'c']);
    expect(out.summary).toMatchObject({ total: 3, succeeded: 3, failed: 0 });
  });

  it('an enqueue cut short resumes: nothing lost, nothing doubled', async () => {
    const ctx = await context();
    const ids = Array.from({ length: 2500 }, (_, i) => `id-${i}`);
    const file = path.join(tmp.dir, 'ids-b.txt');
    writeFileSync(file, `${ids.join('\n')}\n`);
    // The first producer got through 1,200 IDs and died before adding any BullMQ job.
    await ctx.store.open('resume', { source: file, expectedIds: 2500, batchSize: 100 });
    const bits = await ctx.store.runSetting('resume', 'seenBits');
    await ctx.store.addIds('resume', ids.slice(0, 1200), 100, bits);
    expect(await queue.count()).toBe(0);
    const r = await enqueueRun({ store: ctx.store, queue, run: 'resume', source: file, batchSize: 100, urlFor: compileIdUrl(ctx.config.request.url) });
    expect(r).toMatchObject({ resumed: true, added: 1300, total: 2500 });
    expect(await queue.getJobCountByTypes('waiting')).toBe(25);
    await expect(enqueueRun({ store: ctx.store, queue, run: 'resume', source: file, batchSize: 100, urlFor: compileIdUrl(ctx.config.request.url) })).rejects.toThrow(/already exists and is fully enqueued/);
  });

  it('a batch job BullMQ gave up on is retried when a worker starts: its IDs are not lost', async () => {
    const ctx = await context();
    const file = path.join(tmp.dir, 'ids-c.txt');
    writeFileSync(file, 'f1\nf2\nf3\n');
    await enqueueRun({ store: ctx.store, queue, run: 'gaveup', source: file, batchSize: 10, urlFor: compileIdUrl(ctx.config.request.url) });
    const bare = new Worker(queueName, null, { connection: redis, autorun: false, prefix: bullPrefix(queueName) });
    const job = (await bare.getNextJob('tok-1'))!;
    // As if its attempts were used up: an UnrecoverableError fails it for good.
    await job.moveToFailed(new UnrecoverableError('simulated: attempts exhausted'), 'tok-1', false);
    await bare.close();
    expect(await queue.getJobCountByTypes('failed')).toBe(1);
    const config = { ...ctx.config, worker: { ...ctx.config.worker, concurrency: 4 } };
    const handle = await startWorker({ config, connection: redis, logger: quietLogger() });
    try {
      for (let i = 0; i < 100 && !(await ctx.store.status('gaveup'))?.complete; i++) await sleep(50);
      expect(await ctx.store.status('gaveup')).toMatchObject({ complete: true, succeeded: 3 });
      expect(readOutput(tmp.dir, 'gaveup').results.map((r) => r.id).sort()).toEqual(['f1', 'f2', 'f3']);
    } finally {
      await handle.close(2000);
    }
  });
});
