import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue } from 'bullmq';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startExampleApi, type ExampleApi } from '../scripts/example-api-server.js';
import type { Config } from '../src/config.js';
import { compileIdUrl } from '../src/ids/id-url.js';
import { bullPrefix, queueKeys } from '../src/redis/keys.js';
import type { BatchJobData } from '../src/runs/batch-job-data.js';
import { RunStore } from '../src/runs/run-store.js';
import { runScheduledPull, tickRunName } from '../src/runs/scheduled-pull.js';
import { seriesOf } from '../src/runs/series.js';
import { keepsValidators, type ResultLine, type Sink } from '../src/sinks/sink.js';
import { buildValidatorsFile, validatorLine, ValidatorsFile } from '../src/sinks/validators-file.js';
import { startWorker, type WorkerHandle } from '../src/workers/start-worker.js';
import { readOutput } from './helpers/pull-in-process.js';
import { PG_URL, postgresAnswers } from './helpers/postgres.js';
import { cleanQueue, newRedis, quietLogger, tempDir, testConfig, uniqueQueue } from './helpers/test-env.js';

// Conditional re-pulls (issue #13 part 3): scheduled ticks of one schedule,
// a real worker, the example API with ETags, the file and Postgres sinks.

const pgAvailable = await postgresAnswers();
const tmp = tempDir('conditional');
const redis = newRedis();
const queues: string[] = [];
const apis: ExampleApi[] = [];
const DAY = 86_400_000;
const T0 = Date.parse('2026-03-01T03:00:00Z');

afterAll(async () => {
  await Promise.all(apis.map((a) => a.close()));
  for (const q of queues) await cleanQueue(redis, q);
  redis.disconnect();
  tmp.remove();
});

async function newApi(options: Parameters<typeof startExampleApi>[0] = {}): Promise<ExampleApi> {
  const api = await startExampleApi({ etags: true, ...options });
  apis.push(api);
  return api;
}

/** A schedule's IDs file, a queue and a worker on it: `tick(n)` fires the schedule's n-th nightly tick and waits for its run. */
async function scheduleFixture(name: string, ids: string[], config: (queue: string) => Record<string, unknown>) {
  const queueName = uniqueQueue(name);
  queues.push(queueName);
  const source = path.join(tmp.dir, `${name}.txt`);
  writeFileSync(source, `${ids.join('\n')}\n`);
  const cfg: Config = testConfig({ queue: queueName, enqueue: { batchSize: 10 }, worker: { concurrency: 8 }, ...config(queueName) });
  const queue = new Queue<BatchJobData>(queueName, { connection: redis, prefix: bullPrefix(queueName) });
  const store = new RunStore(redis, queueName);
  const worker: WorkerHandle = await startWorker({ config: cfg, connection: redis, logger: quietLogger() });
  return {
    config: cfg,
    store,
    /** The schedule's series: the queue and the schedule's name. */
    series: `${queueName}.${name}`,
    /** Fires the n-th tick without waiting for its run. */
    async fire(n: number): Promise<string> {
      await runScheduledPull({ store, queue, data: { schedule: name, source }, tickMs: T0 + n * DAY, batchSize: 10, urlFor: compileIdUrl(cfg.request.url) });
      return tickRunName(name, T0 + n * DAY);
    },
    async tick(n: number): Promise<{ run: string; ms: number }> {
      const started = Date.now();
      const run = await this.fire(n);
      for (const deadline = Date.now() + 30_000; !(await store.status(run))?.complete; await sleep(25)) {
        if (Date.now() > deadline) throw new Error(`run ${run} not complete: ${JSON.stringify(await store.status(run))}`);
      }
      return { run, ms: Date.now() - started };
    },
    async close() {
      await worker.close(5000);
      await queue.close();
    },
  };
}

const ids = Array.from({ length: 30 }, (_, i) => `item-${i}`);
const itemRequests = (api: ExampleApi, from: number) => api.log.slice(from).filter((e) => e.url.startsWith('/items/'));
const byId = (lines: ResultLine[]) => new Map(lines.map((l) => [l.id, l]));

