import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { PullqError } from '../errors.js';
import { RunFinalizedError, type FailedLine, type FinalizeFence, type ResultLine, type Sink, type Summary } from './sink.js';

/** A run's output as a reader sees it once finalize has published it. */
export interface SinkOutput {
  results: ResultLine[];
  failed: FailedLine[];
  summary: Summary;
}

/** One fresh sink for one case: how to build it (here and in a child process), read its output, and remove it. */
export interface SinkFixture {
  /**
   * The module that exports the sink: an absolute path or a URL that plain
   * `node` can import (compiled JS, or TypeScript with `childExecArgv` such as
   * `['--import', 'tsx']`), or a package name resolvable from the cwd.
   */
  module: string;
  /** Its export: a class (built with `new`) or a function returning a Sink or a promise of one. */
  export: string;
  /** Arguments to it. JSON values only: the kill cases pass them to a child process. */
  args?: unknown[];
  /** The run's published output, or undefined while nothing of it is published. */
  readOutput(run: string): Promise<SinkOutput | undefined>;
  /** Removes what this fixture made (its directory, its table). Called after the case, pass or fail. */
  teardown?(): Promise<void>;
}

export interface SinkConformanceOptions {
  /** A fresh fixture for each case: give each its own place (a new directory, a new table). */
  setup(): SinkFixture | Promise<SinkFixture>;
  /**
   * Whether the sink keeps line order (files do). A table without an order
   * column does not: then output is compared as a set, still exactly once.
   * Default true.
   */
  ordered?: boolean;
  /** Node flags for the child process of the kill cases (e.g. a TypeScript loader). Default none. */
  childExecArgv?: string[];
  /** Size of the part the kill cases write, in bytes. Default 16 MiB. */
  killPartBytes?: number;
}

/** One case: map it to your framework's test, e.g. `for (const c of cases) it(c.name, c.run, 120_000)`. */
export interface SinkConformanceCase {
  name: string;
  run(): Promise<void>;
}

/** A sink under test, built from its fixture, with the helpers the cases share. */
interface Subject {
  sink: Sink;
  fixture: SinkFixture;
  /** A run name of this case alone (run names are labels: letters, digits, ".", "_", "-"). */
  run(label: string): string;
  /** The run's output, which must be published. */
  output(run: string): Promise<SinkOutput>;
  assertLines<T extends ResultLine | FailedLine>(actual: T[], expected: T[], what: string): void;
}

/**
 * The conformance kit for Sink implementations: what a sink must do for
 * pullq's exactly-once output (src/sinks/sink.ts), as cases that run against
 * real storage with node:assert. Framework agnostic; see docs/sinks.md.
 * The kill cases SIGKILL a child process mid-write, so give each case a
 * generous timeout (a minute).
 */
