import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startExampleApi, type ExampleApi } from '../scripts/example-api-server.js';
import { RunPaceTracker } from '../src/dashboard/run-pace.js';
import type { DashboardState } from '../src/dashboard/dashboard-state.js';
import { scrubDeep } from '../src/dashboard/scrub-deep.js';
import type { RunStatus } from '../src/runs/run-store.js';
import { runCli } from './helpers/cli.js';
import { spawnDashboard, type DashboardProcess } from './helpers/dashboard.js';
import { redisUrl, tearDown, tempDir, uniqueQueue } from './helpers/test-env.js';

// `pullq dashboard` (issue #11, item 2) as a user runs it: the built CLI
// against a queue with a finished pull, asked over HTTP. The browser test is
// test/dashboard-browser.test.ts.

const TOKENS = ['dash-token-alpha-4f1c9e', 'dash-token-bravo-8b2d7a'];
const PASSWORD = 'dash pass: wörd';
const queue = uniqueQueue('dash');
const tmp = tempDir('dash');
const env = () => ({ REDIS_URL: redisUrl() });
let api: ExampleApi;
let open: DashboardProcess;
const started: DashboardProcess[] = [];

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

beforeAll(async () => {
  api = await startExampleApi({ auth: { type: 'header', tokens: TOKENS } });
  writeFileSync(
    path.join(tmp.dir, 'pullq.config.json'),
    JSON.stringify({
      queue,
      request: { url: `${api.url}/items/{id}` },
      auth: { type: 'header', tokens: [{ token: TOKENS[0], name: 'alpha' }, { token: TOKENS[1], name: 'bravo' }] },
      retry: { baseDelayMs: 50, maxDelayMs: 200 },
    }),
  );
  const ids = [...Array.from({ length: 40 }, (_, i) => `ok-${i}`), 'missing-1', 'missing-2', 'gone-1', 'limited-1'];
  writeFileSync(path.join(tmp.dir, 'ids.txt'), `${ids.join('\n')}\n`);
  const pull = await runCli(['pull', 'ids.txt', '--run', 'finished-run'], { cwd: tmp.dir, env: env() });
  expect(pull.code, pull.stderr).toBe(0);
  open = await spawnDashboard(['--port', '0'], { cwd: tmp.dir, env: env() });
  started.push(open);
});

afterAll(async () => {
  await Promise.all(started.map((d) => d.stop()));
  await tearDown({ api, queue, tmp });
});

