import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { startExampleApi, type ExampleApi } from '../scripts/example-api-server.js';
import { startReplicaPair, type ReplicaPair } from '../scripts/bench/replica-pair.js';
import { startThrowawayRedis, type ThrowawayRedis } from '../scripts/bench/throwaway-redis.js';
import { createPullq } from '../src/api/create-pullq.js';
import { parseConfig } from '../src/config.js';
import { createSink } from '../src/sinks/create-sink.js';
import type { Sink } from '../src/sinks/sink.js';
import pino from 'pino';
import { queueKeys, runKeys } from '../src/redis/keys.js';
import { RunStore } from '../src/runs/run-store.js';
import { REPLICA_GONE_GRACE_MS, waitForReplicas } from '../src/redis/wait-for-replicas.js';
import { readOutput } from './helpers/pull-in-process.js';
import { tempDir, uniqueQueue } from './helpers/test-env.js';

// Asynchronous replication: a promoted replica may miss the primary's last writes. A run's output is
// published, and its parts deleted, only once a replica holds the state they rest on (Redis WAIT).
// A real primary and replica on free ports; SIGSTOP keeps the replica attached but silent.

let pair: ReplicaPair | undefined;
let lone: ThrowawayRedis | undefined;
let api: ExampleApi;
const tmp = tempDir('replica-wait');
try {
  pair = await startReplicaPair();
  lone = await startThrowawayRedis();
} catch {
  // no redis-server binary here: the tests below are skipped
}
beforeAll(async () => {
  api = await startExampleApi({ latencyMs: 2 });
});
afterAll(async () => {
  await api?.close();
  await pair?.stop();
  await lone?.stop();
  tmp.remove();
});

/** A queue of its own on the pair's primary, its config, and a logger that resolves `logged` at the first line holding `text`. */
function runOnPair(text: string) {
  const queue = uniqueQueue('rw');
  const dir = path.join(tmp.dir, queue);
  const config = parseConfig(
    { queue, request: { url: `${api.url}/items/{id}` }, worker: { concurrency: 4 }, enqueue: { batchSize: 10 }, sink: { type: 'file', dir } },
    { env: { redisUrl: pair!.primaryUrl, vars: {} } },
  );
  let seen!: () => void;
  const logged = new Promise<void>((resolve) => (seen = resolve));
  const logger = pino({ level: 'info' }, {
    write: (line: string) => {
      if (line.includes(text)) seen();
    },
  });
  const primary = new Redis(pair!.primaryUrl, { maxRetriesPerRequest: null });
  /** Deletes the queue's keys and closes the connection. */
  const dropKeys = async () => {
    const keys = await primary.keys(`*{${queue}}*`);
    if (keys.length) await primary.del(...keys);
    primary.disconnect();
  };
  return { queue, dir, config, logger, logged, primary, dropKeys };
}