export function sinkConformanceCases(options: SinkConformanceOptions): SinkConformanceCase[] {
  if (typeof options?.setup !== 'function') throw new PullqError('sink_kit_setup', 'sinkConformanceCases: options.setup must be a function returning a fresh SinkFixture for each case');
  const ordered = options.ordered ?? true;
  const killBytes = options.killPartBytes ?? 16 * 1024 * 1024;
  if (!Number.isInteger(killBytes) || killBytes < 64 * 1024) throw new PullqError('sink_kit_setup', `sinkConformanceCases: killPartBytes must be an integer >= 65536 (a part big enough to be killed mid-write), got ${String(options.killPartBytes)}`);

  /** Runs `body` against a fresh sink, then closes it and tears the fixture down. */
  const withSink = (body: (s: Subject) => Promise<void>) => async () => {
    const fixture = await options.setup();
    const suffix = randomBytes(4).toString('hex');
    let sink: Sink | undefined;
    try {
      sink = await buildSink(fixture);
      const subject: Subject = {
        sink,
        fixture,
        run: (label) => `kit-${label}-${suffix}`,
        async output(run) {
          const out = await fixture.readOutput(run);
          assert.ok(out, `run ${run}: finalize returned but readOutput finds nothing published`);
          return out;
        },
        assertLines: (actual, expected, what) => assertSameLines(actual, expected, what, ordered),
      };
      await body(subject);
    } finally {
      await sink?.close?.();
      await fixture.teardown?.();
    }
  };

  const killMidWrite = async (fixture: SinkFixture, run: string, part: string, prefix: string) => {
    // Killed halfway through the time a whole write took; a write that still finished first tested nothing: again, sooner.
    for (const fraction of [0.5, 0.2, 0]) {
      if (await writeInChildAndKill(fixture, options.childExecArgv ?? [], { run, part, prefix, bytes: killBytes }, fraction)) return;
    }
    throw new PullqError('sink_kit_setup', `the child process wrote the whole ${killBytes}-byte part before it could be killed: raise killPartBytes`);
  };

  return [
    {
      name: 'finalize outputs the given parts in the given order, then extraFailed, and stores the summary',
      run: withSink(async (s) => {
        const run = s.run('order');
        await s.sink.writePart(run, 'p1', [result('a'), result('b')], [failure('c')]);
        await s.sink.writePart(run, 'p2', [result('d')], [failure('e')]);
        // Never committed (its attempt lost the batch): written, but not named to finalize.
        await s.sink.writePart(run, 'p3', [result('lost-1')], [failure('lost-2')]);
        const extra = [invalid('bad\u0001one'), invalid('..'), invalid('bad\u0002two')];
        const summary = summaryOf(run, 6, 2);
        await s.sink.finalize(run, ['p2', 'p1'], summary, lines([extra.slice(0, 2), extra.slice(2)]));
        const out = await s.output(run);
        s.assertLines(out.results, [result('d'), result('a'), result('b')], 'results');
        s.assertLines(out.failed, [failure('e'), failure('c'), ...extra], 'failed');
        assert.deepStrictEqual(out.summary, summary, 'the summary reads back as given');
      }),
    },
    {
      name: 'parts written at the same time are kept apart',
      run: withSink(async (s) => {
        const run = s.run('concurrent');
        const parts = Array.from({ length: 12 }, (_, p) => ({ name: `b${p}-s0-0000`, results: Array.from({ length: 50 }, (_, i) => result(`c${p}-${i}`)) }));
        await Promise.all(parts.map((p) => s.sink.writePart(run, p.name, p.results, [])));
        await s.sink.finalize(run, parts.map((p) => p.name), summaryOf(run, 600, 0), lines([]));
        s.assertLines((await s.output(run)).results, parts.flatMap((p) => p.results), 'results');
      }),
    },
    {
      name: 'writePart is idempotent by part name: the same part written twice is output once',
      run: withSink(async (s) => {
        const run = s.run('idem');
        const res = [result('i1'), result('i2')];
        const fail = [failure('i3')];
        await s.sink.writePart(run, 'p1', res, fail);
        await s.sink.writePart(run, 'p1', res, fail);
        await s.sink.finalize(run, ['p1'], summaryOf(run, 3, 1), lines([]));
        const out = await s.output(run);
        s.assertLines(out.results, res, 'results');
        s.assertLines(out.failed, fail, 'failed');
      }),
    },
    {
      name: 'discardPart removes the part; discarding a missing part, or twice, is no error',
      run: withSink(async (s) => {
        const run = s.run('discard');
        await s.sink.writePart(run, 'p1', [result('gone-1'), result('gone-2')], [failure('gone-3')]);
        await s.sink.discardPart(run, 'p1');
        await s.sink.discardPart(run, 'p1');
        await s.sink.discardPart(run, 'never-written');
        // Written anew under the same name: nothing of the discarded lines may come back with it.
        await s.sink.writePart(run, 'p1', [result('new-1')], []);
        await s.sink.writePart(run, 'p2', [result('kept')], []);
        await s.sink.discardPart(run, 'p2');
        await s.sink.finalize(run, ['p1'], summaryOf(run, 1, 0), lines([]));
        const out = await s.output(run);
        s.assertLines(out.results, [result('new-1')], 'results');
        s.assertLines(out.failed, [], 'failed');
      }),
    },
    {
      name: 'finalize twice gives the same output, not two copies',
      run: withSink(async (s) => {
        const run = s.run('twice');
        await s.sink.writePart(run, 'p1', [result('t1')], [failure('t2')]);
        await s.sink.writePart(run, 'p2', [result('t3')], []);
        const summary = summaryOf(run, 4, 2);
        const extra = lines([[invalid('bad\u0001x')]]);
        await s.sink.finalize(run, ['p1', 'p2'], summary, extra);
        const first = await s.output(run);
        await s.sink.finalize(run, ['p1', 'p2'], summary, extra);
        const second = await s.output(run);
        s.assertLines(second.results, first.results, 'results after the second finalize');
        s.assertLines(second.failed, first.failed, 'failed after the second finalize');
        s.assertLines(first.results, [result('t1'), result('t3')], 'results');
        s.assertLines(first.failed, [failure('t2'), invalid('bad\u0001x')], 'failed');
        assert.deepStrictEqual(second.summary, summary);
      }),
    },
    {
      name: 'finalize checks the fence; a fence that throws publishes nothing and leaves earlier output as it was',
      run: withSink(async (s) => {
        const run = s.run('fence');
        await s.sink.writePart(run, 'p1', [result('f1')], []);
        const lost = new Error('finalize lock lost (kit)');
        const throwing: FinalizeFence = {
          async check() {
            throw lost;
          },
        };
        await assert.rejects(s.sink.finalize(run, ['p1'], summaryOf(run, 1, 0), lines([[invalid('bad\u0001f')]]), throwing), (err) => err === lost, 'finalize must fail with the fence error');
        assert.equal(await s.fixture.readOutput(run), undefined, 'a finalize whose fence threw published something');

        let checks = 0;
        const holding: FinalizeFence = {
          async check() {
            checks++;
          },
        };
        const summary = summaryOf(run, 1, 0);
        await s.sink.finalize(run, ['p1'], summary, lines([]), holding);
        assert.ok(checks > 0, 'finalize never called fence.check()');
        const before = await s.output(run);

        // A second finalizer that lost its lock, with other lines and another summary: none of it shows.
        await assert.rejects(s.sink.finalize(run, ['p1'], { ...summary, total: 99 }, lines([[invalid('bad\u0001g')]]), throwing), (err) => err === lost);
        const after = await s.output(run);
        s.assertLines(after.results, before.results, 'results after a fenced-out finalize');
        s.assertLines(after.failed, before.failed, 'failed after a fenced-out finalize');
        assert.deepStrictEqual(after.summary, summary);
      }),
    },
    {
      name: 'writePart after finalize is refused with RunFinalizedError and leaves the output alone',
      run: withSink(async (s) => {
        const run = s.run('late');
        await s.sink.writePart(run, 'p1', [result('l1')], []);
        await s.sink.finalize(run, ['p1'], summaryOf(run, 1, 0), lines([]));
        const isRefusal = (err: unknown) => err instanceof RunFinalizedError;
        await assert.rejects(s.sink.writePart(run, 'late-1', [result('l1'), result('l2')], []), isRefusal, 'a late writePart must throw RunFinalizedError');
        await s.sink.cleanup(run);
        await assert.rejects(s.sink.writePart(run, 'late-2', [result('l3')], []), isRefusal, 'a late writePart after cleanup must throw RunFinalizedError');
        s.assertLines((await s.output(run)).results, [result('l1')], 'results');
        // Another run of the same sink is not affected.
        const other = s.run('late-other');
        await s.sink.writePart(other, 'p1', [result('o1')], []);
        await s.sink.finalize(other, ['p1'], summaryOf(other, 1, 0), lines([]));
        s.assertLines((await s.output(other)).results, [result('o1')], 'results of another run');
      }),
    },
    {
      name: 'finalize again after cleanup (Redis lost the finalized mark) keeps the published output; writePart is still refused',
      run: withSink(async (s) => {
        const run = s.run('again');
        await s.sink.writePart(run, 'p1', [result('a1')], [failure('a2')]);
        const summary = summaryOf(run, 3, 2);
        await s.sink.finalize(run, ['p1'], summary, lines([[invalid('bad\u0001a')]]));
        const before = await s.output(run);
        await s.sink.cleanup(run);
        // The same run (same startedAt) finalized again: its parts are gone, and Redis may now name other ones.
        await s.sink.finalize(run, ['p1', 'p-redone'], { ...summary, finishedAt: new Date(Date.parse(summary.finishedAt) + 60_000).toISOString() }, lines([[invalid('bad\u0001a')]]));
        const after = await s.output(run);
        s.assertLines(after.results, before.results, 'results after finalize again');
        s.assertLines(after.failed, before.failed, 'failed after finalize again');
        assert.deepStrictEqual(after.summary, summary, 'the summary published first stays');
        await assert.rejects(s.sink.writePart(run, 'p2', [result('a3')], []), (err: unknown) => {
          assert.ok(err instanceof RunFinalizedError, 'a late writePart must throw RunFinalizedError');
          // Optional: when a sink names the published summary, it is the run's.
          if (err.published !== undefined) assert.equal(err.published.startedAt, summary.startedAt, 'RunFinalizedError.published is the published summary');
          return true;
        });
      }),
    },
    {
      name: 'cleanup leaves the output, is safe to repeat, and is a no-op for a run without parts',
      run: withSink(async (s) => {
        const run = s.run('cleanup');
        await s.sink.writePart(run, 'p1', [result('k1')], [failure('k2')]);
        await s.sink.writePart(run, 'p2', [result('never-committed')], []);
        await s.sink.finalize(run, ['p1'], summaryOf(run, 2, 1), lines([]));
        const before = await s.output(run);
        await s.sink.cleanup(run);
        await s.sink.cleanup(run);
        await s.sink.cleanup(s.run('cleanup-none'));
        const after = await s.output(run);
        s.assertLines(after.results, before.results, 'results after cleanup');
        s.assertLines(after.failed, before.failed, 'failed after cleanup');
        assert.deepStrictEqual(after.summary, before.summary);
      }),
    },
    {
      name: 'a run without parts: empty output and its summary',
      run: withSink(async (s) => {
        const run = s.run('empty');
        const summary = summaryOf(run, 0, 0);
        await s.sink.finalize(run, [], summary, lines([]));
        const out = await s.output(run);
        s.assertLines(out.results, [], 'results');
        s.assertLines(out.failed, [], 'failed');
        assert.deepStrictEqual(out.summary, summary);
      }),
    },
    {
      name: 'a large part (24 MiB, one line of 8 MiB) is written and output whole',
      run: withSink(async (s) => {
        const run = s.run('large');
        const [res, fail] = bigPart('big', 16 * 1024 * 1024);
        res.push({ ...result('huge'), data: { text: 'h'.repeat(8 * 1024 * 1024) } });
        await s.sink.writePart(run, 'p1', res, fail);
        await s.sink.finalize(run, ['p1'], summaryOf(run, res.length + fail.length, fail.length), lines([]));
        const out = await s.output(run);
        s.assertLines(out.results, res, 'results');
        s.assertLines(out.failed, fail, 'failed');
      }),
    },
    {
      name: 'unicode and awkward IDs and data read back exactly',
      run: withSink(async (s) => {
        const run = s.run('unicode');
        const ids = ['12345', 'a:b', 'x y', 'ü', 'e\u0301', '😀', '中文', 'עברית', 'a/b', '../etc/passwd', '%2e%2e', '?x=1', 'f#', 'a&b=c', 'q"uote', "it's", 'back\\slash', "'); DROP TABLE x; --", '{id}', 'zero\u200bwidth', 'z'.repeat(2000)];
        const res = ids.map((id) => ({ ...result(id), data: { id, text: `ünïcödé 😀 ${id}`, list: [1, 2.5, -3e-7, null, true], nested: { 'key with "quotes"': id } } }));
        const text = [{ ...result('plain-text'), status: 203, data: 'not JSON: <html>😀</html>' }];
        const fail = ids.map((id) => ({ ...failure(`f-${id}`), message: `HTTP 404 for ${id}` }));
        await s.sink.writePart(run, 'p1', [...res, ...text], fail);
        await s.sink.finalize(run, ['p1'], summaryOf(run, ids.length * 2 + 1, ids.length), lines([[invalid('bad\u0001😀')]]));
        const out = await s.output(run);
        s.assertLines(out.results, [...res, ...text], 'results');
        s.assertLines(out.failed, [...fail, invalid('bad\u0001😀')], 'failed');
      }),
    },
    {
      name: 'a part killed mid-write (SIGKILL) and written again by the retry is output once',
      run: withSink(async (s) => {
        const run = s.run('kill-retry');
        await s.sink.writePart(run, 'p0', [result('before')], []);
        await killMidWrite(s.fixture, run, 'p1', 'k');
        const [res, fail] = bigPart('k', killBytes);
        await s.sink.writePart(run, 'p1', res, fail);
        await s.sink.finalize(run, ['p0', 'p1'], summaryOf(run, res.length + fail.length + 1, fail.length), lines([]));
        const out = await s.output(run);
        s.assertLines(out.results, [result('before'), ...res], 'results');
        s.assertLines(out.failed, fail, 'failed');
      }),
    },
    {
      name: 'a part killed mid-write (SIGKILL) and never committed is not output; cleanup copes with its remains',
      run: withSink(async (s) => {
        const run = s.run('kill-lost');
        await killMidWrite(s.fixture, run, 'p-lost', 'lost');
        await s.sink.writePart(run, 'p-kept', [result('kept')], [failure('kept-f')]);
        await s.sink.finalize(run, ['p-kept'], summaryOf(run, 2, 1), lines([]));
        await s.sink.cleanup(run);
        const out = await s.output(run);
        s.assertLines(out.results, [result('kept')], 'results');
        s.assertLines(out.failed, [failure('kept-f')], 'failed');
      }),
    },
  ];
}

