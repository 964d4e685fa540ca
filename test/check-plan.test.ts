import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startExampleApi, type ExampleApi } from '../scripts/example-api-server.js';
import { makePlan } from '../src/api/plan-run.js';
import { runCli } from './helpers/cli.js';
import { redisUrl, tearDown, tempDir, uniqueQueue } from './helpers/test-env.js';

const tmp = tempDir('check');
const queue = uniqueQueue('check');
let api: ExampleApi;
beforeAll(async () => {
  api = await startExampleApi({ auth: { type: 'header', tokens: ['ok-token', 'limited-token', 'revoked-token'] }, revoked: ['revoked-token'], budgets: { 'limited-token': { requests: 1, perSeconds: 60 } }, rateLimitHeaders: 'github' });
  writeFileSync(path.join(tmp.dir, 'pullq.config.json'), JSON.stringify({
    queue,
    request: { url: `${api.url}/items/{id}` },
    auth: { type: 'header', tokens: [{ token: 'ok-token', name: 'ok' }, { token: 'limited-token', name: 'limited' }, { token: 'revoked-token', name: 'revoked' }, { token: 'unknown-token', name: 'unknown' }] },
    budget: { requests: 10, perSeconds: 1 },
    worker: { concurrency: 20 },
  }));
  writeFileSync(path.join(tmp.dir, 'ids.txt'), '1\n2\n3\n.\n# c\n4\n');
});
afterAll(() => tearDown({ api, queue, tmp }));
const env = () => ({ REDIS_URL: redisUrl() });

describe('pullq check', () => {
  it('probes each credential once and says which are valid, rejected or exhausted; exit 2 when any is not valid', async () => {
    api.requestsByCredential.clear();
    // Use up the limited token's one request a minute first.
    await fetch(`${api.url}/items/x`, { headers: { authorization: 'Bearer limited-token' } });
    const r = await runCli(['check', '--json'], { cwd: tmp.dir, env: env() });
    expect(r.code).toBe(2);
    const out = JSON.parse(r.stdout) as { credentials: { credential: string; verdict: string; status: number | null }[] };
    expect(Object.fromEntries(out.credentials.map((c) => [c.credential, [c.verdict, c.status]]))).toEqual({
      ok: ['valid', 200],
      limited: ['exhausted', 429],
      revoked: ['rejected', 401],
      unknown: ['rejected', 401],
    });
    expect(api.requestsByCredential.get('ok-token')).toBe(1);
    expect(r.stdout + r.stderr).not.toMatch(/ok-token|limited-token|revoked-token|unknown-token/);
  });
});

describe('pullq plan', () => {
  it('makePlan: time at the summed budgets and the replicas that can keep them busy', () => {
    const p = makePlan(10_000, 100, [{ label: 'a', budget: '80/1s', perSecond: 80 }, { label: 'b', budget: '20/1s', perSecond: 20 }], 16, 200);
    expect(p).toMatchObject({ budgetPerSecond: 100, seconds: 99, perReplica: 80, usefulReplicas: 2 });
    expect(makePlan(10, 0, [{ label: 'a', budget: 'unknown', perSecond: null }], 16, 200)).toMatchObject({ budgetPerSecond: null, seconds: null, usefulReplicas: null });
  });

  it('reads the IDs file and the config, sends no request', async () => {
    const before = api.totalRequests();
    const r = await runCli(['plan', 'ids.txt', '--json', '--latency-ms', '100'], { cwd: tmp.dir, env: env() });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ ids: 5, invalid: 1, budgetPerSecond: 40, seconds: 0.1, perReplica: 200, usefulReplicas: 1 });
    expect(api.totalRequests()).toBe(before);
    const human = await runCli(['plan', 'ids.txt'], { cwd: tmp.dir, env: env() });
    expect(human.stdout).toContain('budgets: 40.00 req/s in all');
  });
});
