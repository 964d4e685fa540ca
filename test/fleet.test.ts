import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { startExampleApi, type ExampleApi, type ExampleApiOptions } from '../scripts/example-api-server.js';
import { RunStore } from '../src/runs/run-store.js';
import { runCli, spawnCli } from './helpers/cli.js';
import { expectEveryIdOnce, fleetFixture } from './helpers/fleet-fixture.js';
import { newRedis, onCluster } from './helpers/test-env.js';
import { Cluster, type Redis } from 'ioredis';

// Whole fleets: worker processes + pull against an API that enforces each credential's budget.
// The cluster project runs this file again on a 3-master cluster: there, the tests marked skipIf(onCluster()) are
// left out, since they go through the same scripts and keys as one that runs there (budgets shared by the fleet:
// the first test; quarantine: 'every credential rejected'; the token cache: the client_secret_basic case).

let api: ExampleApi | undefined;
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  await api?.close();
  api = undefined;
  for (const c of cleanups.splice(0)) await c();
});

async function fleetSetup(apiOptions: ExampleApiOptions, config: (url: string) => Record<string, unknown>, ids: string[]) {
  api = await startExampleApi(apiOptions);
  const f = fleetFixture({ label: 'fleet', config: config(api.url), ids, cleanups });
  return { ...f, store: new RunStore(f.redis, f.queue) };
}

/** Accepted requests per second over the busy middle of the run, as a share of `budgetPerSec`. */
function utilization(a: ExampleApi, budgetPerSec: number): number {
  const times = [...a.acceptedAt.values()].flat().sort((x, y) => x - y);
  const from = times[Math.floor(times.length * 0.1)]!;
  const to = times[Math.floor(times.length * 0.9)]!;
  return (times.length * 0.8) / ((to - from) / 1000) / budgetPerSec;
}

const ids = (n: number, p = 'id') => Array.from({ length: n }, (_, i) => `${p}-${i}`);

describe('a fleet of replicas shares each credential budget', () => {
  it('3 worker processes + pull, 3 tokens with budgets 30/20/10 per s: zero 429s, every ID once', async () => {
    const tokens = ['fleet-a', 'fleet-b', 'fleet-c'];
    const all = ids(300);
    const f = await fleetSetup(
      { auth: { type: 'header', tokens }, budgets: { 'fleet-a': { requests: 30, perSeconds: 1 }, 'fleet-b': { requests: 20, perSeconds: 1 }, 'fleet-c': { requests: 10, perSeconds: 1 } }, latencyMs: 5 },
      (url) => ({
        request: { url: `${url}/items/{id}` },
        auth: { type: 'header', tokens: [{ token: 'fleet-a', budget: { requests: 30, perSeconds: 1 } }, { token: 'fleet-b', name: 'b', budget: { requests: 20, perSeconds: 1 } }, { token: 'fleet-c', budget: { requests: 10, perSeconds: 1 } }] },
        worker: { concurrency: 8 },
        enqueue: { batchSize: 25 },
      }),
      all,
    );
    f.workers(3);
    const r = await runCli(['pull', 'ids.txt', '--run', 'fleet'], { cwd: f.dir, env: f.env });
    expect(r.code).toBe(0);
    expect([...api!.rejectedByCredential.values()].reduce((a, b) => a + b, 0)).toBe(0);
    const out = expectEveryIdOnce(f.dir, 'fleet', all);
    expect(out.failed).toEqual([]);
    // Each token's share follows its budget.
    expect(api!.requestsByCredential.get('fleet-a')!).toBeGreaterThan(api!.requestsByCredential.get('fleet-c')!);
    console.log(`fleet utilization: ${(100 * utilization(api!, 60)).toFixed(1)}% of 60 req/s`);
    const status = await runCli(['status', '--run', 'fleet', '--json'], { cwd: f.dir, env: f.env });
    const s = JSON.parse(status.stdout) as { credentials: { label: string; requests: number; state: string }[] };
    expect(s.credentials.map((c) => c.label)).toContain('b');
    expect(s.credentials.reduce((n, c) => n + c.requests, 0)).toBeGreaterThanOrEqual(300);
  });

  it.skipIf(onCluster())('no budget configured, GitHub-style 403 with remaining 0: learned and paced; no ID fails as forbidden', async () => {
    const all = ids(160);
    const f = await fleetSetup(
      { auth: { type: 'header', scheme: 'token', tokens: ['gh-1', 'gh-2'] }, budgets: { '*': { requests: 20, perSeconds: 1 } }, rateLimitHeaders: 'github', overBudgetStatus: 403, retryAfter: false, latencyMs: 5 },
      (url) => ({ request: { url: `${url}/items/{id}` }, auth: { type: 'header', scheme: 'token', tokens: ['gh-1', 'gh-2'] }, worker: { concurrency: 8 }, enqueue: { batchSize: 20 } }),
      all,
    );
    f.workers(1);
    const r = await runCli(['pull', 'ids.txt', '--run', 'gh'], { cwd: f.dir, env: f.env });
    expect(r.code).toBe(0);
    const out = expectEveryIdOnce(f.dir, 'gh', all);
    expect(out.failed).toEqual([]);
    const rejected = [...api!.rejectedByCredential.values()].reduce((a, b) => a + b, 0);
    console.log(`learned budget (403 style): ${rejected} rejected of ${api!.totalRequests()} requests`);
    expect(rejected / api!.totalRequests()).toBeLessThan(0.15);
  });

  it.skipIf(onCluster())('IETF RateLimit headers, no budget configured: learned and paced', async () => {
    const all = ids(160);
    const f = await fleetSetup(
      { auth: { type: 'header', header: 'X-API-Key', scheme: '', tokens: ['k1', 'k2'] }, budgets: { '*': { requests: 20, perSeconds: 1 } }, rateLimitHeaders: 'ietf', latencyMs: 5 },
      (url) => ({ request: { url: `${url}/items/{id}` }, auth: { type: 'header', header: 'X-API-Key', scheme: '', tokens: ['k1', 'k2'] }, worker: { concurrency: 8 }, enqueue: { batchSize: 20 } }),
      all,
    );
    const r = await runCli(['pull', 'ids.txt', '--run', 'ietf'], { cwd: f.dir, env: f.env });
    expect(r.code).toBe(0);
    expect(expectEveryIdOnce(f.dir, 'ietf', all).failed).toEqual([]);
    const rejected = [...api!.rejectedByCredential.values()].reduce((a, b) => a + b, 0);
    console.log(`learned budget (IETF): ${rejected} rejected of ${api!.totalRequests()} requests`);
    expect(rejected / api!.totalRequests()).toBeLessThan(0.15);
  });
});