const FETCHED_AT = '2026-01-02T03:04:05.678Z';
const result = (id: string): ResultLine => ({ id, status: 200, fetchedAt: FETCHED_AT, data: { id, n: 1 } });
const failure = (id: string): FailedLine => ({ id, status: 404, error: 'not_found', message: 'HTTP 404', attempts: 1 });
const invalid = (id: string): FailedLine => ({ id, status: null, error: 'invalid_id', message: 'line 1: ID contains a control character', attempts: 0 });
const summaryOf = (run: string, total: number, failed: number): Summary => ({
  run,
  total,
  succeeded: total - failed,
  failed,
  startedAt: '2026-01-02T03:00:00.000Z',
  finishedAt: FETCHED_AT,
  durationMs: 245_678,
  errors: failed ? { not_found: failed } : {},
});

/** `finalize`'s extraFailed: the given chunks as failed.jsonl text, each call anew (finalize may repeat). */
function lines(chunks: FailedLine[][]): () => AsyncIterable<string[]> {
  return async function* () {
    for (const chunk of chunks) yield chunk.map((l) => JSON.stringify(l));
  };
}

/**
 * About `bytes` of lines for one part, one in a hundred a failure. Self-contained
 * (no outer names): its source is also run in the kill cases' child process,
 * so both sides write the very same lines.
 */
