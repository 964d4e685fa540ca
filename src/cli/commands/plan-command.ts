import { checkIdsSource } from '../../ids/read-ids.js';
import { openPullq, type GlobalFlags } from '../command-context.js';
import { formatDuration } from '../progress.js';


/**
 * `pullq plan <ids-file> [--latency-ms N] [--json]`: no requests; how long the
 * run takes at the configured (or already learned) budgets, and how many
 * replicas are useful.
 */
export async function planCommand(source: string, flags: GlobalFlags & { latencyMs?: number; json?: boolean }): Promise<number> {
  await checkIdsSource(source);
  const { pullq } = openPullq(flags, { connection: 'brief', defaultLogLevel: 'warn', logFormat: 'human' });
  try {
    const plan = await pullq.plan(source, { latencyMs: flags.latencyMs });
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
        `one replica does up to ~${Math.round(plan.perReplica)} req/s (worker.concurrency ${plan.concurrency}, ~${plan.latencyMs} ms a request)`,
      );
    } else {
      lines.push(
        `budgets: ${plan.budgetPerSecond.toFixed(2)} req/s in all → about ${formatDuration((plan.seconds ?? 0) * 1000)} (retries not counted)`,
        `useful replicas: ${plan.usefulReplicas} (each does up to ~${Math.round(plan.perReplica)} req/s at worker.concurrency ${plan.concurrency} and ~${plan.latencyMs} ms a request; more would only wait for budget)`,
      );
    }
    process.stdout.write(`${lines.join('\n')}\n`);
    return 0;
  } finally {
    await pullq.close();
  }
}
