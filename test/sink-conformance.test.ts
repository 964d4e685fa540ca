import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// As a sink author would: the kit and the types from the package entry ('pullq' is dist/src/index.js).
import { sinkConformanceCases, type FailedLine, type ResultLine, type SinkFixture, type SinkOutput, type Summary } from 'pullq';
import { PG_URL, postgresAnswers } from './helpers/postgres.js';

// Issue #12: the conformance kit for sinks runs against both built-in sinks
// (the file sink plain and gzipped, PostgreSQL) and the example custom sink.
// The sinks are loaded from dist/ (npm run build): the kill cases build them
// again in a plain `node` child process.

const PULLQ = path.resolve('dist/src/index.js');
const EXAMPLE = path.resolve('dist/examples/custom-sink.js');
const CASE_MS = 120_000;

const lines = <T>(text: string): T[] => text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as T);

/** A new directory of its own for one case, removed by the fixture's teardown. */
function caseDir(label: string): { dir: string; teardown(): Promise<void> } {
  const dir = mkdtempSync(path.join(tmpdir(), `pullq-kit-${label}-`));
  return { dir, teardown: async () => rmSync(dir, { recursive: true, force: true }) };
}

/** The file sink's output of a run: undefined when none of its files is there, an error when only some are. */
function readFileSinkOutput(dir: string, run: string, gzipped: boolean): SinkOutput | undefined {
  const ext = gzipped ? '.jsonl.gz' : '.jsonl';
  const files = [`results${ext}`, `failed${ext}`, 'summary.json'].map((f) => path.join(dir, run, f));
  const present = files.filter((f) => existsSync(f));
  // The other format's files must never appear: compress decides the names.
  const wrongKind = readdirSync(dir, { recursive: true }).map(String).filter((f) => !f.includes('parts') && (gzipped ? /\.jsonl$/ : /\.jsonl\.gz$/).test(f));
  if (wrongKind.length) throw new Error(`unexpected output files for compress ${gzipped ? 'gzip' : 'none'}: ${wrongKind.join(', ')}`);
  if (present.length === 0) return undefined;
  if (present.length < files.length) throw new Error(`a partial output is visible: only ${present.join(', ')}`);
  const text = (f: string) => (gzipped ? gunzipSync(readFileSync(f)) : readFileSync(f)).toString('utf8');
  return {
    results: lines<ResultLine>(text(files[0]!)),
    failed: lines<FailedLine>(text(files[1]!)),
    summary: JSON.parse(readFileSync(files[2]!, 'utf8')) as Summary,
  };
}

for (const compress of [undefined, 'gzip'] as const) {
  describe(`sink conformance: FileSink${compress ? ' (compress gzip)' : ''}`, () => {
    const cases = sinkConformanceCases({
      setup(): SinkFixture {
        const { dir, teardown } = caseDir(compress ?? 'plain');
        return {
          module: PULLQ,
          export: 'FileSink',
          args: compress ? [dir, { compress }] : [dir],
          readOutput: async (run) => readFileSinkOutput(dir, run, compress === 'gzip'),
          teardown,
        };
      },
    });
    for (const c of cases) it(c.name, c.run, CASE_MS);
  });
}

describe('sink conformance: the example custom sink (examples/custom-sink.ts)', () => {
  const cases = sinkConformanceCases({
    setup(): SinkFixture {
      const { dir, teardown } = caseDir('example');
      return {
        module: EXAMPLE,
        export: 'NdjsonGzipSink',
        args: [dir],
        async readOutput(run) {
          const file = path.join(dir, `${run}.ndjson.gz`);
          const summaryFile = path.join(dir, `${run}.summary.json`);
          if (!existsSync(file) && !existsSync(summaryFile)) return undefined;
          const all = lines<(ResultLine | FailedLine) & { kind: string }>(gunzipSync(readFileSync(file)).toString('utf8'));
          const strip = <T>({ kind: _kind, ...line }: { kind: string }) => line as T;
          return {
            results: all.filter((l) => l.kind === 'result').map((l) => strip<ResultLine>(l)),
            failed: all.filter((l) => l.kind === 'failed').map((l) => strip<FailedLine>(l)),
            summary: JSON.parse(readFileSync(summaryFile, 'utf8')) as Summary,
          };
        },
        teardown,
      };
    },
  });
  for (const c of cases) it(c.name, c.run, CASE_MS);
});

// PostgreSQL from PULLQ_TEST_POSTGRES_URL, else the local server (trust auth, database "test").
const pgAvailable = await postgresAnswers();
if (!pgAvailable) console.warn(`sink conformance for PostgreSQL skipped: no PostgreSQL at ${PG_URL} (set PULLQ_TEST_POSTGRES_URL)`);

describe.skipIf(!pgAvailable)('sink conformance: PostgresSink', () => {
  let db: pg.Client;
  beforeAll(async () => {
    db = new pg.Client({ connectionString: PG_URL });
    await db.connect();
  });
  afterAll(async () => {
    await db?.end();
  });

  const cases = sinkConformanceCases({
    // A table has no line order: the kit compares the output as a set (still exactly once).
    ordered: false,
    setup(): SinkFixture {
      const table = `pullq_kit_${Math.random().toString(36).slice(2, 10)}`;
      return {
        module: PULLQ,
        export: 'PostgresSink',
        args: [PG_URL, table],
        async readOutput(run) {
          // The summary row is what publishes a run; rows of parts exist before it.
          const summary = await db.query(`SELECT summary FROM "${table}_runs" WHERE run = $1`, [run]).catch((err: { code?: string }) => {
            if (err.code === '42P01') return { rows: [] }; // no table yet: nothing written at all
            throw err;
          });
          if (summary.rows.length === 0) return undefined;
          const rows = (await db.query(`SELECT ok, line FROM "${table}" WHERE run = $1`, [run])).rows as { ok: boolean; line: ResultLine | FailedLine }[];
          return {
            results: rows.filter((r) => r.ok).map((r) => r.line as ResultLine),
            failed: rows.filter((r) => !r.ok).map((r) => r.line as FailedLine),
            summary: (summary.rows[0] as { summary: Summary }).summary,
          };
        },
        async teardown() {
          await db.query(`DROP TABLE IF EXISTS "${table}"; DROP TABLE IF EXISTS "${table}_runs"`);
        },
      };
    },
  });
  for (const c of cases) it(c.name, c.run, CASE_MS);
});

describe('the kit itself', () => {
  it('has the cases the issue asks for, kill-mid-write among them', () => {
    const names = sinkConformanceCases({ setup: () => ({ module: PULLQ, export: 'FileSink', readOutput: async () => undefined }) }).map((c) => c.name);
    for (const word of ['idempotent', 'discardPart', 'order', 'twice', 'fence', 'RunFinalizedError', 'cleanup', 'large', 'unicode', 'killed mid-write']) {
      expect(names.some((n) => n.includes(word)), word).toBe(true);
    }
  });

  it('fails a sink that breaks the protocol (output twice on finalize twice), naming what is wrong', async () => {
    const { dir, teardown } = caseDir('broken');
    // A FileSink whose finalize appends instead of replacing: the kit must catch it.
    const [twice] = sinkConformanceCases({
      setup: () => ({ module: path.resolve('test/helpers/broken-sink.ts'), export: 'AppendingSink', args: [dir], readOutput: async (run) => readFileSinkOutput(dir, run, false), teardown }),
    }).filter((c) => c.name.startsWith('finalize twice'));
    await expect(twice!.run()).rejects.toThrow(/results after the second finalize: 4 lines, expected 2/);
  });
});
