import path from 'node:path';
import type { Queue } from 'bullmq';
import { InputError } from '../../errors.js';
import { checkIdsSource } from '../../ids/read-ids.js';
import { runLabel } from '../../runs/run-name.js';
import { validateRunName } from '../../runs/run-store.js';
import { SCHEDULED_PULL, type ScheduledPullData } from '../../runs/scheduled-pull.js';
import type { BatchJobData } from '../../runs/batch-job-data.js';
import { openContext, type GlobalFlags } from '../command-context.js';

export interface ScheduleFlags extends GlobalFlags {
  cron?: string;
  name?: string;
  tz?: string;
  list?: boolean;
  remove?: string;
}

/**
 * `pullq schedule <ids-file> --cron EXPR [--name NAME] [--tz TZ]`, `--list`,
 * `--remove NAME`: cron-triggered pulls kept in the queue itself (BullMQ job
 * schedulers), so N worker replicas fire each tick once. Each tick enqueues
 * the IDs file (a path every worker can read) as run `<name>-<UTC time>`.
 */
export async function scheduleCommand(source: string | undefined, flags: ScheduleFlags): Promise<number> {
  const modes = [flags.list, flags.remove !== undefined, source !== undefined].filter(Boolean).length;
  if (modes !== 1) throw new InputError('pullq schedule: give an IDs file with --cron, or --list, or --remove NAME');
  if (source !== undefined) {
    if (!flags.cron) throw new InputError('pullq schedule: --cron EXPR is required (e.g. --cron "0 3 * * *")');
    if (source === '-') throw new InputError('pullq schedule: a schedule needs an IDs file, not stdin');
    await checkIdsSource(source);
    if (flags.tz !== undefined && !isTimeZone(flags.tz)) throw new InputError(`--tz: unknown time zone ${JSON.stringify(flags.tz)}`);
  }
  const name = source !== undefined ? validateRunName(flags.name ?? runLabel(source, 'schedule')) : undefined;
  const ctx = await openContext(flags, { longLived: false, defaultLogLevel: 'warn', logFormat: 'human' });
  try {
    if (flags.list) return await list(ctx.queue);
    if (flags.remove !== undefined) {
      if (!(await ctx.queue.removeJobScheduler(flags.remove))) throw new InputError(`no schedule named ${JSON.stringify(flags.remove)} in queue ${ctx.config.queue}`);
      process.stdout.write(`schedule ${flags.remove} removed\n`);
      return 0;
    }
    const data: ScheduledPullData = { schedule: name!, source: path.resolve(source!) };
    try {
      await ctx.queue.upsertJobScheduler(name!, { pattern: flags.cron!, tz: flags.tz }, {
        name: SCHEDULED_PULL,
        data: data as unknown as BatchJobData,
        opts: { removeOnComplete: true, removeOnFail: { age: 7 * 24 * 3600 }, attempts: 5, backoff: { type: 'exponential', delay: 5000 } },
      });
    } catch (err) {
      throw new InputError(`--cron: invalid expression ${JSON.stringify(flags.cron)} (${(err as Error).message})`, { cause: err });
    }
    const [s] = (await ctx.queue.getJobSchedulers()).filter((x) => x.key === name || x.id === name);
    process.stdout.write(`schedule ${name}: ${flags.cron}${flags.tz ? ` (${flags.tz})` : ''} → pulls ${data.source} as run ${name}-<UTC time>${s?.next ? `; next ${new Date(s.next).toISOString()}` : ''}\nworkers (pullq worker) run it; every one of them must be able to read that file\n`);
    return 0;
  } finally {
    await ctx.close();
  }
}

async function list(queue: Queue<BatchJobData>): Promise<number> {
  const all = await queue.getJobSchedulers(0, -1, true);
  if (all.length === 0) {
    process.stdout.write('no schedules\n');
    return 0;
  }
  for (const s of all) {
    const data = s.template?.data as unknown as ScheduledPullData | undefined;
    process.stdout.write(`${s.id ?? s.key}  ${s.pattern ?? `every ${s.every} ms`}${s.tz ? ` (${s.tz})` : ''}  next ${s.next ? new Date(s.next).toISOString() : '-'}  ${data?.source ?? ''}\n`);
  }
  return 0;
}

function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}
