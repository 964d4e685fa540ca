import type { RunStatus } from '../runs/run-store.js';
import type { StatusLine } from './terminal-line.js';

/** "1m 05s" style durations for humans. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '?';
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, '0')}m`;
}

/** One status line: counts, rate over the last window, ETA. */
export function progressLine(s: RunStatus, ratePerSec: number): string {
  const finished = s.succeeded + s.failed;
  const pct = s.total > 0 ? Math.floor((100 * finished) / s.total) : 100;
  const eta = ratePerSec > 0 && s.pending > 0 ? ` · ETA ${formatDuration((1000 * s.pending) / ratePerSec)}` : '';
  const enq = s.sealed ? '' : ' (enqueueing)';
  return `${s.run}: ${finished}/${s.total}${enq} ${pct}% · ${s.succeeded} ok · ${s.failed} failed · ${ratePerSec.toFixed(0)}/s${eta}`;
}

/**
 * Redraws `pull`'s progress on the status line every `everyMs`; draws
 * nothing when the line is not live (stderr is not a TTY), so logs and pipes
 * stay clean. The returned stop takes the line away; a read still under way
 * then draws nothing.
 */
export function startProgress(read: () => Promise<RunStatus | null>, line: StatusLine, everyMs = 500): () => void {
  if (!line.live) return () => undefined;
  let last: { at: number; finished: number } | undefined;
  let rate = 0;
  let stopped = false;
  const timer = setInterval(() => {
    void read()
      .then((s) => {
        if (!s || stopped) return;
        const now = Date.now();
        const finished = s.succeeded + s.failed;
        if (last && now > last.at) rate = 0.7 * rate + (0.3 * (1000 * (finished - last.finished))) / (now - last.at);
        last = { at: now, finished };
        line.draw(progressLine(s, rate));
      })
      .catch(() => undefined);
  }, everyMs);
  timer.unref();
  return () => {
    stopped = true;
    clearInterval(timer);
    line.clear();
  };
}