describe('401s', () => {
  it.skipIf(onCluster())('a token revoked mid-run is abandoned within a handful of requests; every ID still succeeds', async () => {
    const tokens = ['rv-a', 'rv-b', 'rv-c'];
    const all = ids(240);
    const f = await fleetSetup(
      { auth: { type: 'header', tokens }, budgets: { '*': { requests: 25, perSeconds: 1 } }, latencyMs: 5 },
      (url) => ({ request: { url: `${url}/items/{id}` }, auth: { type: 'header', tokens: tokens.map((t) => ({ token: t, name: t })) }, budget: { requests: 25, perSeconds: 1 }, worker: { concurrency: 8 }, enqueue: { batchSize: 20 } }),
      all,
    );
    const pull = spawnCli(['pull', 'ids.txt', '--run', 'revoke'], { cwd: f.dir, env: f.env });
    for (;;) {
      const s = await f.store.status('revoke');
      if (s && s.succeeded >= 60) break;
      await sleep(20);
    }
    api!.revoke('rv-b');
    const before = api!.requestsByCredential.get('rv-b') ?? 0;
    const r = await pull.done;
    expect(r.code).toBe(0);
    const after = (api!.requestsByCredential.get('rv-b') ?? 0) - before;
    console.log(`revoked token: ${after} requests after revocation`);
    expect(after).toBeLessThanOrEqual(10);
    expect(expectEveryIdOnce(f.dir, 'revoke', all).failed).toEqual([]);
    expect(r.stderr).toContain('credential rv-b quarantined (unauthorized)');
  });

  it('every credential rejected: pull stops with exit 2 and one clear line; nothing is recorded as failed', async () => {
    const f = await fleetSetup(
      { auth: { type: 'header', tokens: ['good'] } },
      // Concurrency 4: the requests sent before both are quarantined are those in flight (up to 4, then their retries
      // with the other credential); with the default 16 a busy machine let 25 through, 30 IDs being all there are.
      (url) => ({ request: { url: `${url}/items/{id}` }, auth: { type: 'header', tokens: ['bad-1', 'bad-2'] }, worker: { concurrency: 4 } }),
      ids(30),
    );
    const r = await runCli(['pull', 'ids.txt', '--run', 'allbad'], { cwd: f.dir, env: f.env });
    expect(r.code).toBe(2);
    // A worker replica started now stops too, with the same line.
    const w = await runCli(['worker'], { cwd: f.dir, env: f.env });
    expect(w.code).toBe(2);
    expect(w.stderr).toMatch(/pullq: every credential is quarantined \(2 of 2\)/);
    expect(r.stderr).toMatch(/pullq: every credential is quarantined \(2 of 2\).*run allbad is not complete/);
    expect(r.stderr).not.toContain('bad-1');
    const s = await f.store.status('allbad');
    expect(s).toMatchObject({ failed: 0, complete: false });
    expect(api!.totalRequests()).toBeLessThan(20);
  });
});

