import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startExampleApi, type ExampleApi } from '../scripts/example-api-server.js';
import { CredentialPool } from '../src/auth/credential-pool.js';
import type { Credential, OutgoingRequest as RequestParts } from '../src/auth/credential.js';
import { newRetryState } from '../src/runs/run-store.js';
import { compileIdUrl } from '../src/ids/id-url.js';
import { createHttpClient } from '../src/jobs/http-client.js';
import { enqueueRun } from '../src/runs/enqueue-run.js';
import { RunStore } from '../src/runs/run-store.js';
import type { BatchJobData } from '../src/runs/batch-job-data.js';
import { startWorker } from '../src/workers/start-worker.js';
import { runCli } from './helpers/cli.js';
import { readOutput } from './helpers/pull-in-process.js';
import { scriptSha, startRedisProxy, type ProxiedCommand, type RedisProxy } from '../scripts/redis-fault-proxy.js';
import { cleanQueue, newRedis, quietLogger, redisUrl, tempDir, testConfig, uniqueQueue } from './helpers/test-env.js';
import { bullPrefix } from '../src/redis/keys.js';
import { queueKeys } from '../src/redis/keys.js';
import { luaSource } from '../src/redis/scripts.js';

/** What one answer means for its credential, as the pool decides and reports it. */
async function say(p: CredentialPool, c: Credential, request: RequestParts, status: number | null, headers: Record<string, string>, start = ''): Promise<string> {
  return (await p.answer(c, request, { status, headers }, newRetryState(), start)).credential.verdict;
}

// Issue #8, item 1: a connection that drops after Redis ran a command but
// before its reply arrived. ioredis resends the command after reconnecting, so
// every state-changing script runs twice. A TCP proxy between pullq and a real
// Redis swallows the reply to a chosen command and cuts the connection.

const lua = (name: string) => luaSource(name);
const SHA = {
  commit: scriptSha(lua('commitBatch-6.lua')),
  seal: scriptSha(lua('sealRun-3.lua')),
  enqueue: scriptSha(lua('enqueueIds-n.lua')),
  take: scriptSha(lua('takeCredential-n.lua')),
  report: scriptSha(lua('reportResponse-3.lua')),
};
const isScript = (cmd: ProxiedCommand, sha: string) => cmd.script === sha;

/** commitBatch-6.lua's call: EVALSHA sha 6 <6 keys> opId token step part succeeded failed E <2E> <leftover pairs>. */
function commitHasLeftovers(cmd: ProxiedCommand): boolean {
  const e = Number(cmd.args[2 + 6 + 6]!.toString());
  return cmd.args.length > 2 + 6 + 7 + 2 * e;
}

const tmp = tempDir('lost');
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

/** An ioredis connection through the proxy, as pullq's long-lived roles open it. */
function proxied(): Redis {
  const r = new Redis(proxy.url, { maxRetriesPerRequest: null, retryStrategy: () => 50 });
  r.on('error', () => undefined);
  cleanup.push(async () => r.disconnect());
  return r;
}

function setUp(label: string, extra: Record<string, unknown> = {}) {
  const queueName = uniqueQueue(label);
  cleanup.push(() => cleanQueue(direct, queueName));
  const config = testConfig({
    queue: queueName,
    request: { url: `${api.url}/items/{id}`, timeoutMs: 10_000 },
    worker: { concurrency: 16, lockDurationMs: 5000 },
    enqueue: { batchSize: 50 },
    sink: { type: 'file', dir: path.join(tmp.dir, label) },
    ...extra,
  });
  return { queueName, config, store: new RunStore(direct, queueName) };
}

