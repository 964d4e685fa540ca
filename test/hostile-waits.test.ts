import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { capWait } from '../src/http/rate-limit-headers.js';
import { RunStore } from '../src/runs/run-store.js';
import { runCli, spawnCli } from './helpers/cli.js';
import { readOutput } from './helpers/pull-in-process.js';
import { cleanQueue, newRedis, redisUrl, tempDir, uniqueQueue } from './helpers/test-env.js';
import { queueKeys } from '../src/redis/keys.js';

// Issue #8, item 6: waits a server asks for had no upper bound. `Retry-After:
// 315360000` parked an ID (or a whole credential) for ten years and the run
// stalled without a word. They are now capped by retry.maxWaitMs, logged once,
// and `status` says why a run waits.

const TEN_YEARS_S = 315_360_000;
const tmp = tempDir('waits');
const redis = newRedis();
const queues: string[] = [];
let server: Server | undefined;
afterEach(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});
afterAll(async () => {
  for (const q of queues) await cleanQueue(redis, q);
  redis.disconnect();
  tmp.remove();
});

/** An API that answers `first(id, n)` to the n-th request of an ID (null: 200 with JSON). */
async function api(first: (id: string, n: number) => { status: number; headers: Record<string, string> } | null): Promise<string> {
  const seen = new Map<string, number>();
  server = createServer((req, res) => {
    const id = decodeURIComponent(req.url!.split('/').pop()!);
    const n = (seen.get(id) ?? 0) + 1;
    seen.set(id, n);
    const a = first(id, n);
    if (a) {
      res.writeHead(a.status, a.headers).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id }));
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server!.address() as AddressInfo).port}`;
}

function setUp(label: string, url: string, maxWaitMs: number, ids: string[]): { dir: string; queue: string } {
  const queue = uniqueQueue(label);
  queues.push(queue);
  const dir = path.join(tmp.dir, label);
  writeFileSync(path.join(tmp.dir, `${label}.ids.txt`), `${ids.join('\n')}\n`);
  writeFileSync(path.join(tmp.dir, `${label}.config.json`), JSON.stringify({
    queue,
    request: { url: `${url}/items/{id}` },
    retry: { attempts: 3, baseDelayMs: 10, maxDelayMs: 50, maxWaitMs },
    sink: { type: 'file', dir },
  }));
  return { dir, queue };
}

describe('waits the server asks for', () => {
  it.each([
    [1000, 60_000, 1000, false],
    [60_000, 60_000, 60_000, false],
    [TEN_YEARS_S * 1000, 3_600_000, 3_600_000, true],
    [Number.POSITIVE_INFINITY, 3_600_000, 3_600_000, true],
    [-5, 1000, 0, false],
  ])('capWait(%s, %s) waits %s (capped: %s)', (asked, max, waitMs, capped) => {
    expect(capWait(asked, max)).toMatchObject({ waitMs, capped });
  });

  it('Retry-After of ten years on a 503 and on a 429: capped, logged once each, the run completes', async () => {
    const url = await api((id, n) => {
      if (id.startsWith('r503') && n === 1) return { status: 503, headers: { 'retry-after': String(TEN_YEARS_S) } };
      if (id === 'r429-0' && n === 1) return { status: 429, headers: { 'retry-after': String(TEN_YEARS_S) } };
      return null;
    });
    const ids = ['r503-0', 'r503-1', 'r429-0', ...Array.from({ length: 5 }, (_, i) => `plain-${i}`)];
    const { dir } = setUp('capped', url, 1000, ids);
    const r = await runCli(['pull', 'capped.ids.txt', '--run', 'capped', '--config', 'capped.config.json'], { cwd: tmp.dir, env: { REDIS_URL: redisUrl() } });
    expect(r.code).toBe(0);
    const out = readOutput(dir, 'capped');
    expect(out.results.map((x) => x.id).sort()).toEqual([...ids].sort());
    expect(r.stderr.match(/asked to retry an ID after 3650 d; retrying after retry.maxWaitMs \(1 s\)/g)).toHaveLength(1);
    expect(r.stderr.match(/asked to wait 3650 d; waiting retry.maxWaitMs \(1 s\) instead/g)).toHaveLength(1);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('status says why a run waits: every credential resting, and what the API asked for', async () => {
    const url = await api(() => ({ status: 429, headers: { 'retry-after': String(TEN_YEARS_S) } }));
    const { queue } = setUp('resting', url, 3_600_000, ['w-1', 'w-2']);
    const env = { REDIS_URL: redisUrl(), PULLQ_LOG_LEVEL: 'error' };
    expect((await runCli(['enqueue', 'resting.ids.txt', '--run', 'resting', '--config', 'resting.config.json'], { cwd: tmp.dir, env })).code).toBe(0);
    const worker = spawnCli(['worker', '--config', 'resting.config.json'], { cwd: tmp.dir, env });
    try {
      const store = new RunStore(redis, queue);
      for (let i = 0; i < 200; i++) {
        if (await redis.hget(`${queueKeys(queue).credPrefix}anonymous`, 'restUntil')) break;
        await sleep(50);
      }
      expect((await store.status('resting'))?.complete).toBe(false);
      const s = await runCli(['status', '--run', 'resting', '--config', 'resting.config.json'], { cwd: tmp.dir, env });
      expect(s.code).toBe(0);
      expect(s.stdout).toMatch(/waiting\s+every credential is resting \(rate limited\) until \S+; the API asked for 3650 d, capped by retry.maxWaitMs/);
      const until = Date.parse(/resting \(rate limited\) until (\S+);/.exec(s.stdout)![1]!);
      expect(until - Date.now()).toBeLessThanOrEqual(3_600_000);
      expect(until - Date.now()).toBeGreaterThan(3_000_000);
    } finally {
      worker.child.kill('SIGTERM');
      await worker.done;
    }
  });
});
