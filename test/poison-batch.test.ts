import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startExampleApi, type ExampleApi } from '../scripts/example-api-server.js';
import { isTransientFailure } from '../src/jobs/batch-failure.js';
import { CommitUnknownError } from '../src/errors.js';
import { runCli } from './helpers/cli.js';
import { readOutput } from './helpers/pull-in-process.js';
import { newRedis, redisUrl, tearDown, tempDir, uniqueQueue } from './helpers/test-env.js';

// Issue #8, item 3: a batch whose step cannot be written failed its BullMQ job
// 20 times, refetching every ID each time, and the run never completed. Now
// the same non-transient failure ends the run after a few attempts: `pull`
// exits 2 with one line naming the cause, and resuming after the fix completes it.

const tmp = tempDir('poison');
const redis = newRedis();
const queue = uniqueQueue('poison');
let api: ExampleApi;
const ids = Array.from({ length: 30 }, (_, i) => `p-${i}`);

beforeAll(async () => {
  api = await startExampleApi({});
  writeFileSync(path.join(tmp.dir, 'pullq.config.json'), JSON.stringify({
    queue,
    request: { url: `${api.url}/items/{id}` },
    worker: { concurrency: 4, lockDurationMs: 2000 },
    enqueue: { batchSize: 10 },
    sink: { type: 'file', dir: './out' },
  }));
  writeFileSync(path.join(tmp.dir, 'ids.txt'), `${ids.join('\n')}\n`);
});
afterAll(() => tearDown({ api, queue, redis, tmp }));

describe('a batch that cannot be written', () => {
  it.each([
    [new CommitUnknownError('no answer'), true],
    [Object.assign(new Error('Connection is closed.'), {}), true],
    [Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }), true],
    [Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }), true],
    [Object.assign(new Error('connection failure'), { code: '08006' }), true],
    [new Error('Connection terminated unexpectedly'), true],
    [Object.assign(new Error('unsupported Unicode escape sequence'), { code: '22P05' }), false],
    [new RangeError('Invalid string length'), false],
    [Object.assign(new Error("EEXIST: file already exists, mkdir '/x'"), { code: 'EEXIST' }), false],
    [Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' }), false],
  ])('%s → transient: %s', (err, transient) => {
    expect(isTransientFailure(err)).toBe(transient);
  });

  it('ends the run with exit 2 and one line naming the cause; resuming after the fix completes it, every ID once', async () => {
    const run = 'blocked';
    // Where the parts directory must go, a file: every write of a part fails the same way.
    mkdirSync(path.join(tmp.dir, 'out', run), { recursive: true });
    writeFileSync(path.join(tmp.dir, 'out', run, 'parts'), 'not a directory');
    const env = { REDIS_URL: redisUrl(), PULLQ_LOG_LEVEL: 'fatal' };
    const started = Date.now();
    const first = await runCli(['pull', 'ids.txt', '--run', run], { cwd: tmp.dir, env });
    expect(first.code).toBe(2);
    expect(first.stderr).toMatch(/^pullq: run blocked cannot complete: batch \d+ cannot be written: EEXIST: file already exists.*resume: `pullq pull ids.txt --run blocked`/m);
    expect(first.stderr.trim().split('\n')).toHaveLength(1);
    expect(Date.now() - started).toBeLessThan(40_000);
    const status = await runCli(['status', '--run', run, '--json'], { cwd: tmp.dir, env });
    expect(JSON.parse(status.stdout)).toMatchObject({ complete: false, aborted: expect.stringMatching(/cannot be written/) });

    rmSync(path.join(tmp.dir, 'out', run, 'parts'));
    const second = await runCli(['pull', 'ids.txt', '--run', run], { cwd: tmp.dir, env });
    expect(second.code).toBe(0);
    const out = readOutput(path.join(tmp.dir, 'out'), run);
    const seen = [...out.results.map((r) => r.id), ...out.failed.map((f) => f.id)].sort();
    expect(seen).toEqual([...ids].sort());
  });
});