describe('OAuth2 client credentials', () => {
  it.each(onCluster() ? ([['client_secret_basic', false]] as const) : ([['client_secret_basic', false], ['client_secret_post', true]] as const))('tokens that live 2 s, %s (JWT exp: %s): about one refresh per client per lifetime, for the whole fleet', async (authMethod, jwt) => {
    const all = ids(200);
    const f = await fleetSetup(
      { auth: { type: 'oauth', clients: { 'client-1': 'secret one', 'client-2': 'secret:two' }, tokenTtlS: 2, jwt }, budgets: { '*': { requests: 40, perSeconds: 1 } }, latencyMs: 5 },
      (url) => ({
        request: { url: `${url}/items/{id}` },
        auth: { type: 'oauth2', tokenUrl: `${url}/oauth/token`, authMethod, scope: 'items:read', clients: [{ clientId: 'client-1', clientSecret: 'secret one' }, { clientId: 'client-2', clientSecret: 'secret:two' }] },
        budget: { requests: 40, perSeconds: 1 },
        worker: { concurrency: 8 },
        enqueue: { batchSize: 20 },
      }),
      all,
    );
    f.workers(2);
    const started = Date.now();
    const r = await runCli(['pull', 'ids.txt', '--run', 'oauth'], { cwd: f.dir, env: f.env });
    const seconds = (Date.now() - started) / 1000;
    expect(r.code).toBe(0);
    expect(expectEveryIdOnce(f.dir, 'oauth', all).failed).toEqual([]);
    const calls = [...api!.tokenRequests.values()];
    console.log(`oauth2 ${authMethod}: ${JSON.stringify(Object.fromEntries(api!.tokenRequests))} token calls in ${seconds.toFixed(1)} s, ${api!.unauthorizedAnswers()} 401s`);
    // Refreshed at 80% of 2 s: about seconds / 1.6 + 1 per client, whatever the number of replicas.
    for (const n of calls) expect(n).toBeLessThanOrEqual(Math.ceil(seconds / 1.6) + 2);
    expect(calls.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(2);
    expect(api!.unauthorizedAnswers()).toBeLessThanOrEqual(2);
    // The shared token cache is sealed: no access token, no client secret in Redis.
    const redis = newRedis();
    const dump: string[] = [];
    // Every master in the cluster project: KEYS answers for one node only.
    const client = redis as unknown as Redis | Cluster;
    await client.ping();
    for (const node of client instanceof Cluster ? client.nodes('master') : [client]) {
      for (const key of await node.keys('pullq:*')) {
        const type = await node.type(key);
        dump.push(key, type === 'string' ? ((await node.get(key)) ?? '') : type === 'hash' ? JSON.stringify(await node.hgetall(key)) : '');
      }
    }
    expect(dump.length).toBeGreaterThan(0);
    redis.disconnect();
    expect(dump.join('\n')).not.toMatch(/at-[0-9a-f]{24}|eyJhbGciOiJub25lIn0|secret one|secret:two/);
  });

  it('a client the token endpoint refuses is quarantined; the other carries the run', async () => {
    const all = ids(40);
    const f = await fleetSetup(
      { auth: { type: 'oauth', clients: { 'ok-client': 's1' }, tokenTtlS: 60 } },
      (url) => ({ request: { url: `${url}/items/{id}` }, auth: { type: 'oauth2', tokenUrl: `${url}/oauth/token`, clients: [{ clientId: 'ok-client', clientSecret: 's1' }, { clientId: 'bad-client', clientSecret: 'nope', name: 'bad' }] } }),
      all,
    );
    const r = await runCli(['pull', 'ids.txt', '--run', 'oauth-bad'], { cwd: f.dir, env: f.env });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('credential bad quarantined (token endpoint refused the client: invalid_client; check its client id and its secret or key); the others carry on');
    expect(r.stderr.match(/credential bad quarantined/g)).toHaveLength(1);
    expect(expectEveryIdOnce(f.dir, 'oauth-bad', all).failed).toEqual([]);
    expect(r.stderr + r.stdout).not.toContain('nope');
  });
});
