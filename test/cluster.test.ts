import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startExampleApi, type ExampleApi } from '../scripts/example-api-server.js';
import { deleteClusterKeys, startLocalCluster, type LocalCluster } from '../scripts/local-redis-cluster.js';
import { connectRedis } from '../src/redis/connect-redis.js';
import { queuePatterns } from '../src/redis/keys.js';
import { RunStore } from '../src/runs/run-store.js';
import { runCli, spawnCli } from './helpers/cli.js';
import { readOutput } from './helpers/pull-in-process.js';
import { tempDir, uniqueQueue } from './helpers/test-env.js';

// Issue #10: a real 3-master Redis Cluster on this machine (redis-server and
// redis-cli binaries, free ports). REDIS_URL names one node; pullq detects the
// cluster and keeps every key of a queue in one hash slot.

let cluster: LocalCluster;
let client: Cluster;
let api: ExampleApi;
const tmp = tempDir('cluster');
const queues: string[] = [];
const TOKENS = ['cl-a', 'cl-b'];
const N = 400;
const ids = Array.from({ length: N }, (_, i) => `c${i}`);

beforeAll(async () => {
  const started = await startLocalCluster(3);
  if (!started) throw new Error('these tests need redis-server and redis-cli (apt-get install redis-server)');
  cluster = started;
  client = cluster.client();
  api = await startExampleApi({ latencyMs: 5, auth: { type: 'header', tokens: TOKENS }, budgets: Object.fromEntries(TOKENS.map((t) => [t, { requests: 100, perSeconds: 1 }])) });
  writeFileSync(path.join(tmp.dir, 'ids.txt'), `${ids.join('\n')}\n`);
}, 60_000);

afterAll(async () => {
  for (const q of queues) await deleteClusterKeys(client, queuePatterns(q)).catch(() => undefined);
  client?.disconnect();
  await api?.close();
  await cluster?.stop();
  tmp.remove();
});

function configFor(queue: string, file: string) {
  queues.push(queue);
  writeFileSync(path.join(tmp.dir, file), JSON.stringify({
    queue,
    request: { url: `${api.url}/items/{id}` },
    auth: { type: 'header', tokens: TOKENS.map((t) => ({ token: t, name: t, budget: { requests: 100, perSeconds: 1 } })) },
    worker: { concurrency: 8, lockDurationMs: 1500 },
    enqueue: { batchSize: 25 },
    sink: { type: 'file', dir: './out' },
  }));
}

const env = () => ({ REDIS_URL: cluster.url, PULLQ_LOG_LEVEL: 'warn' });

function expectExactlyOnce(run: string) {
  const out = readOutput(path.join(tmp.dir, 'out'), run);
  const seen = [...out.results.map((r) => r.id), ...out.failed.map((f) => f.id)];
  expect(seen.length).toBe(N);
  expect([...seen].sort()).toEqual([...ids].sort());
  expect(out.summary).toMatchObject({ run, total: N, succeeded: N, failed: 0 });
}

describe('Redis Cluster', () => {
  it('a url naming any node gives a cluster connection; a seed list does too', async () => {
    const viaUrl = await connectRedis(`redis://127.0.0.1:${cluster.ports[2]}`, { longLived: false });
    expect(viaUrl).toBeInstanceOf(Cluster);
    viaUrl.disconnect();
    const viaSeeds = await connectRedis('redis://127.0.0.1:1', { longLived: false, cluster: [`redis://127.0.0.1:${cluster.ports[1]}`] });
    expect(viaSeeds).toBeInstanceOf(Cluster);
    expect(await viaSeeds.ping()).toBe('PONG');
    viaSeeds.disconnect();
  });

  it('pullq pull completes on the cluster: every ID once, budgets held, every key of the queue in one slot', async () => {
    const queue = uniqueQueue('cl-pull');
    configFor(queue, 'pull.json');
    const r = await runCli(['pull', 'ids.txt', '--run', 'clpull', '--config', 'pull.json'], { cwd: tmp.dir, env: env() });
    expect(r.stderr).not.toMatch(/MOVED|CROSSSLOT|unexpected/);
    expect(r.code).toBe(0);
    expectExactlyOnce('clpull');
    expect([...api.rejectedByCredential.values()].reduce((a, b) => a + b, 0)).toBe(0);
    // BullMQ's keys and pullq's alike: one hash slot, so every script runs on one node.
    const slots = new Set<number>();
    for (const node of client.nodes('master')) {
      for (const pattern of queuePatterns(queue)) {
        const [, keys] = await node.scan('0', 'MATCH', pattern, 'COUNT', 10_000);
        for (const k of keys) slots.add(Number(await node.call('CLUSTER', 'KEYSLOT', k)));
      }
    }
    expect(slots.size).toBe(1);
  });

  it("the queue's slot moves to another node mid-run (MIGRATING/IMPORTING, MIGRATE, SETSLOT NODE): the run completes, every ID once", async () => {
    const queue = uniqueQueue('cl-move');
    configFor(queue, 'move.json');
    const store = new RunStore(client, queue);
    expect((await runCli(['enqueue', 'ids.txt', '--run', 'clmove', '--config', 'move.json'], { cwd: tmp.dir, env: env() })).code).toBe(0);
    const workers = [spawnCli(['worker', '--config', 'move.json'], { cwd: tmp.dir, env: env() }), spawnCli(['worker', '--config', 'move.json'], { cwd: tmp.dir, env: env() })];
    for (;;) {
      const s = await store.status('clmove');
      if (s && s.succeeded >= N / 5) break;
      await sleep(20);
    }
    const moved = await moveSlotOf(`{${queue}}`);
    expect(moved.keys).toBeGreaterThan(0);
    expect(moved.to).not.toBe(moved.from);
    // The move happened while the run still had work: the rest was done against the new node.
    expect((await store.status('clmove'))?.complete).toBe(false);
    const deadline = Date.now() + 45_000;
    for (;;) {
      const s = await store.status('clmove');
      if (s?.complete) break;
      if (Date.now() > deadline) throw new Error(`not complete after the move: ${JSON.stringify(s)}`);
      await sleep(50);
    }
    for (const w of workers) w.child.kill('SIGTERM');
    for (const w of workers) expect((await w.done).code).toBe(0);
    expectExactlyOnce('clmove');
  });

  // A worker SIGKILLed mid-run and OAuth2 token sharing on a cluster: the cluster project runs worker-crash.test.ts
  // and fleet.test.ts on a 3-master cluster (vitest.config.ts).
});