function bigPart(prefix: string, bytes: number): [ResultLine[], FailedLine[]] {
  const res: ResultLine[] = [];
  const fail: FailedLine[] = [];
  const pad = 'p'.repeat(4000);
  for (let i = 0; i * 4096 < bytes; i++) {
    const id = `${prefix}-${i}`;
    if (i % 100 === 99) fail.push({ id, status: 500, error: 'server_error', message: 'HTTP 500', attempts: 6 });
    else res.push({ id, status: 200, fetchedAt: '2026-01-02T03:04:05.678Z', data: { id, i, pad } });
  }
  return [res, fail];
}

/** Imports the fixture's module and builds its sink: `new` for a class, a call for a function. */
async function buildSink(fixture: SinkFixture): Promise<Sink> {
  let mod: Record<string, unknown>;
  try {
    mod = (await import(importable(fixture.module))) as Record<string, unknown>;
  } catch (err) {
    throw new PullqError('sink_kit_setup', `cannot import the sink module ${fixture.module}: ${(err as Error).message}`, { cause: err });
  }
  const make = mod[fixture.export];
  if (typeof make !== 'function') throw new PullqError('sink_kit_setup', `${fixture.module} has no export ${fixture.export} that is a class or function`);
  const args = fixture.args ?? [];
  return isClass(make) ? (new (make as new (...a: unknown[]) => Sink)(...args)) : await (make as (...a: unknown[]) => Sink | Promise<Sink>)(...args);
}