describe('conditional re-pulls across scheduled runs (file sink)', () => {
  let api: ExampleApi;
  let fx: Awaited<ReturnType<typeof scheduleFixture>>;
  const out = () => path.join(tmp.dir, 'out-file');
  beforeAll(async () => {
    api = await newApi();
    fx = await scheduleFixture('nightly', ids, () => ({ request: { url: `${api.url}/items/{id}`, conditional: true }, sink: { type: 'file', dir: out() } }));
  });
  afterAll(() => fx.close());

  it('run 2 sends the validators of run 1: unchanged IDs are 304 lines, changed ones fetched fresh; run 3 still has them all', async () => {
    // Run 1: nothing known yet, every ID is fetched; its validators are kept beside the output.
    let seen = api.log.length;
    const r1 = await fx.tick(1);
    expect(itemRequests(api, seen).every((e) => e.headers['if-none-match'] === undefined)).toBe(true);
    const o1 = readOutput(out(), r1.run);
    expect(o1.results).toHaveLength(30);
    expect(o1.results.every((l) => l.status === 200 && (l.data as { version: number }).version === 1)).toBe(true);
    expect(readdirSync(path.join(out(), '.validators', fx.series))).toEqual([`${r1.run}.pqv`]);

    // Run 2: 3 of 30 items changed meanwhile.
    api.change(['item-0', 'item-1', 'item-2']);
    seen = api.log.length;
    const r2 = await fx.tick(2);
    const sent2 = itemRequests(api, seen);
    expect(sent2).toHaveLength(30);
    expect(sent2.every((e) => typeof e.headers['if-none-match'] === 'string' && typeof e.headers['if-modified-since'] === 'string')).toBe(true);
    const o2 = readOutput(out(), r2.run);
    expect(o2.failed).toEqual([]);
    expect(o2.summary).toMatchObject({ total: 30, succeeded: 30, failed: 0 });
    const lines2 = byId(o2.results);
    for (const id of ['item-0', 'item-1', 'item-2']) expect(lines2.get(id)).toMatchObject({ status: 200, data: { id, version: 2 } });
    const unchanged = o2.results.filter((l) => l.status === 304);
    expect(unchanged).toHaveLength(27);
    // The SPEC's line, exactly: no data.
    for (const l of unchanged) expect(Object.keys(l)).toEqual(['id', 'status', 'unchanged', 'fetchedAt']);
    expect(unchanged[0]).toMatchObject({ status: 304, unchanged: true });
    expect(readdirSync(path.join(out(), '.validators', fx.series))).toEqual([`${r2.run}.pqv`]);

    // Run 3: the 304s of run 2 carried their validators forward; one more item changed.
    api.change(['item-3']);
    seen = api.log.length;
    const r3 = await fx.tick(3);
    expect(itemRequests(api, seen).every((e) => typeof e.headers['if-none-match'] === 'string')).toBe(true);
    const lines3 = byId(readOutput(out(), r3.run).results);
    expect(lines3.size).toBe(30);
    expect(lines3.get('item-3')).toMatchObject({ status: 200, data: { version: 2 } });
    expect([...lines3.values()].filter((l) => l.unchanged === true).map((l) => l.id).sort()).toEqual(ids.filter((id) => id !== 'item-3').sort());
    // Every ID was fetched with a body exactly when it changed: 30 + 3 + 1.
    expect([...api.servedById.values()].reduce((a, b) => a + b, 0)).toBe(34);
    expect([...api.notModifiedById.values()].reduce((a, b) => a + b, 0)).toBe(27 + 29);
  });

  it('a run named without a UTC stamp is in no series: pulled without validators', () => {
    expect(seriesOf('nightly-20260301T030000Z', 'q1')).toBe('q1.nightly');
    expect(seriesOf('items.v2-20260301T030000Z', 'q1')).toBe('q1.items.v2');
    // Another queue (another config) sharing the sink: another series, never each other's validators.
    expect(seriesOf('nightly-20260301T030000Z', 'q2')).toBe('q2.nightly');
    expect(seriesOf('backfill', 'q1')).toBeNull();
    expect(seriesOf('-20260301T030000Z', 'q1')).toBeNull();
  });

  it('series names never collide: queue "a" with run "b.c-…" and queue "a.b" with run "c-…" are two series', () => {
    const stamp = '-20260301T030000Z';
    expect(seriesOf(`b.c${stamp}`, 'a')).not.toBe(seriesOf(`c${stamp}`, 'a.b'));
    // Every pair of queue and name: distinct pairs, distinct series.
    const parts = ['a', 'a.b', 'b', 'b.c', 'c', 'a.b.c', 'a-b', 'a_b', 'x.'];
    const seen = new Map<string, string>();
    for (const q of parts) {
      for (const n of parts) {
        const s = seriesOf(`${n}${stamp}`, q)!;
        expect(seen.get(s), `${q} + ${n} is ${s}`).toBeUndefined();
        seen.set(s, `${q} + ${n}`);
      }
    }
    // A queue without a dot keeps the series it had (its validators stay readable).
    expect(seriesOf(`items.v2${stamp}`, 'pullq')).toBe('pullq.items.v2');
  });
});

