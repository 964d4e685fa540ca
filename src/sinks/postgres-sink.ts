import { createHash } from 'node:crypto';
import pg from 'pg';
import { RunFinalizedError, type FailedLine, type FinalizeFence, type ResultLine, type Sink, type Summary } from './sink.js';
import type { ValidatorEntry } from './validators.js';

/** Part name under which `enqueue`'s invalid IDs are stored at finalize. */
const INVALID_PART = 'invalid-ids';
/** Rows per INSERT, and a byte budget per INSERT: one step's rows never become one giant query. */
const ROWS_PER_INSERT = 500;
const BYTES_PER_INSERT = 32 * 1024 * 1024;
/** IDs per validators lookup query (request.conditional): a reply holds at most this many IDs' carried data. */
const LOOKUP_IDS_PER_QUERY = 100;

/**
 * JSON text PostgreSQL's jsonb accepts. It refuses the NUL character
 * (`\u0000`) and lone UTF-16 surrogates (`\ud800`, which JSON.parse happily
 * makes from an API's JSON): both are stored as their six-character escape
 * text instead (the string then reads `\u0000` literally), so such data is
 * written rather than failing its whole batch. JSON.stringify escapes exactly
 * these as `\uXXXX` (a valid surrogate pair stays raw). Pure; see the table in
 * test/sink-data.test.ts.
 */
export function pgSafeJson(json: string): string {
  // An escaped backslash before "u0000" is not an escape: count the backslashes.
  return json.replace(/(\\*)\\u(0000|d[89a-f][0-9a-f]{2})/g, (m, slashes: string, code: string) => (slashes.length % 2 === 0 ? `${slashes}\\\\u${code}` : m));
}

