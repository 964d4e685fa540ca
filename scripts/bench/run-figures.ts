import { windowFigures, type WindowFigures } from './fleet-figures.js';
import type { ApiStats } from './start-api-process.js';

export interface RunFigures extends WindowFigures {
  totalRequests: number;
  totalRejected: number;
  window: { from: number; to: number };
}

/** Figures of a fixed-time fleet run: its busy part (from the first request + warm-up to the stop) and its whole-run 429s. */
export function runFigures(run: { stats: ApiStats; firstRequestAt: number; phases: { end: number }[] }, warmMs: number, budgetPerSec: number): RunFigures {
  const from = run.firstRequestAt + warmMs;
  const to = run.phases[run.phases.length - 1]!.end;
  const w = windowFigures(run.stats, from, to, budgetPerSec);
  const totalRejected = run.stats.log.status.filter((s) => s === 429).length;
  return { ...w, totalRequests: run.stats.log.t.length, totalRejected, window: { from, to: from + w.seconds * 1000 } };
}
