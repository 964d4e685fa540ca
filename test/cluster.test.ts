import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startExampleApi, type ExampleApi } from '../scripts/example-api-server.js';
import { deleteClusterKeys, startLocalCluster, type LocalCluster } from '../scripts/local-redis-cluster.js';
import { connectRedis } from '../src/redis/connect-redis.js';
import { queuePatterns } from '../src/redis/keys.js';
import { RunStore, type RunStatus } from '../src/runs/run-store.js';
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

  it('SIGKILL of a worker mid-run on the cluster: another finishes; every ID exactly once', async () => {
    const queue = uniqueQueue('cl-crash');
    configFor(queue, 'crash.json');
    const store = new RunStore(client, queue);
    const waitFor = async (pred: (s: RunStatus) => boolean) => {
      const deadline = Date.now() + 45_000;
      for (;;) {
        const s = await store.status('clcrash');
        if (s && pred(s)) return s;
        if (Date.now() > deadline) throw new Error(`timed out; status ${JSON.stringify(s)}`);
        await sleep(25);
      }
    };
    expect((await runCli(['enqueue', 'ids.txt', '--run', 'clcrash', '--config', 'crash.json'], { cwd: tmp.dir, env: env() })).code).toBe(0);
    const a = spawnCli(['worker', '--config', 'crash.json'], { cwd: tmp.dir, env: env() });
    const b = spawnCli(['worker', '--config', 'crash.json'], { cwd: tmp.dir, env: env() });
    await waitFor((s) => s.succeeded >= N / 4);
    a.child.kill('SIGKILL');
    await a.done;
    await waitFor((s) => s.complete);
    b.child.kill('SIGTERM');
    expect((await b.done).code).toBe(0);
    expectExactlyOnce('clcrash');
  });
});