describe('output.carryUnchanged', () => {
  let api: ExampleApi;
  let fx: Awaited<ReturnType<typeof scheduleFixture>>;
  const out = () => path.join(tmp.dir, 'out-carry');
  beforeAll(async () => {
    api = await newApi();
    fx = await scheduleFixture('carry', ids.slice(0, 12), () => ({ request: { url: `${api.url}/items/{id}`, conditional: true }, output: { carryUnchanged: true }, sink: { type: 'file', dir: out() } }));
  });
  afterAll(() => fx.close());

  it('a 304 is written with the data of the last complete run, across runs', async () => {
    await fx.tick(1);
    api.change(['item-5']);
    await fx.tick(2);
    api.change(['item-6']);
    const r3 = await fx.tick(3);
    const lines = byId(readOutput(out(), r3.run).results);
    expect(lines.get('item-0')).toMatchObject({ id: 'item-0', status: 304, unchanged: true, data: { id: 'item-0', name: 'item item-0', version: 1 } });
    expect(Object.keys(lines.get('item-0')!)).toEqual(['id', 'status', 'unchanged', 'fetchedAt', 'data']);
    // Changed in run 2, carried in run 3 from run 2's fresh answer.
    expect(lines.get('item-5')).toMatchObject({ status: 304, unchanged: true, data: { version: 2 } });
    expect(lines.get('item-6')).toMatchObject({ status: 200, data: { version: 2 } });
    expect(lines.get('item-6')!.unchanged).toBeUndefined();
  });
});

describe('validators that cannot be read', () => {
  let api: ExampleApi;
  let fx: Awaited<ReturnType<typeof scheduleFixture>>;
  const out = () => path.join(tmp.dir, 'out-unreadable');
  beforeAll(async () => {
    api = await newApi();
    fx = await scheduleFixture('unreadable', ids.slice(0, 5), () => ({ request: { url: `${api.url}/items/{id}`, conditional: true }, output: { carryUnchanged: true }, sink: { type: 'file', dir: out() } }));
  });
  afterAll(() => fx.close());

  it('a series directory that cannot be read stops the next run naming it, instead of pulling every ID in full unnoticed', async () => {
    await fx.tick(1);
    const dir = path.join(out(), '.validators', fx.series);
    // A file where the series directory was: listing it fails (ENOTDIR), as an unreadable volume would.
    rmSync(dir, { recursive: true });
    writeFileSync(dir, 'not a directory');
    const seen = api.log.length;
    const run = await fx.fire(2);
    let status = await fx.store.status(run);
    for (const deadline = Date.now() + 40_000; !status?.aborted; status = await fx.store.status(run)) {
      if (Date.now() > deadline) throw new Error(`run ${run} not aborted: ${JSON.stringify(status)}`);
      await sleep(100);
    }
    expect(status.aborted).toContain(`cannot read the validators in ${dir}`);
    expect(status.complete).toBe(false);
    // Nothing was asked without the validators it should have sent.
    expect(itemRequests(api, seen)).toEqual([]);
  });
});

