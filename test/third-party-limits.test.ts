import { afterAll, describe, expect, it } from 'vitest';
import { startThirdPartyApi, type ThirdPartyMode, type ThirdPartyPolicy } from '../scripts/third-party-api.js';
import { pullInProcess } from './helpers/pull-in-process.js';
import { tempDir, testConfig, uniqueQueue } from './helpers/test-env.js';

// Issue #9: pullq against rate limiters we did not write (express-rate-limit,
// @fastify/rate-limit), keyed per token, every header mode they offer, no
// budget in pullq's config: each ID exactly once and few 429s. Utilization is
// measured in `npm run bench` (scenario "third-party limiters"), not here.

const tmp = tempDir('third-party');
afterAll(() => tmp.remove());

const TOKENS = ['tp-token-a', 'tp-token-b'];

async function pullAgainst(mode: ThirdPartyMode, policies: ThirdPartyPolicy[], ids: number) {
  const api = await startThirdPartyApi({ mode, policies, latencyMs: 2 });
  try {
    const queue = uniqueQueue(`tp-${mode}`);
    const config = testConfig({
      queue,
      request: { url: `${api.url}/items/{id}` },
      auth: { type: 'header', tokens: TOKENS },
      sink: { type: 'file', dir: tmp.dir },
      enqueue: { batchSize: 20 },
    });
    const list = Array.from({ length: ids }, (_, i) => `${mode}-${i}`);
    const out = await pullInProcess(config, list, { run: queue, workers: 2, timeoutMs: 60_000 });
    const rejected = api.log.filter((r) => r.status === 429).length;
    return { out, list, requests: api.log.length, rejected };
  } finally {
    await api.close();
  }
}

// Each case has its own limiter, queue and credentials' state: they run side by side (the waits are the limiters' windows).
describe.concurrent('third-party rate limiters, budgets learned from their headers', () => {
  const cases: [ThirdPartyMode, ThirdPartyPolicy, number][] = [
    ['erl-draft6', { limit: 20, windowMs: 1000 }, 120],
    ['erl-draft7', { limit: 20, windowMs: 2000 }, 120],
    ['erl-draft8', { limit: 20, windowMs: 1000 }, 120],
    ['erl-legacy', { limit: 20, windowMs: 2000 }, 120],
    ['fastify-x', { limit: 20, windowMs: 2000 }, 120],
    ['fastify-draft', { limit: 20, windowMs: 1000 }, 120],
    ['fastify-x', { limit: 30, windowMs: 10_000 }, 60],
  ];
  it.each(cases)('%s, %o, %i IDs: every ID once, at most 2 in 100 requests answered 429', async (mode, policy, ids) => {
    const r = await pullAgainst(mode, [policy], ids);
    expect(r.out.status.complete).toBe(true);
    expect(r.out.failed).toEqual([]);
    expect(r.out.results.map((l) => l.id).sort()).toEqual([...r.list].sort());
    expect(r.rejected).toBeLessThanOrEqual(Math.floor(r.requests * 0.02));
  });

  it('two policies at once (draft 8 lists: 5 per second and 40 per 10 s): both held, at most 3% 429s', async () => {
    const r = await pullAgainst('erl-draft8', [{ limit: 5, windowMs: 1000 }, { limit: 40, windowMs: 10_000 }], 100);
    expect(r.out.results).toHaveLength(100);
    expect(r.out.failed).toEqual([]);
    expect(r.rejected).toBeLessThanOrEqual(Math.floor(r.requests * 0.03));
  });
});
