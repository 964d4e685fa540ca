import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startExampleApi, type ExampleApi } from '../scripts/example-api-server.js';
import { RunStore, type RunStatus } from '../src/runs/run-store.js';
import type { ResultLine } from '../src/sinks/sink.js';
import { runCli, spawnCli } from './helpers/cli.js';
import { PG_URL, postgresAnswers } from './helpers/postgres.js';
import { readOutput } from './helpers/pull-in-process.js';
import { cleanQueue, newRedis, redisUrl, tempDir, uniqueQueue } from './helpers/test-env.js';

// A worker process killed with SIGKILL mid-pagination (issue #13): another worker resumes every
// ID at the page its last commit reached; every page is output exactly once, and no page before
// the committed one is fetched again.

const tmp = tempDir('page-crash');
const redis = newRedis();
const PAGES = 40;
const IDS = [`p${PAGES}-a`, `p${PAGES}-b`, 'p1-short'];
let havePostgres = false;
/** What each case started, for the clean-up: its API, queue and table. */
const started: { api: ExampleApi; queue: string; table: string }[] = [];

beforeAll(async () => {
  havePostgres = await postgresAnswers();
  writeFileSync(path.join(tmp.dir, 'ids.txt'), `${IDS.join('\n')}\n`);
});
afterAll(async () => {
  if (havePostgres) {
    const c = new pg.Client({ connectionString: PG_URL });
    await c.connect();
    for (const { table } of started) await c.query(`DROP TABLE IF EXISTS "${table}", "${table}_runs"`);
    await c.end();
  }
  for (const { api, queue } of started) await cleanQueue(redis, queue).then(() => api.close());
  redis.disconnect();
  tmp.remove();
});

const env = () => ({ REDIS_URL: redisUrl(), PULLQ_LOG_LEVEL: 'warn' });

/** One case's own API (200 ms a page: an ID of 40 pages takes ~8 s, so the first checkpoint, at 5 s, lands mid-pagination), queue and config. */
async function setupCase(mode: 'id' | 'page', sinkType: 'file' | 'postgres') {
  const api = await startExampleApi({ latencyMs: 200, auth: { type: 'header', tokens: ['crash-token'] } });
  const queue = uniqueQueue('page-crash');
  const table = `pullq_page_crash_${queue.replace(/-/g, '_')}`;
  started.push({ api, queue, table });
  const file = `pullq.${mode}.${sinkType}.json`;
  writeFileSync(path.join(tmp.dir, file), JSON.stringify({
    queue,
    request: { url: `${api.url}/users/{id}/events`, timeoutMs: 5000, pagination: { type: 'page', param: 'page', itemsPath: 'items' } },
    output: { mode },
    auth: { type: 'header', tokens: ['crash-token'] },
    worker: { concurrency: 4, lockDurationMs: 1500, shutdownTimeoutMs: 10000 },
    enqueue: { batchSize: 10 },
    sink: sinkType === 'file' ? { type: 'file', dir: './out' } : { type: 'postgres', url: PG_URL, table },
  }));
  return { api, table, config: file, store: new RunStore(redis, queue) };
}

async function waitFor(store: RunStore, run: string, pred: (s: RunStatus) => boolean, timeoutMs = 60_000): Promise<RunStatus> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await store.status(run);
    if (s && pred(s)) return s;
    if (Date.now() > deadline) throw new Error(`timed out waiting; status ${JSON.stringify(s)}`);
    await sleep(50);
  }
}

/** The page each long ID's committed state says to fetch next, once both are past page 2. */
async function committedPages(store: RunStore, run: string): Promise<Map<string, number>> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const batch = await store.readBatch(run, 0);
    const at = new Map(IDS.slice(0, 2).map((id) => [id, batch.states.get(id)?.page?.n ?? 1]));
    if ([...at.values()].every((n) => n >= 3)) return at;
    if (Date.now() > deadline) throw new Error(`no checkpoint mid-pagination: ${JSON.stringify([...at])}`);
    await sleep(20);
  }
}

