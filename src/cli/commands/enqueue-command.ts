import { checkIdsSource } from '../../ids/read-ids.js';
import { openPullq, runNameFor, type GlobalFlags } from '../command-context.js';

/** `pullq enqueue <ids-file|-> [--run NAME]`: streams IDs into the queue and returns. */
export async function enqueueCommand(source: string, flags: GlobalFlags & { run?: string }): Promise<number> {
  await checkIdsSource(source);
  const { pullq } = openPullq(flags, { connection: 'brief', defaultLogLevel: 'warn', logFormat: 'human' });
  try {
    const tty = process.stderr.isTTY;
    const run = runNameFor(flags.run, source);
    const r = await pullq.enqueue(source, {
      run,
      onProgress: tty ? (read, added) => process.stderr.write(`\r\x1b[2Kenqueueing ${run}: ${read} read, ${added} new`) : undefined,
    });
    if (tty) process.stderr.write('\r\x1b[2K');
    const dup = r.read - r.added;
    process.stdout.write(
      `run ${r.run}${r.resumed ? ' (resumed)' : ''}: ${r.read} IDs read, ${r.added} new${dup > 0 ? `, ${dup} duplicate or already in` : ''}; ${r.total} in the run\n` +
        `start workers with \`pullq worker\`, follow with \`pullq status --run ${r.run}\`\n`,
    );
    return 0;
  } finally {
    await pullq.close();
  }
}
