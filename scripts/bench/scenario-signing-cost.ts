import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { oauth1Credentials } from '../../src/auth/kinds/oauth1-credential.js';
import { createCredential } from '../../src/auth/kinds/static-credential.js';
import type { Credential, OutgoingRequest } from '../../src/auth/credential.js';
import { parseConfig } from '../../src/config.js';
import type { BenchContext } from './bench-context.js';
import { fmt } from './format.js';
import { quantile } from './quantile.js';
import type { ScenarioResult } from './scenario-result.js';
import { spawnChild } from './spawn-child.js';
import { startApiProcess, type ApiStats } from './start-api-process.js';

const CONCURRENCY = 32;
type Key = 'bearer' | 'oauth1';
const NAMES: Record<Key, string> = { bearer: 'bearer token (auth header)', oauth1: 'OAuth 1.0a HMAC-SHA256 (auth oauth1)' };

const AUTH: Record<Key, Record<string, unknown>> = {
  bearer: { type: 'header', tokens: ['bench-token-0123456789abcdef'] },
  oauth1: {
    type: 'oauth1', signatureMethod: 'HMAC-SHA256', realm: '1234567',
    credentials: [{ consumerKey: 'bench-consumer-key-0123456789', consumerSecret: 'bench consumer secret', token: 'bench-token-key-0123456789', tokenSecret: 'bench token secret' }],
  },
};

function apiRate(stats: ApiStats, n: number): number {
  let first = Infinity;
  let last = -Infinity;
  for (const t of stats.log.t) {
    if (t < first) first = t;
    if (t > last) last = t;
  }
  return last > first ? ((n - 1) * 1000) / (last - first) : Number.NaN;
}

/** µs per apply of a credential on a typical request (a query, a few headers), median of rounds. */
function applyMicros(credential: Credential, calls: number): number {
  const request: OutgoingRequest = {
    method: 'GET',
    url: 'https://api.example.com/v1/items/it%27s%20(x)?q=it%27s%20(x)&view=full&page=3',
    headers: { accept: 'application/json', 'user-agent': 'pullq' },
  };
  const rounds: number[] = [];
  for (let r = 0; r < 5; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < calls; i++) credential.apply(request);
    rounds.push(Number(process.hrtime.bigint() - t0) / 1000 / calls);
  }
  return quantile(rounds, 0.5);
}