/** A text value PostgreSQL can hold: NUL bytes become the six characters `\u0000`. */
export function pgSafeText(text: string): string {
  return text.includes('\u0000') ? text.replaceAll('\u0000', '\\u0000') : text;
}

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

  /**
   * Writes a part in one transaction, in bounded INSERTs. It holds the run's
   * advisory lock shared (finalize takes it exclusively) and refuses once the
   * run has its summary row: a stalled worker waking after finalize cannot
   * leave rows in a complete run.
   */
  async writePart(run: string, part: string, results: ResultLine[], failures: FailedLine[]): Promise<void> {
    await this.transaction(async (client) => {
      await client.query('SELECT pg_advisory_xact_lock_shared($1)', [this.runLockKey(run)]);
      await this.refuseIfFinalized(client, run);
      let rows: [string, boolean, number | null, string][] = [];
      let bytes = 0;
      const flush = async () => {
        if (rows.length === 0) return;
        await client.query(
          `INSERT INTO "${this.table}" (run, id, part, ok, status, line)
           SELECT $1, t.id, $2, t.ok, t.status, t.line FROM unnest($3::text[], $4::boolean[], $5::integer[], $6::jsonb[]) AS t(id, ok, status, line)
           ON CONFLICT (run, part, id) DO UPDATE SET ok = EXCLUDED.ok, status = EXCLUDED.status, line = EXCLUDED.line`,
          [run, part, rows.map((r) => r[0]), rows.map((r) => r[1]), rows.map((r) => r[2]), rows.map((r) => r[3])],
        );
        rows = [];
        bytes = 0;
      };
      for (const [line, ok] of [...results.map((r) => [r, true] as const), ...failures.map((f) => [f, false] as const)]) {
        const json = pgSafeJson(JSON.stringify(line));
        rows.push([pgRowId(line), ok, line.status, json]);
        bytes += json.length;
        if (rows.length >= ROWS_PER_INSERT || bytes >= BYTES_PER_INSERT) await flush();
      }
      await flush();
    });
  }

  /** Throws the refusal a late write gets (naming the published summary) once the run has its summary row. */
  private async refuseIfFinalized(client: pg.PoolClient, run: string): Promise<void> {
    const published = await this.publishedSummary(client, run);
    if (published) throw new RunFinalizedError(run, published);
  }

  private async publishedSummary(client: pg.PoolClient, run: string): Promise<Summary | undefined> {
    const r = await client.query<{ summary: Summary }>(`SELECT summary FROM "${this.table}_runs" WHERE run = $1`, [run]);
    return r.rows[0]?.summary;
  }

  /** Runs `fn` in one transaction on one pooled client: COMMIT when it returns, ROLLBACK when it throws. */
  private async transaction(fn: (client: pg.PoolClient) => Promise<void>): Promise<void> {
    await this.ensureTables();
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      await fn(client);
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  /** The advisory lock key of one run of this table (writePart shares it, finalize holds it alone). */
  private runLockKey(run: string): string {
    return pgLockKey(`${this.table}:${run}`);
  }

  async readPart(run: string, part: string): Promise<ResultLine[]> {
    await this.ensureTables();
    const r = await this.pool.query<{ line: ResultLine }>(`SELECT line FROM "${this.table}" WHERE run = $1 AND part = $2 AND ok`, [run, part]);
    return r.rows.map((row) => row.line);
  }

  async discardPart(run: string, part: string): Promise<void> {
    await this.ensureTables();
    await this.pool.query(`DELETE FROM "${this.table}" WHERE run = $1 AND part = $2`, [run, part]);
    if (await this.hasValidatorTables()) await this.pool.query(`DELETE FROM "${this.table}_vparts" WHERE run = $1 AND part = $2`, [run, part]);
  }

  async finalize(run: string, parts: string[], summary: Summary, extraFailed: () => AsyncIterable<string[]>, fence?: FinalizeFence): Promise<void> {
    await this.transaction(async (client) => {
      // Waits for parts being written now, and keeps new ones out until this commits.
      await client.query('SELECT pg_advisory_xact_lock($1)', [this.runLockKey(run)]);
      // This very run published already (its startedAt is the run's creation time): Redis lost the mark
      // that it was finalized. Its rows are the output, whatever parts Redis names now: keep them.
      if ((await this.publishedSummary(client, run))?.startedAt === summary.startedAt) {
        await fence?.check();
        return;
      }
      // Rows of parts that never committed (an attempt that lost its job) are not output.
      await client.query(`DELETE FROM "${this.table}" WHERE run = $1 AND NOT (part = ANY($2::text[]))`, [run, parts]);
      for await (const lines of extraFailed()) {
        const parsed = lines.map((l) => JSON.parse(l) as FailedLine);
        await client.query(
          `INSERT INTO "${this.table}" (run, id, part, ok, status, line)
           SELECT $1, t.id, $2, false, NULL, t.line FROM unnest($3::text[], $4::jsonb[]) AS t(id, line)
           ON CONFLICT (run, part, id) DO NOTHING`,
          [run, INVALID_PART, parsed.map((f) => pgSafeText(f.id)), lines.map(pgSafeJson)],
        );
      }
      await client.query(
        `INSERT INTO "${this.table}_runs" (run, summary, finished_at) VALUES ($1, $2, $3)
         ON CONFLICT (run) DO UPDATE SET summary = EXCLUDED.summary, finished_at = EXCLUDED.finished_at`,
        [run, JSON.stringify(summary), summary.finishedAt],
      );
      // A finalizer that lost its lock meanwhile publishes nothing.
      await fence?.check();
    });
  }

  async cleanup(run: string): Promise<void> {
    // Uncommitted parts' rows were deleted by finalize; the run's validator parts were published
    // (kept until now, so a finalize repeated after a crash publishes the same validators again).
    if (await this.hasValidatorTables()) await this.pool.query(`DELETE FROM "${this.table}_vparts" WHERE run = $1`, [run]);
  }

  // Conditional re-pulls (request.conditional): a part's validators are rows of
  // <table>_vparts(run, part, id, …), written like its results; a complete run's
  // are <table>_validators(series, id, etag, last_modified, has_data, data, run),
  // replaced as a whole when a later run of the series completes. Workers query
  // them per batch (`id = ANY($2)`). Both tables are made on first use.

  private validatorsReady: Promise<void> | undefined;

  private ensureValidatorTables(): Promise<void> {
    this.validatorsReady ??= (async () => {
      await this.ensureTables();
      await this.pool.query(`CREATE TABLE IF NOT EXISTS "${this.table}_vparts" (
        run text NOT NULL, part text NOT NULL, id text NOT NULL, etag text, last_modified text, has_data boolean NOT NULL, data jsonb,
        PRIMARY KEY (run, part, id))`);
      await this.pool.query(`CREATE TABLE IF NOT EXISTS "${this.table}_validators" (
        series text NOT NULL, id text NOT NULL, etag text, last_modified text, has_data boolean NOT NULL, data jsonb, run text NOT NULL,
        PRIMARY KEY (series, id))`);
    })().catch((err: unknown) => {
      this.validatorsReady = undefined;
      throw err;
    });
    return this.validatorsReady;
  }

  /** Whether the validator tables exist (a run of a queue that never pulled conditionally has none to clean). */
  private async hasValidatorTables(): Promise<boolean> {
    if (this.validatorsReady) return true;
    const r = await this.pool.query<{ t: string | null }>('SELECT to_regclass($1) AS t', [`"${this.table}_vparts"`]);
    return r.rows[0]?.t !== null && r.rows[0]?.t !== undefined;
  }

  async writeValidators(run: string, part: string, entries: ValidatorEntry[]): Promise<void> {
    await this.ensureValidatorTables();
    await this.transaction(async (client) => {
      // As writePart: never rows for a run whose output is final.
      await client.query('SELECT pg_advisory_xact_lock_shared($1)', [this.runLockKey(run)]);
      await this.refuseIfFinalized(client, run);
      for (let i = 0; i < entries.length; i += ROWS_PER_INSERT) {
        const rows = entries.slice(i, i + ROWS_PER_INSERT);
        await client.query(
          `INSERT INTO "${this.table}_vparts" (run, part, id, etag, last_modified, has_data, data)
           SELECT $1, $2, t.id, t.etag, t.lm, t.has_data, t.data FROM unnest($3::text[], $4::text[], $5::text[], $6::boolean[], $7::jsonb[]) AS t(id, etag, lm, has_data, data)
           ON CONFLICT (run, part, id) DO UPDATE SET etag = EXCLUDED.etag, last_modified = EXCLUDED.last_modified, has_data = EXCLUDED.has_data, data = EXCLUDED.data`,
          [
            run, part,
            rows.map((e) => pgSafeText(e.id)),
            rows.map((e) => (e.etag === undefined ? null : pgSafeText(e.etag))),
            rows.map((e) => (e.lastModified === undefined ? null : pgSafeText(e.lastModified))),
            rows.map((e) => e.hasData === true),
            rows.map((e) => (e.hasData ? pgSafeJson(JSON.stringify(e.data ?? null)) : null)),
          ],
        );
      }
    });
  }

  async publishValidators(run: string, series: string, parts: string[], fence?: FinalizeFence): Promise<void> {
    if (!(await this.hasValidatorTables())) return;
    await this.transaction(async (client) => {
      // One publisher per series at a time; a later run's validators are never replaced by an earlier one's.
      await client.query('SELECT pg_advisory_xact_lock($1)', [pgLockKey(`${this.table}:validators:${series}`)]);
      const mine = await client.query(`SELECT 1 FROM "${this.table}_vparts" WHERE run = $1 AND part = ANY($2::text[]) LIMIT 1`, [run, parts]);
      if (!mine.rowCount) return;
      const held = await client.query<{ run: string }>(`SELECT run FROM "${this.table}_validators" WHERE series = $1 LIMIT 1`, [series]);
      if (held.rows[0] && held.rows[0].run > run) return;
      await client.query(`DELETE FROM "${this.table}_validators" WHERE series = $1`, [series]);
      await client.query(
        `INSERT INTO "${this.table}_validators" (series, id, etag, last_modified, has_data, data, run)
         SELECT $1, id, etag, last_modified, has_data, data, $2 FROM "${this.table}_vparts" WHERE run = $2 AND part = ANY($3::text[])
         ON CONFLICT (series, id) DO NOTHING`,
        [series, run, parts],
      );
      await fence?.check();
    });
  }

  async lookupValidators(series: string, ids: string[]): Promise<Map<string, ValidatorEntry>> {
    await this.ensureValidatorTables();
    const original = new Map(ids.map((id) => [pgSafeText(id), id]));
    const keys = [...original.keys()];
    const found = new Map<string, ValidatorEntry>();
    // The rows of the wanted IDs only (by primary key), a bounded number per query: one reply never
    // holds a whole batch's carried data as text and parsed at once.
    for (let i = 0; i < keys.length; i += LOOKUP_IDS_PER_QUERY) await this.lookupSome(series, keys.slice(i, i + LOOKUP_IDS_PER_QUERY), original, found);
    return found;
  }

  private async lookupSome(series: string, keys: string[], original: Map<string, string>, found: Map<string, ValidatorEntry>): Promise<void> {
    const r = await this.pool.query<{ id: string; etag: string | null; last_modified: string | null; has_data: boolean; data: unknown }>(
      `SELECT id, etag, last_modified, has_data, data FROM "${this.table}_validators" WHERE series = $1 AND id = ANY($2::text[])`,
      [series, keys],
    );
    for (const row of r.rows) {
      const id = original.get(row.id) ?? row.id;
      const v: ValidatorEntry = { id };
      if (row.etag !== null) v.etag = row.etag;
      if (row.last_modified !== null) v.lastModified = row.last_modified;
      if (row.has_data) {
        v.hasData = true;
        v.data = row.data;
      }
      found.set(id, v);
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

/**
 * The `id` column of a line: its id, as always, for a one-ID-per-line run
 * without pages. A part may hold several lines of one id (rows of a
 * multi-column IDs file that share the id column, the pages of one ID), so
 * those add U+0001 and the key's JSON, and U+0001 "p" and the page number:
 * a valid ID never holds U+0001, so two lines never share a row. Read the id
 * itself from `line->>'id'`.
 */
export function pgRowId(line: ResultLine | FailedLine): string {
  let id = line.id;
  if (line.key) id += `\u0001${JSON.stringify(line.key)}`;
  const page = (line as ResultLine).page;
  if (page !== undefined) id += `\u0001p${page}`;
  return pgSafeText(id);
}

/** A stable signed 64-bit advisory lock key for a name (the first 8 bytes of its SHA-256). */
function pgLockKey(name: string): string {
  return createHash('sha256').update(name).digest().readBigInt64BE(0).toString();
}
