import { setTimeout as sleep } from 'node:timers/promises';
import { compileIdUrl } from '../../ids/id-url.js';
import { requestTemplateOf } from '../../ids/request-template.js';
import { checkIdsSource } from '../../ids/read-ids.js';
import { CredentialPool } from '../../auth/credential-pool.js';
import { createHttpClient } from '../../jobs/http-client.js';
import { enqueueRun, repairJobs } from '../../runs/enqueue-run.js';
import { finalizeRun } from '../../runs/finalize-run.js';
import type { RunStatus } from '../../runs/run-store.js';
import { createSink } from '../../sinks/create-sink.js';
import { startWorker, type WorkerHandle } from '../../workers/start-worker.js';
import { openContext, runNameFor, type GlobalFlags } from '../command-context.js';
import { formatDuration, startProgress } from '../progress.js';
import { credentialSummaryLines } from '../pull-summary.js';
import { createStatusLine } from '../terminal-line.js';
import { onShutdownSignals } from '../shutdown-signals.js';

/**
 * `pullq pull <ids-file|-> [--run NAME] [--workers N]`: enqueue, work in-process
 * until the run is complete, write the output, print a summary. Re-running it
 * with the same --run after a crash resumes the run.
 */
export async function pullCommand(source: string, flags: GlobalFlags & { run?: string; workers?: number }): Promise<number> {
  const run = runNameFor(flags.run, source);
  await checkIdsSource(source);
  // Every line on stderr goes through the status line: logs never land on the end of the progress line.
  const line = createStatusLine(process.stderr);
  const say = (msg: string) => line.print(`pullq: ${msg}`);
  const ctx = await openContext(flags, { longLived: true, defaultLogLevel: 'warn', logFormat: 'human', write: (l) => line.print(l) });
  const sink = createSink(ctx.config);
  const workers: WorkerHandle[] = [];
  let interrupted = false;
  const stopSignals = onShutdownSignals(() => {
    interrupted = true;
  }, say);
  const stopProgress = startProgress(() => ctx.store.status(run), line);
  try {
    const existing = await ctx.store.status(run);
    if (existing?.aborted) {
      // Resuming is how a user says the cause is fixed: its batches get their jobs back below.
      say(`run ${run} had stopped (${existing.aborted}); resuming it`);
      await ctx.store.clearAbort(run);
    }
    if (existing?.sealed) {
      say(`run ${run} is already enqueued; working on it until complete`);
      await repairJobs(ctx.queue, ctx.store, run);
    } else {
      await enqueueRun({ store: ctx.store, queue: ctx.queue, run, source, batchSize: ctx.config.enqueue.batchSize, urlFor: compileIdUrl(ctx.config.request.url), template: requestTemplateOf(ctx.config) });
    }
    // Reads the credentials' fleet-wide counters for the summary (before any request of ours), and
    // with --workers 0 (the other replicas do the work) notices when none of them can.
    const pool = new CredentialPool({ redis: ctx.redis, config: ctx.config, logger: ctx.logger, http: createHttpClient(ctx.config) });
    const usageBefore = await pool.usage();
    const startedAt = Date.now();
    const n = flags.workers ?? 1;
    let fatal: string | undefined;
    for (let i = 0; i < n; i++) {
      workers.push(await startWorker({ config: ctx.config, connection: ctx.redis, logger: ctx.logger, onFatal: (reason) => (fatal ??= reason) }));
    }

    let status: RunStatus | null = null;
    let checkedAt = 0;
    while (!interrupted && fatal === undefined) {
      status = await ctx.store.status(run);
      if (status?.complete) break;
      if (status?.aborted) {
        fatal = `run ${run} cannot complete: ${status.aborted}`;
        break;
      }
      if (status?.done) await finalizeRun(ctx.store, sink, run, ctx.logger);
      else await sleep(250);
      if (Date.now() - checkedAt > 2000) {
        checkedAt = Date.now();
        if (await pool.allQuarantined()) fatal = `every credential is quarantined (${pool.size} of ${pool.size}); fix or replace them and resume the run`;
      }
    }
    stopProgress();
    await Promise.all(workers.map((w) => w.close()));
    if (fatal !== undefined) {
      say(`${fatal}; run ${run} is not complete (fix the cause, then resume: \`pullq pull ${source} --run ${run}\`)`);
      return 2;
    }
    if (!status?.complete) {
      say(`run ${run} is not complete; run \`pullq pull ${source} --run ${run}\` or start workers to finish it`);
      return 2;
    }
    const usage = credentialSummaryLines(usageBefore, await pool.usage(), Date.now() - startedAt);
    process.stdout.write(summaryText(status, sink.location(run)) + usage.map((l) => `${l}\n`).join(''));
    return 0;
  } finally {
    stopProgress();
    stopSignals();
    await sink.close?.();
    await ctx.close();
  }
}

function summaryText(s: RunStatus, where: string): string {
  const took = s.finishedAt && s.createdAt ? formatDuration(Date.parse(s.finishedAt) - Date.parse(s.createdAt)) : '?';
  const errors = Object.entries(s.errors).map(([k, v]) => `${k} ${v}`).join(', ');
  return (
    `run ${s.run} complete in ${took}: ${s.total} IDs, ${s.succeeded} succeeded, ${s.failed} failed${errors ? ` (${errors})` : ''}\n` +
    `output: ${where}\n`
  );
}
