import { setTimeout as sleep } from 'node:timers/promises';
import { QueueEvents } from 'bullmq';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { startExampleApi, type ExampleApi } from '../scripts/example-api-server.js';
import { createPullq, type Pullq } from '../src/index.js';
import { bullPrefix } from '../src/redis/keys.js';
import { cleanQueue, newRedis, quietLogger, redisUrl, tempDir, uniqueQueue } from './helpers/test-env.js';

// A worker closes promptly, mid-batch too; one that has to stop (every credential quarantined) takes no more
// batches and leaves them in the queue for a replica that can go on.
// Runs in the redis and the cluster projects: on a Redis Cluster, BullMQ 6.7's Worker.close() could wait forever
// for its blocking connection to end (see src/workers/close-bull-worker.ts).

const tmp = tempDir('worker-close');
afterAll(() => tmp.remove());
let api: ExampleApi | undefined;
const open: Pullq[] = [];
const queues: string[] = [];
afterEach(async () => {
  for (const p of open.splice(0)) await p.close();
  await api?.close();
  api = undefined;
  const redis = newRedis();
  for (const q of queues.splice(0)) await cleanQueue(redis, q);
  redis.disconnect();
});

const baseConfig = (queue: string) => ({ queue, redis: { url: redisUrl() }, request: { url: `${api!.url}/items/{id}` }, enqueue: { batchSize: 5 }, worker: { concurrency: 4 }, sink: { type: 'file', dir: tmp.dir } }) as const;

/** A queue with `n` IDs enqueued whose every credential the API refuses. */
async function refusedRun(n: number) {
  api ??= await startExampleApi({ auth: { type: 'header', tokens: ['good'] } });
  const queue = uniqueQueue('close');
  queues.push(queue);
  const pullq = createPullq({ ...baseConfig(queue), auth: { type: 'header', tokens: ['bad-1', 'bad-2'] } }, { logger: quietLogger() });
  open.push(pullq);
  await pullq.enqueue(Array.from({ length: n }, (_, i) => `id-${i}`), { run: 'refused' });
  return pullq;
}

describe('closing a worker', () => {
  it('close() mid-batch, the batch going to the delayed set (IDs due in 10 s), resolves within seconds, every time (12 tries)', async () => {
    api = await startExampleApi({});
    const took: number[] = [];
    for (let i = 0; i < 12; i++) {
      const queue = uniqueQueue('close');
      queues.push(queue);
      // One request per 10 s: the batch sends one, commits, and goes to BullMQ's delayed set until the next is due.
      const pullq = createPullq({ ...baseConfig(queue), budget: { requests: 1, perSeconds: 10 } }, { logger: quietLogger() });
      open.push(pullq);
      await pullq.enqueue(['a', 'b', 'c'], { run: 'paced' });
      // Closed while the batch is in hand: its first answer is in, its step not yet committed.
      let answered!: () => void;
      const first = new Promise<void>((resolve) => (answered = resolve));
      const worker = await pullq.worker({ events: { request: () => answered() } });
      await first;
      const started = Date.now();
      const closed = await Promise.race([worker.close().then(() => 'closed' as const), sleep(10_000).then(() => 'still closing' as const)]);
      took.push(Date.now() - started);
      expect(closed).toBe('closed');
    }
    console.log(`worker close with a delayed batch: ${took.join(', ')} ms`);
    // The shutdown deadline (worker.shutdownTimeoutMs, 30 s) must not be what ended any of them.
    expect(Math.max(...took)).toBeLessThan(5000);
  });
});

describe('a worker that cannot go on', () => {
  it('left open after the fatal reason, it takes no more batches: a replica started later stops too, and a resume with a good token completes the run while it is still open', async () => {
    const pullq = await refusedRun(20);
    let fatal!: () => void;
    const stopped = new Promise<void>((resolve) => (fatal = resolve));
    // BullMQ's own events for the queue: each time a batch job is taken.
    const eventsConnection = newRedis();
    const events = new QueueEvents(pullq.config.queue, { connection: eventsConnection, prefix: bullPrefix(pullq.config.queue) });
    let taken = 0;
    events.on('active', () => taken++);
    await events.waitUntilReady();
    const worker = await pullq.worker({ onFatal: () => fatal() });
    await stopped;
    const atFatal = taken;
    await sleep(1500);
    // 4 batches of 5: at most those taken when the reason came, none after.
    expect(taken - atFatal).toBeLessThanOrEqual(4);
    await events.close();
    eventsConnection.disconnect();
    expect(await pullq.runStatus('refused')).toMatchObject({ total: 20, succeeded: 0, failed: 0, complete: false });

    // A replica started now finds the batches (they went back to the queue) and stops with the same reason.
    let again!: (reason: string) => void;
    const second = new Promise<string>((resolve) => (again = resolve));
    const w2 = await pullq.worker({ onFatal: (reason) => again(reason) });
    expect(await Promise.race([second, sleep(10_000).then(() => 'no fatal reason within 10 s')])).toMatch(/every credential is quarantined \(2 of 2\)/);
    await w2.close();

    // The fix: a token the API accepts. Resuming completes the run, every ID once, though the stopped replica is still open.
    const fixed = createPullq({ ...baseConfig(pullq.config.queue), auth: { type: 'header', tokens: ['good'] } }, { logger: quietLogger() });
    open.push(fixed);
    const r = await fixed.pull(Array.from({ length: 20 }, (_, i) => `id-${i}`), { run: 'refused' });
    expect(r).toMatchObject({ complete: true });
    expect(r.status).toMatchObject({ total: 20, succeeded: 20, failed: 0 });
    for (let i = 0; i < 20; i++) expect(api!.requestsById.get(`id-${i}`)).toBeGreaterThanOrEqual(1);
    await worker.close();
  });
});
