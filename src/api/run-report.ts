import type { CredentialHealth, CredentialPool } from '../auth/credential-pool.js';
import { InputError } from '../errors.js';
import { repairJobs } from '../runs/enqueue-run.js';
import { validateRunName, type RunStatus } from '../runs/run-store.js';
import type { Connected } from './pullq-context.js';

/** A run's status as `pullq status --json` prints it: counts, pace, the queue's jobs, every credential's health. */
export interface RunReport extends RunStatus {
  /** IDs finished per second since the run was created. */
  ratePerSecond: number;
  /** Seconds left at that rate; null when complete or unknown. */
  etaSeconds: number | null;
  /** BullMQ batch jobs of the whole queue (all runs) by state. */
  queueJobs: Record<string, number>;
  credentials: CredentialHealth[];
}

/**
 * Reads a run's report (the newest run when `run` is not given); throws an
 * InputError naming the queue when there is no such run. A closed batch
 * whose job was never added (its producer was killed) gets it now, once per
 * run and `repaired` set.
 */
export async function readRunReport(c: Connected, queueName: string, pool: CredentialPool, run: string | undefined, repaired: Set<string>): Promise<RunReport> {
  const name = run !== undefined ? validateRunName(run) : (await c.store.listRuns(1))[0];
  if (name === undefined) throw new InputError(`no runs in queue ${queueName}`);
  const s = await c.store.status(name);
  if (!s) throw new InputError(`no run named ${name} in queue ${queueName}`);
  if (!s.done && s.aborted === null && !repaired.has(name)) {
    await repairJobs(c.queue, c.store, name);
    repaired.add(name);
  }
  const queueJobs = await c.queue.getJobCounts('active', 'waiting', 'delayed', 'failed');
  const credentials = await pool.health();
  const elapsed = (s.finishedAt ? Date.parse(s.finishedAt) : Date.now()) - Date.parse(s.createdAt ?? new Date().toISOString());
  const rate = elapsed > 0 ? (1000 * (s.succeeded + s.failed)) / elapsed : 0;
  const etaMs = !s.complete && rate > 0 ? (1000 * s.pending) / rate : null;
  return { ...s, ratePerSecond: Number(rate.toFixed(2)), etaSeconds: etaMs === null ? null : Math.round(etaMs / 1000), queueJobs, credentials };
}
