import { compileIdUrl } from '../../ids/id-url.js';
import { requestTemplateOf } from '../../ids/request-template.js';
import { checkIdsSource } from '../../ids/read-ids.js';
import { enqueueRun } from '../../runs/enqueue-run.js';
import { finalizeRun } from '../../runs/finalize-run.js';
import { createSink } from '../../sinks/create-sink.js';
import { openContext, runNameFor, type GlobalFlags } from '../command-context.js';

/** `pullq enqueue <ids-file|-> [--run NAME]`: streams IDs into the queue and returns. */
export async function enqueueCommand(source: string, flags: GlobalFlags & { run?: string }): Promise<number> {
  const run = runNameFor(flags.run, source);
  await checkIdsSource(source);
  const ctx = await openContext(flags, { longLived: false, defaultLogLevel: 'warn', logFormat: 'human' });
  try {
    const tty = process.stderr.isTTY;
    const r = await enqueueRun({
      store: ctx.store,
      queue: ctx.queue,
      run,
      source,
      batchSize: ctx.config.enqueue.batchSize,
      urlFor: compileIdUrl(ctx.config.request.url),
      template: requestTemplateOf(ctx.config),
      onProgress: tty ? (read, added) => process.stderr.write(`\r\x1b[2Kenqueueing ${run}: ${read} read, ${added} new`) : undefined,
    });
    if (tty) process.stderr.write('\r\x1b[2K');
    if (r.done) {
      const sink = createSink(ctx.config);
      await finalizeRun(ctx.store, sink, run, ctx.logger).finally(() => sink.close?.());
    }
    const dup = r.read - r.added;
    process.stdout.write(
      `run ${run}${r.resumed ? ' (resumed)' : ''}: ${r.read} IDs read, ${r.added} new${dup > 0 ? `, ${dup} duplicate or already in` : ''}; ${r.total} in the run\n` +
        `start workers with \`pullq worker\`, follow with \`pullq status --run ${run}\`\n`,
    );
    return 0;
  } finally {
    await ctx.close();
  }
}
