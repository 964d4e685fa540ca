import type { RunStatus } from '../runs/run-store.js';

/** How far back the recent rate looks: long enough to smooth batch commits, short enough to follow a change. */
export const PACE_WINDOW_MS = 60_000;
/** A recent rate needs samples this far apart; before that the average since the run began is shown. */
const MIN_SPAN_MS = 10_000;

export interface RunPace {
  /** IDs finished per second: over the last minute while the run goes on, over the whole run once done. */
  idsPerSecond: number;
  /** Seconds until every known ID is finished at that rate; null when done or not moving. */
  etaSeconds: number | null;
}

/**
 * IDs/s and ETA per run for a long-lived viewer (the dashboard): remembers
 * what it saw of each run over the last PACE_WINDOW_MS, so a run that slowed
 * down (credentials resting) shows its rate now, not its average since the start.
 */
export class RunPaceTracker {
  private readonly samples = new Map<string, { at: number; finished: number }[]>();

  /** The pace of `s` at `now` (epoch ms), adding this sighting to its history. */
  pace(s: RunStatus, now = Date.now()): RunPace {
    const finished = s.succeeded + s.failed;
    const started = s.createdAt ? Date.parse(s.createdAt) : now;
    if (s.done || s.aborted !== null) {
      this.samples.delete(s.run);
      const end = s.finishedAt ? Date.parse(s.finishedAt) : now;
      return { idsPerSecond: end > started ? (1000 * finished) / (end - started) : 0, etaSeconds: null };
    }
    const seen = (this.samples.get(s.run) ?? []).filter((x) => x.at >= now - PACE_WINDOW_MS && x.finished <= finished);
    seen.push({ at: now, finished });
    this.samples.set(s.run, seen);
    const first = seen[0]!;
    const rate = now - first.at >= MIN_SPAN_MS ? (1000 * (finished - first.finished)) / (now - first.at) : now > started ? (1000 * finished) / (now - started) : 0;
    return { idsPerSecond: rate, etaSeconds: rate > 0 ? Math.round(s.pending / rate) : null };
  }

  /** Forgets runs not in `live` (deleted, or fallen out of the list shown). */
  keepOnly(live: ReadonlySet<string>): void {
    for (const run of this.samples.keys()) if (!live.has(run)) this.samples.delete(run);
  }
}
