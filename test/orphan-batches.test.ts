import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startExampleApi, type ExampleApi } from '../scripts/example-api-server.js';
import { addBatchJobs } from '../src/runs/enqueue-run.js';
import { RunStore } from '../src/runs/run-store.js';
import type { BatchJobData } from '../src/runs/batch-job-data.js';
import { startWorker } from '../src/workers/start-worker.js';
import { runCli } from './helpers/cli.js';
import { readOutput } from './helpers/pull-in-process.js';
import { newRedis, quietLogger, redisUrl, tearDown, tempDir, testConfig, uniqueQueue } from './helpers/test-env.js';
import { bullPrefix } from '../src/redis/keys.js';

// Issue #8, item 2: a producer SIGKILLed between sealing a run and adding its
// last batch's job. Nothing re-added that job: the run never completed and
// `pull --run` waited for ever. Any batch without a job now gets one back.

const tmp = tempDir('orphan');
const redis = newRedis();
const queueName = uniqueQueue('orphan');
const queue = new Queue<BatchJobData>(queueName, { connection: redis, prefix: bullPrefix(queueName) });
const store = new RunStore(redis, queueName);
let api: ExampleApi;
const N = 250;
const ids = Array.from({ length: N }, (_, i) => `orphan-${i}`);

beforeAll(async () => {
  api = await startExampleApi({});
  writeFileSync(path.join(tmp.dir, 'pullq.config.json'), JSON.stringify({
    queue: queueName,
    request: { url: `${api.url}/items/{id}` },
    worker: { concurrency: 8, lockDurationMs: 2000 },
    enqueue: { batchSize: 100 },
    sink: { type: 'file', dir: './out' },
  }));
  writeFileSync(path.join(tmp.dir, 'ids.txt'), `${ids.join('\n')}\n`);
});
afterAll(async () => {
  await queue.close();
  await tearDown({ api, queue: queueName, redis, tmp });
});

/** What a producer killed right after `seal` leaves: batches 0 and 1 have jobs, the sealed last batch (2) has none. */
async function killedAfterSeal(run: string): Promise<void> {
  await store.open(run, { source: 'ids.txt', expectedIds: N, batchSize: 100 });
  const bits = await store.runSetting(run, 'seenBits');
  const { closed } = await store.addIds(run, ids, 100, bits);
  expect(closed).toEqual([0, 1]);
  await addBatchJobs(queue, store, run, closed);
  const sealed = await store.seal(run);
  expect(sealed.closed).toEqual([2]);
  // SIGKILL here: addBatchJobs(sealed.closed) never ran.
}

function expectEveryIdOnce(run: string): void {
  const out = readOutput(path.join(tmp.dir, 'out'), run);
  const seen = [...out.results.map((r) => r.id), ...out.failed.map((f) => f.id)].sort();
  expect(seen).toEqual([...ids].sort());
  expect(out.summary).toMatchObject({ total: N, succeeded: N, failed: 0 });
}

describe('a batch left without its job', () => {
  it('pull --run on the sealed run gives the batch its job back and completes', async () => {
    const run = 'sealed-then-killed';
    await killedAfterSeal(run);
    const r = await runCli(['pull', 'ids.txt', '--run', run], { cwd: tmp.dir, env: { REDIS_URL: redisUrl(), PULLQ_LOG_LEVEL: 'error' } });
    expect(r.stderr).toContain('already enqueued');
    expect(r.code).toBe(0);
    expectEveryIdOnce(run);
  });

  it('a worker starting gives the batch its job back', async () => {
    const run = 'repaired-by-worker';
    await killedAfterSeal(run);
    const config = testConfig({ queue: queueName, request: { url: `${api.url}/items/{id}` }, enqueue: { batchSize: 100 }, sink: { type: 'file', dir: path.join(tmp.dir, 'out') } });
    const handle = await startWorker({ config, connection: redis, logger: quietLogger() });
    try {
      for (let i = 0; i < 200 && !(await store.status(run))?.complete; i++) await sleep(50);
      expect(await store.status(run)).toMatchObject({ complete: true, succeeded: N });
      expectEveryIdOnce(run);
    } finally {
      await handle.close(2000);
    }
  });

  it('status gives the batch its job back', async () => {
    const run = 'repaired-by-status';
    await killedAfterSeal(run);
    expect(await queue.getJob(`${run}.b2`)).toBeUndefined();
    const r = await runCli(['status', '--run', run], { cwd: tmp.dir, env: { REDIS_URL: redisUrl() } });
    expect(r.code).toBe(0);
    expect((await queue.getJob(`${run}.b2`))?.data).toEqual({ run, batch: 2 });
    expect(await store.pendingJobBatches(run)).toEqual([]);
  });
});
