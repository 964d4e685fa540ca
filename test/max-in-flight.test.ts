import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { CredentialPool } from '../src/auth/credential-pool.js';
import { createHttpClient } from '../src/jobs/http-client.js';
import { spawnCli, runCli } from './helpers/cli.js';
import { readOutput } from './helpers/pull-in-process.js';
import { cleanQueue, newRedis, quietLogger, redisUrl, tempDir, testConfig, uniqueQueue } from './helpers/test-env.js';
import { queueKeys } from '../src/redis/keys.js';

// Issue #9, item 3: budget.maxInFlight caps the requests in flight with one
// credential across every replica; a crashed replica's slots come back when
// their leases expire.

const tmp = tempDir('inflight');
const redis = newRedis();
const queues: string[] = [];
let server: Server | undefined;
afterAll(async () => {
  server?.close();
  for (const q of queues) await cleanQueue(redis, q);
  redis.disconnect();
  tmp.remove();
});

async function pool(extra: Record<string, unknown>) {
  const queue = uniqueQueue('inflight');
  queues.push(queue);
  const config = testConfig({ queue, request: { url: 'http://127.0.0.1:9/items/{id}', timeoutMs: 500 }, auth: { type: 'header', tokens: ['t1'] }, ...extra });
  return CredentialPool.open({ redis, config, logger: quietLogger(), http: createHttpClient(config) });
}

describe('budget.maxInFlight', () => {
  it('config: a cap alone is a budget; a rate needs both of its halves', () => {
    expect(testConfig({ request: { url: 'http://x/{id}' }, budget: { maxInFlight: 4 } }).budget).toEqual({ maxInFlight: 4 });
    expect(() => testConfig({ request: { url: 'http://x/{id}' }, budget: { requests: 5 } })).toThrow('budget.perSeconds: required with requests');
    expect(() => testConfig({ request: { url: 'http://x/{id}' }, budget: {} })).toThrow('give requests and perSeconds, maxInFlight, burst, or several of them');
    expect(() => testConfig({ request: { url: 'http://x/{id}' }, budget: { maxInFlight: 0 } })).toThrow('budget.maxInFlight: must be > 0');
  });

  it('at the cap a take waits; an ended request frees its slot; a lost replica frees its slots when the leases expire', async () => {
    const p = await pool({ budget: { requests: 1000, perSeconds: 1, maxInFlight: 2 } });
    const none = new Set<string>();
    const a = await p.acquire(none, 0);
    const b = await p.acquire(none, 0);
    expect([a.kind, b.kind]).toEqual(['granted', 'granted']);
    expect(await p.acquire(none, 0)).toMatchObject({ kind: 'wait' });
    expect((await p.health())[0]!.budget).toBe('1000/1s, ≤ 2 in flight');
    if (a.kind !== 'granted') throw new Error('unreachable');
    await p.endRequest(a.credential, a.lease);
    const c = await p.acquire(none, 0);
    expect(c.kind).toBe('granted');
    // b and c are never ended (their replica died): after request.timeoutMs + 5 s they expire.
    expect((await p.acquire(none, 0)).kind).toBe('wait');
    const started = Date.now();
    let next = await p.acquire(none, 0);
    while (next.kind !== 'granted' && Date.now() - started < 10_000) {
      await sleep(100);
      next = await p.acquire(none, 0);
    }
    expect(next.kind).toBe('granted');
    expect(Date.now() - started).toBeGreaterThan(4000);
  });

  it('two worker processes, concurrency 8 each, maxInFlight 3: the API never sees more than 3 at once; every ID once', async () => {
    let inFlight = 0;
    let most = 0;
    server = createServer((req, res) => {
      inFlight++;
      most = Math.max(most, inFlight);
      setTimeout(() => {
        inFlight--;
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ url: req.url }));
      }, 60);
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const queue = uniqueQueue('inflight');
    queues.push(queue);
    const ids = Array.from({ length: 90 }, (_, i) => `f-${i}`);
    writeFileSync(path.join(tmp.dir, 'ids.txt'), `${ids.join('\n')}\n`);
    writeFileSync(path.join(tmp.dir, 'pullq.config.json'), JSON.stringify({
      queue,
      request: { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/items/{id}` },
      auth: { type: 'header', tokens: ['one-token'] },
      budget: { maxInFlight: 3 },
      worker: { concurrency: 8 },
      enqueue: { batchSize: 10 },
      sink: { type: 'file', dir: './out' },
    }));
    const env = { REDIS_URL: redisUrl(), PULLQ_LOG_LEVEL: 'error' };
    const other = spawnCli(['worker'], { cwd: tmp.dir, env });
    try {
      const r = await runCli(['pull', 'ids.txt', '--run', 'capped'], { cwd: tmp.dir, env });
      expect(r.code).toBe(0);
    } finally {
      other.child.kill('SIGTERM');
      await other.done;
    }
    expect(most).toBeLessThanOrEqual(3);
    expect(most).toBe(3);
    const out = readOutput(path.join(tmp.dir, 'out'), 'capped');
    expect(out.results.map((x) => x.id).sort()).toEqual([...ids].sort());
    // Every lease was given back: no in-flight set is left.
    expect(await redis.keys(`${queueKeys(queue).credPrefix}*:inflight`)).toEqual([]);
  });
});
