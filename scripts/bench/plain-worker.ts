import { createWriteStream } from 'node:fs';
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import Bottleneck from 'bottleneck';
import { Worker, type Job } from 'bullmq';
import { got } from 'got';
import { Redis } from 'ioredis';
import { SlidingWindowLimiter } from './sliding-window-limiter.js';

// A plain BullMQ + got worker, one job per ID, as a user would write it
// without pullq; the benchmarks' alternatives. argv[2] is PlainWorkerOptions
// as JSON. On a 429 it waits Retry-After (else 1 s) and tries again, with the
// token its limiter mode picks, at most MAX_TRIES times.

export type PlainMode =
  /** No limiter, no tokens: the overhead baseline. */
  | 'none'
  /** No limiter, tokens round-robin: all a user can do without knowing the budgets (besides honouring Retry-After). */
  | 'round-robin'
  /** BullMQ's own global limiter at the sum of the budgets, tokens round-robin. */
  | 'global-limiter'
  /** One in-memory sliding-window limiter per token at its full budget, in each process. */
  | 'local-full'
  /** The same at budget ÷ `split` (a static split over the replicas). */
  | 'local-split'
  /** Bottleneck on Redis (clustered), one limiter per token: reservoir refreshed to the budget every second. */
  | 'bottleneck-reservoir'
  /** Bottleneck on Redis (clustered), one limiter per token: minTime = 1000 / budget. */
  | 'bottleneck-mintime';

export interface PlainWorkerOptions {
  redisUrl: string;
  queue: string;
  /** Request URL with {id}. */
  url: string;
  tokens: { token: string; perSecond: number }[];
  mode: PlainMode;
  split?: number;
  concurrency: number;
  /** Exit once this many jobs completed (overhead runs). */
  exitAfter?: number;
  output: string;
  /** Bottleneck limiter id prefix (keys b_<prefix>-<n>_*). */
  bottleneckPrefix?: string;
}

const MAX_TRIES = 20;
const o = JSON.parse(process.argv[2] ?? '{}') as PlainWorkerOptions;
const out = createWriteStream(o.output, { flags: 'a' });
const client = got.extend({
  retry: { limit: 0 },
  throwHttpErrors: false,
  timeout: { request: 30_000 },
  agent: { http: new http.Agent({ keepAlive: true, maxSockets: o.concurrency, maxFreeSockets: o.concurrency }) },
});

/** Picks a token and waits until the mode's limiter lets it start. */
type Acquire = () => Promise<string | undefined>;
let acquire: Acquire = async () => undefined;
const cleanups: (() => Promise<unknown>)[] = [];

if (o.mode === 'global-limiter' || o.mode === 'round-robin') {
  let next = 0;
  acquire = async () => o.tokens[next++ % o.tokens.length]!.token;
} else if (o.mode === 'local-full' || o.mode === 'local-split') {
  const div = o.mode === 'local-split' ? (o.split ?? 1) : 1;
  const limiters = o.tokens.map((t) => ({ token: t.token, limiter: new SlidingWindowLimiter(Math.max(1, Math.floor(t.perSecond / div)), 1000) }));
  acquire = async () => {
    const now = Date.now();
    let best = limiters[0]!;
    for (const l of limiters) if (l.limiter.nextFree(now) < best.limiter.nextFree(now)) best = l;
    const at = best.limiter.reserve(now);
    if (at > Date.now()) await sleep(at - Date.now());
    return best.token;
  };
} else if (o.mode === 'bottleneck-reservoir' || o.mode === 'bottleneck-mintime') {
  const u = new URL(o.redisUrl);
  const connection = new Bottleneck.IORedisConnection({ Redis, clientOptions: { host: u.hostname, port: Number(u.port || 6379), db: Number(u.pathname.slice(1) || 0) } });
  cleanups.push(() => connection.disconnect());
  const limiters = o.tokens.map((t, i) => ({
    token: t.token,
    weight: t.perSecond,
    current: 0,
    limiter: new Bottleneck({
      id: `${o.bottleneckPrefix ?? o.queue}-${i}`,
      datastore: 'ioredis',
      connection,
      maxConcurrent: null,
      // The clustered default (5000 ms) would notice a 1 s reservoir refresh only every 5 s.
      heartbeatInterval: 250,
      ...(o.mode === 'bottleneck-reservoir'
        ? { reservoir: t.perSecond, reservoirRefreshAmount: t.perSecond, reservoirRefreshInterval: 1000 }
        : { minTime: 1000 / t.perSecond }),
    }),
  }));
  const total = limiters.reduce((n, l) => n + l.weight, 0);
  // Smooth weighted round-robin: each token gets requests in proportion to its budget.
  acquire = async () => {
    let best = limiters[0]!;
    for (const l of limiters) {
      l.current += l.weight;
      if (l.current > best.current) best = l;
    }
    best.current -= total;
    await best.limiter.schedule(async () => undefined);
    return best.token;
  };
}

let completed = 0;
let finishing = false;

async function processor(job: Job<{ id: string }>): Promise<void> {
  const id = job.data.id;
  for (let tries = 1; tries <= MAX_TRIES; tries++) {
    const token = await acquire();
    const res = await client(o.url.replace('{id}', encodeURIComponent(id)), { headers: token ? { authorization: `Bearer ${token}` } : {} });
    if (res.statusCode === 429) {
      const ra = Number(res.headers['retry-after']);
      await sleep(Number.isFinite(ra) && ra > 0 ? ra * 1000 : 1000);
      continue;
    }
    let data: unknown = res.body;
    try {
      data = JSON.parse(res.body);
    } catch {
      // keep the text
    }
    out.write(`${JSON.stringify({ id, status: res.statusCode, fetchedAt: new Date().toISOString(), data })}\n`);
    break;
  }
  completed++;
  if (o.exitAfter !== undefined && completed >= o.exitAfter && !finishing) {
    finishing = true;
    setImmediate(() => void finish(0));
  }
}

const connection = new Redis(o.redisUrl, { maxRetriesPerRequest: null });
const worker = new Worker<{ id: string }>(o.queue, processor, {
  connection,
  concurrency: o.concurrency,
  ...(o.mode === 'global-limiter' ? { limiter: { max: o.tokens.reduce((n, t) => n + t.perSecond, 0), duration: 1000 } } : {}),
});
worker.on('error', (err) => process.stderr.write(`plain-worker: ${err.message}\n`));

async function finish(code: number): Promise<void> {
  await worker.close(true).catch(() => undefined);
  for (const c of cleanups) await c().catch(() => undefined);
  connection.disconnect();
  await new Promise<void>((resolve) => out.end(resolve));
  process.exit(code);
}

// The fixed-time benchmarks stop it with SIGTERM: no hand-back needed, the queue is deleted after.
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
