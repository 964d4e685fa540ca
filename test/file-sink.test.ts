import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startExampleApi, type ExampleApi } from '../scripts/example-api-server.js';
import { parseConfig } from '../src/config.js';
import { FileSink } from '../src/sinks/file-sink.js';
import type { FailedLine, ResultLine, Summary } from '../src/sinks/sink.js';
import { runCli, spawnCli } from './helpers/cli.js';
import { redisUrl, tearDown, tempDir, uniqueQueue } from './helpers/test-env.js';

// Issue #12, item 3: `sink.compress: "gzip"` for the file sink; and what its refusal of late writes means for a reused run name.

const tmp = tempDir('gzip');
const queue = uniqueQueue('gz');
let api: ExampleApi;
beforeAll(async () => {
  api = await startExampleApi({ latencyMs: 5 });
  writeFileSync(path.join(tmp.dir, 'pullq.config.json'), JSON.stringify({
    queue,
    request: { url: `${api.url}/items/{id}` },
    worker: { concurrency: 4, lockDurationMs: 1500 },
    enqueue: { batchSize: 10 },
    sink: { type: 'file', dir: './out', compress: 'gzip' },
  }));
});
afterAll(() => tearDown({ api, queue, tmp }));

const jsonl = <T>(buf: Buffer): T[] => buf.toString('utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as T);

describe('file sink, compress gzip', () => {
  it('a pull with a worker SIGKILLed mid-run: results.jsonl.gz and failed.jsonl.gz hold every ID exactly once, gzip reads them', async () => {
    const ids = Array.from({ length: 400 }, (_, i) => (i % 40 === 0 ? `missing-${i}` : `gz-${i}`));
    writeFileSync(path.join(tmp.dir, 'ids.txt'), `${ids.join('\n')}\n.\nü 😀\n`);
    const env = { REDIS_URL: redisUrl(), PULLQ_LOG_LEVEL: 'error' };
    const victim = spawnCli(['worker'], { cwd: tmp.dir, env });
    const pull = spawnCli(['pull', 'ids.txt', '--run', 'gz'], { cwd: tmp.dir, env });
    // Kill the extra worker once parts (gzipped, some by it) are on disk: its uncommitted work must not show.
    const parts = path.join(tmp.dir, 'out/gz/parts');
    while (!existsSync(parts) || readdirSync(parts).length < 12) await new Promise((r) => setTimeout(r, 20));
    victim.child.kill('SIGKILL');
    const r = await pull.done;
    expect(r.code).toBe(0);
    const runDir = path.join(tmp.dir, 'out/gz');
    // The summary names the files as they are.
    expect(r.stdout).toContain(`${runDir}/results.jsonl.gz, failed.jsonl.gz, summary.json`);
    expect(readdirSync(runDir).sort()).toEqual(['failed.jsonl.gz', 'results.jsonl.gz', 'summary.json']);

    const results = jsonl<ResultLine>(gunzipSync(readFileSync(path.join(runDir, 'results.jsonl.gz'))));
    const failed = jsonl<FailedLine>(gunzipSync(readFileSync(path.join(runDir, 'failed.jsonl.gz'))));
    const all = [...results, ...failed].map((l) => l.id);
    expect(all).toHaveLength(402);
    expect(new Set(all)).toEqual(new Set([...ids, '.', 'ü 😀']));
    expect(failed.map((f) => [f.id, f.error]).sort()).toEqual([['.', 'invalid_id'], ...ids.filter((i) => i.startsWith('missing-')).map((i) => [i, 'not_found'])].sort());
    for (const x of results) expect(x.data).toMatchObject({ id: x.id });

    // The files are multi-member gzip streams (one member per part chunk): the gzip tool reads them whole too.
    expect(execFileSync('gzip', ['-dc', path.join(runDir, 'results.jsonl.gz')])).toEqual(gunzipSync(readFileSync(path.join(runDir, 'results.jsonl.gz'))));
    execFileSync('gzip', ['-t', path.join(runDir, 'results.jsonl.gz'), path.join(runDir, 'failed.jsonl.gz')]);
    // summary.json stays plain JSON.
    expect(JSON.parse(readFileSync(path.join(runDir, 'summary.json'), 'utf8'))).toMatchObject({ run: 'gz', total: 402, succeeded: 391, failed: 11 });
    const status = await runCli(['status', '--run', 'gz', '--json'], { cwd: tmp.dir, env });
    expect(JSON.parse(status.stdout)).toMatchObject({ complete: true, total: 402 });
  });

  it('config: compress takes "gzip" only, and only for the file sink; errors name sink.compress', () => {
    const parse = (sink: Record<string, unknown>) => parseConfig({ request: { url: 'http://x/{id}' }, sink }, { env: { vars: {} } });
    expect(parse({ type: 'file', compress: 'gzip' }).sink).toMatchObject({ type: 'file', compress: 'gzip' });
    expect(parse({ type: 'file' }).sink).not.toHaveProperty('compress');
    expect(() => parse({ type: 'file', compress: 'zstd' })).toThrow('config: sink.compress: must be "gzip" (or omitted for plain .jsonl), got "zstd"');
    expect(() => parse({ type: 'file', compress: true })).toThrow('sink.compress: must be "gzip"');
    expect(() => parse({ type: 'postgres', url: 'postgres://db/x', compress: 'gzip' })).toThrow('config: sink.compress: only the file sink compresses');
  });

  it('parts written by replicas with the other compress setting (a config change mid-run) are converted, not lost', async () => {
    const dir = path.join(tmp.dir, 'mixed');
    const line = (id: string): ResultLine => ({ id, status: 200, fetchedAt: 'x', data: { id } });
    const summary = (run: string): Summary => ({ run, total: 2, succeeded: 2, failed: 0, startedAt: 'x', finishedAt: 'y', durationMs: 0, errors: {} });
    const plain = new FileSink(dir);
    const gz = new FileSink(dir, { compress: 'gzip' });
    for (const run of ['to-gzip', 'to-plain']) {
      await plain.writePart(run, 'p1', [line(`${run}-1`)], []);
      await gz.writePart(run, 'p2', [line(`${run}-2`)], []);
    }
    await gz.finalize('to-gzip', ['p1', 'p2'], summary('to-gzip'), async function* () {});
    await plain.finalize('to-plain', ['p2', 'p1'], summary('to-plain'), async function* () {});
    expect(jsonl<ResultLine>(gunzipSync(readFileSync(path.join(dir, 'to-gzip/results.jsonl.gz')))).map((l) => l.id)).toEqual(['to-gzip-1', 'to-gzip-2']);
    expect(jsonl<ResultLine>(readFileSync(path.join(dir, 'to-plain/results.jsonl'))).map((l) => l.id)).toEqual(['to-plain-2', 'to-plain-1']);
  });
});

describe('file sink, pages and validators of a finished run', () => {
  it('readPart reads a gzipped part back; after finalize, writeValidators is refused like writePart and leaves nothing behind', async () => {
    const dir = path.join(tmp.dir, 'late');
    const sink = new FileSink(dir, { compress: 'gzip' });
    const line = (id: string): ResultLine => ({ id, status: 200, fetchedAt: 'x', data: { id, text: 'ü😀' } });
    await sink.writePart('late', 'pages', [line('a'), line('b')], []);
    expect(await sink.readPart('late', 'pages')).toEqual([line('a'), line('b')]);
    await sink.finalize('late', [], { run: 'late', total: 0, succeeded: 0, failed: 0, startedAt: 'x', finishedAt: 'y', durationMs: 0, errors: {} }, async function* () {});
    await sink.cleanup('late');
    await expect(sink.writeValidators('late', 'p9', [{ id: 'a', etag: '"v1"' }])).rejects.toMatchObject({ code: 'run_finalized' });
    expect(existsSync(path.join(dir, 'late', 'parts'))).toBe(false);
  });
});

describe('file sink, a run name whose final output is already there', () => {
  it('an earlier run\'s output under the same name (Redis was reset): pull stops with the reason, exit 2, the old output untouched', async () => {
    // Before: every batch was refused as a late write and dropped, and pull waited forever.
    const old = new FileSink(path.join(tmp.dir, 'out'), { compress: 'gzip' });
    await old.finalize('reused', [], { run: 'reused', total: 0, succeeded: 0, failed: 0, startedAt: 'x', finishedAt: 'y', durationMs: 0, errors: {} }, async function* () {});
    writeFileSync(path.join(tmp.dir, 'reused.ids.txt'), 'r1\nr2\n');
    const r = await runCli(['pull', 'reused.ids.txt', '--run', 'reused'], { cwd: tmp.dir, env: { REDIS_URL: redisUrl(), PULLQ_LOG_LEVEL: 'error' } });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`run reused cannot complete: the sink already holds the final output of an earlier run named reused (${path.join(tmp.dir, 'out/reused')}/results.jsonl.gz`);
    expect(JSON.parse(readFileSync(path.join(tmp.dir, 'out/reused/summary.json'), 'utf8'))).toMatchObject({ total: 0, finishedAt: 'y' });
  });
});
