import type { Queue } from 'bullmq';
import type { CredentialHealth, CredentialPool } from '../auth/credential-pool.js';
import { readThroughput } from '../auth/read-throughput.js';
import { THROUGHPUT_BUCKET_MS } from '../auth/throughput-recorder.js';
import type { RedisClient } from '../redis/connect-redis.js';
import type { RunStatus, RunStore } from '../runs/run-store.js';
import { runState, type RunState } from '../runs/run-state.js';
import { RunPaceTracker } from './run-pace.js';

/** Runs the page lists, newest first. */
export const DASHBOARD_RUNS = 20;
/** What the throughput chart covers. */
export const THROUGHPUT_SPAN_MS = 3_600_000;
/** Page views within this long of each other share one read of Redis. */
export const STATE_REUSE_MS = 1_000;


/** One run as the page shows it: RunStatus plus its state word, IDs/s and ETA. */
export interface DashboardRun extends RunStatus {
  state: RunState;
  idsPerSecond: number;
  etaSeconds: number | null;
}

/** GET /api/state: everything the page draws, read from Redis. Credentials appear by label only. */
export interface DashboardState {
  queue: string;
  /** When this was read (epoch ms, this server's clock): the chart's right edge. */
  now: number;
  runs: DashboardRun[];
  /** Batch jobs of the queue (all runs) by BullMQ state. */
  jobs: Record<string, number>;
  credentials: CredentialHealth[];
  throughput: {
    bucketMs: number;
    /** Series names: the credential labels, in pool order, then any credential that answered but is no longer configured (by id). */
    credentials: string[];
    /** Oldest first, every bucket of the last hour; accepted[i] / rejected[i] belong to credentials[i]. */
    points: { at: number; accepted: number[]; rejected: number[] }[];
  };
}

export interface StateSources {
  queueName: string;
  redis: RedisClient;
  store: RunStore;
  queue: Queue;
  pool: CredentialPool;
}

/**
 * Reads the fleet's state for the dashboard: the latest runs with their pace,
 * every credential's health and the last hour of throughput. Concurrent and
 * back-to-back page views (within STATE_REUSE_MS) share one read, so N open
 * tabs cost Redis what one does.
 */
export class DashboardStateReader {
  private readonly pace = new RunPaceTracker();
  private last: { at: number; state: Promise<DashboardState> } | undefined;

  constructor(private readonly sources: StateSources) {}

  read(): Promise<DashboardState> {
    const now = Date.now();
    if (this.last && now - this.last.at < STATE_REUSE_MS) return this.last.state;
    const state = this.readNow(now);
    this.last = { at: now, state };
    // A failed read is not reused: the next view asks Redis again.
    state.catch(() => {
      if (this.last?.state === state) this.last = undefined;
    });
    return state;
  }

  private async readNow(now: number): Promise<DashboardState> {
    const { store, queue, pool, redis, queueName } = this.sources;
    const names = await store.listRuns(DASHBOARD_RUNS);
    const [statuses, jobs, health, points] = await Promise.all([
      Promise.all(names.map((run) => store.status(run))),
      queue.getJobCounts('active', 'waiting', 'delayed', 'failed'),
      pool.health(),
      readThroughput(redis, queueName, THROUGHPUT_SPAN_MS, now),
    ]);
    const runs = statuses.filter((s): s is RunStatus => s !== null).map((s) => ({ ...s, state: runState(s), ...this.pace.pace(s, now) }));
    this.pace.keepOnly(new Set(runs.map((r) => r.run)));
    const labels = uniqueLabels(pool.credentials.map((c) => ({ id: c.id, label: c.label })));
    const credentials = health.map((h, i) => ({ ...h, label: labels.get(pool.credentials[i]!.id) ?? h.label }));
    return { queue: queueName, now, runs, jobs, credentials, throughput: throughputSeries(points, labels) };
  }
}

/** Credential id → the label people see; two credentials given the same name get their ids added to tell them apart. */
function uniqueLabels(creds: { id: string; label: string }[]): Map<string, string> {
  const count = new Map<string, number>();
  for (const c of creds) count.set(c.label, (count.get(c.label) ?? 0) + 1);
  return new Map(creds.map((c) => [c.id, count.get(c.label)! > 1 ? `${c.label} (${c.id})` : c.label]));
}

/** The chart's series: per bucket, accepted and rejected answers per credential label. */
function throughputSeries(points: Awaited<ReturnType<typeof readThroughput>>, labels: Map<string, string>): DashboardState['throughput'] {
  const ids = [...labels.keys()];
  for (const p of points) for (const id of Object.keys(p.byCredential)) if (!labels.has(id) && !ids.includes(id)) ids.push(id);
  return {
    bucketMs: THROUGHPUT_BUCKET_MS,
    credentials: ids.map((id) => labels.get(id) ?? id),
    points: points.map((p) => ({
      at: p.at,
      accepted: ids.map((id) => p.byCredential[id]?.accepted ?? 0),
      rejected: ids.map((id) => p.byCredential[id]?.rejected ?? 0),
    })),
  };
}
