import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { startExampleApi, type ExampleApi } from '../scripts/example-api-server.js';
import { createPullq, type Pullq } from '../src/api/create-pullq.js';
import { queuePatterns, runKeys } from '../src/redis/keys.js';
import { FileSink } from '../src/sinks/file-sink.js';
import { PostgresSink } from '../src/sinks/postgres-sink.js';
import type { FailedLine, FinalizeFence, ResultLine, Sink, Summary } from '../src/sinks/sink.js';
import { readOutput } from './helpers/pull-in-process.js';
import { PG_URL, postgresAnswers } from './helpers/postgres.js';
import { cleanQueue, newRedis, quietLogger, tempDir, testConfig, uniqueQueue } from './helpers/test-env.js';

// Redis rewinds (a crash under appendfsync everysec, a failover to an async replica): it forgets
// that a run was finalized after the sink published the run's output and dropped its parts. Here a
// snapshot of every key of the queue (BullMQ's and pullq's) is taken with DUMP while the first pull
// runs and RESTOREd after it completed; the same pull is then run again.

const pgAvailable = await postgresAnswers();
const tmp = tempDir('rewind');
let api: ExampleApi;
const redis = newRedis();
const queues: string[] = [];
const tables: string[] = [];
beforeAll(async () => {
  api = await startExampleApi({ latencyMs: 5 });
});
afterAll(async () => {
  await api.close();
  for (const q of queues) await cleanQueue(redis, q);
  redis.disconnect();
  if (tables.length) {
    const db = new pg.Client({ connectionString: PG_URL });
    await db.connect();
    for (const t of tables) await db.query(`DROP TABLE IF EXISTS "${t}"; DROP TABLE IF EXISTS "${t}_runs"`);
    await db.end();
  }
  tmp.remove();
});

type Snapshot = { key: string; ttl: number; value: Buffer }[];

/** Every key of the queue with its value (DUMP) and TTL, read in one MULTI: a point in time, as a rewound Redis has it. */
async function snapshot(queue: string): Promise<Snapshot> {
  const keys: string[] = [];
  for (const pattern of queuePatterns(queue)) {
    let cursor = '0';
    do {
      const [next, found] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      keys.push(...found);
    } while (cursor !== '0');
  }
  const m = redis.multi();
  for (const k of keys) m.dumpBuffer(k).pttl(k);
  const replies = (await m.exec())!;
  const snap: Snapshot = [];
  keys.forEach((key, i) => {
    const value = replies[2 * i]![1] as Buffer | null;
    const ttl = replies[2 * i + 1]![1] as number;
    // The finalize lock was taken just before: a rewind to before the finalize has none.
    if (value !== null && !key.endsWith(':fin')) snap.push({ key, ttl: ttl > 0 ? ttl : 0, value });
  });
  return snap;
}

/** Redis as it was at the snapshot: every key of the queue deleted, then the snapshot's restored. */
async function rewind(queue: string, snap: Snapshot): Promise<void> {
  await cleanQueue(redis, queue);
  for (const { key, ttl, value } of snap) await redis.restore(key, ttl, value, 'REPLACE');
}

/** The sink under test, taking snapshots: at every writePart (the step commits right after it) and at finalize. */
class SnapshotSink implements Sink {
  beforeLastCommit: Snapshot | undefined;
  beforeFinalize: Snapshot | undefined;
  constructor(
    readonly inner: Sink,
    readonly queue: string,
  ) {}
  async writePart(run: string, part: string, results: ResultLine[], failures: FailedLine[]): Promise<void> {
    if (!this.beforeFinalize) this.beforeLastCommit = await snapshot(this.queue);
    await this.inner.writePart(run, part, results, failures);
  }
  discardPart(run: string, part: string) {
    return this.inner.discardPart(run, part);
  }
  async finalize(run: string, parts: string[], summary: Summary, extraFailed: () => AsyncIterable<string[]>, fence?: FinalizeFence) {
    this.beforeFinalize ??= await snapshot(this.queue);
    await this.inner.finalize(run, parts, summary, extraFailed, fence);
  }
  cleanup(run: string) {
    return this.inner.cleanup(run);
  }
  location(run: string) {
    return this.inner.location(run);
  }
}