describe('pullq dashboard over HTTP', () => {
  it('prints one calm line with its URL and the queue', async () => {
    expect(open.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it('GET /api/state has the finished run, both credentials and the throughput, and no token anywhere', async () => {
    const res = await fetch(`${open.url}/api/state`);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const text = await res.text();
    for (const t of TOKENS) expect(text).not.toContain(t);
    const state = JSON.parse(text) as DashboardState;
    expect(state.queue).toBe(queue);
    const run = state.runs.find((r) => r.run === 'finished-run')!;
    expect(run).toMatchObject({ state: 'complete', complete: true, total: 44, succeeded: 41, failed: 3, pending: 0, etaSeconds: null, errors: { not_found: 3 } });
    expect(run.idsPerSecond).toBeGreaterThan(0);
    expect(state.credentials.map((c) => c.label)).toEqual(['alpha', 'bravo']);
    for (const c of state.credentials) expect(['ok', 'resting']).toContain(c.state);
    for (const c of state.credentials) expect(c.requests).toBeGreaterThan(0);
    expect(state.credentials.reduce((n, c) => n + c.n429, 0)).toBe(1);
    // The chart's series are the labels; ids appear nowhere.
    expect(state.throughput.credentials).toEqual(['alpha', 'bravo']);
    expect(text).not.toMatch(/fp-[0-9a-f]{12}/);
    expect(state.throughput.points).toHaveLength(360);
    const sum = (k: 'accepted' | 'rejected') => state.throughput.points.reduce((n, p) => n + p[k].reduce((a, b) => a + b, 0), 0);
    expect({ accepted: sum('accepted'), rejected: sum('rejected') }).toEqual({ accepted: 44, rejected: 1 });
  });

  it('GET / is one self-contained page: no remote resource, no innerHTML, a CSP that allows only its own inline code', async () => {
    const res = await fetch(`${open.url}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const csp = res.headers.get('content-security-policy')!;
    expect(csp).toContain("default-src 'none'");
    expect(csp).toMatch(/script-src 'sha256-[A-Za-z0-9+/=]+'/);
    const html = await res.text();
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
    expect(html).not.toContain('innerHTML');
    for (const t of TOKENS) expect(html).not.toContain(t);
  });

  it('Bull Board answers under /queues: its page (with no remote fonts) and its API, read only', async () => {
    const page = await fetch(`${open.url}/queues/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await page.text();
    expect(html).toContain('<base href="/queues/"');
    expect(html).not.toContain('fonts.googleapis.com');
    const queues = await fetch(`${open.url}/queues/api/queues`);
    expect(queues.status).toBe(200);
    const body = await queues.text();
    expect(body).toContain(queue);
    for (const t of TOKENS) expect(body).not.toContain(t);
    expect((await fetch(`${open.url}/queues/api/queues/pause`, { method: 'PUT' })).status).toBe(405);
    expect((await fetch(`${open.url}/queues/api/queues/${queue}/add`, { method: 'POST' })).status).toBe(405);
  });

  it('/metrics has the fleet\'s gauges (credentials by name, BullMQ job counts) and no secret; /healthz and /readyz answer', async () => {
    const res = await fetch(`${open.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await res.text();
    expect(text).toMatch(/^pullq_credential_state\{credential="[^"]+",state="ok"\} [01]$/m);
    expect(text).toContain(`bullmq_job_count{queue="${queue}"`);
    for (const t of TOKENS) expect(text).not.toContain(t);
    expect((await fetch(`${open.url}/healthz`)).status).toBe(200);
    expect(await (await fetch(`${open.url}/readyz`)).text()).toBe('ready\n');
  });

  it('bound to loopback without a password, it answers only to loopback host names (no DNS rebinding)', async () => {
    const { port } = new URL(open.url);
    const { request } = await import('node:http');
    const status = (host: string) =>
      new Promise<number>((resolve, reject) => {
        request({ host: '127.0.0.1', port, path: '/api/state', headers: { host } }, (res) => {
          res.resume();
          resolve(res.statusCode!);
        })
          .on('error', reject)
          .end();
      });
    expect(await status(`localhost:${port}`)).toBe(200);
    expect(await status(`attacker.example:${port}`)).toBe(421);
  });

  it('with PULLQ_DASHBOARD_PASSWORD every route asks for it (any user): 401 without or wrong, 200 with', async () => {
    const d = await spawnDashboard(['--port', '0', '--host', '127.0.0.1'], { cwd: tmp.dir, env: { ...env(), PULLQ_DASHBOARD_PASSWORD: PASSWORD } });
    started.push(d);
    for (const route of ['/', '/api/state', '/queues/', '/queues/api/queues', '/metrics', '/nowhere']) {
      const none = await fetch(`${d.url}${route}`);
      expect(none.status, route).toBe(401);
      expect(none.headers.get('www-authenticate')).toMatch(/^Basic realm="pullq dashboard"/);
      expect((await fetch(`${d.url}${route}`, { headers: { authorization: basic('admin', 'wrong') } })).status, route).toBe(401);
    }
    for (const route of ['/', '/api/state', '/queues/', '/queues/api/queues', '/metrics']) {
      expect((await fetch(`${d.url}${route}`, { headers: { authorization: basic('anyone', PASSWORD) } })).status, route).toBe(200);
    }
    // Probes answer without it: an orchestrator has no password.
    for (const route of ['/healthz', '/readyz']) expect((await fetch(`${d.url}${route}`)).status, route).toBe(200);
    expect((await fetch(`${d.url}/nowhere`, { headers: { authorization: basic('', PASSWORD) } })).status).toBe(404);
    const result = await d.stop();
    expect(result.code).toBe(0);
    expect(result.stderr).not.toContain('warning: the dashboard listens');
  });

  it('bound beyond loopback without a password: one clear warning line; with one: none', async () => {
    const d = await spawnDashboard(['--port', '0', '--host', '0.0.0.0'], { cwd: tmp.dir, env: env() });
    started.push(d);
    expect(d.url).toMatch(/^http:\/\/0\.0\.0\.0:\d+$/);
    // Any host name is answered there (it is meant to be reached by a name or address of this machine).
    expect((await fetch(`http://127.0.0.1:${new URL(d.url).port}/api/state`)).status).toBe(200);
    const result = await d.stop();
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(/^pullq: warning: the dashboard listens on 0\.0\.0\.0 without a password: .*PULLQ_DASHBOARD_PASSWORD\)$/m);
  });

  it('stops on SIGTERM with exit 0', async () => {
    const d = await spawnDashboard(['--port', '0'], { cwd: tmp.dir, env: env() });
    const t0 = Date.now();
    const result = await d.stop();
    expect(result).toMatchObject({ code: 0, signal: null });
    expect(Date.now() - t0).toBeLessThan(3000);
  });

  it('a bad --port is a clear input error; a port in use is one line and exit 1, no stack trace', async () => {
    for (const bad of ['abc', '-1', '70000', '3000.5', '', ' 80']) {
      const res = await runCli(['dashboard', `--port=${bad}`], { cwd: tmp.dir, env: env() });
      expect(res.code, bad).toBe(1);
      expect(res.stderr, bad).toMatch(/^pullq: --port must be an integer from 0 to 65535/);
    }
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const { port } = blocker.address() as AddressInfo;
    try {
      const res = await runCli(['dashboard', '--port', String(port)], { cwd: tmp.dir, env: env() });
      expect(res.code).toBe(1);
      expect(res.stdout).toBe('');
      expect(res.stderr).toBe(`pullq: cannot listen on 127.0.0.1:${port}: the port is in use (choose another with --port)\n`);
    } finally {
      blocker.close();
    }
  });
});

describe('dashboard pieces', () => {
  const status = (over: Partial<RunStatus>): RunStatus => ({
    run: 'r', queue: 'q', total: 1000, succeeded: 0, failed: 0, pending: 1000, complete: false, done: false, sealed: true,
    createdAt: new Date(0).toISOString(), finishedAt: null, errors: {}, aborted: null, ...over,
  });

  it('IDs/s: the average until 10 s of sightings, then the last minute; over the whole run once done', () => {
    const pace = new RunPaceTracker();
    expect(pace.pace(status({ succeeded: 100, pending: 900 }), 10_000)).toEqual({ idsPerSecond: 10, etaSeconds: 90 });
    // Slowed down: 20 IDs in the next 20 s.
    expect(pace.pace(status({ succeeded: 110, pending: 890 }), 20_000).idsPerSecond).toBe(1);
    expect(pace.pace(status({ succeeded: 120, pending: 880 }), 30_000)).toEqual({ idsPerSecond: 1, etaSeconds: 880 });
    expect(pace.pace(status({ succeeded: 1000, pending: 0, done: true, complete: true, finishedAt: new Date(50_000).toISOString() }), 60_000)).toEqual({ idsPerSecond: 20, etaSeconds: null });
  });

  it('scrubDeep replaces secrets in every string, keys included', () => {
    expect(scrubDeep({ a: 'x token-1234 y', ['token-1234']: [1, 'token-1234%'], n: null }, ['token-1234'])).toEqual({ a: 'x [redacted] y', '[redacted]': [1, '[redacted]%'], n: null });
  });
});
