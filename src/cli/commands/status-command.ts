import { formatMs, type CredentialHealth } from '../../auth/credential-pool.js';
import type { RunReport } from '../../api/run-report.js';
import { InputError } from '../../errors.js';
import { runState } from '../../runs/run-state.js';
import type { RunStatus } from '../../runs/run-store.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { describeRedis } from '../../redis/connect-redis.js';
import { openPullq, type GlobalFlags } from '../command-context.js';
import { formatDuration } from '../progress.js';
import { formatRested } from '../pull-summary.js';
import { createBlockRedraw } from '../terminal-line.js';

/** How often `status --watch` refreshes. */
export const WATCH_EVERY_MS = 1000;

/**
 * `pullq status [--run NAME] [--json] [--watch]`: counts, completion, ETA,
 * credential health. `--watch` redraws the human status in place every
 * second until Ctrl-C (exit 0); when stdout is not a TTY it writes a new
 * block each second instead, after a blank line.
 */
export async function statusCommand(flags: GlobalFlags & { run?: string; json?: boolean; watch?: boolean }): Promise<number> {
  if (flags.watch && flags.json) throw new InputError('--watch redraws the human status in place; it does not combine with --json (run `pullq status --json` as often as you need)');
  const { pullq, config } = openPullq(flags, { connection: flags.watch ? 'patient' : 'brief', defaultLogLevel: 'warn', logFormat: 'human' });
  try {
    if (!flags.watch) {
      const r = await pullq.status(flags.run);
      process.stdout.write(flags.json ? `${JSON.stringify(r)}\n` : statusText(r));
      return 0;
    }
    const stop = new AbortController();
    const onSignal = () => stop.abort();
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    try {
      const block = createBlockRedraw(process.stdout);
      // Ctrl-C ends the watch even while a read waits for a Redis that is away (a long-lived connection waits, it does not fail).
      const aborted = new Promise<'aborted'>((resolve) => stop.signal.addEventListener('abort', () => resolve('aborted'), { once: true }));
      let last = '';
      while (!stop.signal.aborted) {
        const reading = pullq.status(flags.run);
        reading.catch(() => undefined);
        const slow = setTimeout(() => block.show(`as of ${stamp()} · waiting for Redis (${describeRedis(config.redis)}) · Ctrl-C to stop\n${last}`), 2 * WATCH_EVERY_MS);
        const r = await Promise.race([reading, aborted]).finally(() => clearTimeout(slow));
        if (r === 'aborted') break;
        last = statusText(r);
        block.show(`as of ${stamp()} · every ${WATCH_EVERY_MS / 1000} s · Ctrl-C to stop\n${last}`);
        await sleep(WATCH_EVERY_MS, undefined, { signal: stop.signal }).catch(() => undefined);
      }
      return 0;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  } finally {
    await pullq.close();
  }
}

const stamp = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z');

/** A report as the human status block. */
function statusText(r: RunReport): string {
  return humanStatus(r, r.ratePerSecond, r.etaSeconds === null ? null : r.etaSeconds * 1000, r.queueJobs) + waitingLine(r, r.credentials) + credentialTable(r.credentials);
}

function humanStatus(s: RunStatus, rate: number, etaMs: number | null, jobs: Record<string, number>): string {
  const word = runState(s);
  const state = word === 'stopped' ? `stopped: ${s.aborted}` : word;
  const lines = [
    `run       ${s.run} (${state})`,
    `total     ${s.total}${s.sealed ? '' : ' so far'}`,
    `succeeded ${s.succeeded}`,
    `failed    ${s.failed}${Object.keys(s.errors).length ? ` (${Object.entries(s.errors).map(([k, v]) => `${k} ${v}`).join(', ')})` : ''}`,
    `pending   ${s.pending}`,
    `rate      ${rate.toFixed(1)} IDs/s${etaMs !== null ? ` · ETA ${formatDuration(etaMs)}` : ''}`,
    `started   ${s.createdAt}${s.finishedAt ? ` · finished ${s.finishedAt}` : ''}`,
    `queue     ${s.queue}: ${jobs['active'] ?? 0} active, ${jobs['waiting'] ?? 0} waiting, ${jobs['delayed'] ?? 0} delayed, ${jobs['failed'] ?? 0} failed batch jobs (all runs)`,
  ];
  return `${lines.join('\n')}\n`;
}

/** Why an unfinished run makes no progress now, when every credential waits. */
function waitingLine(s: RunStatus, creds: CredentialHealth[]): string {
  if (s.done || s.aborted || creds.length === 0 || creds.some((c) => c.state === 'ok')) return '';
  const resting = creds.filter((c) => c.state === 'resting');
  if (resting.length === 0) return `waiting   every credential is quarantined: fix or replace them, then resume the run\n`;
  const next = resting.map((c) => c.until!).sort()[0];
  const asked = Math.max(0, ...resting.map((c) => c.askedMs ?? 0));
  const cap = asked > 0 ? `; the API asked for ${formatMs(asked)}, capped by retry.maxWaitMs` : '';
  return `waiting   every credential is resting (rate limited) until ${next}${cap}\n`;
}

function credentialTable(creds: CredentialHealth[]): string {
  const rows = creds.map((c) => [
    c.label,
    c.state === 'ok' ? 'ok' : c.state === 'resting' ? `resting until ${c.until}` : `quarantined (${c.reason ?? '?'}) until ${c.until}`,
    c.budget,
    c.remaining === null ? '-' : String(c.remaining),
    String(c.requests),
    String(c.n429),
    String(c.n401),
    String(c.n403),
    c.rests === 0 && c.restedMs === 0 ? '-' : `${c.rests} (${formatRested(c.restedMs)})`,
  ]);
  const head = ['credential', 'state', 'budget', 'left now', 'requests', '429s', '401s', '403s', 'rests'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd();
  return `\n${[line(head), ...rows.map(line)].join('\n')}\n`;
}
