import { InputError } from '../../errors.js';
import { checkSchedule } from '../../api/schedules.js';
import { openPullq, type GlobalFlags } from '../command-context.js';

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
  const options = { cron: flags.cron ?? '', name: flags.name, tz: flags.tz };
  // The input before the config and Redis: a missing --cron or IDs file is named first.
  if (source !== undefined) await checkSchedule(source, options);
  const { pullq } = openPullq(flags, { connection: 'brief', defaultLogLevel: 'warn', logFormat: 'human' });
  try {
    if (flags.list) {
      const all = await pullq.schedules();
      process.stdout.write(all.length === 0 ? 'no schedules\n' : all.map((s) => `${s.name}  ${s.cron}${s.tz ? ` (${s.tz})` : ''}  next ${s.next ?? '-'}  ${s.source}\n`).join(''));
      return 0;
    }
    if (flags.remove !== undefined) {
      await pullq.unschedule(flags.remove);
      process.stdout.write(`schedule ${flags.remove} removed\n`);
      return 0;
    }
    const s = await pullq.schedule(source!, options);
    process.stdout.write(`schedule ${s.name}: ${s.cron}${s.tz ? ` (${s.tz})` : ''} → pulls ${s.source} as run ${s.name}-<UTC time>${s.next ? `; next ${s.next}` : ''}\nworkers (pullq worker) run it; every one of them must be able to read that file\n`);
    return 0;
  } finally {
    await pullq.close();
  }
}
