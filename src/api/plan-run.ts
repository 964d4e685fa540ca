import { CredentialPool, type CredentialHealth } from '../auth/credential-pool.js';
import type { Config } from '../config.js';
import { idsFormatOf } from '../ids/id-key.js';
import { compileIdUrl } from '../ids/id-url.js';
import { requestTemplateOf } from '../ids/request-template.js';
import { rowReader } from '../runs/enqueue-run.js';
import { idChunks, type IdsInput } from '../ids/ids-input.js';
import { createHttpClient } from '../jobs/http-client.js';
import type { Logger } from '../logger.js';
import { connectRedis, redisTargetOf } from '../redis/connect-redis.js';

/** Request latency assumed when none is given (ms). */
export const DEFAULT_LATENCY_MS = 200;

export interface Plan {
  ids: number;
  invalid: number;
  /** Sum of the credentials' budgets, requests per second; null when some budget is unknown. */
  budgetPerSecond: number | null;
  credentials: { label: string; budget: string; perSecond: number | null }[];
  /** Seconds the run takes at the budgets, with the useful replicas (retries not counted); null when unknown. */
  seconds: number | null;
  /** Requests per second one replica can do at worker.concurrency and the assumed latency. */
  perReplica: number;
  /** Replicas that the budgets can keep busy; more only wait. Null when budgets are unknown. */
  usefulReplicas: number | null;
  latencyMs: number;
  /** worker.concurrency the plan assumed. */
  concurrency: number;
}

/** Pure arithmetic of a plan, from counts and budgets. */
export function makePlan(ids: number, invalid: number, credentials: Plan['credentials'], concurrency: number, latencyMs: number): Plan {
  const known = credentials.every((c) => c.perSecond !== null);
  const budgetPerSecond = known ? credentials.reduce((n, c) => n + (c.perSecond ?? 0), 0) : null;
  const perReplica = (concurrency * 1000) / latencyMs;
  const requests = ids - invalid;
  return {
    ids,
    invalid,
    budgetPerSecond,
    credentials,
    seconds: budgetPerSecond ? requests / budgetPerSecond : null,
    perReplica,
    usefulReplicas: budgetPerSecond ? Math.max(1, Math.ceil(budgetPerSecond / perReplica)) : null,
    latencyMs,
    concurrency,
  };
}

/**
 * No requests: how long pulling `ids` takes at the configured (or already
 * learned) budgets, and how many replicas are useful. Reads Redis for
 * learned budgets when it answers within 2 s; works without it.
 */
export async function planRun(config: Config, logger: Logger, ids: IdsInput, latencyMs = DEFAULT_LATENCY_MS): Promise<Plan> {
  const urlFor = compileIdUrl(config.request.url);
  let count = 0;
  let invalid = 0;
  // IDs files with columns: rows as enqueue reads them (the header line is no ID). With pagination, one request per ID is counted.
  const format = typeof ids === 'string' ? idsFormatOf(ids) : 'lines';
  const rows = format === 'lines' ? undefined : await rowReader(ids as string, format, requestTemplateOf(config));
  for await (const chunk of idChunks(ids, 10_000)) {
    if (rows) {
      const r = rows(chunk);
      count += r.valid.length + r.invalid.length;
      invalid += r.invalid.length;
      continue;
    }
    count += chunk.ids.length;
    chunk.ids.forEach((id, i) => {
      if (chunk.problems.has(i) || !urlFor(id).ok) invalid++;
    });
  }
  // Budgets learned by earlier runs live in Redis; without Redis, only configured ones count.
  let health: CredentialHealth[] | undefined;
  try {
    const redis = await connectRedis(config.redis.url, { longLived: false, connectTimeoutMs: 2000, ...redisTargetOf(config.redis) });
    try {
      health = await (await CredentialPool.open({ redis, config, logger, http: createHttpClient(config) })).health();
    } finally {
      redis.disconnect();
    }
  } catch {
    health = undefined;
  }
  const pool = health ?? [];
  const credentials = (config.credentials.length > 0 ? config.credentials : [{ name: 'anonymous', budget: undefined }]).map((c, i) => {
    const given = c.budget ?? config.budget;
    const b = given?.requests !== undefined && given.perSeconds !== undefined ? { requests: given.requests, perSeconds: given.perSeconds } : undefined;
    const learned = pool[i]?.budget ?? '';
    const m = /^(\d+)\/([\d.]+)s/.exec(learned);
    const perSecond = b ? b.requests / b.perSeconds : m ? Number(m[1]) / Number(m[2]) : null;
    return { label: pool[i]?.label ?? c.name ?? `credential ${i + 1}`, budget: b ? `${b.requests}/${b.perSeconds}s` : learned || 'unknown', perSecond };
  });
  return makePlan(count, invalid, credentials, config.worker.concurrency, latencyMs);
}