async function untilComplete(store: RunStore, run: string, timeoutMs = 45_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await store.status(run);
    if (s?.complete) return s;
    if (Date.now() > deadline) throw new Error(`not complete: ${JSON.stringify(s)}`);
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

describe('replies lost after Redis ran the command', () => {
  it('commit replies lost, on last steps and on middle steps: every ID exactly once, counts right', async () => {
    const { queueName, config, store } = setUp('commit');
    // 12 batches; in 4 of them a slow ID outlives the 5 s checkpoint, so those batches commit a middle step first.
    const ids = Array.from({ length: 600 }, (_, i) => (i % 150 === 7 ? `slow-${i}` : `c-${i}`));
    const file = path.join(tmp.dir, 'commit.ids.txt');
    writeFileSync(file, `${ids.join('\n')}\n`);
    const queue = new Queue<BatchJobData>(queueName, { connection: direct, prefix: bullPrefix(queueName) });
    cleanup.push(() => queue.close());
    await enqueueRun({ store, queue, run: 'r', source: file, batchSize: 50, urlFor: compileIdUrl(config.request.url) });
    const last = proxy.loseReply((c) => isScript(c, SHA.commit) && !commitHasLeftovers(c), { times: 3 });
    const middle = proxy.loseReply((c) => isScript(c, SHA.commit) && commitHasLeftovers(c), { times: 3 });
    const worker = await startWorker({ config, connection: proxied(), logger: quietLogger() });
    cleanup.push(() => worker.close(5000));
    const s = await untilComplete(store, 'r');
    expect(last.fired()).toBe(3);
    expect(middle.fired()).toBe(3);
    expect(s).toMatchObject({ total: 600, succeeded: 600, failed: 0 });
    expectExactlyOnce(config.sink.type === 'file' ? config.sink.dir : '', 'r', ids);
  });

  it('seal and enqueue replies lost: no batch is left without its job, the run completes', async () => {
    const { queueName, config, store } = setUp('seal');
    const ids = Array.from({ length: 2120 }, (_, i) => `s-${i}`);
    const file = path.join(tmp.dir, 'seal.ids.txt');
    writeFileSync(file, `${ids.join('\n')}\n`);
    const seal = proxy.loseReply((c) => isScript(c, SHA.seal));
    const enqueue = proxy.loseReply((c) => isScript(c, SHA.enqueue), { times: 2 });
    const producer = proxied();
    const queue = new Queue<BatchJobData>(queueName, { connection: producer, prefix: bullPrefix(queueName) });
    queue.on('error', () => undefined);
    cleanup.push(() => queue.close());
    const r = await enqueueRun({ store: new RunStore(producer, queueName), queue, run: 'r', source: file, batchSize: 50, urlFor: compileIdUrl(config.request.url) });
    expect(seal.fired()).toBe(1);
    expect(enqueue.fired()).toBe(2);
    expect(r).toMatchObject({ added: 2120, total: 2120 });
    const worker = await startWorker({ config, connection: direct, logger: quietLogger() });
    cleanup.push(() => worker.close(5000));
    await untilComplete(store, 'r', 20_000);
    expectExactlyOnce(config.sink.type === 'file' ? config.sink.dir : '', 'r', ids);
  });

  it('a 401 whose report reply is lost counts once: one 401 does not quarantine a credential', async () => {
    const { config } = setUp('report', { auth: { type: 'header', tokens: ['report-token'] } });
    const pool = await CredentialPool.open({ redis: proxied(), config, logger: quietLogger(), http: createHttpClient(config) });
    const credential = pool.credentials[0]!;
    const lost = proxy.loseReply((c) => isScript(c, SHA.report));
    expect(await say(pool, credential, { method: 'GET', url: 'http://x/items/a', headers: {} }, 401, {})).toBe('unauthorized');
    expect(lost.fired()).toBe(1);
    const h = await direct.hgetall(`${queueKeys(config.queue).credPrefix}${credential.id}`);
    expect({ n401: h['n401'], u401: h['u401'], quarantined: h['qUntil'] !== undefined }).toEqual({ n401: '1', u401: '1', quarantined: false });
  });

  it('a take whose reply is lost reserves one start, not two', async () => {
    const { config } = setUp('take', { auth: { type: 'header', tokens: ['take-token'] }, budget: { requests: 5, perSeconds: 10 } });
    const pool = await CredentialPool.open({ redis: proxied(), config, logger: quietLogger(), http: createHttpClient(config) });
    const lost = proxy.loseReply((c) => isScript(c, SHA.take));
    const got = await pool.acquire(new Set(), 1000);
    expect(got.kind).toBe('granted');
    expect(lost.fired()).toBe(1);
    const credential = pool.credentials[0]!;
    expect(await direct.zcard(`${queueKeys(config.queue).credPrefix}${credential.id}:log`)).toBe(1);
    expect(await direct.hget(`${queueKeys(config.queue).credPrefix}${credential.id}`, 'requests')).toBe('1');
  });

  it('pull with 1 in 40 replies lost to every command: exit 0, no stack trace, every ID exactly once', async () => {
    const { queueName } = setUp('cli');
    const dir = path.join(tmp.dir, 'cli');
    const ids = Array.from({ length: 1500 }, (_, i) => `cli-${i}`);
    writeFileSync(path.join(tmp.dir, 'cli.ids.txt'), `${ids.join('\n')}\n`);
    writeFileSync(path.join(tmp.dir, 'cli.config.json'), JSON.stringify({
      queue: queueName,
      request: { url: `${api.url}/items/{id}` },
      worker: { concurrency: 16, lockDurationMs: 3000 },
      enqueue: { batchSize: 50 },
      sink: { type: 'file', dir: './cli' },
    }));
    const before = proxy.stats.lostReplies;
    proxy.randomLoss({ probability: 1 / 40 });
    try {
      const r = await runCli(['pull', 'cli.ids.txt', '--run', 'r', '--config', 'cli.config.json'], { cwd: tmp.dir, env: { REDIS_URL: proxy.url } });
      expect(r.stderr).not.toMatch(/unexpected error|\n\s+at /);
      if (r.code !== 0) console.error(r.stderr);
      expect(r.code).toBe(0);
    } finally {
      proxy.stopRandomLoss();
    }
    expect(proxy.stats.lostReplies - before).toBeGreaterThan(5);
    expectExactlyOnce(dir, 'r', ids);
  });

  it('enqueue and status with 1 in 20 replies lost: exit 0, no stack trace, every ID enqueued once', async () => {
    const { queueName, store } = setUp('enq');
    const ids = Array.from({ length: 5000 }, (_, i) => `e-${i}`);
    writeFileSync(path.join(tmp.dir, 'enq.ids.txt'), `${ids.join('\n')}\n`);
    writeFileSync(path.join(tmp.dir, 'enq.config.json'), JSON.stringify({ queue: queueName, request: { url: `${api.url}/items/{id}` }, enqueue: { batchSize: 50 } }));
    const before = proxy.stats.lostReplies;
    proxy.randomLoss({ probability: 1 / 20 });
    try {
      const env = { REDIS_URL: proxy.url };
      const r = await runCli(['enqueue', 'enq.ids.txt', '--run', 'r', '--config', 'enq.config.json'], { cwd: tmp.dir, env });
      expect(r.stderr).not.toMatch(/unexpected error|\n\s+at /);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('5000 IDs read, 5000 new');
      const st = await runCli(['status', '--run', 'r', '--json', '--config', 'enq.config.json'], { cwd: tmp.dir, env });
      expect(st.code).toBe(0);
      expect(JSON.parse(st.stdout)).toMatchObject({ total: 5000, sealed: true });
    } finally {
      proxy.stopRandomLoss();
    }
    expect(proxy.stats.lostReplies - before).toBeGreaterThan(2);
    // Every batch has its job: 100 batches of 50.
    const queue = new Queue<BatchJobData>(queueName, { connection: direct, prefix: bullPrefix(queueName) });
    cleanup.push(() => queue.close());
    expect(await queue.getJobCountByTypes('waiting')).toBe(100);
    expect(await store.status('r')).toMatchObject({ total: 5000 });
  });
});
