import path from 'node:path';
import { InputError } from '../errors.js';
import { checkIdsSource } from '../ids/read-ids.js';
import type { BatchJobData } from '../runs/batch-job-data.js';
import { runLabel } from '../runs/run-name.js';
import { validateRunName } from '../runs/run-store.js';
import { MAX_SCHEDULE_NAME, SCHEDULED_PULL, type ScheduledPullData } from '../runs/scheduled-pull.js';
import type { Connected } from './pullq-context.js';

/** A cron-triggered pull as the queue keeps it. */
export interface ScheduleInfo {
  name: string;
  /** The cron expression (or "every N ms"). */
  cron: string;
  tz: string | null;
  /** The next tick, ISO 8601; null when none is due. */
  next: string | null;
  /** The IDs file each tick enqueues (an absolute path every worker must be able to read). */
  source: string;
}

export interface ScheduleOptions {
  /** Cron expression, e.g. "0 3 * * *". */
  cron: string;
  /** Default: the IDs file's base name. Each tick's run is `<name>-<UTC time>`. */
  name?: string;
  /** IANA time zone of the cron expression (default UTC). */
  tz?: string;
}

/** Checks a schedule's input before Redis is touched; returns its name. */
export async function checkSchedule(source: string, o: ScheduleOptions): Promise<string> {
  if (!o.cron) throw new InputError('--cron EXPR is required: a schedule needs a cron expression (e.g. "0 3 * * *")');
  if (source === '-') throw new InputError('a schedule needs an IDs file, not stdin');
  await checkIdsSource(source);
  if (o.tz !== undefined && !isTimeZone(o.tz)) throw new InputError(`--tz: unknown time zone ${JSON.stringify(o.tz)}`);
  const name = validateRunName(o.name ?? runLabel(source, 'schedule'));
  if (name.length > MAX_SCHEDULE_NAME) {
    throw new InputError(`schedule name ${JSON.stringify(name)} is ${name.length} characters: at most ${MAX_SCHEDULE_NAME}, so that its runs (<name>-<UTC time>) are valid run names; give a shorter name (--name)`);
  }
  return name;
}

/**
 * Adds or replaces a schedule: a BullMQ job scheduler in the queue itself,
 * so N worker replicas fire each tick once; each tick enqueues the IDs file.
 */
export async function upsertSchedule(c: Connected, source: string, o: ScheduleOptions): Promise<ScheduleInfo> {
  const name = await checkSchedule(source, o);
  const data: ScheduledPullData = { schedule: name, source: path.resolve(source) };
  try {
    await c.queue.upsertJobScheduler(name, { pattern: o.cron, tz: o.tz }, {
      name: SCHEDULED_PULL,
      data: data as unknown as BatchJobData,
      opts: { removeOnComplete: true, removeOnFail: { age: 7 * 24 * 3600 }, attempts: 5, backoff: { type: 'exponential', delay: 5000 } },
    });
  } catch (err) {
    throw new InputError(`--cron: invalid expression ${JSON.stringify(o.cron)} (${(err as Error).message})`, { cause: err });
  }
  const found = (await listSchedules(c)).find((s) => s.name === name);
  return found ?? { name, cron: o.cron, tz: o.tz ?? null, next: null, source: data.source };
}

/** Every schedule of the queue. */
export async function listSchedules(c: Connected): Promise<ScheduleInfo[]> {
  const all = await c.queue.getJobSchedulers(0, -1, true);
  return all.map((s) => ({
    name: s.id ?? s.key,
    cron: s.pattern ?? `every ${s.every} ms`,
    tz: s.tz ?? null,
    next: s.next ? new Date(s.next).toISOString() : null,
    source: (s.template?.data as unknown as ScheduledPullData | undefined)?.source ?? '',
  }));
}

/** Removes a schedule; an InputError when there is none of that name. */
export async function removeSchedule(c: Connected, queueName: string, name: string): Promise<void> {
  if (!(await c.queue.removeJobScheduler(name))) throw new InputError(`no schedule named ${JSON.stringify(name)} in queue ${queueName}`);
}

function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}