interface Kind {
  name: string;
  skip: boolean;
  sink(queue: string): { sink: Sink; output(run: string): Promise<{ results: ResultLine[]; failed: FailedLine[]; summary: Summary }>; close(): Promise<void> };
}

const kinds: Kind[] = [
  {
    name: 'file sink',
    skip: false,
    sink: (queue) => {
      const dir = `${tmp.dir}/${queue}`;
      return { sink: new FileSink(dir), output: async (run) => readOutput(dir, run), close: async () => undefined };
    },
  },
  {
    name: 'PostgreSQL sink',
    skip: !pgAvailable,
    sink: (queue) => {
      const table = `pullq_rw_${queue.replace(/-/g, '_')}`;
      tables.push(table);
      const sink = new PostgresSink(PG_URL, table);
      const db = new pg.Pool({ connectionString: PG_URL, max: 1 });
      return {
        sink,
        async output(run) {
          const rows = (await db.query<{ ok: boolean; line: ResultLine & FailedLine }>(`SELECT ok, line FROM "${table}" WHERE run = $1`, [run])).rows;
          const summary = (await db.query<{ summary: Summary }>(`SELECT summary FROM "${table}_runs" WHERE run = $1`, [run])).rows[0]!.summary;
          return { results: rows.filter((r) => r.ok).map((r) => r.line), failed: rows.filter((r) => !r.ok).map((r) => r.line), summary };
        },
        async close() {
          await db.end();
          await sink.close();
        },
      };
    },
  },
];

const IDS = [...Array.from({ length: 36 }, (_, i) => String(i + 1)), 'missing-1', '..'];

for (const kind of kinds) {
  describe.skipIf(kind.skip)(`${kind.name}: finalize repeated after Redis forgot it`, () => {
    for (const lost of ['the finalized mark', 'the finalized mark and the last commit'] as const) {
      it(`Redis rewound to before ${lost === 'the finalized mark' ? 'finalize' : 'the last commit'}: the same pull ends complete, every ID once`, async () => {
        const queue = uniqueQueue('rw');
        queues.push(queue);
        const config = testConfig({ queue, request: { url: `${api.url}/items/{id}` }, worker: { concurrency: 4, lockDurationMs: 1000 }, enqueue: { batchSize: 8 }, sink: { type: 'file', dir: `${tmp.dir}/${queue}` } });
        const made = kind.sink(queue);
        const sink = new SnapshotSink(made.sink, queue);
        let pullq: Pullq | undefined = createPullq(config, { sink, logger: quietLogger() });
        try {
          const first = await pullq.pull(IDS, { run: 'r1' });
          expect(first.complete).toBe(true);
          const published = await made.output('r1');
          await pullq.close();
          pullq = undefined;

          await rewind(queue, lost === 'the finalized mark' ? sink.beforeFinalize! : sink.beforeLastCommit!);
          // A finalizer that died holding the lock: the refused batches must wait for it, not complete their jobs
          // (pull's own repair is put out of reach, so only the jobs can bring the run to its end).
          if (lost !== 'the finalized mark') await redis.set(runKeys(queue, 'r1').finalizeLock, 'a-dead-finalizer', 'PX', 3000);
          pullq = createPullq(config, { sink, logger: quietLogger() });
          const again = await pullq.pull(IDS, { run: 'r1', repairAfterMs: 600_000, signal: AbortSignal.timeout(40_000) });
          expect({ complete: again.complete, reason: again.reason }).toEqual({ complete: true, reason: undefined });
          expect(again.status).toMatchObject({ complete: true, total: 38, succeeded: 36, failed: 2, aborted: null });
          const out = await made.output('r1');
          expect(out.results.map((l) => l.id).sort()).toEqual(published.results.map((l) => l.id).sort());
          expect(new Set(out.results.map((l) => l.id)).size).toBe(36);
          expect(out.failed.map((l) => l.id).sort()).toEqual(['..', 'missing-1']);
          expect(out.summary).toMatchObject({ run: 'r1', total: 38, succeeded: 36, failed: 2, startedAt: published.summary.startedAt });
        } finally {
          await pullq?.close();
          await made.close();
        }
      });
    }
  });
}
