import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Queue } from 'bullmq';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startExampleApi, type ExampleApi } from '../scripts/example-api-server.js';
import { PostgresSink } from '../src/sinks/postgres-sink.js';
import { runCli, spawnCli } from './helpers/cli.js';
import { PG_URL, postgresAnswers } from './helpers/postgres.js';
import { cleanQueue, newRedis, redisUrl, tempDir, uniqueQueue } from './helpers/test-env.js';
import { bullPrefix, runKeys } from '../src/redis/keys.js';
import { batchJobOptions } from '../src/runs/enqueue-run.js';

// PostgreSQL from PULLQ_TEST_POSTGRES_URL, else the local server (trust auth, database "test").
const available = await postgresAnswers();
if (!available) console.warn(`postgres sink tests skipped: no PostgreSQL at ${PG_URL} (set PULLQ_TEST_POSTGRES_URL)`);

const table = `pullq_test_${Math.random().toString(36).slice(2, 10)}`;
const tmp = tempDir('pgsink');
const queue = uniqueQueue('pg');
let api: ExampleApi;
let db: pg.Client;
beforeAll(async () => {
  if (!available) return;
  api = await startExampleApi({ latencyMs: 5 });
  db = new pg.Client({ connectionString: PG_URL });
  await db.connect();
  writeFileSync(path.join(tmp.dir, 'pullq.config.json'), JSON.stringify({
    queue,
    request: { url: `${api.url}/items/{id}` },
    worker: { concurrency: 4, lockDurationMs: 1500 },
    enqueue: { batchSize: 10 },
    sink: { type: 'postgres', url: '${PG_URL}', table },
  }));
});
afterAll(async () => {
  if (!available) return;
  await db.query(`DROP TABLE IF EXISTS "${table}"; DROP TABLE IF EXISTS "${table}_runs"`);
  await db.end();
  await api.close();
  const r = newRedis();
  await cleanQueue(r, queue);
  r.disconnect();
  tmp.remove();
});

