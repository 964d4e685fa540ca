import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startExampleApi, type ExampleApi } from '../scripts/example-api-server.js';
import { tickRunName, tickTime } from '../src/runs/scheduled-pull.js';
import { RunStore, validateRunName } from '../src/runs/run-store.js';
import { checkSchedule } from '../src/api/schedules.js';
import { runCli, spawnCli } from './helpers/cli.js';
import { readOutput } from './helpers/pull-in-process.js';
import { newRedis, redisUrl, tearDown, tempDir, uniqueQueue } from './helpers/test-env.js';

const tmp = tempDir('schedule');
const queue = uniqueQueue('sched');
const redis = newRedis();
let api: ExampleApi;
beforeAll(async () => {
  api = await startExampleApi({});
  writeFileSync(path.join(tmp.dir, 'pullq.config.json'), JSON.stringify({ queue, request: { url: `${api.url}/items/{id}` }, sink: { type: 'file', dir: './out' } }));
  writeFileSync(path.join(tmp.dir, 'nightly.txt'), 'a\nb\nc\n');
});
afterAll(() => tearDown({ api, queue, redis, tmp }));
const env = () => ({ REDIS_URL: redisUrl(), PULLQ_LOG_LEVEL: 'warn' });

describe('pullq schedule', () => {
  it('tick names are stable per tick', () => {
    expect(tickTime('repeat:nightly:1767225600000', 5)).toBe(1767225600000);
    expect(tickTime('other', 5)).toBe(5);
    expect(tickRunName('nightly', Date.parse('2026-01-01T03:00:00Z'))).toBe('nightly-20260101T030000Z');
  });

  it('a schedule name whose tick runs would be over 100 characters is refused when scheduled; 83 is the longest', async () => {
    const file = path.join(tmp.dir, 'nightly.txt');
    await expect(checkSchedule(file, { cron: '0 3 * * *', name: 'n'.repeat(84) })).rejects.toThrow(/at most 83/);
    const longest = await checkSchedule(file, { cron: '0 3 * * *', name: 'n'.repeat(83) });
    expect(validateRunName(tickRunName(longest, Date.parse('2026-01-01T03:00:00Z')))).toHaveLength(100);
  });

  it('two workers fire each tick once; each tick is a complete run; --list and --remove', async () => {
    const add = await runCli(['schedule', 'nightly.txt', '--cron', '*/2 * * * * *', '--tz', 'UTC'], { cwd: tmp.dir, env: env() });
    expect(add.stderr).toBe('');
    expect(add.code).toBe(0);
    expect(add.stdout).toContain('schedule nightly: */2 * * * * * (UTC)');
    const listed = await runCli(['schedule', '--list'], { cwd: tmp.dir, env: env() });
    expect(listed.stdout).toMatch(/^nightly {2}\*\/2 \* \* \* \* \* \(UTC\) {2}next \S+ {2}.*nightly\.txt\n$/);
    const w1 = spawnCli(['worker'], { cwd: tmp.dir, env: env() });
    const w2 = spawnCli(['worker'], { cwd: tmp.dir, env: env() });
    const store = new RunStore(redis, queue);
    const deadline = Date.now() + 20_000;
    let runs: string[] = [];
    for (;;) {
      runs = (await store.listRuns(50)).filter((r) => r.startsWith('nightly-'));
      const complete = await Promise.all(runs.map(async (r) => (await store.status(r))?.complete));
      if (runs.length >= 2 && complete.filter(Boolean).length >= 2) break;
      if (Date.now() > deadline) throw new Error(`runs: ${runs.join(', ')}`);
      await sleep(200);
    }
    expect((await runCli(['schedule', '--remove', 'nightly'], { cwd: tmp.dir, env: env() })).stdout).toBe('schedule nightly removed\n');
    w1.child.kill('SIGTERM');
    w2.child.kill('SIGTERM');
    await Promise.all([w1.done, w2.done]);
    // Ticks went on firing until --remove (a loaded machine takes seconds to run it): count every run now.
    runs = (await store.listRuns(50)).filter((r) => r.startsWith('nightly-'));
    // Each tick once: the API saw each ID at most once per tick's run, and every complete run holds each ID once.
    let completed = 0;
    for (const r of runs) {
      if (!(await store.status(r))?.complete) continue;
      completed++;
      expect(readOutput(path.join(tmp.dir, 'out'), r).results.map((x) => x.id).sort()).toEqual(['a', 'b', 'c']);
    }
    expect(api.requestsById.get('a')).toBeGreaterThanOrEqual(completed);
    expect(api.requestsById.get('a')).toBeLessThanOrEqual(runs.length);
    expect((await runCli(['schedule', '--list'], { cwd: tmp.dir, env: env() })).stdout).toBe('no schedules\n');
  });

  it.each([
    [['schedule', 'nightly.txt'], /--cron EXPR is required/],
    [['schedule', 'nightly.txt', '--cron', 'not a cron'], /--cron: invalid expression "not a cron"/],
    [['schedule', 'nightly.txt', '--cron', '0 3 * * *', '--tz', 'Mars/Olympus'], /--tz: unknown time zone "Mars\/Olympus"/],
    [['schedule', 'missing.txt', '--cron', '0 3 * * *'], /IDs file not found: missing\.txt/],
    [['schedule', '--remove', 'nope'], /no schedule named "nope"/],
    [['schedule'], /give an IDs file with --cron, or --list, or --remove NAME/],
    [['schedule', 'nightly.txt', '--cron', '0 3 * * *', '--name', 'n'.repeat(84)], /schedule name .* is 84 characters: at most 83/],
  ])('%j fails with one clear line', async (args, message) => {
    const r = await runCli(args, { cwd: tmp.dir, env: env() });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(message);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
});
