import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startExampleApi, type ExampleApi } from '../scripts/example-api-server.js';
import { runCli } from './helpers/cli.js';
import { readOutput } from './helpers/pull-in-process.js';
import { redisUrl, tearDown, tempDir, uniqueQueue } from './helpers/test-env.js';

const tmp = tempDir('cli');
let api: ExampleApi;
const queue = uniqueQueue('cli');
beforeAll(async () => {
  api = await startExampleApi({ auth: { type: 'header', tokens: ['cli-token-1'] } });
  writeFileSync(path.join(tmp.dir, 'pullq.config.json'), JSON.stringify({
    queue,
    request: { url: `${api.url}/items/{id}` },
    auth: { type: 'header', tokens: ['${CLI_TOKEN}'] },
    sink: { type: 'file', dir: './out' },
  }));
  writeFileSync(path.join(tmp.dir, 'ids.txt'), 'a\nb\nmissing-1\nb\n');
});
afterAll(() => tearDown({ api, queue, tmp }));
const env = () => ({ REDIS_URL: redisUrl(), CLI_TOKEN: 'cli-token-1' });

describe('pullq CLI', () => {
  it('pull: completes, prints a summary, writes the SPEC files, exit 0', async () => {
    const r = await runCli(['pull', 'ids.txt', '--run', 'cli-run'], { cwd: tmp.dir, env: env() });
    // Only warnings about the test Redis (no persistence) may appear.
    expect(r.stderr.split('\n').filter((l) => l && !l.startsWith('pullq: warning: '))).toEqual([]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('run cli-run complete');
    expect(r.stdout).toContain('3 IDs, 2 succeeded, 1 failed (not_found 1)');
    const out = readOutput(path.join(tmp.dir, 'out'), 'cli-run');
    expect(out.results.map((x) => x.id).sort()).toEqual(['a', 'b']);
    expect(out.failed).toEqual([{ id: 'missing-1', status: 404, error: 'not_found', message: 'HTTP 404', attempts: 1 }]);
  });

  it('status --json prints the run object', async () => {
    const r = await runCli(['status', '--run', 'cli-run', '--json'], { cwd: tmp.dir, env: env() });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ run: 'cli-run', total: 3, succeeded: 2, failed: 1, pending: 0, complete: true });
  });

  it('enqueue from stdin, then a worker, then status says complete', async () => {
    const e = await runCli(['enqueue', '-', '--run', 'stdin-run'], { cwd: tmp.dir, env: env(), input: 'x\ny\n' });
    expect(e.code).toBe(0);
    expect(e.stdout).toContain('run stdin-run: 2 IDs read, 2 new');
    const w = await runCli(['pull', '-', '--run', 'stdin-run'], { cwd: tmp.dir, env: env(), input: '' });
    expect(w.code).toBe(0);
    expect(w.stdout).toContain('2 IDs, 2 succeeded');
  });

  it.each([
    [['pull', 'ids.txt', '--config', 'nope.json'], /^pullq: config file not found: .*nope\.json\n$/],
    [['pull', 'missing.txt', '--run', 'r-missing'], /^pullq: IDs file not found: missing\.txt\n$/],
    [['pull', 'ids.txt', '--run', '../../etc'], /^pullq: invalid run name "\.\.\/\.\.\/etc"/],
    [['pull'], /^pullq: pullq pull: give an IDs file, or - for stdin\n$/],
    [['frobnicate'], /^pullq: unknown command "frobnicate"/],
    [['worker', '--concurrency', 'lots'], /^pullq: --concurrency must be an integer >= 1/],
    [['pull', 'ids.txt', '--bogus'], /^pullq: Unknown option '--bogus'/],
  ])('%j fails with one clear line and exit 1', async (args, message) => {
    const r = await runCli(args, { cwd: tmp.dir, env: env() });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('bad config: one line naming the path; unset variable named', async () => {
    writeFileSync(path.join(tmp.dir, 'bad.json'), JSON.stringify({ request: { url: 'http://x/{id}' }, budget: { requests: 0, perSeconds: 1 } }));
    const r = await runCli(['status', '--config', 'bad.json'], { cwd: tmp.dir, env: env() });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^pullq: .*bad\.json: budget\.requests: must be > 0\n$/);
    const u = await runCli(['status'], { cwd: tmp.dir, env: { REDIS_URL: redisUrl() } });
    expect(u.code).toBe(1);
    expect(u.stderr).toMatch(/auth\.tokens\.0: environment variable CLI_TOKEN is not set\n$/);
  });

  it('a dead Redis fails fast with one clear line', async () => {
    const started = Date.now();
    const r = await runCli(['enqueue', 'ids.txt'], { cwd: tmp.dir, env: { ...env(), REDIS_URL: 'redis://127.0.0.1:1' } });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^pullq: cannot reach Redis at redis:\/\/127\.0\.0\.1:1 .*\n$/);
    expect(Date.now() - started).toBeLessThan(15_000);
  });
});

describe('hostile IDs files', () => {
  it('invalid UTF-8, NUL bytes and a 1 MB line become invalid_id naming their line; the rest is fetched', async () => {
    const file = path.join(tmp.dir, 'hostile.txt');
    writeFileSync(file, Buffer.concat([
      Buffer.from('good-1\n'),
      Buffer.from([0x62, 0x61, 0x64, 0xc3, 0x28, 0x0a]),
      Buffer.from('nul\0byte\n'),
      Buffer.from(`${'y'.repeat(1_000_000)}\n`),
      Buffer.from('good-2\n'),
    ]));
    const r = await runCli(['pull', 'hostile.txt', '--run', 'hostile'], { cwd: tmp.dir, env: env() });
    expect(r.code).toBe(0);
    const out = readOutput(path.join(tmp.dir, 'out'), 'hostile');
    expect(out.results.map((x) => x.id).sort()).toEqual(['good-1', 'good-2']);
    expect(out.failed.map((f) => [f.error, f.message])).toEqual([
      ['invalid_id', 'line 2: ID is not valid UTF-8'],
      ['invalid_id', 'line 3: ID contains a control character'],
      ['invalid_id', 'line 4: ID is longer than 2048 characters'],
    ]);
    expect(out.summary).toMatchObject({ total: 5, succeeded: 2, failed: 3 });
  });

  it('a line over 1 MiB refuses the file before anything is enqueued', async () => {
    writeFileSync(path.join(tmp.dir, 'binary.txt'), `a\n${'z'.repeat(3 * 1024 * 1024)}`);
    const r = await runCli(['enqueue', 'binary.txt', '--run', 'binary'], { cwd: tmp.dir, env: env() });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^pullq: .*binary\.txt: line 2 is longer than 1048576 bytes; an IDs file has one ID per line\n$/);
    const s = await runCli(['status', '--run', 'binary'], { cwd: tmp.dir, env: env() });
    expect(s.stderr).toContain('no run named binary');
  });
});