describe('a 304 to a request sent without validators', () => {
  let api: ExampleApi;
  let fx: Awaited<ReturnType<typeof scheduleFixture>>;
  const out = () => path.join(tmp.dir, 'out-broken');
  beforeAll(async () => {
    api = await newApi({ always304: true });
    fx = await scheduleFixture('broken', ['x-1', 'x-2'], () => ({ request: { url: `${api.url}/items/{id}`, conditional: true }, sink: { type: 'file', dir: out() } }));
  });
  afterAll(() => fx.close());

  it('fails the ID at once as server_error (nothing was asked that a 304 answers)', async () => {
    const r = await fx.tick(1);
    const o = readOutput(out(), r.run);
    expect(o.results).toEqual([]);
    expect(o.failed.map((f) => ({ ...f }))).toEqual(
      ['x-1', 'x-2'].map((id) => expect.objectContaining({ id, status: 304, error: 'server_error', message: 'HTTP 304 Not Modified to a request without validators', attempts: 1 })),
    );
    expect(api.requestsById.get('x-1')).toBe(1);
    // Nothing answered with validators: no validators file.
    expect(existsSync(path.join(out(), '.validators', fx.series))).toBe(false);
  });
});

describe('budget.free304: a 304 gives its start back', () => {
  // A start is reserved before its answer is known and given back after it: 304s go at the API's speed
  // when the burst covers the requests in flight (here 4 in flight, a burst of 5).
  const budget = { requests: 5, perSeconds: 1, burst: 5 };
  let api: ExampleApi;
  let fx: Awaited<ReturnType<typeof scheduleFixture>>;
  beforeAll(async () => {
    api = await newApi({ budgets: { '*': { requests: budget.requests, perSeconds: budget.perSeconds } }, free304: true, rateLimitHeaders: 'github', auth: { type: 'header', tokens: ['tok'] } });
    fx = await scheduleFixture('free', ids.slice(0, 15), () => ({
      request: { url: `${api.url}/items/{id}`, conditional: true },
      auth: { type: 'header', tokens: [{ token: 'tok', name: 'tok' }] },
      budget: { ...budget, free304: true },
      worker: { concurrency: 4 },
      sink: { type: 'file', dir: path.join(tmp.dir, 'out-free') },
    }));
  });
  afterAll(() => fx.close());

  it('15 unchanged IDs at 5 requests/s: the re-pull is not held to the budget, and the API rejects nothing', async () => {
    const first = await fx.tick(1);
    // 15 starts at 5/s, 5 of them back to back: about 2 s.
    expect(first.ms).toBeGreaterThan(1500);
    const before = api.log.length;
    await fx.tick(2);
    // Held to the budget, the 15 requests would span 2 s (10 after the burst of 5, at 5/s); given back,
    // they go as fast as the API answers. The requests' own span, not the tick's wall time: a busy
    // machine slows enqueue and finalize, never the budget.
    const sent = api.log.slice(before).filter((r) => r.url.startsWith('/items/')).map((r) => r.at);
    expect(sent).toHaveLength(15);
    expect(Math.max(...sent) - Math.min(...sent)).toBeLessThan(1000);
    expect([...api.notModifiedById.values()].reduce((a, b) => a + b, 0)).toBe(15);
    expect([...api.rejectedByCredential.values()].reduce((a, b) => a + b, 0)).toBe(0);
    const hashes = await Promise.all((await redis.keys(`${queueKeys(fx.config.queue).credPrefix}*`)).map(async (k) => ((await redis.type(k)) === 'hash' ? redis.hmget(k, 'requests', 'free') : null)));
    const [requests, free] = hashes.find((h) => h !== null)!;
    expect(Number(requests)).toBe(30);
    expect(Number(free)).toBe(15);
  });
});