const pageUrl = (id: string, p: number) => `/users/${id}/events?page=${p}`;

// The three cases have their own API, queue and output: they run side by side (most of each is the API's latency).
describe.concurrent('SIGKILL mid-pagination', () => {
  it.each([
    ['page', 'file'],
    ['id', 'file'],
    ['id', 'postgres'],
  ] as const)('output.mode %j (%s sink): the ID resumes at the committed page; every page exactly once', async (mode, sinkType) => {
    if (sinkType === 'postgres' && !havePostgres) {
      console.warn('PostgreSQL not reachable: skipping the postgres variant');
      return;
    }
    const run = `crash-${mode}-${sinkType}`;
    const { api, table, config, store } = await setupCase(mode, sinkType);
    expect((await runCli(['enqueue', 'ids.txt', '--run', run, '--config', config], { cwd: tmp.dir, env: env() })).code).toBe(0);
    const a = spawnCli(['worker', '--config', config], { cwd: tmp.dir, env: env() });
    const committed = await committedPages(store, run);
    a.child.kill('SIGKILL');
    expect((await a.done).signal).toBe('SIGKILL');
    const b = spawnCli(['worker', '--config', config], { cwd: tmp.dir, env: env() });
    await waitFor(store, run, (s) => s.complete);
    b.child.kill('SIGTERM');
    expect((await b.done).code).toBe(0);

    for (const [id, n] of committed) {
      expect(n).toBeLessThan(PAGES);
      // The pages before the committed one were fetched once (by the killed worker), never again;
      // the worker that took over fetched from the committed page on (the killed one's in-flight
      // pages after it may have been fetched twice).
      for (let p = 1; p < n; p++) expect(api.requestsByUrl.get(pageUrl(id, p)), `${id} page ${p}`).toBe(1);
      for (let p = n; p <= PAGES + 1; p++) expect(api.requestsByUrl.get(pageUrl(id, p)), `${id} page ${p}`).toBeGreaterThanOrEqual(1);
      expect(api.requestsByUrl.get(pageUrl(id, PAGES + 2))).toBeUndefined();
    }

    let results: ResultLine[];
    if (sinkType === 'file') {
      const out = readOutput(path.join(tmp.dir, 'out'), run);
      expect(out.failed).toEqual([]);
      expect(out.summary).toMatchObject({ total: 3, succeeded: 3, failed: 0 });
      results = out.results;
    } else {
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      results = (await c.query<{ line: ResultLine }>(`SELECT line FROM "${table}" WHERE run = $1 AND ok`, [run])).rows.map((r) => r.line);
      const failed = await c.query(`SELECT 1 FROM "${table}" WHERE run = $1 AND NOT ok`, [run]);
      await c.end();
      expect(failed.rowCount).toBe(0);
    }
    const expected = (id: string, pages: number) => Array.from({ length: pages }, (_, p) => [0, 1].map((i) => ({ user: id, page: p + 1, i }))).flat();
    if (mode === 'page') {
      // One line per page, each exactly once: 40 pages of items and the empty 41st.
      for (const id of IDS.slice(0, 2)) {
        const pages = results.filter((r) => r.id === id).map((r) => r.page!);
        expect(pages.sort((x, y) => x - y)).toEqual(Array.from({ length: PAGES + 1 }, (_, i) => i + 1));
      }
      expect(results.filter((r) => r.id === 'p1-short').map((r) => r.page)).toEqual([1, 2]);
    } else {
      // One line per ID, its items from every page exactly once, in order.
      expect(results.map((r) => r.id).sort()).toEqual([...IDS].sort());
      for (const id of IDS.slice(0, 2)) {
        const line = results.find((r) => r.id === id)!;
        expect(line.pages).toBe(PAGES + 1);
        expect(line.data).toEqual(expected(id, PAGES));
      }
      expect(results.find((r) => r.id === 'p1-short')!.data).toEqual(expected('p1-short', 1));
    }
  });
});