describe.skipIf(!available)('PostgreSQL sink', () => {
  it('an API answering NUL characters and lone surrogates: every ID written (escaped), the run completes', async () => {
    // Before: jsonb refused "\u0000", the batch job failed 20 times and the run never completed.
    const server = createServer((req, res) => {
      const id = decodeURIComponent(req.url!.split('/').pop()!);
      res.writeHead(200, { 'content-type': 'application/json' }).end(`{"id":${JSON.stringify(id)},"note":"nul\\u0000here","odd":"\\ud800"}`);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const nulTable = `${table}_nul`;
      const ids = Array.from({ length: 40 }, (_, i) => `nul-${i}`);
      writeFileSync(path.join(tmp.dir, 'nul.ids.txt'), `${ids.join('\n')}\n`);
      writeFileSync(path.join(tmp.dir, 'nul.config.json'), JSON.stringify({
        queue: `${queue}-nul`,
        request: { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/items/{id}` },
        enqueue: { batchSize: 10 },
        sink: { type: 'postgres', url: '${PG_URL}', table: nulTable },
      }));
      const r = await runCli(['pull', 'nul.ids.txt', '--run', 'nul', '--config', 'nul.config.json'], { cwd: tmp.dir, env: { REDIS_URL: redisUrl(), PG_URL, PULLQ_LOG_LEVEL: 'error' } });
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const rows = (await db.query(`SELECT id, line->'data'->>'note' AS note, line->'data'->>'odd' AS odd FROM "${nulTable}" WHERE run = 'nul' ORDER BY id`)).rows;
      await db.query(`DROP TABLE IF EXISTS "${nulTable}"; DROP TABLE IF EXISTS "${nulTable}_runs"`);
      expect(rows).toHaveLength(40);
      expect(rows[0]).toEqual({ id: 'nul-0', note: 'nul\\u0000here', odd: '\\ud800' });
    } finally {
      server.close();
      const r = newRedis();
      await cleanQueue(r, `${queue}-nul`);
      r.disconnect();
    }
  });

  it('a part written but never committed is not output', async () => {
    const sink = new PostgresSink(PG_URL, table);
    const line = (id: string) => ({ id, status: 200, fetchedAt: 'x', data: { id } });
    await sink.writePart('unit', 'p-committed', [line('a')], []);
    await sink.writePart('unit', 'p-lost', [line('a'), line('b')], []);
    await sink.finalize('unit', ['p-committed'], { run: 'unit', total: 1, succeeded: 1, failed: 0, startedAt: 'x', finishedAt: new Date().toISOString(), durationMs: 0, errors: {} }, async function* () {
      yield [JSON.stringify({ id: 'bad id', status: null, error: 'invalid_id', message: 'line 2: …', attempts: 0 })];
    });
    await sink.close();
    const rows = await db.query(`SELECT id, ok, line->>'error' AS error FROM "${table}" WHERE run = 'unit' ORDER BY id`);
    expect(rows.rows).toEqual([{ id: 'a', ok: true, error: null }, { id: 'bad id', ok: false, error: 'invalid_id' }]);
  });

  it('a stalled batch whose run is already final in the table is dropped quietly, not retried into an abort', async () => {
    const q = `${queue}-late`;
    writeFileSync(path.join(tmp.dir, 'late.ids.txt'), 'late-1\nlate-2\n');
    writeFileSync(path.join(tmp.dir, 'late.config.json'), JSON.stringify({
      queue: q, request: { url: `${api.url}/items/{id}` }, enqueue: { batchSize: 10 }, sink: { type: 'postgres', url: '${PG_URL}', table },
    }));
    const env = { REDIS_URL: redisUrl(), PG_URL, PULLQ_LOG_LEVEL: 'error' };
    expect((await runCli(['pull', 'late.ids.txt', '--run', 'late', '--config', 'late.config.json'], { cwd: tmp.dir, env })).code).toBe(0);
    // A stalled attempt of batch 0 wakes now: it still sees the batch's IDs and BullMQ hands its job out again.
    const r = newRedis();
    const q2 = new Queue(q, { connection: r, prefix: bullPrefix(q) });
    await r.rpush(runKeys(q, 'late').batch(0), 'late-1', 'late-2');
    await q2.add('batch', { run: 'late', batch: 0 }, batchJobOptions('late', 0));
    const worker = spawnCli(['worker', '--config', 'late.config.json'], { cwd: tmp.dir, env });
    try {
      for (let i = 0; i < 100 && (await q2.getJobCountByTypes('waiting', 'active', 'delayed')) > 0; i++) await new Promise((res) => setTimeout(res, 50));
      // The batch job ended at once: not delayed for a retry, not failed.
      const left = await q2.getJobCountByTypes('waiting', 'active', 'delayed', 'failed');
      expect(left).toBe(0);
      const meta = await r.hgetall(runKeys(q, 'late').meta);
      expect(meta['aborted']).toBeUndefined();
      // The stale attempt did fetch its IDs again (so it wrote a part)...
      expect(api.requestsById.get('late-1')).toBe(2);
      // ...and its part was refused: the run keeps its one row per ID.
      expect((await db.query(`SELECT id FROM "${table}" WHERE run = 'late' ORDER BY id`)).rows).toEqual([{ id: 'late-1' }, { id: 'late-2' }]);
    } finally {
      worker.child.kill('SIGTERM');
      await worker.done;
      await q2.close();
      await cleanQueue(r, q);
      r.disconnect();
    }
  });

  it('a run name whose summary row is already in the table (an earlier run, Redis since reset): pull stops with the reason, exit 2', async () => {
    // Before: every batch was refused as a late write and dropped quietly, and pull waited forever.
    const q = `${queue}-reused`;
    writeFileSync(path.join(tmp.dir, 'reused.ids.txt'), 'reused-1\nreused-2\n');
    writeFileSync(path.join(tmp.dir, 'reused.config.json'), JSON.stringify({
      queue: q, request: { url: `${api.url}/items/{id}` }, enqueue: { batchSize: 10 }, sink: { type: 'postgres', url: '${PG_URL}', table },
    }));
    const sink = new PostgresSink(PG_URL, table);
    await sink.discardPart('reused', 'none'); // creates the tables
    await sink.close();
    await db.query(`INSERT INTO "${table}_runs" (run, summary, finished_at) VALUES ('reused', '{}', now()) ON CONFLICT (run) DO NOTHING`);
    const env = { REDIS_URL: redisUrl(), PG_URL, PULLQ_LOG_LEVEL: 'error' };
    try {
      const r = await runCli(['pull', 'reused.ids.txt', '--run', 'reused', '--config', 'reused.config.json'], { cwd: tmp.dir, env });
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`run reused cannot complete: the sink already holds the final output of an earlier run named reused (PostgreSQL table ${table} (run = 'reused')`);
      expect((await db.query(`SELECT count(*)::int AS n FROM "${table}" WHERE run = 'reused'`)).rows[0].n).toBe(0);
    } finally {
      const r = newRedis();
      await cleanQueue(r, q);
      r.disconnect();
    }
  });

  it('a fleet with a worker killed mid-run: every ID in exactly one row, summary stored', async () => {
    const ids = Array.from({ length: 300 }, (_, i) => (i % 50 === 0 ? `missing-${i}` : `pg-${i}`));
    writeFileSync(path.join(tmp.dir, 'ids.txt'), `${ids.join('\n')}\n.\n`);
    const env = { REDIS_URL: redisUrl(), PG_URL, PULLQ_LOG_LEVEL: 'warn' };
    const victim = spawnCli(['worker'], { cwd: tmp.dir, env });
    const pull = spawnCli(['pull', 'ids.txt', '--run', 'fleet'], { cwd: tmp.dir, env });
    for (;;) {
      const n = await db.query(`SELECT count(*)::int AS n FROM "${table}" WHERE run = 'fleet'`).catch(() => ({ rows: [{ n: 0 }] }));
      if ((n.rows[0] as { n: number }).n >= 60) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    victim.child.kill('SIGKILL');
    const r = await pull.done;
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`output: PostgreSQL table ${table} (run = 'fleet')`);
    expect(r.stdout + r.stderr).not.toContain('postgres://');
    const rows = await db.query(`SELECT id, count(*)::int AS n, bool_and(ok) AS ok FROM "${table}" WHERE run = 'fleet' GROUP BY id`);
    expect(rows.rows).toHaveLength(301);
    expect(rows.rows.every((x: { n: number }) => x.n === 1)).toBe(true);
    expect(rows.rows.filter((x: { ok: boolean }) => !x.ok).map((x: { id: string }) => x.id).sort()).toEqual(['.', ...ids.filter((i) => i.startsWith('missing-'))].sort());
    const summary = await db.query(`SELECT summary FROM "${table}_runs" WHERE run = 'fleet'`);
    expect(summary.rows[0].summary).toMatchObject({ run: 'fleet', total: 301, succeeded: 294, failed: 7 });
    const status = await runCli(['status', '--run', 'fleet', '--json'], { cwd: tmp.dir, env });
    expect(JSON.parse(status.stdout)).toMatchObject({ complete: true, total: 301 });
  });
});