describe('Redis Cluster with AUTH', () => {
  it("the url's password reaches every node; a wrong one fails with one line that does not show it", async () => {
    const secret = 'cl-Pa55word-7f3e';
    const guarded = await startLocalCluster(3, { password: secret });
    if (!guarded) throw new Error('these tests need redis-server and redis-cli');
    try {
      const c = await connectRedis(guarded.url, { longLived: false });
      expect(c).toBeInstanceOf(Cluster);
      // Keys in every slot range: each node is reached, each with the password.
      for (let i = 0; i < 30; i++) await c.set(`probe-${i}`, 'x');
      expect(await c.get('probe-29')).toBe('x');
      c.disconnect();
      const wrong = guarded.url.replace(encodeURIComponent(secret), 'not-the-password');
      const err = await connectRedis(wrong, { longLived: false, connectTimeoutMs: 2000 }).then(() => null, (e: Error) => e);
      expect(err?.message).toMatch(/cannot reach/);
      expect(err?.message).not.toContain('not-the-password');
      expect(err?.message).not.toContain(secret);
      // The CLI too: one line, no password, exit 1.
      const queue = uniqueQueue('cl-auth');
      writeFileSync(path.join(tmp.dir, 'auth.json'), JSON.stringify({ queue, request: { url: `${api.url}/items/{id}` }, sink: { type: 'file', dir: './out' } }));
      const r = await runCli(['status', '--config', 'auth.json'], { cwd: tmp.dir, env: { REDIS_URL: wrong, PULLQ_LOG_LEVEL: 'warn' } });
      expect(r.code).toBe(1);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).not.toContain('not-the-password');
    } finally {
      await guarded.stop();
    }
  });
});

/** Moves the hash slot of `key` to another master, key by key, as `redis-cli --cluster reshard` does. */
async function moveSlotOf(key: string): Promise<{ keys: number; from: number; to: number }> {
  const masters = client.nodes('master');
  const slot = Number(await masters[0]!.call('CLUSTER', 'KEYSLOT', key));
  // CLUSTER SLOTS: [start, end, [host, port, id], …] per range; the first node of a range is its master.
  const ranges = (await masters[0]!.call('CLUSTER', 'SLOTS')) as [number, number, [string, number, string]][];
  const owner = ranges.find(([a, b]) => slot >= a && slot <= b)![2][1];
  const src = masters.find((m) => m.options.port === owner)!;
  const dst = masters.find((m) => m !== src)!;
  const srcId = String(await src.call('CLUSTER', 'MYID'));
  const dstId = String(await dst.call('CLUSTER', 'MYID'));
  await dst.call('CLUSTER', 'SETSLOT', slot, 'IMPORTING', srcId);
  await src.call('CLUSTER', 'SETSLOT', slot, 'MIGRATING', dstId);
  let moved = 0;
  for (;;) {
    const keys = (await src.call('CLUSTER', 'GETKEYSINSLOT', slot, 50)) as string[];
    if (keys.length === 0) break;
    await src.call('MIGRATE', '127.0.0.1', dst.options.port!, '', 0, 5000, 'KEYS', ...keys);
    moved += keys.length;
    await sleep(5);
  }
  for (const m of masters) await m.call('CLUSTER', 'SETSLOT', slot, 'NODE', dstId);
  return { keys: moved, from: src.options.port!, to: dst.options.port! };
}
