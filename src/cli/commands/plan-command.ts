import { CredentialPool } from '../../auth/credential-pool.js';
import { loadConfig, runtimeEnv } from '../../config.js';
import { idsFormatOf } from '../../ids/id-key.js';
import { compileIdUrl } from '../../ids/id-url.js';
import { requestTemplateOf } from '../../ids/request-template.js';
import { checkIdsSource, readIds } from '../../ids/read-ids.js';
import { createHttpClient } from '../../jobs/http-client.js';
import { createLogger } from '../../logger.js';
import { connectRedis } from '../../redis/connect-redis.js';
import { rowReader } from '../../runs/enqueue-run.js';
import type { GlobalFlags } from '../command-context.js';
import { formatDuration } from '../progress.js';

/** Request latency assumed when --latency-ms is not given (ms). */
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
  };
}

/**
 * `pullq plan <ids-file> [--latency-ms N] [--json]`: no requests; how long the
 * run takes at the configured (or already learned) budgets, and how many
 * replicas are useful.
 */
export async function planCommand(source: string, flags: GlobalFlags & { latencyMs?: number; json?: boolean }): Promise<number> {
  await checkIdsSource(source);
  const env = runtimeEnv();
  const config = loadConfig(flags.config, env);
  const logger = createLogger('warn', 'human');
  const urlFor = compileIdUrl(config.request.url);
  let ids = 0;
  let invalid = 0;
  // IDs files with columns: rows as enqueue reads them (the header line is no ID). With pagination, one request per ID is counted.
  const format = idsFormatOf(source);
  const rows = format === 'lines' ? undefined : await rowReader(source, format, requestTemplateOf(config));
  for await (const chunk of readIds(source, 10_000)) {
    if (rows) {
      const r = rows(chunk);
      ids += r.valid.length + r.invalid.length;
      invalid += r.invalid.length;
      continue;
    }
    ids += chunk.ids.length;
    chunk.ids.forEach((id, i) => {
      if (chunk.problems.has(i) || !urlFor(id).ok) invalid++;
    });
  }
  // Budgets learned by earlier runs live in Redis; without Redis, only configured ones count.
  let health: Awaited<ReturnType<CredentialPool['health']>> | undefined;
  try {
    const redis = await connectRedis(config.redis.url, { longLived: false, connectTimeoutMs: 2000, cluster: config.redis.cluster });
    health = await new CredentialPool({ redis, config, logger, http: createHttpClient(config) }).health();
    redis.disconnect();
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
  const plan = makePlan(ids, invalid, credentials, config.worker.concurrency, flags.latencyMs ?? DEFAULT_LATENCY_MS);
  if (flags.json) {
    process.stdout.write(`${JSON.stringify(plan)}\n`);
    return 0;
  }
  const lines = [
    `${plan.ids} IDs (${plan.invalid} cannot be requested; duplicates are fetched once)`,
    ...plan.credentials.map((c) => `  ${c.label}: ${c.budget}${c.perSecond !== null ? ` = ${c.perSecond.toFixed(2)} req/s` : ''}`),
  ];
  if (plan.budgetPerSecond === null) {
    lines.push(
      'some budgets are unknown (none configured, none learned yet): the run is paced by what the API announces',
      `one replica does up to ~${Math.round(plan.perReplica)} req/s (worker.concurrency ${config.worker.concurrency}, ~${plan.latencyMs} ms a request)`,
    );
  } else {
    lines.push(
      `budgets: ${plan.budgetPerSecond.toFixed(2)} req/s in all → about ${formatDuration((plan.seconds ?? 0) * 1000)} (retries not counted)`,
      `useful replicas: ${plan.usefulReplicas} (each does up to ~${Math.round(plan.perReplica)} req/s at worker.concurrency ${config.worker.concurrency} and ~${plan.latencyMs} ms a request; more would only wait for budget)`,
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}
