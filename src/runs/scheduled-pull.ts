import type { Queue } from 'bullmq';
import { InputError } from '../errors.js';
import type { IdUrl } from '../ids/id-url.js';
import type { RequestTemplate } from '../ids/request-template.js';
import { utcStamp } from './run-name.js';
import type { BatchJobData } from './batch-job-data.js';
import { enqueueRun, type EnqueueResult } from './enqueue-run.js';
import type { RunStore } from './run-store.js';

/** BullMQ job name of a schedule's tick (its data: ScheduledPullData). */
export const SCHEDULED_PULL = 'scheduled-pull';

/** Data of a tick: which schedule, and the IDs file it enqueues (an absolute path every worker can read). */
export interface ScheduledPullData {
  schedule: string;
  source: string;
}

/** The longest schedule name: its ticks' run names (`<name>-<UTC time>`, 17 more characters) must stay valid run names (at most 100). */
export const MAX_SCHEDULE_NAME = 100 - `-${utcStamp(0)}`.length;

/** Run name of a tick: the schedule's name and the tick's UTC time, the same on every retry of that tick. */
export function tickRunName(schedule: string, tickMs: number): string {
  return `${schedule}-${utcStamp(tickMs)}`;
}

/** The tick time of a scheduler job: BullMQ names them `repeat:<scheduler>:<millis>`. */
export function tickTime(jobId: string | undefined, fallbackMs: number): number {
  const m = /:(\d{10,})$/.exec(jobId ?? '');
  return m ? Number(m[1]) : fallbackMs;
}

/**
 * One tick of a schedule: enqueues the IDs file as a new run. A retried tick
 * resumes the same run; one that already enqueued everything does nothing.
 */
export async function runScheduledPull(options: {
  store: RunStore;
  queue: Queue<BatchJobData>;
  data: ScheduledPullData;
  tickMs: number;
  batchSize: number;
  urlFor: (id: string) => IdUrl;
  template?: RequestTemplate;
}): Promise<EnqueueResult | null> {
  const run = tickRunName(options.data.schedule, options.tickMs);
  try {
    return await enqueueRun({ store: options.store, queue: options.queue, run, source: options.data.source, batchSize: options.batchSize, urlFor: options.urlFor, template: options.template });
  } catch (err) {
    if (err instanceof InputError && /already exists and is fully enqueued/.test(err.message)) return null;
    throw err;
  }
}
