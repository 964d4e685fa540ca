import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startExampleApi, type ExampleApi } from '../scripts/example-api-server.js';
import { startRedisProxy } from '../scripts/redis-fault-proxy.js';
import { runCli, spawnCli } from './helpers/cli.js';
import { redisUrl, tearDown, tempDir, uniqueQueue } from './helpers/test-env.js';

// What a person running pull and status sees: routine rests are no warnings, pull sums them up per
// credential, status --watch refreshes until Ctrl-C. The CLI as built, a real Redis, the example API.

const tmp = tempDir('calm');
const queue = uniqueQueue('calm');
let api: ExampleApi;
const ids = [...Array.from({ length: 27 }, (_, i) => `item-${i}`), 'limited-1', 'limited-2', 'limited-3'];
beforeAll(async () => {
  api = await startExampleApi({ auth: { type: 'header', tokens: ['calm-token'] } });
  writeFileSync(path.join(tmp.dir, 'pullq.config.json'), JSON.stringify({
    queue,
    request: { url: `${api.url}/items/{id}` },
    auth: { type: 'header', tokens: [{ token: '${CALM_TOKEN}', name: 'ci-bot', budget: { requests: 20, perSeconds: 1 } }] },
    sink: { type: 'file', dir: './out' },
  }));
  writeFileSync(path.join(tmp.dir, 'ids.txt'), `${ids.join('\n')}\n`);
});
afterAll(() => tearDown({ api, queue, tmp }));
const env = () => ({ REDIS_URL: redisUrl(), CALM_TOKEN: 'calm-token' });

describe('a calm terminal', () => {
  it('pull: 429s with Retry-After are no warnings; the summary says per credential requests, 429s, rests and budget share', async () => {
    const r = await runCli(['pull', 'ids.txt', '--run', 'calm-run'], { cwd: tmp.dir, env: env() });
    expect(r.code).toBe(0);
    // Warnings only for what a user must act on: here only the test Redis's settings may earn one.
    expect(r.stderr.split('\n').filter((l) => l && !/^pullq: warning: Redis /.test(l))).toEqual([]);
    expect(r.stderr).not.toMatch(/rate limited|resting/);
    expect(r.stdout).toContain('run calm-run complete');
    const m = /^credential ci-bot: (\d+) requests, 3 429s, rested (once|[23] times) \((\d+\.\d) s\), (\d+)% of its budget$/m.exec(r.stdout);
    expect(m, r.stdout).not.toBeNull();
    // Every request sent counts once: 30 IDs, 3 of them twice (a 429 first).
    expect(Number(m![1])).toBe(api.totalRequests());
    expect(api.totalRequests()).toBe(33);
    // Each rest is Retry-After: 1 s; overlapping ones are not counted twice.
    expect(Number(m![3])).toBeGreaterThanOrEqual(1);
    expect(Number(m![3])).toBeLessThanOrEqual(3.1);
    expect(Number(m![4])).toBeGreaterThan(0);
    expect(Number(m![4])).toBeLessThanOrEqual(100);
  });

  it('status --watch: a new block every second (stdout not a TTY) until SIGINT, then exit 0', async () => {
    const w = spawnCli(['status', '--watch', '--run', 'calm-run'], { cwd: tmp.dir, env: env() });
    let out = '';
    w.child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const started = Date.now();
    while ((out.match(/^as of /gm) ?? []).length < 3 && Date.now() - started < 20_000) await sleep(50);
    w.child.kill('SIGINT');
    const r = await w.done;
    expect(r.code).toBe(0);
    expect(r.stderr.split('\n').filter((l) => l && !/^pullq: warning: Redis /.test(l))).toEqual([]);
    const blocks = r.stdout.split(/\n\n(?=as of )/);
    expect(blocks.length).toBeGreaterThanOrEqual(3);
    for (const b of blocks) {
      expect(b).toMatch(/^as of \S+Z · every 1 s · Ctrl-C to stop\nrun       calm-run \(complete\)\n/);
      expect(b).toMatch(/\nci-bot +ok +20\/1s +\S+ +33 +3 +0 +0 +[123] \(\d+\.\d s\)\n?$/);
    }
    // One refresh a second, not faster.
    expect(Date.now() - started).toBeGreaterThanOrEqual(2000);
  });

  it('status --watch while Redis is away: says it waits for Redis, and Ctrl-C still ends it with exit 0', async () => {
    const u = new URL(redisUrl());
    const proxy = await startRedisProxy({ host: u.hostname, port: Number(u.port) });
    try {
      const w = spawnCli(['status', '--watch', '--run', 'calm-run'], { cwd: tmp.dir, env: { ...env(), REDIS_URL: proxy.url } });
      let out = '';
      w.child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      const until = async (re: RegExp) => {
        for (const t0 = Date.now(); !re.test(out) && Date.now() - t0 < 15_000; ) await sleep(50);
        expect(out).toMatch(re);
      };
      await until(/every 1 s · Ctrl-C to stop/);
      proxy.pause();
      await until(/waiting for Redis \(redis:\/\/127\.0\.0\.1:\d+\/?\)/);
      const stoppedAt = Date.now();
      w.child.kill('SIGINT');
      const r = await w.done;
      expect(r.code).toBe(0);
      expect(Date.now() - stoppedAt).toBeLessThan(3000);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    } finally {
      await proxy.close();
    }
  }, 30_000);

  it('status --watch --json is refused with one clear line', async () => {
    const r = await runCli(['status', '--watch', '--json'], { cwd: tmp.dir, env: env() });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^pullq: --watch redraws the human status in place; it does not combine with --json/);
  });
});