describe.skipIf(!pair || !lone)('waiting for replicas', () => {
  it('sends no WAIT to a Redis without replicas; on one with a stopped replica it is not acknowledged until the replica runs again', async () => {
    const marker = queueKeys(uniqueQueue('rw')).replicated;
    const alone = new Redis(lone!.url, { maxRetriesPerRequest: null });
    const primary = new Redis(pair!.primaryUrl, { maxRetriesPerRequest: null });
    try {
      await alone.config('RESETSTAT');
      for (let i = 0; i < 5; i++) expect(await waitForReplicas(alone, { markerKey: marker, timeoutMs: 5000 })).toEqual({ replicas: 0, acknowledged: 0, durable: true });
      expect(await alone.info('commandstats')).not.toMatch(/cmdstat_wait:/);

      expect(await waitForReplicas(primary, { markerKey: marker, timeoutMs: 5000 })).toEqual({ replicas: 1, acknowledged: 1, durable: true });
      pair!.pauseReplica();
      try {
        expect(await waitForReplicas(primary, { markerKey: marker, timeoutMs: 150 })).toEqual({ replicas: 1, acknowledged: 0, durable: false });
      } finally {
        pair!.resumeReplica();
      }
      expect(await waitForReplicas(primary, { markerKey: marker, timeoutMs: 5000 })).toMatchObject({ acknowledged: 1, durable: true });
    } finally {
      await primary.del(marker);
      alone.disconnect();
      primary.disconnect();
    }
  });

  it('a replica that drops out (detached) after one was seen is not durable for a minute: 0 replicas then means none holds the writes; past that the primary is taken to be alone', async () => {
    const marker = queueKeys(uniqueQueue('rw')).replicated;
    const primary = new Redis(pair!.primaryUrl, { maxRetriesPerRequest: null });
    try {
      expect(await waitForReplicas(primary, { markerKey: marker, timeoutMs: 5000 })).toMatchObject({ replicas: 1, durable: true });
      await pair!.detachReplica();
      try {
        // Past the count cache (as after 10 s): this client saw a replica, now none is attached.
        const t = Date.now();
        expect(await waitForReplicas(primary, { markerKey: marker, timeoutMs: 150, now: t + 15_000 })).toEqual({ replicas: 0, acknowledged: 0, durable: false });
        // A minute later with still none (removed for good, or the one left after a failover): steps go on.
        expect(await waitForReplicas(primary, { markerKey: marker, timeoutMs: 150, now: t + 15_000 + REPLICA_GONE_GRACE_MS })).toEqual({ replicas: 0, acknowledged: 0, durable: true });
      } finally {
        await pair!.attachReplica();
      }
      expect(await waitForReplicas(primary, { markerKey: marker, timeoutMs: 5000, now: Date.now() + 120_000 })).toMatchObject({ replicas: 1, acknowledged: 1, durable: true });
    } finally {
      await primary.del(marker);
      primary.disconnect();
    }
  });

  it('a pending WAIT (replica stopped) does not block the connection it was asked on', async () => {
    const marker = queueKeys(uniqueQueue('rw')).replicated;
    const primary = new Redis(pair!.primaryUrl, { maxRetriesPerRequest: null });
    pair!.pauseReplica();
    try {
      const pending = waitForReplicas(primary, { markerKey: marker, timeoutMs: 1500 });
      await new Promise((resolve) => setTimeout(resolve, 100));
      const t0 = Date.now();
      await primary.ping();
      const tookMs = Date.now() - t0;
      expect(await pending).toMatchObject({ replicas: 1, acknowledged: 0, durable: false });
      expect(tookMs, 'a PING behind the WAIT waited for it').toBeLessThan(200);
    } finally {
      pair!.resumeReplica();
      await primary.del(marker);
      await primary.quit();
    }
  });

  it('finalize publishes nothing while the replica is stopped (a failover then would lose the run state the output rests on), and publishes after it runs again', async () => {
    const { queue, dir, config, logger, logged: heldBack, primary, dropKeys } = runOnPair('not published yet');
    const ids = Array.from({ length: 30 }, (_, i) => String(i + 1));
    const pullq = createPullq(config, { logger });
    pair!.pauseReplica();
    let resumed = false;
    try {
      const pulled = pullq.pull(ids, { run: 'r1', signal: AbortSignal.timeout(40_000) });
      // Before the fix, finalize published at once (the pull ended while the replica held none of the run).
      const early = pulled.then(() => 'published');
      early.catch(() => undefined);
      expect(await Promise.race([heldBack.then(() => 'held back'), early]), 'the run was published while the replica was stopped').toBe('held back');
      // Every ID has its outcome in Redis, yet nothing is published: the replica holds none of it.
      expect(await new RunStore(primary, queue).status('r1')).toMatchObject({ done: true, complete: false, succeeded: 30 });
      expect(existsSync(path.join(dir, 'r1', 'summary.json'))).toBe(false);
      pair!.resumeReplica();
      resumed = true;
      const done = await pulled;
      expect(done.complete).toBe(true);
      const out = readOutput(dir, 'r1');
      expect(out.results.map((l) => l.id).sort()).toEqual([...ids].sort());
      expect(out.summary).toMatchObject({ total: 30, succeeded: 30, failed: 0 });
      // The replica holds the finalized mark: a failover now keeps the run complete.
      const replica = new Redis(pair!.replicaUrl, { maxRetriesPerRequest: null });
      try {
        expect(await replica.hget(runKeys(queue, 'r1').meta, 'finalized')).toBe('1');
      } finally {
        replica.disconnect();
      }
    } finally {
      if (!resumed) pair!.resumeReplica();
      await pullq.close();
      await dropKeys();
    }
  });

  it('a fleet of workers alone (no pull waiting) publishes a held-back run once the replica acknowledges', async () => {
    const { dir, config, logger, logged: heldBack, dropKeys } = runOnPair('not published yet');
    const ids = Array.from({ length: 20 }, (_, i) => String(i + 1));
    const pullq = createPullq(config, { logger });
    let complete!: (run: string) => void;
    const completed = new Promise<string>((resolve) => (complete = resolve));
    pair!.pauseReplica();
    let resumed = false;
    try {
      await pullq.enqueue(ids, { run: 'w1' });
      await pullq.worker({ onRunComplete: (run) => complete(run) });
      await heldBack;
      pair!.resumeReplica();
      resumed = true;
      // Before: nothing tried the finalize again (only a later pull, status or worker start did): no output.
      expect(await Promise.race([completed, new Promise((resolve) => setTimeout(() => resolve('not published'), 20_000))])).toBe('w1');
      const out = readOutput(dir, 'w1');
      expect(out.results.map((l) => l.id).sort()).toEqual([...ids].sort());
      expect(out.summary).toMatchObject({ total: 20, succeeded: 20, failed: 0 });
    } finally {
      if (!resumed) pair!.resumeReplica();
      await pullq.close();
      await dropKeys();
    }
  });
  it('parts kept by a timed-out WAIT after the finalized mark are dropped once the replica acknowledges, by a worker alone', async () => {
    const { dir, config, logger, logged: partsKept, dropKeys } = runOnPair('parts kept');
    // The replica stops right after the output is published: the finalized mark is written, its WAIT times out.
    const base = createSink(config);
    const sink: Sink = Object.assign(Object.create(base) as Sink, {
      finalize: async (...args: Parameters<Sink['finalize']>) => {
        await base.finalize(...args);
        pair!.pauseReplica();
      },
    });
    const ids = Array.from({ length: 20 }, (_, i) => String(i + 1));
    const pullq = createPullq(config, { logger, sink });
    const parts = path.join(dir, 'c1', 'parts');
    let resumed = false;
    try {
      await pullq.enqueue(ids, { run: 'c1' });
      await pullq.worker();
      await partsKept;
      expect(existsSync(parts)).toBe(true);
      pair!.resumeReplica();
      resumed = true;
      // Before: nothing tried the cleanup again (finalize had returned true): the parts stayed.
      const deadline = Date.now() + 15_000;
      while (existsSync(parts) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 200));
      expect(existsSync(parts), 'the parts were never dropped').toBe(false);
      expect(readOutput(dir, 'c1').summary).toMatchObject({ total: 20, succeeded: 20 });
    } finally {
      if (!resumed) pair!.resumeReplica();
      await pullq.close();
      await base.close?.();
      await dropKeys();
    }
  });
});