function isClass(fn: unknown): boolean {
  return typeof fn === 'function' && /^class[\s{]/.test(Function.prototype.toString.call(fn));
}

/** An absolute path becomes a file: URL (import() takes URLs); URLs and package names stay as they are. */
function importable(module: string): string {
  return path.isAbsolute(module) ? pathToFileURL(module).href : module;
}

/**
 * The kill cases' child: builds the sink as buildSink does; writes the same
 * lines once whole, as another part that is never committed (its time tells
 * the parent when "mid-write" is); then says "writing", writes the part, says
 * "written". The parent kills it in between.
 */
const CHILD_SOURCE = `
const job = JSON.parse(process.argv[1]);
const isClass = ${isClass.toString()};
const bigPart = ${bigPart.toString()};
const make = (await import(job.module))[job.export];
if (typeof make !== 'function') throw new Error(job.module + ' has no export ' + job.export);
const sink = isClass(make) ? new make(...job.args) : await make(...job.args);
const [res, fail] = bigPart(job.prefix, job.bytes);
const started = performance.now();
await sink.writePart(job.run, job.part + '-whole', res, fail);
process.stdout.write('whole ' + Math.round(performance.now() - started) + '\\n');
process.stdout.write('writing\\n');
await sink.writePart(job.run, job.part, res, fail);
process.stdout.write('written\\n');
await sink.close?.();
`;

/**
 * Starts a child process that writes a big part and SIGKILLs it after
 * `fraction` of the time a whole write of it took. True when the kill came
 * mid-write; false when the write had already finished (nothing was tested).
 */
async function writeInChildAndKill(fixture: SinkFixture, execArgv: string[], job: { run: string; part: string; prefix: string; bytes: number }, fraction: number): Promise<boolean> {
  const jobJson = JSON.stringify({ ...job, module: importable(fixture.module), export: fixture.export, args: fixture.args ?? [] });
  // The child inherits this process's environment (a sink may read its own settings there).
  const child = spawn(process.execPath, [...execArgv, '--input-type=module', '-e', CHILD_SOURCE, '--', jobJson], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let killed = false;
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const giveUp = setTimeout(() => child.kill('SIGKILL'), 60_000);
  child.stdout.on('data', (d: Buffer) => {
    const before = stdout;
    stdout += d.toString();
    if (!before.includes('writing\n') && stdout.includes('writing\n')) {
      const wholeMs = Number(/whole (\d+)/.exec(stdout)?.[1] ?? 0);
      setTimeout(() => {
        if (stdout.includes('written\n')) return;
        killed = true;
        child.kill('SIGKILL');
      }, wholeMs * fraction);
    }
  });
  const { code, signal } = await exited;
  clearTimeout(giveUp);
  if (killed && signal === 'SIGKILL' && !stdout.includes('written\n')) return true;
  // The write finished first: exited on its own, or the kill landed after it said "written" (its
  // output reached us after the timer fired). Nothing was tested: the caller tries again, sooner.
  if (stdout.includes('written\n') && (code === 0 || killed)) return false;
  throw new PullqError('sink_kit_setup', `the kill case's child process ended on its own (${signal ?? `exit code ${code}`}) before it could be killed mid-write: ${stderr.trim() || 'no output'}`);
}

/** A line as canonical JSON (object keys sorted): a store may give keys back in its own order (jsonb does). */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_, v: unknown) => (v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v));
}