/** Scenario 12: what signing every request costs on the request path, OAuth 1.0a against a bearer token, A/B in one run. */
export async function scenarioSigningCost(ctx: BenchContext): Promise<ScenarioResult> {
  const started = Date.now();
  const n = ctx.quick ? 600 : 4000;
  // Short runs, many rounds, the order alternated: on a shared machine the load drifts within a minute.
  const rounds = ctx.quick ? 2 : 6;
  const rates: { key: Key; round: number; apiRate: number; requests: number }[] = [];

  const measure = async (key: Key, round: number) => {
    // The same API for both (auth none: it checks neither), so the difference is pullq's side of the request.
    const api = await startApiProcess({ api: { auth: { type: 'none' } } });
    const tmp = ctx.tempDir(`s12-${key}`);
    const queue = ctx.newQueue(`s12-${key}`);
    try {
      const cfg = { redis: { url: ctx.redisUrl }, queue, request: { url: `${api.url}/items/{id}?q={id}` }, auth: AUTH[key], worker: { concurrency: CONCURRENCY }, sink: { type: 'file', dir: './out' } };
      writeFileSync(path.join(tmp.dir, 'pullq.config.json'), JSON.stringify(cfg));
      // The same IDs for both, some that need encoding.
      writeFileSync(path.join(tmp.dir, 'ids.txt'), `${Array.from({ length: n }, (_, i) => (i % 10 === 0 ? `it's (${i})` : `id-${i}`)).join('\n')}\n`);
      const env = { REDIS_URL: ctx.redisUrl, PULLQ_LOG_LEVEL: 'warn' };
      const enq = await spawnChild(process.execPath, [ctx.cli, 'enqueue', 'ids.txt', '--run', 'bench', '--config', 'pullq.config.json'], { label: 'enqueue', cwd: tmp.dir, env, timeoutMs: 120_000 }).done;
      if (enq.code !== 0) throw new Error(`pullq enqueue failed: ${enq.stderrTail.join(' | ')}`);
      const result = await spawnChild(process.execPath, [ctx.cli, 'pull', 'ids.txt', '--run', 'bench', '--config', 'pullq.config.json'], { label: key, cwd: tmp.dir, env, timeoutMs: 180_000 }).done;
      if (result.code !== 0) throw new Error(`${key} exited ${result.code ?? result.signal}: ${result.stderrTail.join(' | ')}`);
      const stats = await api.stats();
      return { key, round, apiRate: apiRate(stats, n), requests: stats.log.t.length };
    } finally {
      await api.close();
      await ctx.cleanQueue(queue);
      tmp.remove();
    }
  };

  for (let round = 0; round < rounds; round++) {
    // Alternate which goes first.
    for (const key of (round % 2 === 0 ? ['bearer', 'oauth1'] : ['oauth1', 'bearer']) as Key[]) {
      const m = await measure(key, round);
      ctx.log(`  round ${round + 1}, ${key}: ${fmt.num(m.apiRate)} IDs/s between first and last request`);
      rates.push(m);
    }
  }

  // Signing alone, in this process: the credential's apply, as the request path calls it.
  const key = Buffer.alloc(32, 1);
  const calls = ctx.quick ? 20_000 : 100_000;
  const config = (k: Key) => parseConfig({ request: { url: 'https://api.example.com/v1/items/{id}' }, auth: AUTH[k] }, { env: { vars: {} } });
  const oauth1Cfg = config('oauth1');
  const oauth1 = oauth1Credentials(oauth1Cfg.auth as Extract<typeof oauth1Cfg.auth, { type: 'oauth1' }>, oauth1Cfg.credentials, key)[0]!;
  const bearer = createCredential(config('bearer').credentials[0]!, { type: 'header', header: 'Authorization', scheme: 'Bearer' }, key);
  const applyUs = { bearer: applyMicros(bearer, calls), oauth1: applyMicros(oauth1, calls) };
  ctx.log(`  apply alone: bearer ${applyUs.bearer.toFixed(2)} µs, OAuth 1.0a HMAC-SHA256 ${applyUs.oauth1.toFixed(2)} µs per request`);

  const med = (k: Key) => quantile(rates.filter((m) => m.key === k).map((m) => m.apiRate), 0.5);
  const ratio = med('oauth1') / med('bearer');
  // Paired by round (the two ran back to back): less exposed to the machine's drift than the ratio of medians.
  const perRound = Array.from({ length: rounds }, (_, r) => rates.find((m) => m.key === 'oauth1' && m.round === r)!.apiRate / rates.find((m) => m.key === 'bearer' && m.round === r)!.apiRate);
  const pairedRatio = quantile(perRound, 0.5);
  const notes: string[] = [];
  const odd = rates.filter((m) => m.requests !== n);
  if (odd.length) notes.push(`Request counts other than ${n}: ${odd.map((m) => `${m.key} round ${m.round + 1}: ${m.requests}`).join(', ')}.`);
  notes.push('IDs/s is measured at the API from its first to its last request. The API checks neither credential: what differs is pullq signing each request (a nonce, a timestamp, the base string, an HMAC-SHA256) instead of setting a fixed header.');
  return {
    id: 'signing-cost',
    title: `12. Request-path cost of signing (${fmt.num(n)} IDs, concurrency ${CONCURRENCY})`,
    setup:
      `The example API in its own process (no auth check, no latency, no budget). The same IDs pulled with \`pullq enqueue\` (untimed) then \`pullq pull\`, once with a bearer token, once with OAuth 1.0a HMAC-SHA256 (realm, token), ` +
      `${rounds} rounds, the order alternated, medians. Then the credential's apply alone, ${fmt.num(calls)} calls × 5 rounds in one process (median).`,
    targets: [
      { figure: 'IDs/s with OAuth 1.0a ÷ bearer, median of the rounds (each pair back to back)', measured: fmt.pct(pairedRatio), comparison: `rounds: ${perRound.map((x) => fmt.pct(x)).join(', ')}`, target: '≥ 95% of the bearer token', met: pairedRatio >= 0.95 },
      { figure: 'IDs/s (medians)', measured: `OAuth 1.0a ${fmt.num(med('oauth1'))} IDs/s = ${fmt.pct(ratio)}`, comparison: `bearer ${fmt.num(med('bearer'))} IDs/s`, target: '–', met: null },
      { figure: 'µs per apply (signing alone)', measured: `${applyUs.oauth1.toFixed(2)} µs`, comparison: `bearer ${applyUs.bearer.toFixed(2)} µs`, target: '–', met: null },
    ],
    tables: [
      {
        caption: 'Every measurement (IDs/s at the API)',
        columns: ['credential', ...Array.from({ length: rounds }, (_, r) => `round ${r + 1}`), 'median'],
        rows: (Object.keys(NAMES) as Key[]).map((k) => [NAMES[k], ...Array.from({ length: rounds }, (_, r) => fmt.num(rates.find((m) => m.key === k && m.round === r)!.apiRate)), fmt.num(med(k))]),
      },
    ],
    notes,
    raw: { n, concurrency: CONCURRENCY, rounds, rates, medians: { bearer: med('bearer'), oauth1: med('oauth1') }, ratio, perRound, pairedRatio, applyUs, applyCalls: calls },
    durationMs: Date.now() - started,
  };
}
