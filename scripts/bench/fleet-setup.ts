import type { ApiProcessOptions } from './start-api-process.js';

const TOKENS = [
  { token: 'tok-80', perSecond: 80 },
  { token: 'tok-60', perSecond: 60 },
  { token: 'tok-40', perSecond: 40 },
  { token: 'tok-20', perSecond: 20 },
];

/**
 * The fleet of scenarios 1 and 2: 4 tokens with budgets 80/60/40/20 req/s
 * (sum 200) enforced by the example API in a 1 s sliding window, 4 worker
 * processes of concurrency 16 (pullq's default), 5 ms API latency.
 */
export const FLEET = {
  tokens: TOKENS,
  sum: TOKENS.reduce((n, t) => n + t.perSecond, 0),
  replicas: 4,
  concurrency: 16,
  latencyMs: 5,
  /** The API: every token's budget enforced; over budget = 429 with Retry-After. */
  api(options: { latencyMs?: number; rateLimitHeaders?: 'ietf' | 'github' } = {}): ApiProcessOptions {
    return {
      api: {
        auth: { type: 'header', tokens: TOKENS.map((t) => t.token) },
        budgets: Object.fromEntries(TOKENS.map((t) => [t.token, { requests: t.perSecond, perSeconds: 1 }])),
        latencyMs: options.latencyMs ?? 5,
        rateLimitHeaders: options.rateLimitHeaders ?? 'none',
      },
    };
  },
  /** pullq's config as a user writes it: each token with its documented budget (or none, to learn it), defaults otherwise. */
  pullqConfig(url: string, withBudgets: boolean): Record<string, unknown> {
    return {
      request: { url: `${url}/items/{id}` },
      auth: { type: 'header', tokens: TOKENS.map((t) => (withBudgets ? { token: t.token, name: t.token, budget: { requests: t.perSecond, perSeconds: 1 } } : { token: t.token, name: t.token })) },
    };
  },
};
