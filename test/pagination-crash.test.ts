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
import { newRedis, redisUrl, tearDown, tempDir, uniqueQueue } from './helpers/test-env.js';

// A worker process killed with SIGKILL mid-pagination (issue #13): another worker resumes every
// ID at the page its last commit reached; every page is output exactly once, and no page before
// the committed one is fetched again.

const tmp = tempDir('page-crash');
const redis = newRedis();
const queue = uniqueQueue('page-crash');
const store = new RunStore(redis, queue);
const PAGES = 40;
const IDS = [`p${PAGES}-a`, `p${PAGES}-b`, 'p1-short'];
const table = `pullq_page_crash_${queue.replace(/-/g, '_')}`;
let api: ExampleApi;
let havePostgres = false;

beforeAll(async () => {
  havePostgres = await postgresAnswers();
  // 200 ms a page: an ID of 40 pages takes ~8 s, so the first checkpoint (5 s) lands mid-pagination.
  api = await startExampleApi({ latencyMs: 200, auth: { type: 'header', tokens: ['crash-token'] } });
  writeFileSync(path.join(tmp.dir, 'ids.txt'), `${IDS.join('\n')}\n`);
});
afterAll(async () => {
  if (havePostgres) {
    const c = new pg.Client({ connectionString: PG_URL });
    await c.connect();
    await c.query(`DROP TABLE IF EXISTS "${table}", "${table}_runs"`);
    await c.end();
  }
  await tearDown({ api, queue, redis, tmp });
});

const env = () => ({ REDIS_URL: redisUrl(), PULLQ_LOG_LEVEL: 'warn' });

function writeConfig(mode: 'id' | 'page', sink: Record<string, unknown>): string {
  const file = `pullq.${mode}.json`;
  writeFileSync(path.join(tmp.dir, file), JSON.stringify({
    queue,
    request: { url: `${api.url}/users/{id}/events`, timeoutMs: 5000, pagination: { type: 'page', param: 'page', itemsPath: 'items' } },
    output: { mode },
    auth: { type: 'header', tokens: ['crash-token'] },
    worker: { concurrency: 4, lockDurationMs: 1500, shutdownTimeoutMs: 10000 },
    enqueue: { batchSize: 10 },
    sink,
  }));
  return file;
}

async function waitFor(run: string, pred: (s: RunStatus) => boolean, timeoutMs = 60_000): Promise<RunStatus> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await store.status(run);
    if (s && pred(s)) return s;
    if (Date.now() > deadline) throw new Error(`timed out waiting; status ${JSON.stringify(s)}`);
    await sleep(50);
  }
}

/** The page each long ID's committed state says to fetch next, once both are past page 2. */
async function committedPages(run: string): Promise<Map<string, number>> {
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

describe('SIGKILL mid-pagination', () => {
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
    const config = writeConfig(mode, sinkType === 'file' ? { type: 'file', dir: './out' } : { type: 'postgres', url: PG_URL, table });
    api.requestsByUrl.clear();
    expect((await runCli(['enqueue', 'ids.txt', '--run', run, '--config', config], { cwd: tmp.dir, env: env() })).code).toBe(0);
    const a = spawnCli(['worker', '--config', config], { cwd: tmp.dir, env: env() });
    const committed = await committedPages(run);
    a.child.kill('SIGKILL');
    expect((await a.done).signal).toBe('SIGKILL');
    const b = spawnCli(['worker', '--config', config], { cwd: tmp.dir, env: env() });
    await waitFor(run, (s) => s.complete);
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
