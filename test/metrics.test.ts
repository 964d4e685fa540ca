import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startExampleApi, type ExampleApi } from '../scripts/example-api-server.js';
import { freePort } from '../scripts/local-redis.js';
import { startRedisProxy } from '../scripts/redis-fault-proxy.js';
import { METRICS_MAX_RUNS, PullqMetrics, statusClass } from '../src/metrics/pullq-metrics.js';
import { runCli, spawnCli, type CliResult } from './helpers/cli.js';
import { cleanQueue, newRedis, redisUrl, tempDir, uniqueQueue } from './helpers/test-env.js';

// Issue #11: every worker serves Prometheus metrics; summed over a fleet of 4
// they agree with `pullq status --json` at the end of the run.

const TOKENS = ['metrics-token-aaa', 'metrics-token-bbb'];
const tmp = tempDir('metrics');
const queue = uniqueQueue('metrics');
let api: ExampleApi;

beforeAll(async () => {
  api = await startExampleApi({ auth: { type: 'header', tokens: TOKENS }, latencyMs: 15 });
});
afterAll(async () => {
  await api.close();
  const redis = newRedis();
  await cleanQueue(redis, queue);
  redis.disconnect();
  tmp.remove();
});

/** Samples of a Prometheus text exposition: name, labels, value. */
function samples(text: string): { name: string; labels: Record<string, string>; value: number }[] {
  const out = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

const sum = (texts: string[], name: string, where: Record<string, string> = {}) =>
  texts.flatMap(samples).filter((s) => s.name === name && Object.entries(where).every(([k, v]) => s.labels[k] === v)).reduce((n, s) => n + s.value, 0);

async function get(port: number, p: string): Promise<{ status: number; text: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${p}`);
  return { status: res.status, text: await res.text() };
}

describe('statusClass', () => {
  it.each([
    [200, '2xx'], [204, '2xx'], [304, '3xx'], [404, '4xx'], [429, '4xx'], [503, '5xx'], [null, 'network'], [99, 'other'], [600, 'other'],
  ] as const)('%s → %s', (status, cls) => expect(statusClass(status)).toBe(cls));
});

describe('request counters', () => {
  it('requests by credential and status class; the duration histogram is cumulative, +Inf equals the count, with sum', async () => {
    const m = new PullqMetrics({ defaultMetrics: false });
    for (const [status, seconds] of [[200, 0.004], [200, 0.03], [503, 0.3], [null, 40]] as const) m.request({ credential: { label: 'alpha' }, status, seconds });
    m.request({ credential: { label: 'beta' }, status: 429, seconds: 0.01 });
    const text = await m.text();
    expect(sum([text], 'pullq_requests_total', { credential: 'alpha', status_class: '2xx' })).toBe(2);
    expect(sum([text], 'pullq_requests_total', { credential: 'alpha', status_class: '5xx' })).toBe(1);
    expect(sum([text], 'pullq_requests_total', { credential: 'alpha', status_class: 'network' })).toBe(1);
    expect(sum([text], 'pullq_requests_total', { credential: 'beta', status_class: '4xx' })).toBe(1);
    const bucket = (le: string) => sum([text], 'pullq_request_duration_seconds_bucket', { credential: 'alpha', le });
    expect([bucket('0.01'), bucket('0.05'), bucket('0.5'), bucket('30'), bucket('+Inf')]).toEqual([1, 2, 3, 3, 4]);
    expect(sum([text], 'pullq_request_duration_seconds_count', { credential: 'alpha' })).toBe(4);
    expect(sum([text], 'pullq_request_duration_seconds_sum', { credential: 'alpha' })).toBeCloseTo(40.334, 6);
    expect(text).toContain('# TYPE pullq_request_duration_seconds histogram');
    expect(text).toContain('# TYPE pullq_requests_total counter');
  });
});

describe('bounded series', () => {
  it(`a process keeps pullq_ids_total of its last ${METRICS_MAX_RUNS} runs only (a schedule makes a run per tick)`, async () => {
    const m = new PullqMetrics({ defaultMetrics: false });
    for (let r = 0; r < METRICS_MAX_RUNS + 5; r++) m.committed({ run: `tick-${r}`, succeeded: 2, errors: new Map([['not_found', 1]]), seconds: 0.001 });
    const runs = new Set(samples(await m.text()).filter((s) => s.name === 'pullq_ids_total').map((s) => s.labels['run']));
    expect(runs.size).toBe(METRICS_MAX_RUNS);
    expect(runs.has('tick-4')).toBe(false);
    expect(runs.has('tick-5')).toBe(true);
    expect(sum([await m.text()], 'pullq_ids_total', { run: `tick-${METRICS_MAX_RUNS + 4}` })).toBe(3);
  });
});

describe('/metrics on a fleet of 4 workers', () => {
  it('counters move during the run and, summed, agree with status --json at the end; /healthz and /readyz answer', async () => {
    const config = {
      queue,
      request: { url: `${api.url}/items/{id}` },
      auth: { type: 'header', tokens: [{ name: 'alpha', token: TOKENS[0] }, { name: 'beta', token: TOKENS[1] }] },
      budget: { requests: 30, perSeconds: 1 },
      retry: { baseDelayMs: 50, maxDelayMs: 200 },
      enqueue: { batchSize: 20 },
    };
    writeFileSync(path.join(tmp.dir, 'pullq.config.json'), JSON.stringify(config));
    const ids = [...Array.from({ length: 500 }, (_, i) => `ok-${i}`), ...Array.from({ length: 12 }, (_, i) => `missing-${i}`), ...Array.from({ length: 8 }, (_, i) => `limited-${i}`)];
    writeFileSync(path.join(tmp.dir, 'ids.txt'), `${ids.join('\n')}\n`);
    const env = { REDIS_URL: redisUrl(), PULLQ_LOG_LEVEL: 'warn' };
    expect((await runCli(['enqueue', 'ids.txt', '--run', 'm'], { cwd: tmp.dir, env })).code).toBe(0);

    const ports = await Promise.all([0, 1, 2, 3].map(() => freePort()));
    const workers = ports.map((p) => spawnCli(['worker', '--metrics-port', String(p), '--concurrency', '4'], { cwd: tmp.dir, env }));
    const results: CliResult[] = [];
    try {
      // /healthz as soon as the process listens; /readyz once its worker is connected and taking work.
      for (const p of ports) {
        for (let i = 0; i < 150; i++) {
          if ((await get(p, '/readyz').catch(() => ({ status: 0 }))).status === 200) break;
          await sleep(100);
        }
      }
      const ready = await Promise.all(ports.map((p) => get(p, '/readyz')));
      expect(ready.map((r) => r.status)).toEqual([200, 200, 200, 200]);
      expect((await Promise.all(ports.map((p) => get(p, '/healthz')))).map((r) => r.status)).toEqual([200, 200, 200, 200]);

      // While it runs: the fleet's finished IDs, scraped twice, move.
      const scrape = () => Promise.all(ports.map(async (p) => (await get(p, '/metrics')).text));
      const finished = async () => sum(await scrape(), 'pullq_ids_total');
      // The budget (2 × 30/s) makes the run last ~9 s. A busy machine may take a while to commit the first
      // batch (one commits when done, or at a 5 s checkpoint): wait for a reading inside the run, then for it to move.
      let first = 0;
      await expect.poll(async () => (first = await finished()), { timeout: 20_000, interval: 200 }).toBeGreaterThan(0);
      expect(first).toBeLessThan(ids.length);
      await expect.poll(finished, { timeout: 20_000, interval: 200 }).toBeGreaterThan(first);

      let status: Record<string, unknown> = {};
      for (let i = 0; i < 200; i++) {
        status = JSON.parse((await runCli(['status', '--run', 'm', '--json'], { cwd: tmp.dir, env })).stdout) as Record<string, unknown>;
        if (status['complete']) break;
        await sleep(250);
      }
      expect(status['complete']).toBe(true);
      const texts = await scrape();
      const all = texts.join('\n');
      expect(sum(texts, 'pullq_ids_total', { outcome: 'succeeded' })).toBe(status['succeeded']);
      expect(sum(texts, 'pullq_ids_total', { outcome: 'failed' })).toBe(status['failed']);
      for (const [code, n] of Object.entries(status['errors'] as Record<string, number>)) expect(sum(texts, 'pullq_ids_total', { outcome: 'failed', code })).toBe(n);
      expect(sum(texts, 'pullq_ids_total', { run: 'm' })).toBe(ids.length);
      // Every request the API saw was counted once, by the worker that sent it.
      expect(sum(texts, 'pullq_requests_total')).toBe(api.totalRequests());
      expect(sum(texts, 'pullq_requests_total', { status_class: '4xx' })).toBe(12 + 8);
      expect(sum(texts, 'pullq_request_duration_seconds_count')).toBe(api.totalRequests());
      expect(sum(texts, 'pullq_credential_rests_total', { reason: 'rate_limited' })).toBeGreaterThan(0);
      expect(sum(texts, 'pullq_commit_duration_seconds_count')).toBeGreaterThan(0);
      // Fleet gauges, read from Redis at the scrape: both credentials, by name.
      const states = samples(texts[0]!).filter((s) => s.name === 'pullq_credential_state');
      expect(new Set(states.map((s) => s.labels['credential']))).toEqual(new Set(['alpha', 'beta']));
      expect(samples(texts[0]!).filter((s) => s.name === 'pullq_credential_budget_remaining')).toHaveLength(2);
      expect(sum([texts[0]!], 'bullmq_job_count', { queue })).toBeGreaterThanOrEqual(0);
      expect(texts[0]).toContain('bullmq_job_count{');
      expect(sum([texts[0]!], 'pullq_process_cpu_seconds_total')).toBeGreaterThan(0);
      expect(sum([texts[0]!], 'pullq_process_resident_memory_bytes')).toBeGreaterThan(10_000_000);
      // Bounded labels: no secret and no ID anywhere.
      for (const t of TOKENS) expect(all).not.toContain(t);
      expect(all).not.toMatch(/ok-\d|missing-\d|limited-\d/);
      expect((await get(ports[0]!, '/nope')).status).toBe(404);
    } finally {
      for (const w of workers) w.child.kill('SIGTERM');
      results.push(...(await Promise.all(workers.map((w) => w.done))));
    }
    expect(results.map((r) => r.code)).toEqual([0, 0, 0, 0]);
  }, 90_000);

  it('/readyz is 503 while Redis does not answer and 200 again when it is back; /healthz stays 200', async () => {
    const u = new URL(redisUrl());
    const proxy = await startRedisProxy({ host: u.hostname, port: Number(u.port) });
    const port = await freePort();
    const w = spawnCli(['worker', '--metrics-port', String(port)], { cwd: tmp.dir, env: { REDIS_URL: proxy.url, PULLQ_LOG_LEVEL: 'error' } });
    try {
      const until = async (path: string, status: number) => {
        for (let i = 0; i < 100; i++) {
          const r = await get(port, path).catch(() => ({ status: 0, text: '' }));
          if (r.status === status) return r;
          await sleep(100);
        }
        throw new Error(`${path} never answered ${status}`);
      };
      await until('/readyz', 200);
      proxy.pause();
      expect((await until('/readyz', 503)).text).toContain('Redis does not answer');
      expect((await get(port, '/healthz')).status).toBe(200);
      proxy.resume();
      await until('/readyz', 200);
    } finally {
      w.child.kill('SIGTERM');
      await w.done;
      await proxy.close();
    }
  }, 30_000);

  it('a metrics port in use fails in one clear line', async () => {
    const port = await freePort();
    const blocker = (await import('node:net')).createServer().listen(port, '0.0.0.0');
    try {
      const res = await runCli(['worker', '--metrics-port', String(port)], { cwd: tmp.dir, env: { REDIS_URL: redisUrl() } });
      expect(res.code).toBe(1);
      expect(res.stderr).toContain(`metrics port ${port} is in use`);
      expect(res.stderr).not.toMatch(/\n\s+at /);
    } finally {
      blocker.close();
    }
  });
});
