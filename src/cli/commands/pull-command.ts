import { checkIdsSource } from '../../ids/read-ids.js';
import type { RunStatus } from '../../runs/run-store.js';
import { openPullq, runNameFor, type GlobalFlags } from '../command-context.js';
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
  // The IDs file before the config: a missing file is named first, before Redis is touched.
  await checkIdsSource(source);
  // Every line on stderr goes through the status line: logs never land on the end of the progress line.
  const line = createStatusLine(process.stderr);
  const say = (msg: string) => line.print(`pullq: ${msg}`);
  const { pullq, config } = openPullq(flags, { connection: 'patient', defaultLogLevel: 'warn', logFormat: 'human', write: (l) => line.print(l) });
  const stop = new AbortController();
  // An interrupted pull exits 2 (the run is not complete), within worker.shutdownTimeoutMs + 10 s even with Redis gone.
  const stopSignals = onShutdownSignals(() => stop.abort(), say, { shutdownTimeoutMs: config.worker.shutdownTimeoutMs, exitCode: () => 2, log: say });
  const stopProgress = startProgress(() => pullq.runStatus(run), line);
  try {
    const r = await pullq.pull(source, { run, workers: flags.workers ?? 1, signal: stop.signal, onNotice: say });
    stopProgress();
    if (!r.complete) {
      if (r.reason === 'interrupted') say(`run ${run} is not complete; run \`pullq pull ${source} --run ${run}\` or start workers to finish it`);
      else say(`${r.reason}; run ${run} is not complete (fix the cause, then resume: \`pullq pull ${source} --run ${run}\`)`);
      return 2;
    }
    const usage = credentialSummaryLines(r.credentials.before, r.credentials.after, r.durationMs);
    process.stdout.write(summaryText(r.status!, r.location) + usage.map((l) => `${l}\n`).join(''));
    return 0;
  } finally {
    stopProgress();
    stopSignals();
    await pullq.close();
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