describe.skipIf(!pgAvailable)('conditional re-pulls with the PostgreSQL sink', () => {
  const table = `pullq_cond_${Math.random().toString(36).slice(2, 10)}`;
  let api: ExampleApi;
  let fx: Awaited<ReturnType<typeof scheduleFixture>>;
  let db: pg.Client;
  beforeAll(async () => {
    api = await newApi();
    db = new pg.Client({ connectionString: PG_URL });
    await db.connect();
    fx = await scheduleFixture('pgnightly', ids.slice(0, 20), () => ({ request: { url: `${api.url}/items/{id}`, conditional: true }, output: { carryUnchanged: true }, sink: { type: 'postgres', url: PG_URL, table } }));
  });
  afterAll(async () => {
    await fx.close();
    await db.query(`DROP TABLE IF EXISTS "${table}", "${table}_runs", "${table}_vparts", "${table}_validators"`);
    await db.end();
  });

  it('validators in a table per series; run 2 gets 304s written with the carried data; run 3 still has them', async () => {
    const r1 = await fx.tick(1);
    expect((await db.query(`SELECT count(*)::int AS n, min(run) AS run FROM "${table}_validators" WHERE series = $1`, [fx.series])).rows[0]).toEqual({ n: 20, run: r1.run });
    api.change(['item-7']);
    const r2 = await fx.tick(2);
    const rows = (await db.query(`SELECT id, line FROM "${table}" WHERE run = $1 AND ok ORDER BY id`, [r2.run])).rows as { id: string; line: ResultLine }[];
    expect(rows).toHaveLength(20);
    const lines = byId(rows.map((r) => r.line));
    expect(lines.get('item-7')).toMatchObject({ status: 200, data: { version: 2 } });
    expect(lines.get('item-8')).toMatchObject({ status: 304, unchanged: true, data: { id: 'item-8', version: 1 } });
    expect(rows.filter((r) => r.line.unchanged).length).toBe(19);
    // Published, then the run's validator parts were dropped.
    expect((await db.query(`SELECT count(*)::int AS n, min(run) AS run FROM "${table}_validators" WHERE series = $1`, [fx.series])).rows[0]).toEqual({ n: 20, run: r2.run });
    expect((await db.query(`SELECT count(*)::int AS n FROM "${table}_vparts"`)).rows[0].n).toBe(0);
    const r3 = await fx.tick(3);
    const third = (await db.query(`SELECT count(*)::int AS n FROM "${table}" WHERE run = $1 AND (line->>'unchanged')::boolean`, [r3.run])).rows[0].n;
    expect(third).toBe(20);
  });
});

describe('the validators file', () => {
  it('finds each of 20,000 entries (its bucket heads, then its data only), and nothing for unknown IDs', async () => {
    const dir = tempDir('vfile');
    try {
      const entries = Array.from({ length: 20_000 }, (_, i) => ({ id: i % 7 === 0 ? `ü "q" ${i}\\x` : `id-${i}`, etag: `"e${i}"`, ...(i % 3 === 0 ? { lastModified: 'Sun, 01 Mar 2026 03:00:00 GMT' } : {}), ...(i % 5 === 0 ? { data: { n: i }, hasData: true } : {}) }));
      const parts = [0, 1, 2].map((p) => path.join(dir.dir, `p${p}.jsonl`));
      parts.forEach((file, p) => writeFileSync(file, entries.filter((_, i) => i % 3 === p).map((e) => `${validatorLine(e)}\n`).join('')));
      const target = path.join(dir.dir, 'v.pqv');
      expect(await buildValidatorsFile(target, [...parts, path.join(dir.dir, 'missing.jsonl')])).toBe(20_000);
      const file = await ValidatorsFile.open(target);
      try {
        expect(file.entries).toBe(20_000);
        const found = await file.lookup([...entries.map((e) => e.id), 'nope', 'id-']);
        expect(found.size).toBe(20_000);
        for (const e of entries) expect(found.get(e.id)).toEqual(e);
      } finally {
        await file.close();
      }
      expect(await buildValidatorsFile(path.join(dir.dir, 'empty.pqv'), [path.join(dir.dir, 'missing.jsonl')])).toBe(0);
      expect(existsSync(path.join(dir.dir, 'empty.pqv'))).toBe(false);
    } finally {
      dir.remove();
    }
  });

  it('a sink without the validator methods cannot pull conditionally', () => {
    const bare: Sink = { writePart: async () => undefined, discardPart: async () => undefined, finalize: async () => undefined, cleanup: async () => undefined, location: () => '' };
    expect(keepsValidators(bare)).toBe(false);
  });
});
