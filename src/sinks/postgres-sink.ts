import pg from 'pg';
import type { FailedLine, ResultLine, Sink, Summary } from './sink.js';

/** Part name under which `enqueue`'s invalid IDs are stored at finalize. */
const INVALID_PART = 'invalid-ids';

/**
 * Results in PostgreSQL, for fleets without a shared directory. One row per
 * ID and committed part: `<table>(run, id, part, ok, status, line jsonb)`;
 * `line` is exactly the results.jsonl / failed.jsonl line. Parts are written
 * (one transaction) before their step commits in Redis; finalize deletes the
 * rows of parts that never committed, so each ID of a complete run is in
 * exactly one row. Run summaries go to `<table>_runs(run, summary jsonb, finished_at)`.
 */
export class PostgresSink implements Sink {
  readonly table: string;
  private readonly pool: pg.Pool;
  private ready: Promise<void> | undefined;

  constructor(url: string, table: string) {
    // `table` is checked by the config schema: a plain identifier, safe to quote into SQL.
    this.table = table;
    this.pool = new pg.Pool({ connectionString: url, max: 4 });
    // An idle client's error (server restart) must not crash the worker; the next query reconnects.
    this.pool.on('error', () => undefined);
  }

  location(run: string): string {
    return `PostgreSQL table ${this.table} (run = '${run}'), summary in ${this.table}_runs`;
  }

  private ensureTables(): Promise<void> {
    this.ready ??= (async () => {
      await this.pool.query(`CREATE TABLE IF NOT EXISTS "${this.table}" (
        run text NOT NULL, id text NOT NULL, part text NOT NULL, ok boolean NOT NULL, status integer, line jsonb NOT NULL,
        PRIMARY KEY (run, part, id))`);
      await this.pool.query(`CREATE INDEX IF NOT EXISTS "${this.table}_run_id" ON "${this.table}" (run, id)`);
      await this.pool.query(`CREATE TABLE IF NOT EXISTS "${this.table}_runs" (run text PRIMARY KEY, summary jsonb NOT NULL, finished_at timestamptz NOT NULL)`);
    })().catch((err: unknown) => {
      this.ready = undefined;
      throw err;
    });
    return this.ready;
  }

  async writePart(run: string, part: string, results: ResultLine[], failures: FailedLine[]): Promise<void> {
    await this.ensureTables();
    const rows = [...results.map((r) => [r.id, true, r.status, r] as const), ...failures.map((f) => [f.id, false, f.status, f] as const)];
    await this.pool.query(
      `INSERT INTO "${this.table}" (run, id, part, ok, status, line)
       SELECT $1, t.id, $2, t.ok, t.status, t.line FROM unnest($3::text[], $4::boolean[], $5::integer[], $6::jsonb[]) AS t(id, ok, status, line)
       ON CONFLICT (run, part, id) DO UPDATE SET ok = EXCLUDED.ok, status = EXCLUDED.status, line = EXCLUDED.line`,
      [run, part, rows.map((r) => r[0]), rows.map((r) => r[1]), rows.map((r) => r[2]), rows.map((r) => JSON.stringify(r[3]))],
    );
  }

  async discardPart(run: string, part: string): Promise<void> {
    await this.ensureTables();
    await this.pool.query(`DELETE FROM "${this.table}" WHERE run = $1 AND part = $2`, [run, part]);
  }

  async finalize(run: string, parts: string[], summary: Summary, extraFailed: () => AsyncIterable<string[]>): Promise<void> {
    await this.ensureTables();
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      // Rows of parts that never committed (an attempt that lost its job) are not output.
      await client.query(`DELETE FROM "${this.table}" WHERE run = $1 AND NOT (part = ANY($2::text[]))`, [run, parts]);
      for await (const lines of extraFailed()) {
        const parsed = lines.map((l) => JSON.parse(l) as FailedLine);
        await client.query(
          `INSERT INTO "${this.table}" (run, id, part, ok, status, line)
           SELECT $1, t.id, $2, false, NULL, t.line FROM unnest($3::text[], $4::jsonb[]) AS t(id, line)
           ON CONFLICT (run, part, id) DO NOTHING`,
          [run, INVALID_PART, parsed.map((f) => f.id), lines],
        );
      }
      await client.query(
        `INSERT INTO "${this.table}_runs" (run, summary, finished_at) VALUES ($1, $2, $3)
         ON CONFLICT (run) DO UPDATE SET summary = EXCLUDED.summary, finished_at = EXCLUDED.finished_at`,
        [run, JSON.stringify(summary), summary.finishedAt],
      );
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  async cleanup(): Promise<void> {
    // Nothing to clean: uncommitted parts were deleted by finalize.
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