/**
 * Asserts `actual` holds exactly the lines of `expected` (in order when the
 * sink keeps order), naming the first difference by ID: the lines can be
 * megabytes, too big for a diff.
 */
function assertSameLines(actual: (ResultLine | FailedLine)[], expected: (ResultLine | FailedLine)[], what: string, ordered: boolean): void {
  const a = actual.map(canonical);
  const e = expected.map(canonical);
  if (!ordered) {
    a.sort();
    e.sort();
  }
  const ids = (list: (ResultLine | FailedLine)[]) => list.map((l) => JSON.stringify(l.id).slice(0, 60));
  if (a.length !== e.length) {
    const seen = new Set(ids(actual));
    const wanted = new Set(ids(expected));
    const missing = [...wanted].filter((id) => !seen.has(id)).slice(0, 5);
    const extra = [...seen].filter((id) => !wanted.has(id)).slice(0, 5);
    const counts = new Map<string, number>();
    for (const id of ids(actual)) counts.set(id, (counts.get(id) ?? 0) + 1);
    const twice = [...counts].filter(([, n]) => n > 1).map(([id]) => id).slice(0, 5);
    assert.fail(`${what}: ${a.length} lines, expected ${e.length} (missing ${missing.join(', ') || 'none'}; unexpected ${extra.join(', ') || 'none'}; more than once ${twice.join(', ') || 'none'})`);
  }
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== e[i]) {
      const id = (s: string) => JSON.stringify((JSON.parse(s) as { id: string }).id).slice(0, 60);
      assert.fail(`${what}: line ${i + 1} is ${id(a[i]!)} (${a[i]!.length} chars), expected ${id(e[i]!)} (${e[i]!.length} chars)${ordered ? '' : ' (compared as sorted sets)'}${a[i]!.length < 300 ? `: ${a[i]} vs ${e[i]}` : ''}`);
    }
  }
}
